"""Baseline gate: compare a candidate's quality figures with those of the promoted model.

Each check may declare ``quality = {"field": "higher" | "lower"}``: observed fields that measure
how good the model is (PAR003's ``fit_unexplained``, a per-t loss, a sample KS D). ``diffcheck run new.pt
--baseline promoted.pt`` runs those checks on the promoted checkpoint with the same seed, data and
options, and fails when a figure worsens by more than ``atol + rtol * |baseline|``::

    BASELINE PAR003 fit_unexplained rose from 0.0299 to 0.0631 (+111%) (tolerance 0.003, lower is better)

A figure that is a list (one number per timestep, say) is compared element by element and its
worst element is reported. Every number is in report.json's ``baseline`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from diffcheck.engine.check import Check
from diffcheck.engine.config import Tolerance
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status

__all__ = ["FigureComparison", "BaselineComparison", "compare_reports", "quality_checks"]

_COMPARABLE = (Status.PASS, Status.WARN, Status.QUALITY)


@dataclass(frozen=True)
class FigureComparison:
    """One quality figure of one check: baseline vs candidate, and whether it regressed."""

    check_id: str
    field: str
    better: str
    baseline: float
    candidate: float
    allowed: float
    #: Index of the reported element when the figure is a list (its worst element), else None.
    index: int | None = None

    @property
    def worsening(self) -> float:
        """How much worse the candidate is (positive = worse; NaN candidate = infinitely worse)."""
        if not math.isfinite(self.candidate):
            return math.inf
        delta = self.candidate - self.baseline
        return -delta if self.better == "higher" else delta

    @property
    def regressed(self) -> bool:
        return self.worsening > self.allowed

    @property
    def name(self) -> str:
        return self.field if self.index is None else f"{self.field}[{self.index}]"

    def message(self) -> str:
        """``BASELINE <ID> <field> rose from <b> to <c> (<change>) (tolerance <allowed>, <direction>)``."""
        if self.candidate == self.baseline:
            moved = f"unchanged at {self.candidate:.4g}"
        else:
            verb = "became" if not math.isfinite(self.candidate) else "rose" if self.candidate > self.baseline else "fell"
            moved = f"{verb} from {self.baseline:.4g} to {self.candidate:.4g}"
            if self.baseline != 0 and math.isfinite(self.candidate):
                moved += f" ({(self.candidate - self.baseline) / abs(self.baseline):+.0%})"
        verdict = "" if self.regressed else "; within tolerance"
        return (f"BASELINE {self.check_id} {self.name} {moved} "
                f"(tolerance {self.allowed:.2g}, {self.better} is better{verdict})")

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check_id, "field": self.field, "index": self.index, "better": self.better,
                "baseline": _finite_or_str(self.baseline), "candidate": _finite_or_str(self.candidate),
                "worsening": _finite_or_str(self.worsening), "allowed": self.allowed, "regressed": self.regressed}


@dataclass(frozen=True)
class BaselineComparison:
    """Every compared figure, the checks that could not be compared (and why), the tolerance."""

    checkpoint: str
    figures: tuple[FigureComparison, ...]
    not_compared: tuple[tuple[str, str], ...]
    tolerance: Tolerance

    @property
    def regressions(self) -> tuple[FigureComparison, ...]:
        return tuple(f for f in self.figures if f.regressed)

    @property
    def passed(self) -> bool:
        return not self.regressions

    def lines(self) -> list[str]:
        """Regressions first, then the figures within tolerance, then what was not compared."""
        ordered = sorted(self.figures, key=lambda f: not f.regressed)
        return ([f.message() for f in ordered]
                + [f"BASELINE {cid} not compared: {why}" for cid, why in self.not_compared])

    def to_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "passed": self.passed, "regressions": len(self.regressions),
                "rtol": self.tolerance.rtol, "atol": self.tolerance.atol,
                "figures": [f.to_dict() for f in self.figures],
                "not_compared": [{"check": cid, "reason": why} for cid, why in self.not_compared]}


def quality_checks(checks: Iterable[type[Check]], report: Report) -> list[str]:
    """IDs of the checks in ``report`` that declare quality figures and passed or warned."""
    declared = {c.id for c in checks if c.quality}
    return [r.id for r in report.results if r.id in declared and r.status in _COMPARABLE]


def compare_reports(candidate: Report, baseline: Report, checks: Iterable[type[Check]], *,
                    tolerance: Tolerance = Tolerance(), checkpoint: str = "") -> BaselineComparison:
    """Compare every declared quality figure of ``candidate`` with ``baseline`` (same checks, same seed)."""
    quality = {c.id: c.quality for c in checks if c.quality}
    figures: list[FigureComparison] = []
    skipped: list[tuple[str, str]] = []
    base = {r.id: r for r in baseline.results}
    for result in candidate.results:
        if result.id not in quality:
            continue
        reason = _why_not_comparable(result, base.get(result.id))
        if reason:
            skipped.append((result.id, reason))
            continue
        for name, better in quality[result.id].items():
            figure = _compare_field(result.id, name, better, base[result.id].observed.get(name),
                                    result.observed.get(name), tolerance)
            if isinstance(figure, str):
                skipped.append((result.id, figure))
            else:
                figures.append(figure)
    return BaselineComparison(checkpoint, tuple(figures), tuple(skipped), tolerance)


def _why_not_comparable(candidate: Result, baseline: Result | None) -> str:
    if candidate.status not in _COMPARABLE:
        return f"the candidate's result is {candidate.status.value}"
    if baseline is None:
        return "the check did not run on the baseline"
    if baseline.status not in _COMPARABLE:
        return f"the baseline's result is {baseline.status.value} ({baseline.summary})"
    return ""


def _compare_field(check_id: str, name: str, better: str, base: Any, cand: Any,
                   tolerance: Tolerance) -> FigureComparison | str:
    """The comparison of one field, or the reason it cannot be compared."""
    if _is_number(base) and _is_number(cand):
        return FigureComparison(check_id, name, better, float(base), float(cand), tolerance.allowed(float(base)))
    if _is_numbers(base) and _is_numbers(cand) and len(base) == len(cand) and base:
        pairs = [FigureComparison(check_id, name, better, float(b), float(c), tolerance.allowed(float(b)), i)
                 for i, (b, c) in enumerate(zip(base, cand))]
        return max(pairs, key=lambda f: f.worsening - f.allowed)
    return f"{name} is not a number (or a list of equal length) in both reports"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_numbers(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(_is_number(v) for v in value)


def _finite_or_str(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def figures_by_check(comparison: BaselineComparison) -> Mapping[str, list[FigureComparison]]:
    """The compared figures grouped by check ID (for the JUnit writer)."""
    out: dict[str, list[FigureComparison]] = {}
    for f in comparison.figures:
        out.setdefault(f.check_id, []).append(f)
    return out

"""Check results: frozen records of what a check measured and how it was judged."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["Status", "Verdict", "Result", "RESULT_SCHEMA_VERSION", "GATED"]

#: 2: the status QUALITY (and its count) was added; fields are otherwise those of 1.
RESULT_SCHEMA_VERSION = 2


class Status(str, enum.Enum):
    """Outcome of one check.

    - ``FAIL``: a bug, a proven contradiction in the pipeline (or samples grossly unlike spectra);
    - ``QUALITY``: no bug, but a measured shortfall of the model: its samples further from real
      spectra than real spectra are from each other (DIST002-004), or less learned than a trained
      network shows (TEMB002); the number says how far. A quality finding, not an accusation;
    - ``WARN``: a structural sign that is suspicious but not proven;
    - ``ERROR``: the check itself raised; ``SKIP``: it did not apply.

    A run fails (exit code 1) on a FAIL; on a QUALITY or WARN only where the user set a gate
    (``--strict``, a ``--baseline`` regression, a lowered threshold).
    """

    PASS = "PASS"
    QUALITY = "QUALITY"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"
    ERROR = "ERROR"

    def fails_run(self, strict: bool) -> bool:
        """True when this status fails the run: a FAIL, or under ``strict`` a WARN or QUALITY too."""
        return self is Status.FAIL or (strict and self in GATED)


#: Statuses that pass a run unless it is strict.
GATED = (Status.WARN, Status.QUALITY)


@dataclass(frozen=True)
class Verdict:
    """What a check's ``judge`` returns: the status and the words that explain it.

    ``summary`` is the first line and must stand alone (what is wrong and the number that
    shows it). ``evidence`` lines follow it; ``causes`` are the likely causes, most likely first.
    """

    status: Status
    summary: str
    evidence: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()
    #: Numbers derived while judging (they depend on thresholds); merged into the result's ``observed``.
    observed: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The full record of one check in one run; every number in the text is in ``observed``."""

    id: str
    title: str
    status: Status
    summary: str
    evidence: tuple[str, ...] = ()
    causes: tuple[str, ...] = ()
    hint: str = ""
    observed: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    seed: int = 0
    duration_s: float = 0.0

    @property
    def family(self) -> str:
        return self.id.rstrip("0123456789")

    def message(self) -> str:
        """The failure text: first line, evidence, likely causes, how to silence it."""
        lines = [f"{self.id} {self.summary}"]
        lines += [f"  {line}" for line in self.evidence]
        if self.causes:
            lines.append("Likely causes:")
            lines += [f"  {i}. {c}" for i, c in enumerate(self.causes, 1)]
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "family": self.family,
            "title": self.title,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "causes": list(self.causes),
            "hint": self.hint,
            "observed": _jsonable(self.observed),
            "thresholds": _jsonable(self.thresholds),
            "figures": list(self.figures),
            "seed": self.seed,
            "duration_s": round(self.duration_s, 4),
        }


def _jsonable(value: Any) -> Any:
    """Numbers, lists and dicts as plain JSON; non-finite floats as strings ("nan", "inf")."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)

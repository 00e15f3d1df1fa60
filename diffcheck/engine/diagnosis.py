"""The diagnosis of a run: the root causes first, each with the failures that follow from it.

Every check declares where in the pipeline it looks (``Check.stage``, in causal order) and which
other checks' failures its own failure accounts for (``Check.explains``: the knock-on effects of the
fault it finds; PAR004, eps trained and decoded as x0, explains the DIST checks' "samples are
noise"). From a run's results:

- a *root cause* is a FAIL, WARN or QUALITY that no other flagged check of the run explains (where
  failures explain each other in a circle, the first by rank stands for them);
- its *knock-ons* are the flagged checks it explains, directly or through another knock-on;
- roots are ranked FAIL before WARN before QUALITY (a root ranks as the worst status it alone
  explains: a WARN that explains a FAIL ranks as a FAIL), then by stage, then by ID; each carries
  its check's ``next_step``.

A run whose only findings are QUALITY (samples measurably short of real spectra, no bug) has the
kind ``quality_only``: its headline says no bug was found, then the size of the gap.

Where only the samples fail (no structural check does), the diagnosis says so and ranks the
candidate causes from the failing DIST checks' own likely causes, those that point at a check which
passed last. ERROR results are listed apart: an errored check says nothing about the pipeline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from diffcheck.engine.check import FAMILY_STAGES, Check, Stage, explains_id
from diffcheck.engine.results import Result, Status

__all__ = ["Cause", "Diagnosis", "diagnose", "compress_ids", "expand_ids", "KINDS"]

#: What a diagnosis found: ``passed`` nothing flagged; ``root_cause`` a structural FAIL (or a WARN
#: that explains one); ``samples_only`` only DIST checks failed; ``warnings_only`` WARNs and no
#: FAIL; ``quality_only`` QUALITY findings and nothing worse (no bug); ``errored`` nothing flagged,
#: but a check raised.
KINDS = ("passed", "root_cause", "samples_only", "warnings_only", "quality_only", "errored")
_FLAGGED = (Status.FAIL, Status.WARN, Status.QUALITY)
#: The next step of a quality finding (a root whose status is QUALITY): a gap, not a bug.
QUALITY_STEP = ("a quality gap, not a bug: train longer or larger and compare the checkpoints with --baseline; the run "
                "passes unless gated (--strict, --baseline, or a lower fail_* threshold in [tool.diffcheck])")
#: Worst first: the rank of a flagged status.
_SEVERITY = {Status.FAIL: 0, Status.WARN: 1, Status.QUALITY: 2}
_CITED = re.compile(r"\b([A-Z]{2,5}[0-9]{3}|FWD|PAR|SMP|TEMB|LOSS|WGT|TOY|DIST)\b")


@dataclass(frozen=True)
class _Declared:
    """What a check declares for the diagnosis (looked up by ID; unknown IDs: family defaults)."""

    stage: Stage
    explains: frozenset[str]
    next_step: str


@dataclass(frozen=True)
class Cause:
    """One root cause: its result, stage, the knock-on failures it explains and what to do next."""

    id: str
    status: Status
    stage: Stage
    summary: str
    explains: tuple[str, ...]
    next_step: str
    #: The worst status among the root and the knock-ons no worse root explains (its rank).
    severity: Status = Status.FAIL

    def line(self) -> str:
        """``ID summary; explains A, B`` (the IDs compressed: DIST001-004)."""
        tail = f"; explains {compress_ids(self.explains)}" if self.explains else ""
        label = f" ({self.status.value})" if self.status is not Status.FAIL else ""
        return f"{self.id}{label} {self.summary}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "severity": self.severity.value,
                "stage": self.stage.label, "summary": self.summary, "explains": list(self.explains),
                "next_step": self.next_step}


@dataclass(frozen=True)
class Diagnosis:
    """The run's verdict in causal order; ``headline`` is line 1 of every output."""

    kind: str
    headline: str
    causes: tuple[Cause, ...] = ()
    #: Ranked candidate causes when only the samples fail (kind ``samples_only``).
    candidates: tuple[str, ...] = ()
    errored: tuple[str, ...] = ()
    #: Structural (non-sample) checks that passed or warned: what "no structural check failed" rests on.
    structural_ran: int = 0

    @property
    def order(self) -> tuple[str, ...]:
        """Every flagged check in diagnosis order: each root, then its knock-ons, then the errored."""
        seen: dict[str, None] = {}
        for c in self.causes:
            seen.update(dict.fromkeys((c.id, *c.explains)))
        seen.update(dict.fromkeys(self.errored))
        return tuple(seen)

    def lines(self) -> list[str]:
        """The headline, then each root cause's next step (with its line when there are several),
        then the candidates and the errored checks."""
        out = [self.headline]
        several = len(self.causes) > 1
        for i, c in enumerate(self.causes, 1):
            if several:
                out.append(f"  {i}. {c.line()}")
            if c.next_step:
                out.append(f"{'     ' if several else '  '}next step: {c.next_step}")
        if self.candidates:
            out.append("  candidate causes, most likely first:")
            out += [f"     {i}. {text}" for i, text in enumerate(self.candidates, 1)]
        if self.errored:
            out.append(f"  errored (a bug in the check or the adapter, not a verdict): {', '.join(self.errored)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "headline": self.headline, "root_causes": [c.to_dict() for c in self.causes],
                "order": list(self.order), "candidates": list(self.candidates), "errored": list(self.errored),
                "structural_checks_passed": self.structural_ran}


def diagnose(results: Iterable[Result], checks: Iterable[type[Check]] | None = None) -> Diagnosis:
    """The diagnosis of ``results``; ``checks`` declare stages and knock-ons (default: the registry)."""
    results = tuple(results)
    declared = _declarations(checks)
    info = {r.id: _declared(r.id, declared) for r in results}
    flagged = {r.id: r for r in results if r.status in _FLAGGED}
    errored = tuple(sorted(r.id for r in results if r.status is Status.ERROR))
    structural = sum(1 for r in results if r.status in (Status.PASS, Status.WARN, Status.QUALITY)
                     and info[r.id].stage < Stage.SAMPLES)
    if not flagged:
        return Diagnosis(_quiet_kind(errored), _quiet_headline(results, errored), errored=errored,
                         structural_ran=structural)
    edges = {a: tuple(b for b in flagged if b != a and explains_id(info[a].explains, b)) for a in flagged}
    causes = _causes(flagged, info, edges)
    kind = _kind(causes)
    candidates = _candidates(causes, flagged, results) if kind == "samples_only" else ()
    return Diagnosis(kind, _headline(kind, causes, candidates, structural), causes, candidates, errored, structural)


def _declarations(checks: Iterable[type[Check]] | None) -> Mapping[str, _Declared]:
    if checks is None:
        from diffcheck.engine.registry import load_registry

        checks = load_registry().checks
    return {c.id: _Declared(c.pipeline_stage(), c.explains, c.next_step) for c in checks}


def _declared(check_id: str, declared: Mapping[str, _Declared]) -> _Declared:
    if check_id in declared:
        return declared[check_id]
    return _Declared(FAMILY_STAGES.get(check_id.rstrip("0123456789"), Stage.LEARNED), frozenset(), "")


def _rank(r: Result, d: _Declared) -> tuple[int, int, str]:
    return (_SEVERITY[r.status], int(d.stage), r.id)


def _reach(start: str, edges: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Every node reachable from ``start`` through ``edges``."""
    seen, todo = set(), list(edges[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges[node])
    return seen


def _roots(flagged: Mapping[str, Result], info: Mapping[str, _Declared],
           edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Flagged checks no other flagged check explains; of a circle of failures that only explain
    each other, the first by rank."""
    explained = {b for bs in edges.values() for b in bs}
    ranked = sorted(flagged, key=lambda i: _rank(flagged[i], info[i]))
    roots = [i for i in ranked if i not in explained]
    covered = set(roots).union(*(_reach(r, edges) for r in roots))
    for i in ranked:
        if i not in covered:
            roots.append(i)
            covered |= {i} | _reach(i, edges)
    return roots


def _causes(flagged: Mapping[str, Result], info: Mapping[str, _Declared],
            edges: Mapping[str, tuple[str, ...]]) -> tuple[Cause, ...]:
    """One Cause per root, by severity, stage and ID; knock-ons in stage then ID order."""
    roots = _roots(flagged, info, edges)
    # a root ranks as the worst status it explains that no worse root explains (FWD004 WARN -> FWD003 FAIL)
    covered = {s: set().union(*(_reach(r, edges) for r in roots if _SEVERITY[flagged[r].status] <= _SEVERITY[s]))
               for s in _SEVERITY}
    causes = []
    for root in roots:
        knock = sorted(_reach(root, edges) - set(roots), key=lambda i: (int(info[i].stage), i))
        own = flagged[root].status
        worse = [flagged[i].status for i in knock
                 if _SEVERITY[flagged[i].status] < _SEVERITY[own] and i not in covered[flagged[i].status]]
        r, d = flagged[root], info[root]
        step = QUALITY_STEP if r.status is Status.QUALITY else d.next_step
        causes.append(Cause(r.id, r.status, d.stage, r.summary, tuple(knock), step,
                            min([own, *worse], key=_SEVERITY.__getitem__)))
    return tuple(sorted(causes, key=lambda c: (_SEVERITY[c.severity], int(c.stage), c.id)))


def _kind(causes: tuple[Cause, ...]) -> str:
    failing = [c for c in causes if c.severity is Status.FAIL]
    if not failing:
        return "warnings_only" if any(c.severity is Status.WARN for c in causes) else "quality_only"
    return "samples_only" if all(c.stage is Stage.SAMPLES for c in failing) else "root_cause"


def _headline(kind: str, causes: tuple[Cause, ...], candidates: tuple[str, ...], structural: int) -> str:
    more = causes[1:]
    extra = f"; {len(more)} more root cause{'s' if len(more) > 1 else ''}: " + "; ".join(
        c.id + (f" (explains {compress_ids(c.explains)})" if c.explains else "") for c in more) if more else ""
    if kind == "samples_only":
        lead = (f"no structural check failed ({structural} passed), but the samples do: " if structural
                else "the samples fail and no structural check ran (FWD, PAR, SMP, TEMB, WGT): ")
        likely = f"; most likely: {candidates[0]}" if candidates else ""
        return f"diagnosis: {lead}{causes[0].line()}{extra}{likely}"
    if kind == "quality_only":
        return (f"diagnosis: no bug found ({structural} structural check{'s' if structural != 1 else ''} passed); "
                f"the samples fall short of real "
                f"spectra: {causes[0].line()}{extra}")
    lead = "root cause" if kind == "root_cause" else "no check failed; warning:"
    return f"diagnosis: {lead} {causes[0].line()}{extra}"


def _quiet_kind(errored: tuple[str, ...]) -> str:
    return "errored" if errored else "passed"


def _quiet_headline(results: tuple[Result, ...], errored: tuple[str, ...]) -> str:
    if errored:
        return (f"diagnosis: no check failed, but {len(errored)} check{'s' if len(errored) > 1 else ''} errored "
                f"({', '.join(errored)}): their verdicts are missing")
    passed = sum(1 for r in results if r.status is Status.PASS)
    skipped = len(results) - passed
    return f"diagnosis: no check failed ({passed} passed, {skipped} skipped)"


def _candidates(causes: tuple[Cause, ...], flagged: Mapping[str, Result],
                results: tuple[Result, ...]) -> tuple[str, ...]:
    """The failing sample checks' likely causes, interleaved by rank (each check's first, then each
    one's second...); a cause that cites only checks which passed (``see PAR004``) goes last."""
    lists = [flagged[i].causes for c in causes if c.stage is Stage.SAMPLES for i in (c.id, *c.explains)]
    merged: dict[str, None] = {}
    for depth in range(max((len(x) for x in lists), default=0)):
        merged.update(dict.fromkeys(x[depth] for x in lists if depth < len(x)))
    passed = {r.id for r in results if r.status is Status.PASS}
    return tuple(sorted(merged, key=lambda text: _ruled_out(text, passed, set(flagged))))


def _ruled_out(text: str, passed: set[str], flagged: set[str]) -> bool:
    """True when every check or family ``text`` cites passed and none of them was flagged."""
    cited = _CITED.findall(text)

    def hit(sel: str, ids: set[str]) -> bool:
        return any(explains_id(frozenset({sel}), i) for i in ids)

    return bool(cited) and all(hit(c, passed) and not hit(c, flagged) for c in cited)


def compress_ids(ids: Iterable[str]) -> str:
    """``DIST001, DIST002, DIST003, LOSS001`` -> ``DIST001-003, LOSS001`` (runs of 3 or more)."""
    ids = list(ids)
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and _successor(ids[j], ids[j + 1]):
            j += 1
        out.append(f"{ids[i]}-{ids[j][-3:]}" if j - i >= 2 else ", ".join(ids[i:j + 1]))
        i = j + 1
    return ", ".join(out)


def _successor(a: str, b: str) -> bool:
    fa, fb = a.rstrip("0123456789"), b.rstrip("0123456789")
    return fa == fb and a[len(fa):].isdigit() and b[len(fb):].isdigit() and int(b[len(fb):]) == int(a[len(fa):]) + 1


def expand_ids(text: str) -> set[str]:
    """Every check ID ``text`` names, ranges included (``DIST001-004`` -> DIST001..DIST004)."""
    found = set(re.findall(r"\b[A-Z]+[0-9]{3}\b", text))
    for family, lo, hi in re.findall(r"\b([A-Z]+)([0-9]{3})-([0-9]{3})\b", text):
        found |= {f"{family}{n:03d}" for n in range(int(lo), int(hi) + 1)}
    return found

"""The report of one run: results plus what was checked, as JSON a CI system can read."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ExitCode
from .results import RESULT_SCHEMA_VERSION, Result, Status

if TYPE_CHECKING:
    from .baseline import BaselineComparison

__all__ = ["Report"]


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    pipeline: Mapping[str, Any]
    device: str
    seed: int
    duration_s: float
    data: Mapping[str, Any] | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Under ``--strict`` a WARN fails the run (exit code 1) like a FAIL.
    strict: bool = False
    #: The comparison against a promoted model (``--baseline``, diffcheck.baseline); a regression fails.
    baseline: "BaselineComparison | None" = None

    def __getitem__(self, check_id: str) -> Result:
        for r in self.results:
            if r.id == check_id:
                return r
        raise KeyError(check_id)

    def counts(self) -> dict[str, int]:
        c = Counter(r.status.value for r in self.results)
        return {s.value: c.get(s.value, 0) for s in Status}

    @property
    def exit_code(self) -> ExitCode:
        """3 if a check errored, else 1 if one failed (or warned under ``strict``, or the baseline
        comparison found a regression), else 0 (WARN and SKIP pass)."""
        statuses = {r.status for r in self.results}
        if Status.ERROR in statuses:
            return ExitCode.CHECK_ERRORED
        if Status.FAIL in statuses or (self.strict and Status.WARN in statuses):
            return ExitCode.CHECK_FAILED
        if self.baseline is not None and not self.baseline.passed:
            return ExitCode.CHECK_FAILED
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "diffcheck_version": __version__,
            "exit_code": int(self.exit_code),
            "counts": self.counts(),
            "pipeline": dict(self.pipeline),
            "data": dict(self.data) if self.data else None,
            "device": self.device,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
            **({"meta": dict(self.meta)} if self.meta else {}),
            "strict": self.strict,
            "results": [r.to_dict() for r in self.results],
            **({"baseline": self.baseline.to_dict()} if self.baseline is not None else {}),
        }

    def write_json(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return p

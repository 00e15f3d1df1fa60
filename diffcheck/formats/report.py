"""The report of one run: results plus what was checked, as JSON a CI system can read."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from diffcheck.errors import ExitCode
from diffcheck.engine.results import RESULT_SCHEMA_VERSION, Result, Status
from diffcheck.text import plain

if TYPE_CHECKING:
    from diffcheck.engine.baseline import BaselineComparison
    from diffcheck.engine.diagnosis import Diagnosis

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
    #: Under ``--strict`` a WARN or QUALITY fails the run (exit code 1) like a FAIL.
    strict: bool = False
    #: The comparison against a promoted model (``--baseline``, diffcheck.engine.baseline); a regression fails.
    baseline: "BaselineComparison | None" = None
    #: True when the run was interrupted (Ctrl-C): ``results`` holds the checks that finished.
    incomplete: bool = False
    #: The selected checks that did not run because the run was interrupted.
    not_run: tuple[str, ...] = ()
    #: Other files the run wrote in the report directory (the baseline run's figures).
    artifacts: tuple[str, ...] = ()

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
        """130 if the run was interrupted, else 3 if a check errored, else 1 if one failed (a bug), or
        under ``strict`` warned or found a quality gap, or the baseline comparison found a regression;
        else 0 (QUALITY, WARN and SKIP pass)."""
        if self.incomplete:
            return ExitCode.INTERRUPTED
        statuses = {r.status for r in self.results}
        if Status.ERROR in statuses:
            return ExitCode.CHECK_ERRORED
        if any(s.fails_run(self.strict) for s in statuses):
            return ExitCode.CHECK_FAILED
        if self.baseline is not None and not self.baseline.passed:
            return ExitCode.CHECK_FAILED
        return ExitCode.OK

    def diagnosis(self) -> "Diagnosis":
        """The root causes of this run's failures, each with its knock-ons (diffcheck.engine.diagnosis)."""
        from diffcheck.engine.diagnosis import diagnose

        return diagnose(self.results)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; every string free of terminal control codes."""
        return _plain(self._fields())

    def _fields(self) -> dict[str, Any]:
        from diffcheck import __version__

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
            "incomplete": self.incomplete,
            **({"not_run": list(self.not_run)} if self.incomplete else {}),
            "diagnosis": self.diagnosis().to_dict(),
            "results": [r.to_dict() for r in self.results],
            **({"baseline": self.baseline.to_dict()} if self.baseline is not None else {}),
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_json_text` to ``path`` atomically (the old file or the new, never a part)."""
        from diffcheck.formats.outputs import atomic_write

        return atomic_write(path, self.to_json_text())


def _plain(value: Any) -> Any:
    """``value`` with :func:`diffcheck.text.plain` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

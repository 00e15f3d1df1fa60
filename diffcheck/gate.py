"""The CI gate behind ``diffcheck run``: options from config and flags, ignores with reasons,
``--strict``, the baseline comparison and the JUnit file, callable from Python.

    >>> from diffcheck.config import load_config
    >>> from diffcheck.gate import run_gate
    >>> report = run_gate("new.pt", load_config().with_flags(baseline="promoted.pt", strict=True))  # doctest: +SKIP
    >>> report.exit_code                                                                            # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from . import api
from .baseline import compare_reports, quality_checks
from .config import GateOptions, matches, threshold_strings
from .errors import InputError
from .registry import load_registry
from .report import Report
from .results import Result, Status
from .runner import Progress

__all__ = ["run_gate", "with_ignore_reasons"]


def run_gate(checkpoint: str | os.PathLike | None, options: GateOptions, *, progress: Progress | None = None,
             preflight: bool = False, status: Callable[[str, float, float], None] | None = None) -> Report:
    """Run the checks on ``checkpoint`` and apply the gate: ignore reasons, strictness, baseline."""
    if options.baseline is not None and not os.path.exists(options.baseline):
        raise InputError(f"baseline checkpoint not found: {options.baseline}")
    run = _runner(options, progress, preflight, status)
    report = run(checkpoint, options.select, options.report_dir)
    report = replace(with_ignore_reasons(report, options.ignore), strict=options.strict)
    if options.baseline is None:
        return report
    checks = load_registry().checks
    compared = quality_checks(checks, report)
    # Only the checks whose figures can be compared run again; their figures go to a subfolder.
    # With none to compare, the candidate stands in: every quality check then says why it was not compared.
    baseline = run(options.baseline, compared, options.report_dir / "baseline") if compared else report
    comparison = compare_reports(report, baseline, checks, tolerance=options.tolerance,
                                 checkpoint=str(options.baseline))
    return replace(report, baseline=comparison)


def _runner(options: GateOptions, progress: Progress | None, preflight: bool,
            status: Callable[[str, float, float], None] | None = None) -> Callable[[str | os.PathLike | None, Iterable[str], Path], Report]:
    """``run(checkpoint, select, report_dir)`` with every other option fixed (the baseline run uses the same)."""
    def run(checkpoint: str | os.PathLike | None, select: Iterable[str], report_dir: Path) -> Report:
        return api.run_path(checkpoint, data=options.data, dataset=options.dataset, pipeline=options.pipeline,
                            device=options.device, seed=options.seed, select=select, ignore=list(options.ignore),
                            threshold=threshold_strings(options.thresholds), report_dir=report_dir,
                            progress=progress, preflight=preflight, settings=options.settings, status=status)
    return run


def with_ignore_reasons(report: Report, reasons: dict[str, str] | None) -> Report:
    """``report`` with every ignored check's SKIP result saying why it is ignored."""
    if not reasons:
        return report
    return replace(report, results=tuple(_annotated(r, reasons) for r in report.results))


def _annotated(result: Result, reasons: dict[str, str]) -> Result:
    selector = matches(result.id, reasons)
    if selector is None or result.status is not Status.SKIP:
        return result
    return replace(result, summary=f"ignored: {reasons[selector]}",
                   observed={**result.observed, "ignored_by": selector, "ignore_reason": reasons[selector]})

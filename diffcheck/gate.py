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

from .baseline import compare_reports, quality_checks
from .config import GateOptions, check_options, matches
from .data import Dataset, load_dataset
from .errors import InputError
from .loading import load_pipeline, resolve_device
from .pipeline import Pipeline
from .registry import load_registry
from .report import Report
from .results import Result, Status
from .runner import Progress, RunInterrupted, run_checks

__all__ = ["run_gate", "with_ignore_reasons"]


def run_gate(checkpoint: str | os.PathLike | None, options: GateOptions, *, progress: Progress | None = None,
             preflight: bool = False, status: Callable[[str, float, float], None] | None = None) -> Report:
    """Run the checks on ``checkpoint`` and apply the gate: ignore reasons, strictness, baseline."""
    registry = load_registry()
    check_options(options, registry.checks, registry.broken)
    candidate = _load(checkpoint, options)
    # The baseline is loaded and checked before the candidate run: a bad one must not cost a whole run.
    promoted = _load_baseline(options, checkpoint, candidate[0]) if options.baseline is not None else None
    run = _runner(options, progress, preflight, status)
    try:
        report = run(candidate, checkpoint, options.select, options.report_dir)
    except RunInterrupted as exc:
        raise RunInterrupted(_gated(exc.report, options)) from None
    report = _gated(report, options)
    if promoted is None:
        return report
    checks = load_registry().checks
    compared = quality_checks(checks, report)
    # Only the checks whose figures can be compared run again; their figures go to a subfolder.
    # With none to compare, the candidate stands in: every quality check then says why it was not compared.
    try:
        baseline = run(promoted, options.baseline, compared, options.report_dir / "baseline") if compared else report
    except RunInterrupted:  # the candidate's checks all finished; the comparison did not
        raise RunInterrupted(replace(report, incomplete=True, not_run=("BASELINE",))) from None
    comparison = compare_reports(report, baseline, checks, tolerance=options.tolerance,
                                 checkpoint=str(options.baseline))
    figures = tuple(f for r in baseline.results for f in r.figures) if baseline is not report else ()
    return replace(report, baseline=comparison, artifacts=figures)


def _gated(report: Report, options: GateOptions) -> Report:
    return replace(with_ignore_reasons(report, options.ignore), strict=options.strict)


Loaded = tuple[Pipeline, "Dataset | None"]


def _load(checkpoint: str | os.PathLike | None, options: GateOptions) -> Loaded:
    """The pipeline for ``checkpoint`` and the probe data read for it (InputError on bad input)."""
    pipe = load_pipeline(checkpoint, device=resolve_device(options.device), pipeline=options.pipeline)
    data = None if options.data is None else load_dataset(options.data, length=pipe.sample_shape[1],
                                                          normaliser=pipe.normaliser, dataset=options.dataset)
    return pipe, data


def _load_baseline(options: GateOptions, checkpoint: str | os.PathLike | None, candidate: Pipeline) -> Loaded:
    """The baseline, loaded with the candidate's options; InputError naming it if it cannot serve."""
    where = f"--baseline {options.baseline}"
    if not os.path.exists(options.baseline):
        raise InputError(f"baseline checkpoint not found: {options.baseline}")
    try:
        promoted = _load(options.baseline, options)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    if tuple(promoted[0].sample_shape) != tuple(candidate.sample_shape):
        raise InputError(f"{where} makes spectra of shape {tuple(promoted[0].sample_shape)} but the candidate "
                         f"{checkpoint} makes {tuple(candidate.sample_shape)}; compare checkpoints of one model")
    return promoted


def _runner(options: GateOptions, progress: Progress | None, preflight: bool,
            status: Callable[[str, float, float], None] | None = None) -> Callable[..., Report]:
    """``run(loaded, checkpoint, select, report_dir)`` with every other option fixed (the baseline run uses the same)."""
    def run(loaded: Loaded, checkpoint: str | os.PathLike | None, select: Iterable[str], report_dir: Path) -> Report:
        pipe, data = loaded
        meta = {"checkpoint": str(checkpoint), "mode": "preflight" if preflight else "run",
                **({"pipeline_spec": options.pipeline} if options.pipeline else {})}
        return run_checks(pipe, data=data, select=select, ignore=list(options.ignore), thresholds=options.thresholds,
                          seed=options.seed, report_dir=report_dir, progress=progress, trained=not preflight,
                          settings=options.settings, status=status, meta=meta)
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

"""One entry point: ``diffcheck.run(target, options) -> Report``.

``diffcheck run`` and ``diffcheck preflight``, the pytest plugin (``pytest --diffcheck``) and the
assertions of :mod:`diffcheck.testing` all call it; what differs between them is only how they
build the :class:`~diffcheck.engine.config.Options` and how they show the report.

    >>> import diffcheck
    >>> report = diffcheck.run("fixtures/checkpoints/healthy_tiny.pt",
    ...                        diffcheck.Options(select=("FWD",), device="cpu", report_dir=None))
    >>> report.exit_code
    <ExitCode.OK: 0>

A run, in order:

1. everything that can be judged before a checkpoint loads (thresholds, selectors, sample counts,
   input files, output paths): one :class:`~diffcheck.errors.InputError` line, nothing written;
2. the report directory is held for the run (a lock; a live run there is an InputError);
3. the target loads (a checkpoint path, a ``file.py:function`` in ``options.pipeline``, or a
   :class:`~diffcheck.Pipeline` given directly), with the probe data, then the baseline;
4. the checks run (``options.mode``: ``run`` or ``preflight``), the ignores get their reasons,
   ``strict`` is applied, and the quality figures are compared with the baseline;
5. every output is written (:func:`diffcheck.formats.write_report`), also for a run that Ctrl-C
   stopped (then :class:`~diffcheck.engine.runner.RunInterrupted` carries the partial report).

A file that cannot be written is a :class:`WriteError`: an InputError that still carries the report.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from diffcheck.engine.baseline import compare_reports, quality_checks
from diffcheck.engine.config import Options, check_options, matches
from diffcheck.pipelines.data import Dataset, load_dataset
from diffcheck.errors import InputError
from diffcheck.formats import write_report
from diffcheck.pipelines.loading import load_pipeline, resolve_device
from diffcheck.formats.outputs import claim, validate_output_paths
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.pipelines.reference.checkpoint import trusted_checkpoints
from diffcheck.engine.registry import load_registry
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status
from diffcheck.engine.runner import Progress, RunInterrupted, run_checks

__all__ = ["run", "WriteError", "with_ignore_reasons"]

Target = str | os.PathLike | Pipeline | None
StatusFn = Callable[[str, float, float], None]


class WriteError(InputError):
    """An output could not be written; ``report`` is the finished run (show it: nothing is lost)."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def run(target: Target = None, options: Options | None = None, *, data: Dataset | None = None,
        progress: Progress | None = None, status: StatusFn | None = None) -> Report:
    """Run the checks on ``target`` with ``options`` (default :class:`Options`()) and return the report.

    ``target`` is a checkpoint path (or None with ``options.pipeline``) or a Pipeline; ``data`` an
    already loaded Dataset (else ``options.data`` is read). ``progress(check_id, i, n)`` is told
    each check as it starts, ``status(text, done, total)`` the progress of long fixtures (sampling).
    """
    options = options if options is not None else Options()
    registry = load_registry()
    check_options(options, registry.checks, registry.broken)
    if isinstance(target, Pipeline) and options.pipeline:
        raise InputError("a Pipeline was given and options.pipeline names another; give one of them")
    if options.report_dir is not None:
        validate_output_paths(options.report_dir, options.json, options.junit, options.extra_outputs)
    with claim(options.report_dir) if options.report_dir is not None else contextlib.nullcontext():
        with trusted_checkpoints() if options.trust_checkpoint else contextlib.nullcontext():
            candidate = _load(target, options, data)
            # The baseline is loaded and checked before the candidate run: a bad one must not cost a whole run.
            promoted = _load_baseline(options, target, candidate[0]) if options.baseline is not None else None
        interrupted = False
        try:
            report = _gated(_checked(candidate, promoted, target, options, registry.checks, progress, status),
                            options)
        except RunInterrupted as exc:
            report, interrupted = _gated(exc.report, options), True
        _write(report, options)
    if interrupted:
        raise RunInterrupted(report)
    return report


def _checked(candidate: "Loaded", promoted: "Loaded | None", target: Target, options: Options,
             checks: tuple, progress: Progress | None, status: StatusFn | None) -> Report:
    """The candidate's report, with the baseline comparison where a baseline was given."""
    report = _run_loaded(candidate, _where(target), options.select, options.report_dir, options, progress, status)
    if promoted is None:
        return report
    compared = quality_checks(checks, report)
    # Only the checks whose figures can be compared run again; their figures go to a subfolder.
    # With none to compare, the candidate stands in: every quality check then says why it was not compared.
    sub = options.report_dir / "baseline" if options.report_dir is not None else None
    try:
        baseline = (_run_loaded(promoted, str(options.baseline), compared, sub, options, progress, status)
                    if compared else report)
    except RunInterrupted:  # the candidate's checks all finished; the comparison did not
        raise RunInterrupted(replace(report, incomplete=True, not_run=("BASELINE",))) from None
    comparison = compare_reports(report, baseline, checks, tolerance=options.tolerance,
                                 checkpoint=str(options.baseline))
    figures = tuple(f for r in baseline.results for f in r.figures) if baseline is not report else ()
    return replace(report, baseline=comparison, artifacts=figures)


def _write(report: Report, options: Options) -> None:
    if options.report_dir is None:
        return
    try:
        write_report(report, options.report_dir, options.outputs())
    except OSError as exc:
        where = exc.filename or options.report_dir
        raise WriteError(f"cannot write {where}: {exc.strerror or exc}; free space or pass another --report-dir",
                         report) from None


def _gated(report: Report, options: Options) -> Report:
    return replace(with_ignore_reasons(report, options.ignore), strict=options.strict)


Loaded = tuple[Pipeline, "Dataset | None"]


def _where(target: Target) -> str:
    return target.name if isinstance(target, Pipeline) else str(target)


def _load(target: Target, options: Options, data: Dataset | None) -> Loaded:
    """The pipeline for ``target`` and the probe data read for it (InputError on bad input)."""
    if isinstance(target, Pipeline):
        pipe = target if options.device == "auto" else target.to(resolve_device(options.device))
    else:
        pipe = load_pipeline(target, device=resolve_device(options.device), pipeline=options.pipeline)
    if data is None and options.data is not None:
        data = load_dataset(options.data, length=pipe.sample_shape[1], normaliser=pipe.normaliser,
                            dataset=options.dataset)
    return pipe, data


def _load_baseline(options: Options, target: Target, candidate: Pipeline) -> Loaded:
    """The baseline, loaded with the candidate's options; InputError naming it if it cannot serve."""
    where = f"--baseline {options.baseline}"
    if not os.path.exists(options.baseline):
        raise InputError(f"baseline checkpoint not found: {options.baseline}")
    try:
        promoted = _load(options.baseline, options, None)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    if tuple(promoted[0].sample_shape) != tuple(candidate.sample_shape):
        raise InputError(f"{where} makes spectra of shape {tuple(promoted[0].sample_shape)} but the candidate "
                         f"{_where(target)} makes {tuple(candidate.sample_shape)}; compare checkpoints of one model")
    return promoted


def _run_loaded(loaded: Loaded, where: str, select: Iterable[str], report_dir: Path | None, options: Options,
                progress: Progress | None, status: StatusFn | None) -> Report:
    pipe, data = loaded
    meta = {"checkpoint": where, "mode": options.mode,
            **({"pipeline_spec": options.pipeline} if options.pipeline else {})}
    return run_checks(pipe, data=data, select=select, ignore=list(options.ignore), thresholds=options.thresholds,
                      seed=options.seed, report_dir=report_dir, progress=progress,
                      trained=options.mode != "preflight", settings=options.settings, status=status, meta=meta)


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

"""The Python API behind the CLI: everything ``diffcheck run`` does, callable from code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .data import load_dataset
from .loading import load_pipeline, resolve_device
from .report import Report
from .runner import Progress, parse_threshold_overrides, run_checks

__all__ = ["run_path"]


def run_path(
    checkpoint: str | os.PathLike | None,
    *,
    data: str | os.PathLike | None = None,
    dataset: str = "flux",
    pipeline: str | None = None,
    device: str = "auto",
    seed: int = 0,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    threshold: Iterable[str] = (),
    report_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    preflight: bool = False,
    settings: Mapping[str, Any] | None = None,
    status: Callable[[str, float, float], None] | None = None,
) -> Report:
    """Load ``checkpoint`` (and ``data``), run the checks, return the report. InputError on bad input."""
    thresholds = parse_threshold_overrides(threshold)
    dev = resolve_device(device)
    pipe = load_pipeline(checkpoint, device=dev, pipeline=pipeline)
    ds = None
    if data is not None:
        ds = load_dataset(data, length=pipe.sample_shape[1], normaliser=pipe.normaliser, dataset=dataset)
    return run_checks(pipe, data=ds, select=select, ignore=ignore, thresholds=thresholds, seed=seed,
                      report_dir=Path(report_dir) if report_dir is not None else None, progress=progress,
                      trained=not preflight, settings=settings, status=status,
                      meta={"checkpoint": str(checkpoint), "mode": "preflight" if preflight else "run",
                            **({"pipeline_spec": pipeline} if pipeline else {})})

"""Public assertions for your own tests, and ``compute_check`` for check authors.

    from diffcheck.testing import assert_consistent_parameterisation, assert_passes

    def test_my_ddpm_decodes_what_it_trains(my_pipeline):
        assert_consistent_parameterisation(my_pipeline)          # the PAR family

    def test_release_candidate(my_pipeline, heldout):
        assert_passes(my_pipeline, heldout, select=["FWD", "SMP"], strict=True)

A failing assertion raises :class:`AssertionError` whose text is the failing checks' failure
text (first line: ``<ID> <what is wrong> (<number> vs <threshold>)``), with pytest's traceback
hidden. Misuse (not a Pipeline, an unknown check ID, a family with no checks) raises
:class:`DiffcheckUsageError`, never AssertionError, so a broken test cannot pass for a bug. An
assertion also fails when every selected check SKIPped: nothing was verified. Each assertion
returns the :class:`~diffcheck.Report` so a test can look at the numbers.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, Iterable, Mapping

import torch

from diffcheck.engine.check import Check
from diffcheck.engine.context import Context, known_fixtures
from diffcheck.pipelines.data import Dataset, load_dataset
from diffcheck.errors import InputError
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.engine.registry import load_registry, select_checks
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status
from diffcheck.engine.runner import _order, run_one

__all__ = [
    "DiffcheckUsageError", "assert_passes", "assert_family", "assert_forward_process",
    "assert_consistent_parameterisation", "assert_sampler_contract", "assert_samples_match", "compute_check",
]

DataArg = Dataset | str | os.PathLike | None
Thresholds = Mapping[str, Mapping[str, float]] | None


class DiffcheckUsageError(InputError):
    """An assertion or ``compute_check`` was called wrongly; distinct from a failed check."""


def assert_passes(pipeline: Pipeline, data: DataArg = None, *, select: Iterable[str] = (),
                  ignore: Iterable[str] | Mapping[str, str] = (), thresholds: Thresholds = None,
                  seed: int = 0, strict: bool = False) -> Report:
    """Run the selected checks (default: all) and raise AssertionError if one FAILs or ERRORs.

    ``strict=True`` fails on a WARN too. ``ignore`` is a list of IDs or families, or a mapping
    from each to its reason (shown in the report). ``data`` is a Dataset or an HDF5 path.
    """
    __tracebackhide__ = True
    report = _run(pipeline, data, select=list(select), ignore=ignore, thresholds=thresholds, seed=seed,
                  strict=strict)
    _raise_if_failed(report, what=", ".join(select) or "all checks")
    return report


def assert_family(prefix: str, pipeline: Pipeline, data: DataArg = None, **options: Any) -> Report:
    """:func:`assert_passes` for one family (``FWD``, ``PAR``, ...); usage error if it has no checks."""
    __tracebackhide__ = True
    family = prefix.strip().upper()
    known = sorted({c.family() for c in load_registry().checks})
    if family not in known:
        raise DiffcheckUsageError(f"no {family} checks are registered (families: {', '.join(known)}); "
                                  "is the plugin that provides them installed?")
    return assert_passes(pipeline, data, select=[family], **options)


def assert_forward_process(pipeline: Pipeline, data: DataArg = None, **options: Any) -> Report:
    """The forward process q(x_t | x0) follows the declared schedule (the FWD family)."""
    __tracebackhide__ = True
    return assert_family("FWD", pipeline, data, **options)


def assert_consistent_parameterisation(pipeline: Pipeline, data: DataArg = None, **options: Any) -> Report:
    """Training target, sampler decoding and the network's output agree on eps, x0 or v (PAR)."""
    __tracebackhide__ = True
    return assert_family("PAR", pipeline, data, **options)


def assert_sampler_contract(pipeline: Pipeline, data: DataArg = None, **options: Any) -> Report:
    """The sampler starts at noise, steps t down, lands on x0 and keeps the network in eval (SMP)."""
    __tracebackhide__ = True
    return assert_family("SMP", pipeline, data, **options)


def assert_samples_match(pipeline: Pipeline, data: DataArg, **options: Any) -> Report:
    """Generated samples match the real spectra in ``data`` (the DIST family); ``data`` is required."""
    __tracebackhide__ = True
    if data is None:
        raise DiffcheckUsageError("assert_samples_match needs data: the real spectra to compare samples with")
    return assert_family("DIST", pipeline, data, **options)


def compute_check(check_id: str, *, pipeline: Pipeline | None = None, data: DataArg = None, seed: int = 0,
                  thresholds: Mapping[str, float] | None = None, **fixtures: Any) -> Result:
    """Run one check with some fixtures given in memory, for testing a check; returns its Result.

    ``fixtures`` replace the computed ones by name (``compute_check("PAR001", pipeline=p,
    loss_oracles={...})``). Checks it ``requires`` run first unless ``results`` is given.
    Without a pipeline, every fixture the check needs must be given.
    """
    registry = load_registry()
    cls = _lookup(check_id, registry.checks)
    unknown = sorted(set(fixtures) - known_fixtures())
    if unknown:
        raise DiffcheckUsageError(f"compute_check: unknown fixture {unknown[0]!r}; known: "
                                  f"{', '.join(sorted(known_fixtures()))}")
    if pipeline is not None:
        _require_pipeline(pipeline)
    ctx = _GivenContext(pipeline, _dataset(data, pipeline), seed, fixtures)
    ctx.get("thresholds")[cls.id] = {**cls.thresholds, **(thresholds or {})}
    done: dict[str, Result] = ctx.get("results")
    needed = [cls] if "results" in fixtures else _order(select_checks(registry.checks, [cls.id])[0])
    for c in needed:
        done[c.id] = run_one(c, ctx, dict(thresholds or {}) if c is cls else {}, done, None)
    return done[cls.id]


class _GivenContext(Context):
    """A run's fixtures, some of them given by the caller instead of computed."""

    def __init__(self, pipeline: Pipeline | None, data: Dataset | None, seed: int, given: Mapping[str, Any]) -> None:
        device = given.get("device", pipeline.device if pipeline is not None else torch.device("cpu"))
        super().__init__(pipeline=pipeline or SimpleNamespace(device=device), data=data, seed=seed)
        self._values.update({"pipeline": pipeline, "device": device, **given})


def _lookup(check_id: str, checks: Iterable[type[Check]]) -> type[Check]:
    by_id = {c.id: c for c in checks}
    cid = check_id.strip().upper() if isinstance(check_id, str) else check_id
    if cid not in by_id:
        raise DiffcheckUsageError(f"unknown check ID {check_id!r}; see `diffcheck list`")
    return by_id[cid]


def _require_pipeline(pipeline: Any) -> None:
    if not isinstance(pipeline, Pipeline):
        raise DiffcheckUsageError(f"expected a diffcheck.Pipeline, got {type(pipeline).__name__}; "
                                  "load one with diffcheck.load_pipeline(...)")


def _dataset(data: DataArg, pipeline: Pipeline | None) -> Dataset | None:
    if data is None or isinstance(data, Dataset):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise DiffcheckUsageError(f"data must be a diffcheck.Dataset or an HDF5 path, got {type(data).__name__}")
    if pipeline is None:
        raise DiffcheckUsageError("data given as a path needs the pipeline (its length and normaliser)")
    return load_dataset(data, length=pipeline.sample_shape[1], normaliser=pipeline.normaliser)


def _run(pipeline: Pipeline, data: DataArg, *, select: list[str], ignore: Iterable[str] | Mapping[str, str],
         thresholds: Thresholds, seed: int, strict: bool) -> Report:
    """One :func:`diffcheck.run` of ``pipeline`` that writes no file; misuse is a DiffcheckUsageError."""
    from diffcheck.api import run
    from diffcheck.engine.config import Options

    _require_pipeline(pipeline)
    reasons = ({k.strip().upper(): v for k, v in ignore.items()} if isinstance(ignore, Mapping)
               else {k.strip().upper(): "in the test's ignore list" for k in ignore if k.strip()})
    try:
        options = Options(select=tuple(select), ignore=reasons, seed=seed, strict=strict, report_dir=None,
                          thresholds={k.upper(): dict(v) for k, v in (thresholds or {}).items()})
        return run(pipeline, options, data=_dataset(data, pipeline))
    except DiffcheckUsageError:
        raise
    except InputError as exc:
        raise DiffcheckUsageError(str(exc)) from None


def _raise_if_failed(report: Report, *, what: str) -> None:
    __tracebackhide__ = True
    failing = [r for r in report.results if r.status is Status.ERROR or r.status.fails_run(report.strict)]
    if failing:
        counts = ", ".join(f"{n} {s.lower()}" for s, n in report.counts().items() if n)
        raise AssertionError("\n\n".join(r.message() for r in failing)
                             + f"\n\n(diffcheck {what}: {counts}; seed {report.seed})")
    if all(r.status is Status.SKIP for r in report.results):
        reasons = "; ".join(f"{r.id} {r.summary}" for r in report.results)
        raise AssertionError(f"nothing was verified: every selected check ({what}) was skipped ({reasons})")

"""Run checks against a pipeline: order by ``requires``, isolate failures, collect a Report."""

from __future__ import annotations

import graphlib
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .check import Check, check_fixture_names
from .context import Context
from .data import Dataset
from .errors import InputError, Skip
from .pipeline import Pipeline
from .registry import load_registry, select_checks
from .report import Report
from .results import Result, Status, Verdict

__all__ = ["run_checks", "run_one", "parse_threshold_overrides"]

Progress = Callable[[str, int, int], None]
_OK = (Status.PASS, Status.WARN)


def _order(checks: list[type[Check]]) -> list[type[Check]]:
    by_id = {c.id: c for c in checks}
    graph = {c.id: {r for r in c.requires | c.uses if r in by_id} for c in checks}
    return [by_id[i] for i in graphlib.TopologicalSorter(graph).static_order()]


def _validate_overrides(checks: Iterable[type[Check]], overrides: Mapping[str, Mapping[str, float]]) -> None:
    by_id = {c.id: c for c in checks}
    for cid, values in overrides.items():
        if cid not in by_id:
            raise InputError(f"threshold override for unknown check {cid!r}")
        unknown = set(values) - set(by_id[cid].thresholds)
        if unknown:
            known = ", ".join(sorted(by_id[cid].thresholds)) or "none"
            raise InputError(f"{cid} has no threshold {sorted(unknown)[0]!r}; its thresholds: {known}")


def parse_threshold_overrides(items: Iterable[str]) -> dict[str, dict[str, float]]:
    """Parse ``ID.name=value`` strings; InputError on a malformed one."""
    out: dict[str, dict[str, float]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        cid, dot, name = key.strip().partition(".")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not (sep and dot and cid and name and number is not None):
            raise InputError(f"bad --threshold {item!r}: expected ID.name=number, e.g. FWD001.max_coef_error=0.02")
        out.setdefault(cid.upper(), {})[name] = number
    return out


def run_checks(
    pipeline: Pipeline,
    *,
    data: Dataset | None = None,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    seed: int = 0,
    report_dir: str | Path | None = None,
    checks: Iterable[type[Check]] | None = None,
    progress: Progress | None = None,
    meta: Mapping[str, Any] | None = None,
    trained: bool = True,
    settings: Mapping[str, Any] | None = None,
    status: Callable[[str, float, float], None] | None = None,
) -> Report:
    """Run the selected checks (default: every registered one) and return the report.

    ``trained=False`` is the preflight: checks that judge what a network learned are left out,
    the rest (oracles, forward process, sampler contract) need no trained weights.
    ``settings`` are run options that are not thresholds (``min_samples``, ``max_samples``);
    ``status(text, done, total)`` receives progress from long fixtures such as sampling.
    """
    broken: tuple[tuple[str, str], ...] = ()
    if checks is None:
        registry = load_registry()
        checks, broken = registry.checks, registry.broken
    checks = [c for c in checks if trained or not c.trained_only]
    overrides = {k.upper(): dict(v) for k, v in (thresholds or {}).items()}
    _validate_overrides(checks, overrides)
    selected, ignored = select_checks(checks, select, ignore)
    outdir = Path(report_dir) if report_dir is not None else None
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(pipeline=pipeline, data=data, seed=seed, report_dir=outdir, settings=settings, status=status)
    start = time.perf_counter()
    results: dict[str, Result] = ctx.get("results")
    order = _order(selected)
    for i, cls in enumerate(order):
        if progress is not None:
            progress(cls.id, i, len(order))
        results[cls.id] = run_one(cls, ctx, overrides.get(cls.id, {}), results, outdir)
    results.update({c.id: _skipped(c, f"ignored (--ignore {c.id})", seed) for c in ignored})
    results.update({f"PLUGIN-{name}": _plugin_error(name, err, seed) for name, err in broken})
    ordered = tuple(sorted(results.values(), key=lambda r: r.id))
    return Report(results=ordered, pipeline=pipeline.describe(), device=str(pipeline.device), seed=seed,
                  duration_s=time.perf_counter() - start,
                  data=None if data is None else {"source": data.source, "spectra": len(data)},
                  meta=dict(meta or {}))


def _skipped(cls: type[Check], reason: str, seed: int) -> Result:
    return Result(id=cls.id, title=cls.title(), status=Status.SKIP, summary=reason, seed=seed)


def _plugin_error(name: str, err: str, seed: int) -> Result:
    return Result(id=f"PLUGIN-{name}", title=f"plugin {name!r} loads", status=Status.ERROR,
                  summary=f"plugin {name!r} failed to load: {err}", seed=seed,
                  hint=f"Fix or uninstall the plugin, or set DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD=1.")


def _hint(cls: type[Check]) -> str:
    hint = f"To silence: --ignore {cls.id}"
    if cls.thresholds:
        name = next(iter(cls.thresholds))
        hint += f", or change a threshold: --threshold {cls.id}.{name}=<value>"
    return hint


def run_one(cls: type[Check], ctx: Context, overrides: Mapping[str, float],
            done: Mapping[str, Result], outdir: Path | None) -> Result:
    """Run one check; a raised exception becomes an ERROR result, a Skip a SKIP result."""
    for req in sorted(cls.requires):
        if req in done and done[req].status not in _OK:
            return _skipped(cls, f"requires {req}, which is {done[req].status.value}", ctx.seed)
    th = {**cls.thresholds, **overrides}
    t0 = time.perf_counter()
    try:
        check = cls()
        observed = check.measure(**ctx.resolve(check_fixture_names(cls), cls.id))
        verdict = check.judge(observed, th)
        if not isinstance(verdict, Verdict):
            raise TypeError(f"judge() returned {type(verdict).__name__}, expected Verdict")
        merged = {**observed, **verdict.observed}
        figures = tuple(str(p) for p in check.plot(merged, outdir)) if outdir is not None else ()
    except Skip as exc:
        return _skipped(cls, str(exc), ctx.seed)
    except Exception as exc:
        return _error(cls, exc, ctx.seed, time.perf_counter() - t0)
    public = {k: v for k, v in merged.items() if not k.startswith("_")}
    return Result(id=cls.id, title=cls.title(), status=verdict.status, summary=verdict.summary,
                  evidence=verdict.evidence, causes=verdict.causes,
                  hint=_hint(cls) if verdict.status in (Status.FAIL, Status.WARN) else "",
                  observed=public, thresholds=th, figures=figures, seed=ctx.seed,
                  duration_s=time.perf_counter() - t0)


def _error(cls: type[Check], exc: Exception, seed: int, duration: float) -> Result:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    last = [line.rstrip() for chunk in tb[-3:] for line in chunk.splitlines() if line.strip()]
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return Result(id=cls.id, title=cls.title(), status=Status.ERROR,
                  summary=f"check raised {type(exc).__name__}: {first}".rstrip(": "),
                  evidence=tuple(last[-6:]), seed=seed, duration_s=duration,
                  hint=f"This is a bug in the check or the pipeline adapter; --ignore {cls.id} skips it.")

"""Run checks against a pipeline: order by ``requires``, isolate failures, collect a Report."""

from __future__ import annotations

import graphlib
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from diffcheck.engine.check import Check, check_fixture_names
from diffcheck.engine.context import Context
from diffcheck.pipelines.data import Dataset
from diffcheck.errors import InputError, Skip
from diffcheck.formats.outputs import clear_previous
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.engine.registry import load_registry, names_plugin, plugin_id, select_checks
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status, Verdict
from diffcheck.text import first_line

__all__ = ["run_checks", "run_one", "parse_threshold_overrides", "RunInterrupted"]

Progress = Callable[[str, int, int], None]
_OK = (Status.PASS, Status.WARN, Status.QUALITY)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_checks`: ``report`` holds every check that finished (``incomplete``)."""

    def __init__(self, report: Report) -> None:
        super().__init__(f"interrupted after {len(report.results)} checks")
        self.report = report


def _order(checks: list[type[Check]]) -> list[type[Check]]:
    by_id = {c.id: c for c in checks}
    graph = {c.id: {r for r in c.requires | c.uses if r in by_id} for c in checks}
    return [by_id[i] for i in graphlib.TopologicalSorter(graph).static_order()]


def _validate_overrides(checks: Iterable[type[Check]], overrides: Mapping[str, Mapping[str, float]]) -> None:
    from diffcheck.engine.config import check_thresholds

    check_thresholds(checks, overrides)


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
    A plugin that failed to load is a SKIP result (the run's exit code is unchanged) unless
    ``select`` names it (``PLUGIN-<entry point>``): then an ERROR. Ctrl-C during the checks raises
    :class:`RunInterrupted` with the report of the checks that finished.
    """
    broken: tuple[tuple[str, str], ...] = ()
    fixtures = None  # checks given by the caller: the Context loads the fixture registry itself
    if checks is None:
        registry = load_registry()
        checks, broken, fixtures = registry.checks, registry.broken, registry.fixtures
    checks = [c for c in checks if trained or not c.trained_only]
    overrides = {k.upper(): dict(v) for k, v in (thresholds or {}).items()}
    _validate_overrides(checks, overrides)
    select, ignore = list(select), list(ignore)
    plugins = _plugin_results(broken, select, ignore, seed)
    selected, ignored = select_checks(checks, select, ignore, broken=broken)
    outdir = Path(report_dir) if report_dir is not None else None
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
        clear_previous(outdir)
    effective = {c.id: {**c.thresholds, **overrides.get(c.id, {})} for c in checks}
    ctx = Context(pipeline=pipeline, data=data, seed=seed, report_dir=outdir, settings=settings, status=status,
                  thresholds=effective, fixtures=fixtures)
    start = time.perf_counter()
    results: dict[str, Result] = ctx.get("results")
    order = _order(selected)
    interrupted = _run_all(order, ctx, overrides, results, outdir, progress)
    results.update({c.id: _skipped(c, f"ignored (--ignore {c.id})", seed) for c in ignored})
    results.update(plugins)
    report = Report(results=tuple(sorted(results.values(), key=lambda r: r.id)), pipeline=pipeline.describe(),
                    device=str(pipeline.device), seed=seed, duration_s=time.perf_counter() - start,
                    data=None if data is None else {"source": data.source, "spectra": len(data)},
                    meta=dict(meta or {}), incomplete=interrupted,
                    not_run=tuple(c.id for c in order if c.id not in results) if interrupted else ())
    if interrupted:
        raise RunInterrupted(report)
    return report


def _run_all(order: list[type[Check]], ctx: Context, overrides: Mapping[str, Mapping[str, float]],
             results: dict[str, Result], outdir: Path | None, progress: Progress | None) -> bool:
    """Run ``order`` into ``results``; True if Ctrl-C stopped it (the check running then has no result)."""
    restore = _state_saver(ctx.get("pipeline"))
    try:
        for i, cls in enumerate(order):
            if progress is not None:
                progress(cls.id, i, len(order))
            try:
                results[cls.id] = run_one(cls, ctx, overrides.get(cls.id, {}), results, outdir)
            finally:
                restore()
    except KeyboardInterrupt:
        return True
    return False


def _state_saver(pipeline: Pipeline) -> Callable[[], None]:
    """Save the state of ``pipeline``'s modules as the user handed them over, and return what puts it
    back: run after every check, so that a fixture or check that calls ``train()``, ``eval()`` or
    ``requires_grad_`` (a probe, an oracle run) changes nothing the next one sees."""
    modules = {id(m): m for root in pipeline.state_modules() for m in root.modules()}
    modes = [(m, m.training) for m in modules.values()]
    grads = [(p, p.requires_grad) for m in modules.values() for p in m.parameters(recurse=False)]

    def restore() -> None:
        for m, training in modes:
            m.training = training
        for p, flag in grads:
            p.requires_grad_(flag)
    return restore


def _skipped(cls: type[Check], reason: str, seed: int) -> Result:
    return Result(id=cls.id, title=cls.title(), status=Status.SKIP, summary=reason, seed=seed)


def _plugin_results(broken: Iterable[tuple[str, str]], select: list[str], ignore: list[str],
                    seed: int) -> dict[str, Result]:
    """One result per plugin that failed to load: ERROR if selected, SKIP otherwise (ignored or not)."""
    out = {}
    for name, err in broken:
        pid = plugin_id(name)
        if any(names_plugin(s, name) for s in ignore):
            out[pid] = Result(id=pid, title=f"plugin {name!r} loads", status=Status.SKIP,
                              summary=f"ignored (--ignore {pid})", seed=seed)
        else:
            chosen = any(names_plugin(s, name) for s in select)
            out[pid] = _plugin_error(name, err, seed, Status.ERROR if chosen else Status.SKIP)
    return out


def _plugin_error(name: str, err: str, seed: int, status: Status) -> Result:
    pid = plugin_id(name)
    return Result(id=pid, title=f"plugin {name!r} loads", status=status,
                  summary=f"plugin {name!r} failed to load ({first_line(err)}); its checks did not run",
                  observed={"plugin": name, "load_error": first_line(err)}, seed=seed,
                  hint=f"Fix or uninstall the plugin; --ignore {pid} silences this.")


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
                  hint=_hint(cls) if verdict.status in (Status.FAIL, Status.WARN, Status.QUALITY) else "",
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

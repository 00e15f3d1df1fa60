"""Fixtures: the lazily computed, per-run cached inputs of checks, injected by parameter name.

A fixture is a function marked with :func:`fixture`; its own parameters are other fixtures.
Nothing is computed until a check asks for it, and each value is computed once per run. A
fixture that raises :class:`~diffcheck.errors.Skip` makes every check that needs it SKIP; any
other exception makes those checks ERROR, each with the fixture's error.

Marking registers nothing. The fixture registry (:func:`load_fixtures`) is explicit: the built-in
fixtures that :func:`diffcheck.measure.builtin_fixtures` lists, then those of the
``diffcheck.fixtures`` entry-point group (a marked function, or an iterable of them), each
validated as it is added: marked, a new name, and parameters that name known fixtures. A plugin
whose fixtures do not validate adds none of them; it is reported like a broken check plugin.
"""

from __future__ import annotations

import functools
import inspect
import os
import zlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

import torch

from diffcheck.pipelines.data import Dataset
from diffcheck.errors import CheckDefinitionError, Skip
from diffcheck.text import first_line
from diffcheck.pipelines.pipeline import Pipeline

__all__ = ["fixture", "Context", "BASE_FIXTURES", "FixtureRegistry", "load_fixtures", "known_fixtures",
           "FIXTURE_ENTRY_POINT_GROUP"]

FIXTURE_ENTRY_POINT_GROUP = "diffcheck.fixtures"
#: Fixtures the runner provides directly; ``generator`` is seeded per check (or per fixture).
#: ``results`` maps the IDs of checks already run to their Results (order them with ``requires``).
#: ``settings`` holds run options that are not thresholds (e.g. ``min_samples``); ``status`` is a
#: callable ``(text, done, total)`` that long fixtures report progress through (a no-op by default).
#: ``thresholds`` maps check IDs to the thresholds they judge with in this run (defaults and the
#: user's overrides): a fixture that must decide as a check would (the decoding PAR002 identifies)
#: decides with them. ``lazy(name)`` gets another fixture through the cache only where a branch
#: needs it (a conditional dependency), instead of computing it for every caller.
BASE_FIXTURES = ("pipeline", "data", "seed", "device", "report_dir", "generator", "results", "settings", "status",
                 "thresholds", "lazy")


def _no_status(text: str, done: float, total: float) -> None:
    """The default ``status`` fixture: progress goes nowhere."""


def fixture(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn`` as a fixture named after it (its module lists it in ``FIXTURES``; nothing is registered)."""
    fn.__diffcheck_fixture__ = True
    return fn


@dataclass(frozen=True)
class FixtureRegistry:
    """The fixtures a run can compute, by name, and the fixture plugins that failed to load."""

    fixtures: Mapping[str, Callable[..., Any]]
    #: (entry-point name, one-line error) for fixture plugins that could not be loaded.
    broken: tuple[tuple[str, str], ...] = ()

    def names(self) -> set[str]:
        """Every name a check or fixture may ask for: the registered fixtures and the runner's own."""
        return set(self.fixtures) | set(BASE_FIXTURES)


def _add(fn: Any, origin: str, into: dict[str, Callable[..., Any]]) -> None:
    if not callable(fn) or not getattr(fn, "__diffcheck_fixture__", False):
        raise CheckDefinitionError(f"{origin}: {fn!r} is not a fixture (mark it with @diffcheck.fixture)")
    name = fn.__name__
    if name in BASE_FIXTURES or (name in into and into[name] is not fn):
        raise CheckDefinitionError(f"{origin}: fixture {name!r} duplicates the name of "
                                   + ("a fixture the runner provides" if name in BASE_FIXTURES else
                                      f"{into[name].__module__}.{into[name].__qualname__}"))
    into[name] = fn


def _check_parameters(fixtures: Mapping[str, Callable[..., Any]], names: Iterable[str], origin: str) -> None:
    known = set(fixtures) | set(BASE_FIXTURES)
    for name in names:
        for param in inspect.signature(fixtures[name]).parameters:
            if param not in known:
                raise CheckDefinitionError(f"{origin}: fixture {name!r} asks for unknown fixture {param!r}")


def _as_fixtures(obj: Any) -> list[Any]:
    if getattr(obj, "__diffcheck_fixture__", False):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        return list(obj)
    return [obj]


@functools.lru_cache(maxsize=1)
def _builtin() -> Mapping[str, Callable[..., Any]]:
    from diffcheck.measure import builtin_fixtures

    out: dict[str, Callable[..., Any]] = {}
    for fn in builtin_fixtures():
        _add(fn, "diffcheck.measure", out)
    _check_parameters(out, out, "diffcheck.measure")
    return MappingProxyType(out)


def load_fixtures(*, plugins: bool = True) -> FixtureRegistry:
    """The built-in fixtures, then the ``diffcheck.fixtures`` entry points (all of a plugin's or none)."""
    fixtures, broken = dict(_builtin()), []
    if plugins and os.environ.get("DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0"):
        for ep in entry_points(group=FIXTURE_ENTRY_POINT_GROUP):
            trial = dict(fixtures)
            origin = f"fixture entry point {ep.name!r} ({ep.value})"
            try:
                added = _as_fixtures(ep.load())
                for fn in added:
                    _add(fn, origin, trial)
                _check_parameters(trial, [fn.__name__ for fn in added], origin)
            except Exception as exc:  # a broken plugin is reported, never fatal
                broken.append((ep.name, first_line(f"{type(exc).__name__}: {exc}")))
                continue
            fixtures = trial
    return FixtureRegistry(MappingProxyType(fixtures), tuple(broken))


def known_fixtures() -> set[str]:
    """The names checks may ask for in this environment (built-in and plugin fixtures, the runner's own)."""
    return load_fixtures().names()


class Context:
    """The fixtures of one run: computed on first use, then cached (errors too)."""

    def __init__(self, *, pipeline: Pipeline, data: Dataset | None, seed: int,
                 report_dir: Path | None = None, settings: Mapping[str, Any] | None = None,
                 status: Callable[[str, float, float], None] | None = None,
                 thresholds: Mapping[str, Mapping[str, float]] | None = None,
                 fixtures: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.seed = seed
        self._fixtures = fixtures if fixtures is not None else load_fixtures().fixtures
        self._values: dict[str, Any] = {"pipeline": pipeline, "data": data, "seed": seed,
                                        "device": pipeline.device, "report_dir": report_dir, "results": {},
                                        "settings": dict(settings or {}), "status": status or _no_status,
                                        "thresholds": {k: dict(v) for k, v in (thresholds or {}).items()},
                                        "lazy": self.get}
        self._errors: dict[str, BaseException] = {}

    def generator(self, key: str) -> torch.Generator:
        """A generator seeded from the run seed and ``key``: order-independent and reproducible."""
        device = self._values["device"]
        g = torch.Generator(device=device)
        g.manual_seed((self.seed * 1_000_003 + zlib.crc32(key.encode())) % (2**63))
        return g

    def resolve(self, names: tuple[str, ...], owner: str) -> dict[str, Any]:
        return {n: (self.generator(owner) if n == "generator" else self.get(n)) for n in names}

    def get(self, name: str, _stack: tuple[str, ...] = ()) -> Any:
        if name in self._values:
            return self._values[name]
        if name in self._errors:
            raise self._errors[name]
        if name in _stack:
            raise RuntimeError(f"fixture cycle: {' -> '.join((*_stack, name))}")
        fn = self._fixtures.get(name)
        if fn is None:
            raise KeyError(f"unknown fixture {name!r}")
        params = tuple(inspect.signature(fn).parameters)
        try:
            kwargs = {p: (self.generator(f"fixture:{name}") if p == "generator" else self.get(p, (*_stack, name)))
                      for p in params}
            value = fn(**kwargs)
        except BaseException as exc:
            if not isinstance(exc, (Exception, Skip)):
                raise
            self._errors[name] = exc
            raise
        self._values[name] = value
        return value

"""Fixtures: the lazily computed, per-run cached inputs of checks, injected by parameter name.

A fixture is a function registered with :func:`fixture`; its own parameters are other fixtures.
Nothing is computed until a check asks for it, and each value is computed once per run. A
fixture that raises :class:`~diffcheck.errors.Skip` makes every check that needs it SKIP; any
other exception makes those checks ERROR, each with the fixture's error.
"""

from __future__ import annotations

import inspect
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .data import Dataset
from .errors import Skip
from .pipeline import Pipeline

__all__ = ["fixture", "FIXTURES", "Context", "BASE_FIXTURES"]

FIXTURES: dict[str, Callable[..., Any]] = {}
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
    """Register ``fn`` as a fixture named after it."""
    FIXTURES[fn.__name__] = fn
    return fn


def known_fixtures() -> set[str]:
    return set(FIXTURES) | set(BASE_FIXTURES)


class Context:
    """The fixtures of one run: computed on first use, then cached (errors too)."""

    def __init__(self, *, pipeline: Pipeline, data: Dataset | None, seed: int,
                 report_dir: Path | None = None, settings: Mapping[str, Any] | None = None,
                 status: Callable[[str, float, float], None] | None = None,
                 thresholds: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.seed = seed
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
        fn = FIXTURES.get(name)
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

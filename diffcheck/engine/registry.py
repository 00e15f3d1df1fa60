"""Where checks come from: the built-in tuple, then the ``diffcheck.checks`` entry-point group.

An entry point's value is a :class:`~diffcheck.Check` subclass, an iterable of them, or a
callable returning either. ``DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD=1`` turns third-party loading
off. A plugin that fails to load (import error, malformed check, duplicate ID) adds none of its
checks and does not stop the run: the runner reports it as the result ``PLUGIN-<NAME>``, a SKIP
that leaves the exit code alone unless the run selects it (then an ERROR); ``--ignore
PLUGIN-<NAME>`` silences it. A run should be judged on what it was asked to check: an unrelated
broken package in the environment must not turn every CI gate red, but it must stay visible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Mapping

from diffcheck.engine.check import Check, validate_check
from diffcheck.engine.context import load_fixtures
from diffcheck.errors import CheckDefinitionError, InputError
from diffcheck.text import first_line

__all__ = ["Registry", "load_registry", "select_checks", "plugin_id", "names_plugin", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "diffcheck.checks"
AUTOLOAD_ENV = "DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD"


@dataclass(frozen=True)
class Registry:
    checks: tuple[type[Check], ...]
    #: (entry-point name, one-line error) for plugins that could not be loaded.
    broken: tuple[tuple[str, str], ...] = ()
    #: The fixtures these checks were validated against (built-in and plugin), by name; the run computes them.
    fixtures: Mapping[str, Callable[..., Any]] | None = None


def plugin_id(name: str) -> str:
    """The result ID that reports entry point ``name`` when it fails to load: ``PLUGIN-<NAME>``."""
    return f"PLUGIN-{name.upper()}"


def names_plugin(selector: str, name: str) -> bool:
    """Whether ``selector`` (``PLUGIN-<name>``, or ``PLUGIN`` for every plugin) names entry point ``name``."""
    s = selector.strip().upper()
    return s.startswith("PLUGIN") and plugin_id(name).startswith(s)


def _as_checks(obj: Any) -> list[Any]:
    if callable(obj) and not isinstance(obj, type):
        obj = obj()
    if isinstance(obj, type):
        return [obj]
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, Iterable):
        return list(obj)
    raise CheckDefinitionError(f"returned {type(obj).__name__}, expected Check classes")


def load_registry(*, plugins: bool = True, extra: Iterable[type[Check]] = ()) -> Registry:
    """Built-in checks, then plugins, then ``extra``; validated, with unique IDs."""
    from diffcheck_checks import BUILTIN_CHECKS

    fixture_registry = load_fixtures(plugins=plugins)
    fixtures = fixture_registry.names()
    checks: dict[str, type[Check]] = {}
    broken: list[tuple[str, str]] = list(fixture_registry.broken)  # a fixture plugin that failed is reported alike

    def add(cls: Any, origin: str, into: dict[str, type[Check]]) -> None:
        validate_check(cls, origin, fixtures)
        if cls.id in into and into[cls.id] is not cls:
            raise CheckDefinitionError(f"check {cls.id} from {origin} duplicates the ID of "
                                       f"{into[cls.id].__module__}.{into[cls.id].__qualname__}")
        into[cls.id] = cls

    for cls in BUILTIN_CHECKS:
        add(cls, "diffcheck_checks", checks)
    if plugins and os.environ.get(AUTOLOAD_ENV, "") in ("", "0"):
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            trial = dict(checks)  # all of a plugin's checks or none
            try:
                for cls in _as_checks(ep.load()):
                    add(cls, f"entry point {ep.name!r} ({ep.value})", trial)
            except Exception as exc:  # a broken plugin is reported, never fatal
                broken.append((ep.name, first_line(f"{type(exc).__name__}: {exc}")))
                continue
            checks = trial
    for cls in extra:
        add(cls, "the caller", checks)
    return Registry(tuple(checks.values()), tuple(broken), fixture_registry.fixtures)


def _matches(check_id: str, selectors: Iterable[str]) -> bool:
    return any(check_id.startswith(s) for s in selectors)


def select_checks(checks: Iterable[type[Check]], select: Iterable[str] = (), ignore: Iterable[str] = (),
                  *, broken: Iterable[tuple[str, str]] = ()) -> tuple[list[type[Check]], list[type[Check]]]:
    """(selected, ignored): IDs or ID prefixes (``FWD`` = the family), with the checks they require.

    Selectors naming a plugin that failed to load (``PLUGIN-<name>``, see :func:`names_plugin`) select no
    check; InputError if another selector matches nothing (naming the ``broken`` plugins, whose checks
    may be the ones meant).
    """
    checks, broken = list(checks), list(broken)
    select, ignore = _check_selectors(select, broken), _check_selectors(ignore, broken) or []
    for sel in (*(select or []), *ignore):
        if not any(c.id.startswith(sel) for c in checks):
            families = sorted({c.family() for c in checks})
            raise InputError(f"{sel!r} matches no check; families: {', '.join(families)} (see `diffcheck list`)"
                             + _broken_note(broken))
    if select == []:  # only broken plugins were selected
        return [], []
    chosen = [c for c in checks if select is None or _matches(c.id, select)]
    chosen = _with_requirements(chosen, checks)
    return ([c for c in chosen if not _matches(c.id, ignore)], [c for c in chosen if _matches(c.id, ignore)])


def _with_requirements(chosen: list[type[Check]], checks: list[type[Check]]) -> list[type[Check]]:
    """``chosen`` plus every check they require or use, transitively, in registry order."""
    by_id = {c.id: c for c in checks}
    ids, todo = {c.id for c in chosen}, [c.id for c in chosen]
    while todo:
        check = by_id[todo.pop()]
        for req in check.requires | check.uses:
            if req in by_id and req not in ids:
                ids.add(req)
                todo.append(req)
    return [c for c in checks if c.id in ids]


def _check_selectors(selectors: Iterable[str], broken: list[tuple[str, str]]) -> list[str] | None:
    """The selectors that name checks, upper-cased; None where none was given at all ("every check")."""
    given = [s.strip().upper() for s in selectors if s.strip()]
    if not given:
        return None
    return [s for s in given if not any(names_plugin(s, name) for name, _ in broken)]


def _broken_note(broken: Iterable[tuple[str, str]]) -> str:
    notes = [f"plugin {name!r} failed to load ({err})" for name, err in broken]
    return f"; {'; '.join(notes)}" if notes else ""

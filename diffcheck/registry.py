"""Where checks come from: the built-in tuple, then the ``diffcheck.checks`` entry-point group.

An entry point's value is a :class:`~diffcheck.Check` subclass, an iterable of them, or a
callable returning either. ``DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD=1`` turns third-party loading
off. A plugin that fails to load does not stop the run: it is reported as an ERROR result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Iterable

from .check import Check, validate_check
from .context import known_fixtures
from .errors import CheckDefinitionError, InputError

__all__ = ["Registry", "load_registry", "select_checks", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "diffcheck.checks"
AUTOLOAD_ENV = "DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD"


@dataclass(frozen=True)
class Registry:
    checks: tuple[type[Check], ...]
    #: (entry-point name, one-line error) for plugins that could not be loaded.
    broken: tuple[tuple[str, str], ...] = ()


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

    fixtures = known_fixtures()
    checks: dict[str, type[Check]] = {}
    broken: list[tuple[str, str]] = []

    def add(cls: Any, origin: str) -> None:
        validate_check(cls, origin, fixtures)
        if cls.id in checks and checks[cls.id] is not cls:
            raise CheckDefinitionError(f"check {cls.id} from {origin} duplicates the ID of "
                                       f"{checks[cls.id].__module__}.{checks[cls.id].__qualname__}")
        checks[cls.id] = cls

    for cls in BUILTIN_CHECKS:
        add(cls, "diffcheck_checks")
    if plugins and os.environ.get(AUTOLOAD_ENV, "") in ("", "0"):
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                for cls in _as_checks(ep.load()):
                    add(cls, f"entry point {ep.name!r} ({ep.value})")
            except Exception as exc:  # a broken plugin is reported, never fatal
                broken.append((ep.name, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    for cls in extra:
        add(cls, "the caller")
    return Registry(tuple(checks.values()), tuple(broken))


def _matches(check_id: str, selectors: Iterable[str]) -> bool:
    return any(check_id.startswith(s) for s in selectors)


def select_checks(checks: Iterable[type[Check]], select: Iterable[str] = (),
                  ignore: Iterable[str] = ()) -> tuple[list[type[Check]], list[type[Check]]]:
    """(selected, ignored): IDs or ID prefixes (``FWD`` = the family), with the checks they require.

    InputError if a selector matches nothing.
    """
    checks = list(checks)
    select = [s.strip().upper() for s in select if s.strip()]
    ignore = [s.strip().upper() for s in ignore if s.strip()]
    for sel in (*select, *ignore):
        if not any(c.id.startswith(sel) for c in checks):
            families = sorted({c.family() for c in checks})
            raise InputError(f"{sel!r} matches no check; families: {', '.join(families)} (see `diffcheck list`)")
    chosen = [c for c in checks if not select or _matches(c.id, select)]
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

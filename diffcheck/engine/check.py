"""The check base class: measure, then judge against named thresholds.

A check is a small class. Its ID is a family prefix plus three digits (``FWD001``), the first
line of its docstring is its title, ``measure`` receives fixtures by parameter name and returns
the observed numbers, and ``judge`` turns those numbers and the (overridable) thresholds into a
:class:`~diffcheck.engine.results.Verdict`. Keys of the measurement that start with ``_`` are artefacts
for figures and are kept out of the JSON report.
"""

from __future__ import annotations

import enum
import inspect
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from diffcheck.errors import CheckDefinitionError
from diffcheck.engine.results import Verdict

__all__ = ["Check", "Stage", "FAMILY_STAGES", "validate_check", "check_fixture_names", "threshold_bounds",
           "QUALITY_DIRECTIONS", "explains_id"]

#: What a ``Check.quality`` entry may say: which direction of the figure is better.
QUALITY_DIRECTIONS = ("lower", "higher")


class Stage(enum.IntEnum):
    """Where in a pipeline a check looks, in causal order: a fault upstream shows downstream.

    The diagnosis (:mod:`diffcheck.engine.diagnosis`) lists root causes by stage, so that of two
    independent failures the one nearer the data comes first.
    """

    FORWARD = 1  #: data and forward process: q_sample and the schedule
    TRAINING = 2  #: the training target and the loss that computes it
    SAMPLER = 3  #: the sampler's decoding and contract (schedule, t, clipping, mode)
    WEIGHTS = 4  #: the weights the sampler uses (finite, loaded, the trained ones)
    LEARNED = 5  #: what the trained network does (its t, its loss against trivial predictors)
    SAMPLES = 6  #: the samples against real spectra

    @property
    def label(self) -> str:
        return self.name.lower()


#: A check's stage when it does not set ``Check.stage``: by family prefix (others: LEARNED).
FAMILY_STAGES = {"FWD": Stage.FORWARD, "PAR": Stage.TRAINING, "TOY": Stage.TRAINING, "SMP": Stage.SAMPLER,
                 "WGT": Stage.WEIGHTS, "TEMB": Stage.LEARNED, "LOSS": Stage.LEARNED, "DIST": Stage.SAMPLES}

_ID = re.compile(r"^[A-Z][A-Z0-9]*?[A-Z][0-9]{3}$|^[A-Z]+[0-9]{3}$")


class Check:
    """Base class of every diffcheck check (subclass it; see the module docstring)."""

    id: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    #: Checks whose results this one reads when they ran: selected and ordered with it like
    #: ``requires``, but their SKIP or FAIL does not skip it (it judges with what it has).
    uses: ClassVar[frozenset[str]] = frozenset()
    thresholds: ClassVar[Mapping[str, float]] = MappingProxyType({})
    #: Closed range an overridden threshold must lie in, per name; unlisted ones: [0, inf).
    #: An override outside it is refused before the run (diffcheck.engine.config.check_thresholds).
    threshold_bounds: ClassVar[Mapping[str, tuple[float, float]]] = MappingProxyType({})
    #: True when the check judges what a network learned; ``diffcheck preflight`` leaves it out.
    trained_only: ClassVar[bool] = False
    #: Observed fields that measure model quality, each "lower" or "higher" (which is better);
    #: ``diffcheck run --baseline`` compares them against the promoted model's (diffcheck.engine.baseline).
    quality: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: Where in the pipeline the check looks; None: by family (``FAMILY_STAGES``).
    stage: ClassVar[Stage | None] = None
    #: Check IDs or family prefixes (``DIST``) whose failure this check's failure accounts for:
    #: the knock-on effects of the fault it finds (diffcheck.engine.diagnosis groups them under it).
    explains: ClassVar[frozenset[str]] = frozenset()
    #: What to look at in the user's code when this check is a root cause (one or two sentences).
    next_step: ClassVar[str] = ""

    @classmethod
    def title(cls) -> str:
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")  # its own, never the base class's
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def family(cls) -> str:
        return cls.id.rstrip("0123456789")

    @classmethod
    def pipeline_stage(cls) -> Stage:
        """``stage``, or the family's default stage."""
        return cls.stage if cls.stage is not None else FAMILY_STAGES.get(cls.family(), Stage.LEARNED)

    def measure(self, **fixtures: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def judge(self, observed: Mapping[str, Any], thresholds: Mapping[str, float]) -> Verdict:  # pragma: no cover
        raise NotImplementedError

    def plot(self, observed: Mapping[str, Any], outdir: Path) -> list[Path]:
        """Write figures for this result into ``outdir``; returns their paths."""
        return []


def threshold_bounds(cls: type[Check], name: str) -> tuple[float, float]:
    """The closed range ``cls``'s threshold ``name`` may be set to (default: [0, inf))."""
    return tuple(cls.threshold_bounds.get(name, (0.0, float("inf"))))


def explains_id(selectors: frozenset[str], check_id: str) -> bool:
    """True when ``check_id`` is one of ``selectors``: an ID, or a family prefix followed by digits."""
    return any(check_id == s or (check_id.startswith(s) and check_id[len(s):].isdigit()) for s in selectors)


def check_fixture_names(cls: type[Check]) -> tuple[str, ...]:
    """The fixture names ``measure`` asks for, in order."""
    params = list(inspect.signature(cls.measure).parameters.values())[1:]
    return tuple(p.name for p in params)


def validate_check(cls: Any, origin: str, known_fixtures: set[str]) -> None:
    """Raise CheckDefinitionError naming ``origin`` and the class when ``cls`` is malformed."""
    where = f"check {getattr(cls, '__qualname__', cls)!r} from {origin}"
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise CheckDefinitionError(f"{where}: not a subclass of diffcheck.Check")
    if not isinstance(cls.id, str) or not _ID.match(cls.id):
        raise CheckDefinitionError(f"{where}: id {cls.id!r} is not a family prefix plus 3 digits (e.g. FWD001)")
    if not cls.title():
        raise CheckDefinitionError(f"{where}: the class docstring (its one-line title) is missing")
    for method in ("measure", "judge"):
        if getattr(cls, method) is getattr(Check, method):
            raise CheckDefinitionError(f"{where}: does not implement {method}()")
    for p in list(inspect.signature(cls.measure).parameters.values())[1:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            raise CheckDefinitionError(f"{where}: measure() must name its fixtures, not take *args/**kwargs")
        if p.name not in known_fixtures:
            raise CheckDefinitionError(f"{where}: measure() asks for unknown fixture {p.name!r}; "
                                       f"known: {', '.join(sorted(known_fixtures))}")
    if not all(isinstance(r, str) for r in (*cls.requires, *cls.uses)):
        raise CheckDefinitionError(f"{where}: requires and uses must be sets of check IDs")
    bad = [k for k, v in cls.thresholds.items() if not isinstance(v, (int, float))]
    if bad:
        raise CheckDefinitionError(f"{where}: thresholds {bad} are not numbers")
    bad = [k for k in cls.threshold_bounds if k not in cls.thresholds]
    if bad:
        raise CheckDefinitionError(f"{where}: threshold_bounds name unknown thresholds {bad}")
    bad = [k for k, v in cls.quality.items() if v not in QUALITY_DIRECTIONS]
    if bad:
        raise CheckDefinitionError(f"{where}: quality {bad} must map to one of {QUALITY_DIRECTIONS}")
    _validate_diagnosis(cls, where)


def _validate_diagnosis(cls: type[Check], where: str) -> None:
    """``stage``, ``explains`` and ``next_step`` have the types the diagnosis reads."""
    if cls.stage is not None and not isinstance(cls.stage, Stage):
        raise CheckDefinitionError(f"{where}: stage {cls.stage!r} is not a diffcheck.engine.check.Stage")
    if not isinstance(cls.explains, frozenset) or not all(isinstance(e, str) and e for e in cls.explains):
        raise CheckDefinitionError(f"{where}: explains must be a frozenset of check IDs or family prefixes")
    if explains_id(cls.explains, cls.id):
        raise CheckDefinitionError(f"{where}: explains names the check itself")
    if not isinstance(cls.next_step, str):
        raise CheckDefinitionError(f"{where}: next_step must be a string")

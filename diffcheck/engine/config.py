"""Project configuration: ``[tool.diffcheck]`` in pyproject.toml, overridden by the command line.

    [tool.diffcheck]
    pipeline = "my_pipeline.py:build"      # paths are relative to the pyproject.toml
    data = "data/heldout.h5"
    select = ["FWD", "PAR", "SMP"]
    strict = true                          # a WARN fails the gate
    max_samples = 64                       # DIST: draw up to 64 samples (default 32)
    junit = "diffcheck-junit.xml"
    outputs = { json = "ci/diffcheck.json" }  # more files, by format (diffcheck.formats.FORMATS)

    [tool.diffcheck.thresholds]
    FWD001.max_coef_error = 0.02           # or "FWD001.max_coef_error" = 0.02

    [tool.diffcheck.ignore]                # every ignore carries its reason; the report shows it
    SMP006 = "we clip x0 to [-1, 1] on purpose (reviewed 2026-11-26)"

    [tool.diffcheck.baseline]
    checkpoint = "models/promoted.pt"
    rtol = 0.1                             # a quality figure may worsen by atol + rtol * |baseline|
    atol = 0.0

A flag on the command line wins over the file; ``--ignore`` adds to the file's ignores and
``--select`` replaces its selection. A malformed file is one :class:`InputError` line that names
the key.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from diffcheck.errors import InputError

__all__ = ["Options", "Tolerance", "find_pyproject", "load_config", "parse_config", "SECTION"]

SECTION = "[tool.diffcheck]"
#: What a run can be (Options.mode).
MODES = ("run", "preflight")
#: The reason shown for a check ignored on the command line.
CLI_IGNORE_REASON = "--ignore on the command line"


@dataclass(frozen=True)
class Tolerance:
    """How far a quality figure may worsen against the baseline: ``atol + rtol * |baseline|``."""

    rtol: float = 0.1
    atol: float = 0.0

    def allowed(self, baseline: float) -> float:
        return self.atol + self.rtol * abs(baseline)


@dataclass(frozen=True)
class Options:
    """Everything one run needs besides its target, in one object: :func:`diffcheck.run` takes it,
    and the command line, the pytest plugin and :mod:`diffcheck.testing` build it (the file's
    ``[tool.diffcheck]``, then flags). Every default of a run lives here."""

    data: Path | None = None
    dataset: str = "flux"
    pipeline: str | None = None
    device: str = "auto"
    seed: int = 0
    select: tuple[str, ...] = ()
    #: check ID or family -> the reason it is ignored (shown in the report).
    ignore: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    strict: bool = False
    #: Where report.json, report.html and the figures go; None: the run writes no file.
    report_dir: Path | None = Path("diffcheck-report")
    #: Extra copies of the report in a named format (diffcheck.formats): ``--json``, ``--junit``.
    json: Path | None = None
    junit: Path | None = None
    #: More files, by format name (``--output FORMAT=PATH``, ``outputs = {FORMAT = "path"}``).
    extra_outputs: Mapping[str, Path] = field(default_factory=dict)
    baseline: Path | None = None
    tolerance: Tolerance = Tolerance()
    #: Samples the DIST checks draw: at least ``min_samples`` (one batch), at most ``max_samples``
    #: (None: diffcheck.measure.samples.DEFAULT_SETTINGS).
    min_samples: int | None = None
    max_samples: int | None = None
    #: ``run``: every check; ``preflight``: the checks that need no trained network (``diffcheck preflight``).
    mode: str = "run"
    #: Load checkpoints that need arbitrary unpickling (``--trust-checkpoint``: runs code the file names).
    #: Only a flag sets it, never the config file.
    trust_checkpoint: bool = False
    #: Where the configuration came from (shown in the report's meta), or None.
    source: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    def outputs(self) -> list[tuple[str, Path]]:
        """(format, path) of every file the run writes (diffcheck.formats): report.json and report.html
        in the report directory, then ``--json`` and ``--junit``; none without a report directory."""
        if self.report_dir is None:
            return []
        named = [("json", self.report_dir / "report.json"), ("html", self.report_dir / "report.html")]
        named += [(fmt, path) for fmt, path in (("json", self.json), ("junit", self.junit)) if path is not None]
        return named + list(self.extra_outputs.items())

    @property
    def settings(self) -> dict[str, int]:
        """Run settings that are not thresholds, as :func:`diffcheck.run_checks` takes them."""
        return {k: v for k, v in (("min_samples", self.min_samples), ("max_samples", self.max_samples))
                if v is not None}

    def with_flags(self, **flags: Any) -> "Options":
        """These options overridden by command-line flags; a flag left as None keeps the file's value.

        Each flag's value is validated as the same key in ``[tool.diffcheck]`` is: InputError
        naming the flag.
        """
        for name, parse in _FLAG_VALUES.items():
            if flags.get(name) is not None:
                try:
                    flags[name] = parse(flags[name])
                except InputError as exc:
                    raise InputError(f"--{_FLAG_NAMES.get(name, name).replace('_', '-')} {flags[name]!r}: {exc}") from None
        if flags.get("output"):
            flags["extra_outputs"] = {**self.extra_outputs, **_outputs_flag(flags["output"])}
        given = {k: v for k, v in flags.items() if v is not None and k not in ("ignore", "threshold", "select",
                                                                               "rtol", "atol", "output")}
        out = replace(self, **given)
        if flags.get("select"):
            out = replace(out, select=tuple(flags["select"]))
        extra_ignores = {i.upper(): CLI_IGNORE_REASON for i in flags.get("ignore") or ()}
        tol = replace(self.tolerance, **{k: flags[k] for k in ("rtol", "atol") if flags.get(k) is not None})
        return replace(out, ignore={**self.ignore, **extra_ignores}, tolerance=tol,
                       thresholds=_merge_thresholds(self.thresholds, flags.get("threshold") or {}))


def _merge_thresholds(base: Mapping[str, Mapping[str, float]],
                      over: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    out = {cid: dict(values) for cid, values in base.items()}
    for cid, values in over.items():
        out.setdefault(cid, {}).update(values)
    return out


def find_pyproject(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` (default: the working directory)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike | None = None) -> Options:
    """Options from ``path`` (a pyproject.toml), else the nearest one; defaults without ``[tool.diffcheck]``."""
    if path is not None and not Path(path).is_file():
        raise InputError(f"config file not found: {path}")
    found = Path(path) if path is not None else find_pyproject()
    if found is None:
        return Options()
    try:
        document = tomllib.loads(found.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{found}: not valid TOML ({exc})") from None
    table = document.get("tool", {}).get("diffcheck")
    if table is None:
        return Options()
    return parse_config(table, root=found.parent, source=found)


def parse_config(table: Mapping[str, Any], *, root: Path, source: Path | None = None) -> Options:
    """Validate a ``[tool.diffcheck]`` table; relative paths are taken from ``root``."""
    where = f"{source}: " if source is not None else ""
    if not isinstance(table, Mapping):
        raise InputError(f"{where}{SECTION} must be a table")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise InputError(f"{where}{SECTION} has unknown key {unknown[0]!r}; known keys: {', '.join(_KEYS)}")
    values: dict[str, Any] = {"source": source}
    for key, value in table.items():
        try:
            values.update(_KEYS[key](value, root))
        except InputError as exc:
            raise InputError(f"{where}{SECTION} {key}: {exc}") from None
    return Options(**values)


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty string, got {value!r}")
    return value.strip()


def _path(value: Any, root: Path) -> Path:
    p = Path(_string(value))
    return p if p.is_absolute() else root / p


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"expected true or false, got {value!r}")
    return value


def _ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"expected a list of check IDs or families, e.g. [\"FWD\", \"PAR001\"], got {value!r}")
    return tuple(v.strip().upper() for v in value)


def _ignore(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InputError("must map each ignored check to its reason, e.g. SMP006 = \"clipping is intended\"")
    out = {}
    for cid, reason in value.items():
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"{cid} needs a reason (a non-empty string), e.g. {cid} = \"why it does not apply\"")
        out[cid.strip().upper()] = reason.strip()
    return out


def _thresholds(value: Any) -> dict[str, dict[str, float]]:
    """``{ID: {name: v}}`` (dotted keys) or ``{"ID.name": v}`` (quoted keys)."""
    if not isinstance(value, Mapping):
        raise InputError("must be a table, e.g. FWD001.max_coef_error = 0.02")
    out: dict[str, dict[str, float]] = {}
    for key, v in value.items():
        cid, dot, name = key.partition(".")
        pairs = v.items() if isinstance(v, Mapping) and not dot else [(name, v)]
        for n, number in pairs:
            if not n:
                raise InputError(f"{key!r} is not ID.name, e.g. FWD001.max_coef_error = 0.02")
            out.setdefault(cid.strip().upper(), {})[n] = _number(number, f"{cid}.{n}")
    return out


def _baseline(value: Any, root: Path) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError("must be a table with checkpoint, rtol, atol")
    unknown = sorted(set(value) - {"checkpoint", "rtol", "atol"})
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r}; known: checkpoint, rtol, atol")
    tol = {}
    for k in ("rtol", "atol"):
        if k in value:
            try:
                tol[k] = _tolerance(value[k])
            except InputError as exc:
                raise InputError(f"{k} {exc}") from None
    out: dict[str, Any] = {"tolerance": Tolerance(**tol)}
    if "checkpoint" in value:
        out["baseline"] = _path(value["checkpoint"], root)
    return out


#: Seeds beyond this do not fit the generators' 63-bit state.
MAX_SEED = 2**63 - 1
#: DIST draws samples in batches of min_samples; statistics of fewer than 2 are undefined.
MIN_SAMPLES = 2


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise InputError(f"expected an integer from 0 to 2**63-1, got {value!r}")
    return value


def _samples(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_SAMPLES:
        raise InputError(f"expected an integer >= {MIN_SAMPLES} (samples DIST draws), got {value!r}")
    return value


def _tolerance(value: Any) -> float:
    number = _number(value, "a tolerance")
    if number < 0:
        raise InputError(f"must be >= 0, got {value!r}")
    return number


_Parser = Callable[[Any, Path], Mapping[str, Any]]
_KEYS: dict[str, _Parser] = {
    "pipeline": lambda v, root: {"pipeline": _pipeline_spec(v, root)},
    "data": lambda v, root: {"data": _path(v, root)},
    "dataset": lambda v, root: {"dataset": _string(v)},
    "device": lambda v, root: {"device": _string(v)},
    "seed": lambda v, root: {"seed": _seed(v)},
    "min_samples": lambda v, root: {"min_samples": _samples(v)},
    "max_samples": lambda v, root: {"max_samples": _samples(v)},
    "select": lambda v, root: {"select": _ids(v)},
    "ignore": lambda v, root: {"ignore": _ignore(v)},
    "thresholds": lambda v, root: {"thresholds": _thresholds(v)},
    "strict": lambda v, root: {"strict": _bool(v)},
    "report_dir": lambda v, root: {"report_dir": _path(v, root)},
    "junit": lambda v, root: {"junit": _path(v, root)},
    "outputs": lambda v, root: {"extra_outputs": _outputs(v, root)},
    "baseline": _baseline,
}


#: Command-line flags validated like their ``[tool.diffcheck]`` keys (flag name -> parser).
_FLAG_VALUES: dict[str, Callable[[Any], Any]] = {
    "seed": _seed, "min_samples": _samples, "max_samples": _samples, "rtol": _tolerance, "atol": _tolerance,
    "dataset": _string, "device": _string,
}
_FLAG_NAMES = {"rtol": "baseline_rtol", "atol": "baseline_atol"}


def _format(name: Any) -> str:
    from diffcheck.formats import FORMATS

    if not isinstance(name, str) or name.strip().lower() not in FORMATS:
        raise InputError(f"unknown report format {name!r}; formats: {', '.join(FORMATS)}")
    return name.strip().lower()


def _outputs(value: Any, root: Path) -> dict[str, Path]:
    """``{FORMAT = "path"}``: more files the run writes, each in a named format."""
    if not isinstance(value, Mapping):
        raise InputError('must map a format to a file, e.g. outputs = { junit = "diffcheck-junit.xml" }')
    return {_format(fmt): _path(path, root) for fmt, path in value.items()}


def _outputs_flag(items: Iterable[str]) -> dict[str, Path]:
    """``--output FORMAT=PATH`` values."""
    out = {}
    for item in items:
        fmt, sep, path = item.partition("=")
        if not sep or not path.strip():
            raise InputError(f"--output {item!r}: expected FORMAT=PATH, e.g. --output junit=report.xml")
        try:
            out[_format(fmt)] = Path(path.strip())
        except InputError as exc:
            raise InputError(f"--output {item!r}: {exc}") from None
    return out


def _pipeline_spec(value: Any, root: Path) -> str:
    """``file.py:function`` with the file taken relative to ``root``."""
    file, sep, func = _string(value).rpartition(":")
    if not sep or not file or not func:
        raise InputError(f"expected path/to/file.py:function, got {value!r}")
    return f"{_path(file, root)}:{func}"


def threshold_strings(thresholds: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Thresholds as the ``ID.name=value`` strings of ``--threshold``."""
    return [f"{cid}.{name}={value!r}" for cid, values in thresholds.items() for name, value in values.items()]


def matches(check_id: str, selectors: Iterable[str]) -> str | None:
    """The first selector (ID or family prefix) that ``check_id`` falls under, or None."""
    return next((s for s in selectors if check_id.startswith(s)), None)


def check_thresholds(checks: Iterable[Any], overrides: Mapping[str, Mapping[str, float]]) -> None:
    """InputError for an override of an unknown check or threshold, or a value outside its range."""
    from diffcheck.engine.check import threshold_bounds

    by_id = {c.id: c for c in checks}
    for cid, values in overrides.items():
        if cid not in by_id:
            raise InputError(f"threshold override for unknown check {cid!r} (see `diffcheck list`)")
        unknown = set(values) - set(by_id[cid].thresholds)
        if unknown:
            known = ", ".join(sorted(by_id[cid].thresholds)) or "none"
            raise InputError(f"{cid} has no threshold {sorted(unknown)[0]!r}; its thresholds: {known}")
        for name, value in values.items():
            lo, hi = threshold_bounds(by_id[cid], name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise InputError(f"threshold {cid}.{name}={value!r} is outside [{lo:g}, {hi:g}]; "
                                 f"its default is {by_id[cid].thresholds[name]:g}")


def check_options(options: Options, checks: Iterable[Any], broken: Iterable[tuple[str, str]] = ()) -> None:
    """Everything in ``options`` that can be judged before a checkpoint loads or a check runs.

    One InputError (exit code 2) naming the input: sample counts that contradict each other,
    thresholds (unknown or out of range), selectors that match no check, input files that do
    not exist. Each value was validated on its own when parsed (``parse_config``, ``with_flags``).
    """
    from diffcheck.engine.registry import select_checks

    checks = list(checks)
    lo, hi = options.min_samples, options.max_samples
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"min_samples {lo} is more than max_samples {hi}: DIST draws at least min_samples, "
                         "at most max_samples")
    check_thresholds(checks, options.thresholds)
    select_checks(checks, options.select, options.ignore, broken=broken)
    if options.data is not None and not options.data.is_file():
        kind = "a directory, not an HDF5 file" if options.data.is_dir() else "not found"
        raise InputError(f"--data {options.data}: {kind}")
    if options.pipeline:
        file = Path(options.pipeline.rpartition(":")[0] or options.pipeline)
        if not file.is_file():
            raise InputError(f"--pipeline file not found: {file} (expected path/to/file.py:function)")

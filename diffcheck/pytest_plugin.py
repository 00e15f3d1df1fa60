"""The pytest side of diffcheck: checks as test items, and the session's pipeline and data.

The options and fixtures are declared in the light ``diffcheck_pytest`` module (the ``pytest11``
entry point), which imports this module only when a session asks for diffcheck. With
``pytest --diffcheck`` every selected check becomes a test item ``diffcheck::<ID>``:

- FAIL or ERROR fails the item with the check's failure text (no traceback);
- SKIP (including an ignore with its reason) skips it; WARN and QUALITY (a sample-quality gap,
  not a bug) pass with a warning, or fail under ``--diffcheck-strict`` / ``strict = true``;
- with ``[tool.diffcheck.baseline]`` an item ``diffcheck::BASELINE`` fails on a regression.

The checks run once, at the first item, and the report (report.json, figures) is written to the
configured report directory. The run's diagnosis (its root causes, each with the failures it
explains) is a section of the terminal summary, above pytest's short summary; a failing item's text
ends with the root cause it follows from, or, for a root cause, the next step. Options fall back to ``[tool.diffcheck]`` in the rootdir's
pyproject.toml.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from diffcheck.api import run
from diffcheck.engine.config import Options, load_config
from diffcheck.pipelines.data import Dataset, load_dataset
from diffcheck.engine.diagnosis import Diagnosis
from diffcheck.errors import InputError
from diffcheck.pipelines.loading import load_pipeline, resolve_device, trusted_checkpoints
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.engine.registry import load_registry, select_checks
from diffcheck.formats.report import Report
from diffcheck.engine.results import GATED, Result, Status

__all__ = ["DiffcheckItems", "DiffcheckItem", "DiffcheckWarning", "session_state", "SessionState"]

_STATE = pytest.StashKey["SessionState"]()
BASELINE_ITEM = "BASELINE"


class DiffcheckWarning(UserWarning):
    """A check WARNed (it passes unless strict)."""


class DiffcheckFailure(Exception):
    """Raised by an item whose check failed; its text is the failure text."""


@dataclass
class SessionState:
    """What one pytest session knows about diffcheck: options, then lazily the pipeline and the report."""

    checkpoint: str | None
    #: The run's options; ``trust_checkpoint`` is --diffcheck-trust-checkpoint.
    options: Options
    _cache: dict[str, Any] = field(default_factory=dict)

    def pipeline(self) -> Pipeline:
        if "pipeline" not in self._cache:
            if self.checkpoint is None and self.options.pipeline is None:
                pytest.fail("diffcheck: name a pipeline with --diffcheck-checkpoint PATH "
                            "or --diffcheck-pipeline file.py:function", pytrace=False)
            self._cache["pipeline"] = self._input(lambda: load_pipeline(
                self.checkpoint, device=resolve_device(self.options.device), pipeline=self.options.pipeline))
        return self._cache["pipeline"]

    def data(self) -> Dataset | None:
        if self.options.data is None:
            return None
        if "data" not in self._cache:
            pipe = self.pipeline()
            self._cache["data"] = self._input(lambda: load_dataset(
                self.options.data, length=pipe.sample_shape[1], normaliser=pipe.normaliser,
                dataset=self.options.dataset))
        return self._cache["data"]

    def report(self) -> Report:
        """The run of the selected checks (and the baseline comparison), done once."""
        if "report" not in self._cache:
            if self.checkpoint is None and self.options.pipeline is None:
                pytest.fail("diffcheck: --diffcheck needs --diffcheck-checkpoint PATH "
                            "or --diffcheck-pipeline file.py:function", pytrace=False)
            # Every output (report.json, report.html, the figures, a configured junit file) is written by the run.
            self._cache["report"] = self._input(lambda: run(self.checkpoint, self.options))
        return self._cache["report"]

    def diagnosis(self) -> Diagnosis | None:
        """The diagnosis of the run, once it ran (None before)."""
        if "report" in self._cache and "diagnosis" not in self._cache:
            self._cache["diagnosis"] = self._cache["report"].diagnosis()
        return self._cache.get("diagnosis")


    def _input(self, load):
        """Run ``load`` with the session's trust; bad input fails the test with one line, as on the
        command line (naming pytest's own flag where the message names the CLI's)."""
        try:
            with trusted_checkpoints(self.options.trust_checkpoint):
                return load()
        except InputError as exc:
            text = str(exc).replace("pass --trust-checkpoint", "pass --diffcheck-trust-checkpoint")
            pytest.fail(f"diffcheck: {text}", pytrace=False)


def session_state(config: pytest.Config) -> SessionState:
    """The session's SessionState, built on first use from the options and [tool.diffcheck]."""
    if _STATE not in config.stash:
        pyproject = Path(config.rootpath) / "pyproject.toml"
        try:
            options = load_config(pyproject if pyproject.is_file() else None).with_flags(
                pipeline=config.getoption("diffcheck_pipeline"), data=_path(config.getoption("diffcheck_data")),
                device=config.getoption("diffcheck_device"), seed=config.getoption("diffcheck_seed"),
                strict=config.getoption("diffcheck_strict"),
                select=[s for s in (config.getoption("diffcheck_select") or "").split(",") if s.strip()],
                trust_checkpoint=bool(config.getoption("diffcheck_trust_checkpoint")))
        except InputError as exc:
            raise pytest.UsageError(f"diffcheck: {exc}") from None
        config.stash[_STATE] = SessionState(config.getoption("diffcheck_checkpoint"), options)
    return config.stash[_STATE]


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


class DiffcheckItems:
    """Registered by ``--diffcheck``: adds one item per selected check to the collection."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, so those apply to our items
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        collector = DiffcheckCollector.from_parent(session, name="diffcheck", nodeid="diffcheck")
        items.extend(session.genitems(collector))  # reported like any collection (counts, errors)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The run's diagnosis, just above pytest's short test summary."""
        diagnosis = session_state(self.config).diagnosis()
        if diagnosis is None:
            return
        terminalreporter.section("diffcheck diagnosis")
        for line in diagnosis.lines():
            terminalreporter.write_line(line)


class DiffcheckCollector(pytest.Collector):
    """The ``diffcheck`` node: one item per selected check, then the baseline item."""

    def collect(self) -> Iterator[pytest.Item]:
        state = session_state(self.config)
        try:
            chosen, ignored = select_checks(load_registry().checks, state.options.select, list(state.options.ignore))
        except InputError as exc:
            raise self.CollectError(f"diffcheck: {exc}") from None
        for cls in sorted((*chosen, *ignored), key=lambda c: c.id):
            yield DiffcheckItem.from_parent(self, name=cls.id, title=cls.title())
        if state.options.baseline is not None:
            yield DiffcheckItem.from_parent(self, name=BASELINE_ITEM, title="quality figures vs the baseline")


class DiffcheckItem(pytest.Item):
    """One check of the session's run, judged like a test."""

    def __init__(self, *, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = title
        self.add_marker("diffcheck")

    def runtest(self) -> None:
        report = session_state(self.config).report()
        if self.name == BASELINE_ITEM:
            self._judge_baseline(report)
            return
        result = report[self.name]
        self.user_properties.append(("diffcheck", result.to_dict()))
        if result.status is Status.SKIP:
            pytest.skip(result.summary)
        if result.status is Status.ERROR or result.status.fails_run(report.strict):
            raise DiffcheckFailure(_text(result) + _place(session_state(self.config).diagnosis(), result.id))
        if result.status in GATED:
            warnings.warn(DiffcheckWarning(result.message()), stacklevel=1)

    def _judge_baseline(self, report: Report) -> None:
        comparison = report.baseline
        if comparison is not None and not comparison.passed:
            raise DiffcheckFailure("\n".join(comparison.lines()))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, DiffcheckFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "diffcheck", None, f"diffcheck {self.name}: {self.title}"


def _text(result: Result) -> str:
    text = replace(result, hint=_pytest_hint(result) if result.hint else "").message()
    return text if result.status not in GATED else f"{result.status.value} under strict: {text}"


def _place(diagnosis: Diagnosis | None, check_id: str) -> str:
    """Where the check stands in the diagnosis: the root causes it follows from, or its next step."""
    if diagnosis is None:
        return ""
    roots = [c.id for c in diagnosis.causes if check_id in c.explains]
    if roots:
        return f"\nFollows from {', '.join(roots)}, a root cause of this run (see 'diffcheck diagnosis' below)."
    step = next((c.next_step for c in diagnosis.causes if c.id == check_id), "")
    return f"\nA root cause of this run. Next step: {step}" if step else ""


def _pytest_hint(result: Result) -> str:
    """How to silence a check in pytest, where ``--ignore`` means paths: the ignore table, or deselection."""
    return (f'To silence: {result.id} = "<why it does not apply>" under [tool.diffcheck.ignore] in pyproject.toml, '
            f'or deselect the item: -k "not {result.id}"')

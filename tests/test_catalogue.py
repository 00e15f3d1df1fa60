"""Issue 16's catalogue: every bad input or fault gets one clear stderr line and a meaningful exit code.

The cases are in tests/catalogue/cases_*.py; this module runs each through typer's CliRunner.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tests.catalogue as catalogue
from diffcheck.cli import app


def _all_cases() -> list:
    cases = []
    for info in pkgutil.iter_modules(catalogue.__path__):
        if info.name.startswith("cases_"):
            cases += importlib.import_module(f"tests.catalogue.{info.name}").CASES
    return cases


CASES = _all_cases()
#: diffcheck.formats.render.LogProgress's lines (stderr is no terminal here): progress, not a message.
_PROGRESS = re.compile(r"^diffcheck: (\[\d+/\d+\] |  )")


def _snapshot(folder: Path) -> dict[str, str] | None:
    if not folder.exists():
        return None
    if not folder.is_dir():
        return {"": hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_catalogue_ids_are_unique_and_span_every_input_kind():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert len(CASES) >= 80, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no pyproject.toml above: the case's own options only
    if case.patch is not None:
        case.patch(monkeypatch, tmp_path)
    if case.setup is not None:
        case.setup(tmp_path)
    rep = tmp_path / "rep"
    before = _snapshot(rep)
    result = CliRunner().invoke(app, [str(a) for a in case.args(tmp_path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}") from result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _PROGRESS.match(line)]
    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output, result.output
    assert len(lines) == 1, result.stderr
    assert re.search(case.stderr, lines[0]), lines[0]
    assert "\x1b" not in result.stderr, repr(result.stderr)
    if case.outdir == "absent":
        assert not rep.exists(), _snapshot(rep)
    elif case.outdir == "unchanged":
        assert _snapshot(rep) == before
    if case.after is not None:
        case.after(tmp_path)

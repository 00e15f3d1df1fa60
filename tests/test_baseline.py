"""Baseline gate: healthy vs healthy passes, the under-trained candidate (fixtures/zoo/degraded.py)
fails with its regression numbers; the comparison rules themselves on hand-made figures."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffcheck import Check, CheckDefinitionError, Report, Status, Verdict
from diffcheck.engine.baseline import FigureComparison, compare_reports
from diffcheck.engine.check import validate_check
from diffcheck.cli import app
from diffcheck.engine.config import Options, Tolerance
from diffcheck.engine.context import known_fixtures
from diffcheck.api import run
from diffcheck.engine.registry import load_registry
from tests.conftest import FIXTURES, HEALTHY_CKPT, TINY_DATA, report_for

DEGRADED_CKPT = FIXTURES / "checkpoints" / "degraded_tiny.pt"
_RUNS: dict = {}


def gate(candidate: Path, tmp_path_factory) -> Report:
    """PAR003 (the check with a quality figure) against the healthy baseline, run once per candidate."""
    if candidate not in _RUNS:
        out = tmp_path_factory.mktemp("gate")
        _RUNS[candidate] = run(candidate, Options(data=TINY_DATA, device="cpu", select=("PAR003",),
                                                  report_dir=out, baseline=HEALTHY_CKPT))
    return _RUNS[candidate]


def test_healthy_against_itself_passes(tmp_path_factory):
    report = gate(HEALTHY_CKPT, tmp_path_factory)
    (figure,) = report.baseline.figures
    assert (figure.check_id, figure.field, figure.regressed) == ("PAR003", "fit_unexplained", False)
    assert figure.candidate == figure.baseline and report.exit_code == 0
    assert report.baseline.lines() == [f"BASELINE PAR003 fit_unexplained unchanged at {figure.baseline:.4g} "
                                       f"(tolerance {figure.allowed:.2g}, lower is better; within tolerance)"]


def test_degraded_candidate_passes_its_check_but_fails_the_baseline(tmp_path_factory):
    report = gate(DEGRADED_CKPT, tmp_path_factory)
    assert report["PAR003"].status is Status.PASS  # it still predicts eps clearly: nothing absolute is wrong
    (figure,) = report.baseline.regressions
    assert figure.candidate > 1.5 * figure.baseline  # about twice the unexplained share (0.03 -> 0.06)
    assert re.match(r"BASELINE PAR003 fit_unexplained rose from 0\.0\d+ to 0\.0\d+ \(\+\d+%\) "
                    r"\(tolerance 0\.00\d+, lower is better\)$", report.baseline.lines()[0])
    assert report.exit_code == 1
    section = report.to_dict()["baseline"]
    assert section["passed"] is False and section["regressions"] == 1 and section["rtol"] == 0.1
    numbers = section["figures"][0]
    assert numbers["baseline"] == figure.baseline and numbers["candidate"] == figure.candidate
    assert math.isclose(numbers["worsening"], figure.candidate - figure.baseline)
    assert math.isclose(numbers["allowed"], 0.1 * figure.baseline)


def test_a_wide_enough_tolerance_lets_the_degraded_candidate_through(tmp_path_factory):
    (figure,) = gate(DEGRADED_CKPT, tmp_path_factory).baseline.figures
    assert not replace(figure, allowed=Tolerance(rtol=0.0, atol=0.1).allowed(figure.baseline)).regressed
    assert replace(figure, allowed=Tolerance(rtol=0.5, atol=0.0).allowed(figure.baseline)).regressed


def test_cli_baseline_writes_the_numbers_and_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["run", str(DEGRADED_CKPT), "--data", str(TINY_DATA), "--device", "cpu",
                                      "--select", "PAR003", "--baseline", str(HEALTHY_CKPT), "--report-dir",
                                      str(tmp_path), "--baseline-rtol", "0.2"])
    assert result.exit_code == 1, result.output
    assert re.search(r"^BASELINE PAR003 fit_unexplained rose from .* \(tolerance 0\.00\d+, lower is better\)$",
                     result.output, re.MULTILINE)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["baseline"]["rtol"] == 0.2 and report["baseline"]["figures"][0]["regressed"] is True
    assert (tmp_path / "baseline").is_dir()  # the baseline run's figures do not overwrite the candidate's


def test_missing_baseline_checkpoint_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["run", str(HEALTHY_CKPT), "--select", "FWD001", "--device", "cpu",
                                      "--baseline", str(tmp_path / "nope.pt"), "--report-dir", str(tmp_path)])
    assert result.exit_code == 2 and "baseline checkpoint not found" in result.output


# --- the comparison rules on hand-made figures ---

@pytest.mark.parametrize("better, base, cand, tol, regressed", [
    ("lower", 0.03, 0.032, Tolerance(0.1, 0.0), False),
    ("lower", 0.03, 0.034, Tolerance(0.1, 0.0), True),
    ("higher", 0.97, 0.93, Tolerance(0.0, 0.05), False),
    ("higher", 0.97, 0.91, Tolerance(0.0, 0.05), True),
    ("higher", 0.5, 0.9, Tolerance(0.0, 0.0), False),     # improving never fails
    ("lower", 0.1, math.nan, Tolerance(1.0, 1.0), True),  # a NaN figure is a regression
], ids=["lower-within", "lower-beyond", "higher-within", "higher-beyond", "improved", "nan"])
def test_tolerance_is_atol_plus_rtol_times_the_baseline(better, base, cand, tol, regressed):
    figure = FigureComparison("ABC001", "x", better, base, cand, tol.allowed(base))
    assert figure.regressed is regressed


def _with_quality(quality: dict) -> type[Check]:
    class ABC001(Check):
        """A check with declared quality figures"""
        id = "ABC001"

        def measure(self, seed):
            return {}

        def judge(self, o, th):
            return Verdict(Status.PASS, "ok")

    ABC001.quality = quality
    return ABC001


def _fake(report, **observed):
    result = replace(report.results[0], id="ABC001", status=Status.PASS, observed=observed)
    return replace(report, results=(result,))


def test_list_figures_compare_element_by_element_and_report_the_worst():
    base = report_for("healthy", ("FWD001",))
    check = _with_quality({"loss_by_t": "lower", "note": "lower"})
    comparison = compare_reports(_fake(base, loss_by_t=[1.0, 2.0, 3.5], note="x"),
                                 _fake(base, loss_by_t=[1.0, 2.0, 3.0], note="x"), [check])
    (figure,) = comparison.figures
    assert (figure.name, figure.regressed) == ("loss_by_t[2]", True)
    assert comparison.not_compared == (("ABC001", "note is not a number (or a list of equal length) in both reports"),)


def test_a_failed_candidate_check_is_not_compared_and_says_why():
    base = report_for("healthy", ("FWD001",))
    failed = _fake(base, x=1.0)
    failed = replace(failed, results=(replace(failed.results[0], status=Status.FAIL),))
    comparison = compare_reports(failed, _fake(base, x=1.0), [_with_quality({"x": "lower"})])
    assert comparison.figures == () and comparison.not_compared == (("ABC001", "the candidate's result is FAIL"),)


def test_quality_directions_are_validated():
    with pytest.raises(CheckDefinitionError, match=r"quality \['x'\] must map to one of \('lower', 'higher'\)"):
        validate_check(_with_quality({"x": "smaller"}), "test", known_fixtures())


def test_declared_quality_fields_are_observed_fields():
    """Every declared quality figure is in the check's JSON on the healthy fixture."""
    declared = {c.id: c.quality for c in load_registry(plugins=False).checks if c.quality}
    assert "PAR003" in declared
    report = report_for("healthy", ("PAR003",))
    observed = report["PAR003"].observed
    assert set(declared["PAR003"]) == {"fit_unexplained"}
    # 1 - the mean R² of the identified target, recomputed from the per-t R² the check reports
    r2 = observed[f"r2_{observed['best']}_by_t"]
    assert observed["fit_unexplained"] == pytest.approx(1.0 - sum(r2) / len(r2), rel=1e-9)
    assert 0.0 < observed["fit_unexplained"] < 0.5  # a trained eps network explains most of its target

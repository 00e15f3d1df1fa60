"""The command line through typer's CliRunner: exit codes, key lines, files written."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from diffcheck.cli import app
from tests.conftest import FIXTURES, HEALTHY_CKPT, SAMPLE_MEMO, TINY_DATA, zoo_member
from tests.test_runner import _install_plugin

BROKEN_PLUGIN = """
    from diffcheck import Check, Status, Verdict

    class BRK001(Check):
        "A deliberately broken plugin check"
        id = "BRK001"
        def measure(self, pipeline):
            raise RuntimeError("deliberately broken")
        def judge(self, o, th):
            return Verdict(Status.PASS, "unreachable")

    def checks():
        return [BRK001]
"""


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def run_args(tmp_path, ckpt=HEALTHY_CKPT, *extra):
    # One batch of 16 DIST samples: these tests are about the CLI, not sample statistics (CI time).
    return ("run", ckpt, "--data", TINY_DATA, "--device", "cpu", "--report-dir", tmp_path / "rep",
            "--min-samples", "16", "--max-samples", "16", *extra)


#: For tests about one failure's exit code and message: leave out the families that sample or
#: train (the full run, DIST and TOY included, is the healthy test above).
QUICK = ("--ignore", "DIST", "--ignore", "TOY")


def test_healthy_fixture_passes_every_check_and_writes_json_and_figures(tmp_path):
    code, out = invoke(*run_args(tmp_path), "--json", tmp_path / "out.json")
    assert code == 0, out
    report = json.loads((tmp_path / "out.json").read_text())
    fwd = [r for r in report["results"] if r["family"] == "FWD"]
    skipped = {r["id"]: r["summary"] for r in report["results"] if r["status"] == "SKIP"}
    assert len(fwd) == 5 and {r["status"] for r in report["results"]} <= {"PASS", "SKIP"}, out
    assert set(skipped) <= {"WGT005"}, skipped  # the reference format stores no schedule tensors
    assert (tmp_path / "rep" / "report.json").exists()
    assert (tmp_path / "rep" / "report.html").exists()
    for figure in ("fwd_xt_trajectory.png", "fwd_coefficients.png", "smp_marginals.png", "dist_samples_grid.png",
                   "dist_flux_hist.png", "dist_ks_map.png", "dist_power.png", "dist_reverse_process.png"):
        assert (tmp_path / "rep" / figure).stat().st_size > 10_000
    assert f"{len(report['results']) - len(skipped)} pass" in out and "exit code 0" in out


def test_the_experiments_bug_exits_1_and_names_eps_vs_x0(tmp_path):
    spec = FIXTURES / zoo_member("eps_trained_x0_sampled")["pipeline"]
    code, out = invoke(*run_args(tmp_path), "--pipeline", spec, *QUICK)
    assert code == 1, out
    first = next(line for line in out.splitlines() if line.startswith("FAIL PAR004"))
    assert re.match(r"FAIL PAR004 sampler decodes the output as x0 but the network predicts eps \(eps-fit R² 0\.9\d, "
                    r"x0-fit R² -?[\d.]+, v-fit R² -?[\d.]+\)$", first), first


def test_renormalised_forward_process_fails_with_exit_1_naming_it(tmp_path):
    spec = FIXTURES / zoo_member("renorm_xt")["pipeline"]
    code, out = invoke(*run_args(tmp_path), "--pipeline", spec, *QUICK)
    assert code == 1, out
    first = next(line for line in out.splitlines() if line.startswith("FAIL FWD002"))
    assert re.search(r"x_t is re-normalised per sample: its per-sample std stays 0\.99\d\.\.0\.99\d while the "
                     r"closed form's spans 0\.\d+\.\.0\.\d+ at t=\d+ \(response 0\.0\d\d vs >= 0\.8\)$", first), first
    assert "Likely causes:" in out


def test_leaky_terminal_schedule_shows_the_terminal_snr(tmp_path):
    code, out = invoke(*run_args(tmp_path, FIXTURES / zoo_member("leaky_terminal")["checkpoint"]),
                       "--select", "FWD004")
    assert code == 0, out  # a WARN does not fail the run
    assert "WARN FWD004 data leaks into x_T: terminal SNR 0.04" in out


def test_list_shows_checks_and_thresholds():
    code, out = invoke("list")
    assert code == 0
    assert "FWD001" in out and "max_coef_error=0.01" in out


def test_help_keeps_its_square_brackets(monkeypatch):
    # rich reads "[tool.diffcheck]" and "[default: 32]" as markup tags and drops them unless escaped
    monkeypatch.setenv("COLUMNS", "250")
    code, out = invoke("run", "--help")
    assert code == 0
    assert "[tool.diffcheck]" in out and "[default: 32]" in out and "[default: auto]" in out


def _truncated(tmp_path):
    p = tmp_path / "trunc.pt"
    p.write_bytes(HEALTHY_CKPT.read_bytes()[:5000])
    return p


def _unknown_format(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, p)
    return p


def _h5(tmp_path, name, flux=None, key="flux"):
    p = tmp_path / name
    with h5py.File(p, "w") as f:
        f[key] = flux if flux is not None else np.ones((4, 512), np.float32)
    return p


def _nan_data(tmp_path):
    flux = np.ones((6, 512), np.float32)
    flux[3, 10] = np.nan
    return _h5(tmp_path, "nan.h5", flux)


BAD_INPUTS = {
    "missing checkpoint": (lambda tmp: ("run", tmp / "nope.pt"), r"error: checkpoint not found: .*nope\.pt"),
    "truncated checkpoint": (lambda tmp: ("run", _truncated(tmp)), r"error: cannot read checkpoint .*trunc\.pt: truncated"),
    "unknown format": (lambda tmp: ("run", _unknown_format(tmp)),
                       r"error: unknown checkpoint format in .*other\.pt: a dict with keys \[epoch, model\]"),
    "dataset absent": (lambda tmp: ("run", HEALTHY_CKPT, "--data", _h5(tmp, "k.h5", key="fluxes")),
                       r"error: .*k\.h5.*flux.*fluxes"),
    "wrong length": (lambda tmp: ("run", HEALTHY_CKPT, "--data", _h5(tmp, "l.h5", np.ones((4, 300), np.float32))),
                     r"error: data l\.h5:flux has 300 pixels per spectrum but the pipeline works on 512"),
    "NaN in data": (lambda tmp: ("run", HEALTHY_CKPT, "--data", _nan_data(tmp)),
                    r"error: data nan\.h5:flux has non-finite flux \(NaN or Inf\) in 1 of 6 spectra \(first at row 3\)"),
    "unknown selector": (lambda tmp: ("run", HEALTHY_CKPT, "--select", "NOPE"), r"error: 'NOPE' matches no check"),
    "bad threshold": (lambda tmp: ("run", HEALTHY_CKPT, "--threshold", "FWD001=3"), r"error: bad --threshold"),
    "missing data file": (lambda tmp: ("run", HEALTHY_CKPT, "--data", tmp / "none.h5"), r"error: .*none\.h5"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, case):
    make_args, pattern = BAD_INPUTS[case]
    args = list(make_args(tmp_path))
    code, out = invoke(*args, "--device", "cpu", "--report-dir", tmp_path / "rep")
    assert code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    assert re.match(pattern, lines[0]), lines[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_usage_error(tmp_path):
    code, out = invoke(*run_args(tmp_path)[:-4], "--device", "cuda", "--report-dir", tmp_path / "r")
    assert code == 2 and "CUDA is not available" in out


def test_a_broken_plugin_check_is_error_others_run_exit_3(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, BROKEN_PLUGIN, "dcplug:checks")
    code, out = invoke(*run_args(tmp_path), "--json", tmp_path / "o.json", *QUICK)
    assert code == 3, out
    results = {r["id"]: r for r in json.loads((tmp_path / "o.json").read_text())["results"]}
    assert results["BRK001"]["status"] == "ERROR"
    assert results["BRK001"]["summary"] == "check raised RuntimeError: deliberately broken"
    assert {results[f"FWD00{i}"]["status"] for i in range(1, 6)} == {"PASS"}


def test_a_broken_plugin_ignored_by_name_leaves_no_line_and_exit_0(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "raise ImportError('missing dependency xyz')\n", "dcplug:checks")
    result = CliRunner().invoke(app, [str(a) for a in (*run_args(tmp_path), "--select", "FWD001",
                                                        "--ignore", "PLUGIN-plug")])
    assert result.exit_code == 0, result.output
    assert "failed to load" not in result.stderr
    results = {r["id"]: r for r in json.loads((tmp_path / "rep" / "report.json").read_text())["results"]}
    assert results["PLUGIN-PLUG"]["status"] == "SKIP"
    assert results["PLUGIN-PLUG"]["summary"] == "ignored: --ignore on the command line"


def test_an_under_trained_healthy_model_gets_a_quality_finding_exit_0_and_strict_makes_it_fail(tmp_path):
    # the healthy recipe stopped at 300 of 3000 steps (fixtures/zoo/degraded.py): correct code, worse
    # samples. Its gap is reported with its number, and only a gate the user sets turns it into a failure.
    degraded = FIXTURES / "checkpoints" / "degraded_tiny.pt"
    with SAMPLE_MEMO.active():  # the --strict run below draws the same samples: sampled once
        code, out = invoke(*run_args(tmp_path, degraded, "--select", "DIST"))
        strict_code, strict_out = invoke(*run_args(tmp_path / "strict", degraded, "--select", "DIST", "--strict"))
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert code == 0 and report["exit_code"] == 0, out
    line1 = next(line for line in out.splitlines() if not line.startswith("diffcheck: "))  # after the progress
    assert line1.startswith("diagnosis: no bug found (1 structural check passed); the samples fall short of real "
                            "spectra: DIST002 (QUALITY) sample quality, not a bug: pooled flux differs"), line1
    assert report["diagnosis"]["kind"] == "quality_only" and report["diagnosis"]["headline"] == line1
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["DIST001"]["status"] == "PASS" and by_id["DIST005"]["status"] == "PASS"
    gap = by_id["DIST002"]
    assert gap["status"] == "QUALITY" and 1.5 < gap["observed"]["gap_factor"] < gap["thresholds"]["fail_factor"]
    assert f"{gap['observed']['gap_factor']:.3g}x the real-vs-real" in gap["summary"]
    assert report["counts"]["QUALITY"] >= 2 and report["counts"]["FAIL"] == 0
    assert "next step: a quality gap, not a bug" in out
    assert strict_code == 1, strict_out

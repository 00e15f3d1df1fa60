"""FWD family: each check passes on the healthy reference and fails on its planted bug."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.reference.ddpm import GaussianDiffusion
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from tests.conftest import HEALTHY_CKPT, load_member


def run(pipe, select, data=None, seed=0, **kw):
    return diffcheck.run_checks(pipe, data=data, select=select, seed=seed, **kw)


@pytest.mark.parametrize("check_id", ["FWD001", "FWD002", "FWD003", "FWD004", "FWD005"])
def test_FWD_passes_on_healthy(healthy, tiny_data, check_id):
    result = run(healthy, [check_id], data=tiny_data)[check_id]
    assert result.status is Status.PASS, result.message()


def test_FWD001_fails_on_variance_as_std(tiny_data):
    result = run(load_member("variance_as_std"), ["FWD001"], data=tiny_data)["FWD001"]
    assert result.status is Status.FAIL
    assert re.match(r"x_t does not follow the declared schedule: at t=\d+ signal [\d.]+ vs sqrt\(alpha_bar\)="
                    r"[\d.]+, noise [\d.]+ vs [\d.]+ \(max coefficient error [\d.]+ vs 0.01\)$", result.summary)
    # The noise std is the variance: at the worst t it is the square of the declared std.
    o = result.observed
    assert o["noise_at_worst"] == pytest.approx(o["declared_noise_at_worst"] ** 2, abs=0.01)


def test_FWD001_fails_on_reversed_timesteps(tiny_data):
    result = run(load_member("reversed_t"), ["FWD001"], data=tiny_data)["FWD001"]
    assert result.status is Status.FAIL
    assert result.observed["max_coef_error"] > 0.5


def test_FWD002_fails_on_per_sample_renormalisation(tiny_data):
    result = run(load_member("renorm_xt"), ["FWD002"], data=tiny_data)["FWD002"]
    assert result.status is Status.FAIL
    m = re.match(r"x_t is re-normalised per sample: its per-sample (std|mean) stays (-?[\d.]+)\.\.(-?[\d.]+) "
                 r"while the closed form's spans (-?[\d.]+)\.\.(-?[\d.]+) at t=\d+ \(response (-?[\d.]+) vs >= 0.8\)$",
                 result.summary)
    assert m, result.summary
    assert float(m.group(6)) == pytest.approx(result.observed["response"], abs=5e-4)
    assert abs(result.observed["response"]) < 0.1  # standardisation pins the std: no response at all
    assert result.observed["xt_std_max"] - result.observed["xt_std_min"] < 1e-3


def test_FWD002_does_not_blame_renormalisation_for_reversed_timesteps(tiny_data):
    result = run(load_member("reversed_t"), ["FWD002"], data=tiny_data)["FWD002"]
    assert result.status is Status.SKIP
    assert "not an affine function" in result.summary


def test_FWD003_fails_when_x_T_is_not_standard_normal(tiny_data):
    result = run(load_member("leaky_terminal"), ["FWD003"], data=tiny_data)["FWD003"]
    # this fixture's KS D sits near fail_ks_d (0.049 at seed 0, 0.053 at seed 1): the status must be
    # the one its own D calls for, as strict as the product
    d, th = result.observed["ks_d"], result.thresholds
    assert d > th["warn_ks_d"]
    assert result.status is (Status.FAIL if d > th["fail_ks_d"] else Status.WARN)
    assert f"KS D={result.observed['ks_d']:.4f}" in result.summary


def test_FWD004_warns_on_leaky_terminal_schedule(tiny_data):
    pipe = load_member("leaky_terminal")
    result = run(pipe, ["FWD004"], data=tiny_data)["FWD004"]
    assert result.status is Status.WARN
    snr = result.observed["terminal_snr"]
    declared = float(pipe.schedule.snr()[-1])
    assert snr == pytest.approx(declared, rel=0.1)
    assert result.summary.startswith(f"data leaks into x_T: terminal SNR {snr:.3g} ")


def test_FWD005_fails_on_reversed_timesteps(tiny_data):
    result = run(load_member("reversed_t"), ["FWD005"], data=tiny_data)["FWD005"]
    assert result.status is Status.FAIL
    assert re.match(r"SNR of q_sample rises with t: [\d.e+-]+ at t=\d+ to [\d.e+-]+ at t=\d+", result.summary)


def test_FWD005_fails_on_a_declared_schedule_outside_0_1(healthy, tiny_data):
    from diffcheck.pipelines.reference.ddpm import GaussianDiffusion
    from diffcheck.pipelines.reference.pipeline import ReferencePipeline
    from diffcheck.pipelines.schedule import Schedule

    betas = healthy.schedule.betas.copy()
    betas[500] = -0.002
    bad = ReferencePipeline(healthy.unet_config, GaussianDiffusion(healthy.network, healthy.diffusion.config,
                            Schedule(betas)), length=healthy.length, normaliser=healthy.normaliser)
    result = run(bad, ["FWD005"], data=tiny_data)["FWD005"]
    assert result.status is Status.FAIL
    assert "beta at t=500 is -0.002" in result.summary


def test_FWD_figures_are_written(healthy, tiny_data, tmp_path):
    result = run(healthy, ["FWD001"], data=tiny_data, report_dir=tmp_path)["FWD001"]
    names = sorted(p.split("/")[-1] for p in result.figures)
    assert names == ["fwd_coefficients.png", "fwd_xt_trajectory.png"]
    assert all((tmp_path / n).stat().st_size > 10_000 for n in names)


def test_FWD_runs_without_data_on_synthetic_probes(healthy):
    report = run(healthy, ["FWD"])
    assert {r.status for r in report.results} == {Status.PASS}


def test_FWD001_is_deterministic_under_a_seed(healthy, tiny_data):
    a = run(healthy, ["FWD001"], data=tiny_data, seed=3)["FWD001"].observed
    b = run(healthy, ["FWD001"], data=tiny_data, seed=3)["FWD001"].observed
    assert np.array_equal(a["signal"], b["signal"])


class _NaNAfter500(GaussianDiffusion):
    """q_sample returns NaN for t > 500 (a coefficient that divides by zero late in the schedule)."""

    def q_sample(self, x0, t, noise):
        x = super().q_sample(x0, t, noise)
        return torch.where((t > 500).view(-1, 1, 1), torch.full_like(x, float("nan")), x)


@pytest.mark.parametrize("check_id", ["FWD001", "FWD003", "FWD004", "FWD005"])
def test_FWD_fails_when_q_sample_returns_nan(tiny_data, check_id):
    pipe = ReferencePipeline.from_checkpoint(HEALTHY_CKPT, diffusion_cls=_NaNAfter500)
    result = run(pipe, [check_id], data=tiny_data)[check_id]
    assert result.status is Status.FAIL, result.message()  # never PASS or WARN on NaN
    assert re.search(r"NaN or Inf", result.summary), result.summary


@pytest.mark.parametrize("ks_d, status", [(0.005, Status.PASS), (0.03, Status.WARN), (0.06, Status.FAIL)])
def test_FWD003_passes_warns_and_fails_by_its_two_thresholds(ks_d, status):
    from diffcheck_checks.fwd import FWD003

    o = {"ks_d": ks_d, "n": 1000, "mean": 0.0, "std": 1.0, "t": 999, "nonfinite_values": 0}
    assert FWD003().judge(o, dict(FWD003.thresholds)).status is status

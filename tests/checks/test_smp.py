"""SMP family: the sampler's contract, each check against its planted bug."""

from __future__ import annotations

import re

import numpy as np
import torch
import pytest

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.reference.ddpm import DiffusionConfig, GaussianDiffusion
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from tests.conftest import HEALTHY_CKPT, report_for

SMP = ["SMP001", "SMP002", "SMP003", "SMP004", "SMP005", "SMP006", "SMP007"]


@pytest.mark.parametrize("check_id", SMP)
def test_SMP_passes_on_healthy(check_id):
    result = report_for("healthy")[check_id]
    assert result.status is Status.PASS, result.message()


@pytest.mark.parametrize("member,check_id,pattern", [
    ("skips_final_step", "SMP003", r"the sampler stops short of x0: samples are [\d.]+ from x0\* under the exact eps "
                                   r"oracle \(vs 0.001\); last network call at t=1"),
    ("sampler_t_over_T", "SMP004", r"the sampler passes t/T in \[0, 1\] \(max 0.999\) but training passes integer t "
                                   r"\(0..T-1\) \(max \d+\)"),
    ("dropout_train_mode", "SMP005", r"the network is in training mode while sampling \(first call, t=999\)"),
    ("clip_too_narrow", "SMP006", r"[\d.]+% of x0 predictions are pinned at one value \(vs <= 1%\) for a target within"),
    ("triple_noise", "SMP007", r"the sampler's x_t leaves q\(x_t\): std ratio [\d.]+ at t=\d+"),
])
def test_SMP_fails_on_its_planted_bug(member, check_id, pattern):
    result = report_for(member)[check_id]
    assert result.status is Status.FAIL, result.message()
    assert re.match(pattern, result.summary), result.summary


class LeadingDDIM(GaussianDiffusion):
    """diffusers' "leading" spacing: arange(0, T, T // n) reversed, so it starts at T - T//n."""

    def ddim_timesteps(self):
        n = self.config.sample_steps
        return [int(v) for v in np.arange(0, self.schedule.T, self.schedule.T // n)[::-1]]


def _leading(healthy, schedule, steps):
    config = DiffusionConfig(schedule=schedule, sampler="ddim", sample_steps=steps)
    return ReferencePipeline(healthy.unet_config, LeadingDDIM(healthy.network, config), length=healthy.length,
                             normaliser=healthy.normaliser)


def test_SMP001_passes_leading_spacing_on_a_linear_schedule(healthy, tiny_data):
    """diffusers' default start at 980 of 1000 is fine: alpha_bar there is ~1e-4."""
    report = diffcheck.run_checks(_leading(healthy, "linear", 50), data=tiny_data, select=["SMP001", "SMP003"])
    assert report["SMP001"].observed["first_t"] == 980
    assert report["SMP001"].status is Status.PASS and report["SMP003"].status is Status.PASS


def test_SMP001_fails_leading_spacing_with_few_steps_on_a_cosine_schedule(healthy, tiny_data):
    result = diffcheck.run_checks(_leading(healthy, "cosine", 10), data=tiny_data, select=["SMP001"])["SMP001"]
    assert result.status is Status.FAIL
    assert re.match(r"the sampler starts at t=900 where SNR is [\d.]+ \(vs <= 0.01\)", result.summary), result.summary


class AscendingDDIM(GaussianDiffusion):
    def ddim_timesteps(self):
        steps = super().ddim_timesteps()
        return steps[:3][::-1] + steps[3:]  # the first three out of order


def test_SMP002_fails_when_timesteps_do_not_decrease(healthy, tiny_data):
    config = DiffusionConfig(sampler="ddim", sample_steps=20)
    pipe = ReferencePipeline(healthy.unet_config, AscendingDDIM(healthy.network, config), length=healthy.length,
                             normaliser=healthy.normaliser)
    result = diffcheck.run_checks(pipe, data=tiny_data, select=["SMP002"])["SMP002"]
    assert result.status is Status.FAIL
    assert result.summary.startswith("t does not decrease at call 0: ")


class NaNFinalStep(GaussianDiffusion):
    def _ancestral_loop(self, x, gen, cb):
        return super()._ancestral_loop(x, gen, cb) / 0.0  # 0/0 and x/0: NaN and Inf


def test_SMP003_fails_when_the_sampler_returns_nan(healthy, tiny_data):
    pipe = ReferencePipeline(healthy.unet_config, NaNFinalStep(healthy.network, healthy.diffusion.config),
                             length=healthy.length, normaliser=healthy.normaliser)
    result = diffcheck.run_checks(pipe, data=tiny_data, select=["SMP003"])
    # The trajectory still identifies the decoding (PAR002), so SMP003 judges the landing.
    assert result["PAR002"].observed["identified"] == "eps"
    assert result["SMP003"].status is Status.FAIL
    assert result["SMP003"].summary == "the sampler returns NaN or Inf under the exact eps oracle"


class NaNTimeAtStep500(GaussianDiffusion):
    """The network is called with t = NaN at t=500 (the coefficients still use the true t)."""

    def predict(self, x_t, t):
        model = self.model
        self.model = lambda x, tt: model(x, torch.where(tt == 500, torch.full_like(tt, float("nan"), dtype=torch.float),
                                                           tt.float()))
        try:
            return super().predict(x_t, t)
        finally:
            self.model = model


def test_SMP002_fails_when_the_sampler_passes_a_nan_t(healthy, tiny_data):
    pipe = ReferencePipeline(healthy.unet_config, NaNTimeAtStep500(healthy.network, healthy.diffusion.config),
                             length=healthy.length, normaliser=healthy.normaliser)
    result = diffcheck.run_checks(pipe, data=tiny_data, select=["SMP002"])["SMP002"]
    assert result.status is Status.FAIL, result.message()
    assert result.summary == "the sampler passes a non-finite t to the network at call 499 of 1000", result.summary


def test_SMP006_passes_on_a_fresh_T100_pipeline_without_data(healthy):
    """No rounding noise at T=100 breaks ties in the clip probe's target: a clamped target once had
    11.7 % of its pixels tied at its maximum, which SMP006 read as clipping."""
    fresh = ReferencePipeline.build(healthy.unet_config, DiffusionConfig(T=100), length=healthy.length, seed=1)
    result = diffcheck.run_checks(fresh, select=["SMP006"], trained=False)["SMP006"]
    assert result.status is Status.PASS, result.message()
    assert result.observed["saturated_fraction"] < 0.01


class _SamplesInTrainMode(ReferencePipeline):
    """The healthy pipeline whose sampler never calls eval(): its UNet has Dropout(p=0) and GroupNorm
    only, so training mode changes nothing."""

    def sample(self, n, *, generator=None, callback=None):
        self.network.train()
        return self.diffusion.sample((n, *self.sample_shape), generator=generator, device=self.device,
                                     callback=callback)


def test_SMP005_judges_the_effect_of_training_mode_not_the_flag(healthy, tiny_data):
    pipe = _SamplesInTrainMode.from_checkpoint(HEALTHY_CKPT)
    assert all(m.p == 0 for m in pipe.network.modules() if isinstance(m, torch.nn.Dropout))
    handed_over = pipe.network.training
    result = diffcheck.run_checks(pipe, data=tiny_data, select=["SMP005"])["SMP005"]
    assert result.observed["training_mode"] is True
    assert result.status is Status.PASS, result.message()
    assert result.observed["repeat_change"] == 0.0 and result.observed["eval_change"] < 1e-6
    assert result.summary.startswith("the network samples in training mode, but nothing in it depends on the mode")
    assert pipe.network.training is handed_over  # the sampler set train(); the run put back the user's mode


def test_SMP005_fails_on_dropout_left_in_training_mode():
    result = report_for("dropout_train_mode", ("SMP005",))["SMP005"]
    assert result.status is Status.FAIL
    assert result.observed["repeat_change"] > 1e-3 and result.observed["eval_change"] > 1e-3

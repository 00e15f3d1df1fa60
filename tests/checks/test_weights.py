"""WGT family: finite weights, strict load, EMA against online weights, EMA horizon, schedule buffers."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from diffcheck.pipelines.schedule import make_schedule
from tests.conftest import HEALTHY_CKPT, report_for

NUM = r"-?[\d.]+(?:e[+-]?\d+)?"


@pytest.mark.parametrize("check_id", ["WGT001", "WGT002", "WGT003", "WGT004"])
def test_WGT_passes_on_healthy(check_id):
    result = report_for("healthy")[check_id]
    assert result.status is Status.PASS, result.message()


def test_WGT005_skips_without_stored_schedule_tensors():
    result = report_for("healthy")["WGT005"]
    assert result.status is Status.SKIP and "no schedule tensors are stored" in result.summary


def test_WGT001_fails_on_nan_weights():
    result = report_for("nan_weights", ("WGT001",))["WGT001"]
    assert result.status is Status.FAIL
    assert result.summary == ("8 weights are NaN or Inf in 2 tensors: online:mid1.conv1.weight, "
                              "sampled:mid1.conv1.weight")


def test_WGT002_fails_on_a_non_strict_load_of_ddp_keys():
    result = report_for("ddp_prefix_non_strict", ("WGT002",))["WGT002"]
    assert result.status is Status.FAIL
    assert re.fullmatch(r"(\d+) of \1 tensors were not loaded and stay at their initial values; \d+ keys in the file "
                        r"were not used \(\d+ carry a 'module.' prefix from DataParallel/DDP\)", result.summary), result.summary


def test_WGT003_fails_and_WGT004_warns_when_the_EMA_barely_moved():
    report = report_for("ema_barely_moved", ("WGT003", "WGT004"))
    assert report["WGT003"].status is Status.FAIL
    assert re.fullmatch(rf"the EMA weights the sampler uses denoise {NUM}x worse than the online weights \(median loss "
                        rf"{NUM} vs {NUM}; vs <= 2x\)", report["WGT003"].summary), report["WGT003"].summary
    assert report["WGT004"].status is Status.WARN
    assert report["WGT004"].summary.startswith("the EMA still holds 97% of its initial weights (horizon 1/(1-0.99999)")


def test_WGT003_and_WGT004_skip_without_an_EMA(tiny_data):
    pipe = ReferencePipeline.from_checkpoint(HEALTHY_CKPT, weights="online")
    report = diffcheck.run_checks(pipe, data=tiny_data, select=["WGT003", "WGT004"])
    assert report["WGT003"].status is Status.SKIP and "no online network" in report["WGT003"].summary
    assert report["WGT004"].status is Status.SKIP


class _StoredSchedule(ReferencePipeline):
    """Reports schedule tensors stored with its weights, as a library adapter would."""

    stored: dict = {}

    def weights_info(self):
        return dataclasses.replace(super().weights_info(), schedule_buffers=self.stored)


@pytest.mark.parametrize("schedule,status", [("linear", Status.PASS), ("cosine", Status.FAIL)])
def test_WGT005_compares_stored_schedule_tensors(tiny_data, schedule, status):
    pipe = ReferencePipeline.from_checkpoint(HEALTHY_CKPT)
    pipe.__class__ = _StoredSchedule
    stored = make_schedule(schedule, pipe.schedule.T)
    pipe.stored = {"betas": torch.tensor(stored.betas, dtype=torch.float32),
                   "alphas_cumprod": torch.tensor(stored.alpha_bar, dtype=torch.float32)}
    result = diffcheck.run_checks(pipe, data=tiny_data, select=["WGT005"])["WGT005"]
    assert result.status is status, result.message()
    if status is Status.FAIL:
        assert re.fullmatch(rf"stored \w+ differs from the declared schedule by {NUM} \(relative; vs <= 0.001\)",
                            result.summary), result.summary


def test_WGT002_compares_the_sampled_network_with_the_file():
    """A PASS that is measured: the reference pipeline hands over the file's tensors and WGT002
    compares every one with the network the sampler calls."""
    result = report_for("healthy")["WGT002"]
    assert result.observed["basis"] == "file" and result.observed["differing"] == 0
    assert result.summary == f"all {result.observed['expected']} tensors of the sampled network equal the file's, no key left over"


def test_WGT002_fails_when_the_sampler_calls_a_network_other_than_the_loaded_one(tiny_data):
    """The planted bug: weights loaded into one object, sampling with a freshly built one."""
    from diffcheck.pipelines.reference.unet import UNet1D

    pipe = ReferencePipeline.from_checkpoint(HEALTHY_CKPT)
    torch.manual_seed(0)
    pipe.diffusion.model = UNet1D(pipe.unet_config).eval()  # BUG: the loaded network is not the sampled one
    fresh, saved = pipe.network.state_dict(), pipe.stored_state
    expected = sum(not torch.equal(fresh[k], saved[k]) for k in fresh)
    result = diffcheck.run_checks(pipe, data=tiny_data, select=["WGT002"])["WGT002"]
    assert result.status is Status.FAIL, result.message()
    assert result.observed["differing"] == expected and expected > len(fresh) // 2, (expected, len(fresh))
    assert result.summary == (f"{expected} of {len(fresh)} tensors of the network the sampler calls differ "
                              "from the file's: it does not sample with the weights that were saved")

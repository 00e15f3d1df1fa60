"""LOSS family: the per-t loss against predicting zeros and predicting the data mean."""

from __future__ import annotations

import re

import numpy as np
import pytest

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from tests.conftest import HEALTHY_CKPT, report_for

NUM = r"-?[\d.]+(?:e[+-]?\d+)?"


def test_LOSS001_passes_on_healthy():
    result = report_for("healthy")["LOSS001"]
    assert result.status is Status.PASS, result.message()
    assert result.observed["peak_skill"] > 0.9


def test_LOSS001_declares_quality_figures_that_it_reports():
    from diffcheck_checks.loss import LOSS001

    observed = report_for("healthy")["LOSS001"].observed
    assert dict(LOSS001.quality) == {"peak_skill": "higher", "median_loss": "lower"}
    # the figures are what the per-t losses say, recomputed here from the reported arrays
    loss, best = np.asarray(observed["loss"]), np.minimum(observed["loss_zero"], observed["loss_mean"])
    assert observed["peak_skill"] == pytest.approx(float(np.max(1.0 - loss / best)), rel=1e-12)
    assert observed["median_loss"] == pytest.approx(float(np.median(loss)), rel=1e-12)
    assert observed["peak_t"] == observed["t"][int(np.argmax(1.0 - loss / best))]


@pytest.mark.parametrize("member", ["ddp_prefix_non_strict", "ema_barely_moved"])
def test_LOSS001_fails_on_a_network_that_learned_nothing(member):
    """Not LOSS001's own baseline: a fresh initialisation (nothing loaded), and EMA weights 97 % their
    initialisation. Their loss is worse than the trivial predictors' at every t."""
    result = report_for(member, ("LOSS001",))["LOSS001"]
    assert result.status is Status.FAIL, result.message()
    assert result.observed["peak_skill"] < 0.0, result.observed["peak_skill"]
    assert re.fullmatch(rf"the network is no better than predicting the data mean or zeros: at best {NUM}% lower loss "
                        rf"\(loss {NUM} vs {NUM} for the best trivial predictor at t=\d+; vs >= 50%\); median loss {NUM} "
                        rf"looks small only because the mean predictor's is {NUM}", result.summary), result.summary


def test_LOSS001_fails_on_a_network_that_learned_only_the_mean():
    """A regression guard (this network is LOSS001's mean baseline, so its skill is 0 by construction)."""
    result = report_for("mean_only", ("LOSS001",))["LOSS001"]
    assert result.status is Status.FAIL
    assert abs(result.observed["peak_skill"]) < 1e-3, result.observed["peak_skill"]
    assert re.fullmatch(rf"the network is no better than predicting the data mean or zeros: at best {NUM}% lower loss "
                        rf"\(loss {NUM} vs {NUM} for the best trivial predictor at t=\d+; vs >= 50%\); median loss {NUM} "
                        rf"looks small only because the mean predictor's is {NUM}", result.summary), result.summary


def test_LOSS001_fails_on_nan_weights():
    result = report_for("nan_weights", ("LOSS001",))["LOSS001"]
    assert result.status is Status.FAIL and result.summary.startswith("the network's loss is NaN or Inf")


class _NoLossAt(ReferencePipeline):
    """A pipeline that exposes neither its loss at given t nor its decoding (like a diffusers adapter)."""

    training_loss_at = Pipeline.training_loss_at
    denoise = Pipeline.denoise


def test_LOSS_and_TEMB_fall_back_to_the_decoded_target_and_TOY_skips(tiny_data):
    pipe = ReferencePipeline.from_checkpoint(HEALTHY_CKPT)
    pipe.__class__ = _NoLossAt
    report = diffcheck.run_checks(pipe, data=tiny_data, select=["LOSS001", "TEMB004", "TOY001"])
    assert report["LOSS001"].status is Status.PASS, report["LOSS001"].message()
    assert report["LOSS001"].observed["kind"] == "eps"
    assert report["TEMB004"].status is Status.PASS, report["TEMB004"].message()
    assert report["TOY001"].status is Status.SKIP
    assert "training_loss_at" in report["TOY001"].summary


def test_LOSS001_figure_is_written(healthy, tiny_data, tmp_path):
    result = diffcheck.run_checks(healthy, data=tiny_data, select=["LOSS001"], report_dir=tmp_path)["LOSS001"]
    assert [p.rsplit("/", 1)[-1] for p in result.figures] == ["loss_vs_baselines.png"]

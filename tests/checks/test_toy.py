"""TOY family: a fresh network trained on 2 noise levels with the pipeline's own loss must denoise."""

from __future__ import annotations

import re

from diffcheck import Status
from tests.conftest import report_for

NUM = r"-?[\d.]+(?:e[+-]?\d+)?"


def test_TOY001_passes_on_healthy():
    result = report_for("healthy")["TOY001"]
    assert result.status is Status.PASS, result.message()
    assert result.observed["worst_ratio"] < 0.85


def test_TOY001_fails_when_the_sampler_decodes_another_parameterisation():
    result = report_for("eps_trained_x0_sampled", ("TOY001",))["TOY001"]
    assert result.status is Status.FAIL
    assert re.fullmatch(rf"a fresh network trained with this pipeline's loss cannot denoise through its decoding: error "
                        rf"{NUM}x the best trivial estimate at t=\d+ \(vs <= 0.9\)", result.summary), result.summary
    assert result.observed["worst_ratio"] > 2


def test_TOY001_fails_when_the_training_loss_renormalises_x_t():
    assert report_for("renorm_xt", ("TOY001",))["TOY001"].status is Status.FAIL

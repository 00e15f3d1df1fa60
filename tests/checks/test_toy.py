"""TOY family: a fresh network trained on 2 noise levels with the pipeline's own loss must denoise."""

from __future__ import annotations

import re

from diffcheck import Status
from tests.conftest import report_for

NUM = r"-?[\d.]+(?:e[+-]?\d+)?"


def test_TOY001_passes_on_healthy():
    result = report_for("healthy")["TOY001"]
    assert result.status is Status.PASS, result.message()
    assert result.observed["clean_level_ratio"] < 0.6 and result.observed["worst_decoding_ratio"] < 1.1


def test_TOY001_fails_when_the_sampler_decodes_another_parameterisation():
    result = report_for("eps_trained_x0_sampled", ("TOY001",))["TOY001"]
    assert result.status is Status.FAIL
    assert re.fullmatch(rf"a fresh network trained with this pipeline's loss cannot denoise through its decoding: error "
                        rf"{NUM}x the best trivial estimate at t=\d+ \(vs <= 0.9\)", result.summary), result.summary
    assert result.observed["clean_level_ratio"] > 2


def test_TOY001_fails_when_the_training_loss_renormalises_x_t():
    assert report_for("renorm_xt", ("TOY001",))["TOY001"].status is Status.FAIL


def test_TOY001_fails_when_the_sampler_reads_v_as_eps():
    result = report_for("v_trained_eps_sampled", ("TOY001",))["TOY001"]
    assert result.status is Status.FAIL
    assert re.fullmatch(rf"the pipeline's decoding does not match what its loss trained: at t=\d+ its x0 is {NUM}x as "
                        rf"far off as the same output decoded as v \(vs <= 1.25\)", result.summary), result.summary

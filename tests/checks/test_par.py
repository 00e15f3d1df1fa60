"""PAR family: parameterisation of the training loss, the sampler and the network, and agreement."""

from __future__ import annotations

import json
import re

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.reference.ddpm import DiffusionConfig
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from tests.conftest import FIXTURES, report_for

NUM = r"-?[\d.]+(?:e[+-]?\d+)?"


@pytest.mark.parametrize("check_id", ["PAR001", "PAR002", "PAR003", "PAR004"])
def test_PAR_passes_on_healthy(check_id):
    result = report_for("healthy")[check_id]
    assert result.status is Status.PASS, result.message()


def test_PAR_identifies_eps_everywhere_on_healthy():
    report = report_for("healthy")
    assert [report[c].observed["identified"] for c in ("PAR001", "PAR002", "PAR003")] == ["eps"] * 3
    assert re.fullmatch(rf"training target is eps \(oracle loss eps {NUM}, v {NUM}, x0 {NUM}\)", report["PAR001"].summary)


@pytest.mark.parametrize("member,kind", [("v_trained_eps_sampled", "v"), ("x0_trained_eps_sampled", "x0")])
def test_PAR001_and_PAR003_identify_other_objectives(member, kind):
    report = report_for(member)
    assert report["PAR001"].observed["identified"] == kind
    assert report["PAR003"].observed["identified"] == kind
    assert report["PAR002"].observed["identified"] == "eps"


def test_PAR001_fails_when_the_training_path_renormalises_x_t():
    result = report_for("renorm_xt")["PAR001"]
    assert result.status is Status.FAIL
    assert re.fullmatch(rf"no parameterisation drives the training loss to zero \(best \w+: {NUM}, ratio to the next "
                        rf"{NUM} vs <= 0.0001\): the loss's forward process or schedule is not the declared one",
                        result.summary), result.summary


def test_PAR002_fails_when_the_sampler_uses_another_schedule():
    result = report_for("cosine_sampler")["PAR002"]
    assert result.status is Status.FAIL
    assert result.summary.startswith("the sampler decodes no parameterisation consistently (no consistent mean: "
                                     "best landing ")
    # every decoding's trajectory mean leaves q(x_t | x0*): the schedules differ, not the decoding
    assert min(result.observed[f"mean_z_{k}"] for k in ("eps", "x0", "v")) > result.thresholds["max_trajectory_z"]
    assert "sampler's schedule differs from the training schedule" in result.causes[0]


def test_PAR003_fails_on_an_untrained_network(tiny_data, healthy):
    fresh = ReferencePipeline.build(healthy.unet_config, DiffusionConfig(), length=512,
                                    normaliser=healthy.normaliser, seed=1)
    result = diffcheck.run_checks(fresh, data=tiny_data, select=["PAR003"])["PAR003"]
    assert result.status is Status.FAIL
    assert result.summary.startswith("the network fits no parameterisation clearly (")


def test_PAR004_names_the_experiments_bug_with_numbers():
    result = report_for("eps_trained_x0_sampled")["PAR004"]
    assert result.status is Status.FAIL
    m = re.fullmatch(rf"sampler decodes the output as x0 but the network predicts eps \(eps-fit R² ({NUM}), "
                     rf"x0-fit R² ({NUM}), v-fit R² ({NUM})\)", result.summary)
    assert m, result.summary
    assert float(m.group(1)) > 0.9 and float(m.group(2)) < 0.1
    assert float(m.group(1)) == pytest.approx(result.observed["r2_eps"], abs=0.005)


@pytest.mark.parametrize("member,trained", [("v_trained_eps_sampled", "v"), ("x0_trained_eps_sampled", "x0")])
def test_PAR004_fails_on_objective_mismatch(member, trained):
    result = report_for(member)["PAR004"]
    assert result.status is Status.FAIL
    assert result.summary.startswith(f"sampler decodes the output as eps but the network predicts {trained} (")


def test_preflight_catches_the_experiments_bug_on_fresh_weights(tmp_path):
    from typer.testing import CliRunner

    from diffcheck.cli import app

    res = CliRunner().invoke(app, ["preflight", str(FIXTURES / "checkpoints/healthy_tiny.pt"), "--pipeline",
                                   str(FIXTURES / "zoo/objective_mismatch.py:eps_as_x0"), "--select", "PAR",
                                   "--device", "cpu", "--report-dir", str(tmp_path)])
    assert res.exit_code == 1, res.output
    assert "FAIL PAR004 sampler decodes the output as x0 but the training loss targets eps (oracle loss eps" in res.output
    ids = [r["id"] for r in json.loads((tmp_path / "report.json").read_text())["results"]]
    assert ids == ["PAR001", "PAR002", "PAR004"]  # PAR003 needs a trained network: not part of a preflight


class _LossPatched(ReferencePipeline):
    """The healthy pipeline with its training loss replaced (planted bugs of the loss itself)."""

    def __init__(self, base: ReferencePipeline, loss) -> None:
        self.__dict__.update(base.__dict__)
        self._loss = loss

    def training_loss(self, x0, generator=None):
        return self._loss(self, x0, generator)


def test_PAR001_fails_on_a_loss_that_is_nan_even_with_an_exact_network(healthy, tiny_data):
    nan_loss = _LossPatched(healthy, lambda p, x0, g: ReferencePipeline.training_loss(p, x0, g) * float("nan"))
    result = diffcheck.run_checks(nan_loss, data=tiny_data, select=["PAR001"])["PAR001"]
    assert result.status is Status.FAIL
    assert result.summary == ("the training loss is not finite even with an exact network (eps nan, x0 nan, v nan): "
                              "it cannot train"), result.summary
    assert result.observed["non_finite"] == ["eps", "x0", "v"] and "forward process" not in result.summary


def test_PAR001_fails_on_a_loss_that_ignores_the_network_output(healthy, tiny_data):
    blind = _LossPatched(healthy, lambda p, x0, g: (x0 - x0).pow(2).mean())
    result = diffcheck.run_checks(blind, data=tiny_data, select=["PAR001"])["PAR001"]
    assert result.status is Status.FAIL and result.observed["identified"] is None
    assert result.summary.startswith("the training loss is 0 for every oracle (eps 0, x0 0, v 0)"), result.summary


def test_a_PAR002_threshold_reaches_every_check_that_reads_the_decoding(tiny_data):
    # cosine_sampler (a linear-trained network sampled on cosine betas): no oracle's trajectory mean
    # is consistent at the default z <= 6 (eps 14.9, v 10.1), so PAR002 fails and the checks trace
    # the closest landing (eps). A user who allows z between v's and eps's makes PAR002 identify v:
    # the checks downstream must then trace v too, not what the default thresholds decided.
    from tests.conftest import load_member

    pipe = load_member("cosine_sampler")
    select = ["PAR002", "SMP003", "SMP006", "SMP007"]
    default = diffcheck.run_checks(pipe, data=tiny_data, select=select, seed=0)
    o = default["PAR002"].observed
    assert default["PAR002"].status is Status.FAIL and o["identified"] is None and o["decoded"] == "eps"
    z = (o["mean_z_v"] + o["mean_z_eps"]) / 2
    assert o["mean_z_v"] < z < min(o["mean_z_eps"], o["mean_z_x0"])
    loose = diffcheck.run_checks(pipe, data=tiny_data, select=select, seed=0,
                                 thresholds={"PAR002": {"max_trajectory_z": z}})
    par = loose["PAR002"]
    assert par.status is Status.PASS and par.observed["identified"] == par.observed["decoded"] == "v", par.summary
    for cid in ("SMP003", "SMP006", "SMP007"):
        assert loose[cid].observed["kind"] == "v", (cid, loose[cid].summary)

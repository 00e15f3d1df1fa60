"""PAR/SMP quality: false alarms on healthy pipelines across seeds (20 for eps; 5 for the v and x0 objectives).

The oracle checks are exact up to float precision; the statistical ones (PAR003's regression,
SMP007's marginals, the trajectory test inside PAR002) depend on the seed. Healthy pipelines:
the trained tiny eps checkpoint with its ancestral sampler and with a 50-step DDIM, and the
v- and x0-objective checkpoints.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.data import load_dataset
from diffcheck.loading import load_pipeline
from tests.conftest import FIXTURES, HEALTHY_CKPT, TINY_DATA

CPU = diffcheck.resolve_device("cpu")


def _ddim50():
    pipe = load_pipeline(HEALTHY_CKPT, device=CPU)
    pipe.diffusion.config = dataclasses.replace(pipe.diffusion.config, sampler="ddim", sample_steps=50)
    return pipe


HEALTHY = {
    "eps-ancestral": (lambda: load_pipeline(HEALTHY_CKPT, device=CPU), range(20)),
    "eps-ddim50": (_ddim50, range(20)),
    "v-ancestral": (lambda: load_pipeline(FIXTURES / "checkpoints/v_objective_tiny.pt", device=CPU), range(5)),
    "x0-ancestral": (lambda: load_pipeline(FIXTURES / "checkpoints/x0_objective_tiny.pt", device=CPU), range(5)),
}


@pytest.mark.parametrize("name", list(HEALTHY))
def test_no_false_alarms_across_seeds(name):
    make, seeds = HEALTHY[name]
    pipe = make()
    data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
    alarms, worst = [], {"SMP007_log_std": 0.0, "PAR002_trajectory_z": 0.0}
    for seed in seeds:
        report = diffcheck.run_checks(pipe, data=data, select=["PAR", "SMP"], seed=seed)
        alarms += [(seed, r.id, r.summary) for r in report.results if r.status is not Status.PASS]
        worst["SMP007_log_std"] = max(worst["SMP007_log_std"], abs(math.log(report["SMP007"].observed["worst_std_ratio"])))
        kind = report["PAR002"].observed["identified"]
        worst["PAR002_trajectory_z"] = max(worst["PAR002_trajectory_z"], report["PAR002"].observed[f"trajectory_z_{kind}"])
    assert alarms == [], alarms
    # Margins: the statistics stay well inside their thresholds (0.3 and 6).
    assert worst["SMP007_log_std"] < 0.15 and worst["PAR002_trajectory_z"] < 4.5, worst

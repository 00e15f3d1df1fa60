"""PAR/SMP quality: false alarms on healthy pipelines across seeds (20 for eps; 5 for the v and x0 objectives).

The oracle checks are exact up to float precision; the statistical ones (PAR003's regression,
SMP007's marginals, the trajectory statistics inside PAR002) depend on the seed. Healthy pipelines:
the trained tiny eps checkpoint with its ancestral sampler and with a 50-step DDIM, and the
v- and x0-objective checkpoints.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.data import load_dataset
from diffcheck.pipelines.loading import load_pipeline
from tests.adapters._helpers import diffusers_variant, needs_diffusers
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
    alarms, worst = [], {"SMP007_log_std": 0.0, "PAR002_mean_z": 0.0, "PAR002_spread_z": 0.0}
    for seed in seeds:
        report = diffcheck.run_checks(pipe, data=data, select=["PAR", "SMP"], seed=seed)
        alarms += [(seed, r.id, r.summary) for r in report.results if r.status is not Status.PASS]
        worst["SMP007_log_std"] = max(worst["SMP007_log_std"], abs(math.log(report["SMP007"].observed["worst_std_ratio"])))
        kind = report["PAR002"].observed["identified"]
        for stat in ("mean_z", "spread_z"):
            worst[f"PAR002_{stat}"] = max(worst[f"PAR002_{stat}"], report["PAR002"].observed[f"{stat}_{kind}"])
    assert alarms == [], alarms
    # Margins: the statistics stay well inside their thresholds (0.3 and 6).
    assert worst["SMP007_log_std"] < 0.15 and max(worst["PAR002_mean_z"], worst["PAR002_spread_z"]) < 4.5, worst


@needs_diffusers
@pytest.mark.parametrize(("folder", "changes", "decoded", "seeds"), [
    ("diffusers_v_mismatch", {"eta": 1.0}, "v", range(10)),
    ("diffusers_ddim50_leading", {"eta": 1.0}, "eps", range(10)),
    ("diffusers_cosine_ddim50_trailing", {"eta": 1.0}, "eps", range(10)),
    ("diffusers_ddpm", {"variance_type": "fixed_large", "prediction_type": "v_prediction"}, "v", range(5)),
], ids=["ddim-eta1-v", "ddim-eta1-eps", "cosine-ddim-eta1-eps", "ddpm-fixed-large-v"])
def test_PAR002_tells_eps_from_v_in_stochastic_samplers_across_seeds(tmp_path, folder, changes, decoded, seeds):
    """Where the landing cannot tell eps from v (ratio > 0.01; all but the cosine folder, which lands
    at 0.004), the trajectory mean must: the right decoding stays near N(0, 1) (false alarms), the
    wrong ones far past the limit of 6 (power)."""
    pipe = load_pipeline(diffusers_variant(tmp_path, folder, **changes), device=CPU)
    data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
    wrong_kinds = [k for k in ("eps", "x0", "v") if k != decoded]
    misses, right_z, wrong_z = [], [], []
    for seed in seeds:
        result = diffcheck.run_checks(pipe, data=data, select=["PAR002"], seed=seed)["PAR002"]
        if result.observed["identified"] != decoded:
            misses.append((seed, result.summary))
        right_z.append(result.observed[f"mean_z_{decoded}"])
        wrong_z.append(min(result.observed[f"mean_z_{k}"] for k in wrong_kinds))
    assert misses == [], misses
    assert max(right_z) < 4.5 and min(wrong_z) > 9, (right_z, wrong_z)

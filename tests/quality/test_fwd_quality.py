"""FWD quality: false-alarm rate on healthy pipelines across seeds (the zoo: test_zoo_quality.py).

Healthy pipelines: the trained tiny fixture, plus fresh reference pipelines with other schedules
probed with real observed spectra (4096 px). FWD's statistics are deterministic given the
seed, so a false alarm here would reproduce; the margin (statistic / threshold) is asserted too,
so a change that erodes it shows before it flakes.
"""

from __future__ import annotations

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.data import load_dataset
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.reference.ddpm import DiffusionConfig
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from diffcheck.pipelines.reference.unet import UNetConfig
from tests.conftest import FIXTURES

SEEDS = range(20)
REAL = FIXTURES / "data" / "real_subset_4096.h5"
TINY = UNetConfig(channels=(8, 16, 32, 64), blocks_per_level=1, groups=4)
OTHER_SCHEDULES = {
    "cosine-T1000": DiffusionConfig(T=1000, schedule="cosine"),
    "linear-T250-beta0.08": DiffusionConfig(T=250, beta_end=0.08),
}


def _real_pipeline(config):
    pipe = ReferencePipeline.build(TINY, config, length=4096, normaliser=Normaliser("per_spectrum_minmax"))
    return pipe, load_dataset(REAL, length=4096, normaliser=pipe.normaliser)


def _margins(report):
    fwd1, fwd3, fwd4 = report["FWD001"].observed, report["FWD003"].observed, report["FWD004"].observed
    return {"FWD001": fwd1["max_coef_error"] / 0.01, "FWD003": fwd3["ks_d"] / 0.01,
            "FWD004": fwd4["terminal_snr"] / 1e-3}


@pytest.mark.parametrize("name", ["healthy_tiny", *OTHER_SCHEDULES])
def test_no_false_alarms_over_20_seeds(name, healthy, tiny_data):
    pipe, data = (healthy, tiny_data) if name == "healthy_tiny" else _real_pipeline(OTHER_SCHEDULES[name])
    alarms, worst = [], {}
    for seed in SEEDS:
        report = diffcheck.run_checks(pipe, data=data, select=["FWD"], seed=seed)
        alarms += [(seed, r.id, r.summary) for r in report.results if r.status is not Status.PASS]
        for k, v in _margins(report).items():
            worst[k] = max(worst.get(k, 0.0), v)
    assert alarms == [], f"false alarms on {name}: {alarms}"
    # Every statistic stayed well inside its threshold, not just below it.
    assert max(worst.values()) < 0.5, worst

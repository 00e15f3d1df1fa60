"""DIST quality: false alarms on healthy samples across seeds, and the experiment called noise early.

Two kinds of healthy samples:
- a *perfect generator*: real spectra handed to the checks as samples, 20 seeds at the default
  sample count. They come from half of the training split that diffcheck never sees (the data it
  is given is the held-out split and the other half), so they are independent of both the
  reference and the pool the null distributions draw from: a calibration that only holds for
  draws from its own pool would fail here. This measures the calibration without sampling;
- the trained tiny fixture with its own 1000-step ancestral sampler, seeds 0-2 at the default
  settings (about 30 s each on 2 CPU cores; seed 0 also runs in the zoo test and the README job).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import diffcheck
from diffcheck import Status
from diffcheck.measure.samples import DEFAULT_SETTINGS, SampleSet, dist_reference, sample_settings
from diffcheck.testing import compute_check
from diffcheck.pipelines.data import Dataset, load_dataset
from tests.conftest import TINY_DATA, load_member, report_for

DIST = ("DIST001", "DIST002", "DIST003", "DIST004")


def _without_rows(data: Dataset, drop: np.ndarray) -> Dataset:
    keep = np.setdiff1d(np.arange(len(data)), drop)
    return dataclasses.replace(data, flux=data.flux[keep], x=data.x[keep], heldout=data.heldout[keep])


def test_a_perfect_generator_raises_no_alarm_in_20_seeds(healthy, tiny_data):
    training = np.flatnonzero(~tiny_data.heldout)
    unseen = np.random.default_rng(12345).permutation(training)[: training.size // 2]
    ref = dist_reference(healthy, _without_rows(tiny_data, unseen), 0)
    assert ref.split.startswith("held-out split") and ref.pool_x.shape[0] == training.size - unseen.size
    n = DEFAULT_SETTINGS["max_samples"]
    alarms, worst = [], {"DIST002_ks_factor": 0.0, "DIST003_factor": 0.0, "DIST001_structure": 9.0}
    for seed in range(20):
        x = tiny_data.x[np.random.default_rng(seed).choice(unseen, n, replace=False)]
        samples = SampleSet(x=x, flux=healthy.to_flux(x), finite=np.ones(n, bool), sampling_s=0.0,
                            stop_reason="real spectra", settings=sample_settings(None))
        results = {cid: compute_check(cid, dist_samples=samples, dist_reference=ref, seed=seed) for cid in DIST}
        alarms += [(seed, cid, r.summary) for cid, r in results.items() if r.status is not Status.PASS]
        worst["DIST002_ks_factor"] = max(worst["DIST002_ks_factor"], results["DIST002"].observed["ks_factor"])
        worst["DIST003_factor"] = max(worst["DIST003_factor"], results["DIST003"].observed["d_factor"],
                                        results["DIST003"].observed["offset_factor"])
        worst["DIST001_structure"] = min(worst["DIST001_structure"], results["DIST001"].observed["structure"])
    assert alarms == [], alarms
    assert worst["DIST001_structure"] > 0.8, worst  # 0.5 fails
    assert worst["DIST002_ks_factor"] < 1.2 and worst["DIST003_factor"] < 1.2, worst  # 1.5 fails


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_healthy_fixture_passes_dist_with_its_own_sampler(seed):
    report = report_for("healthy", () if seed == 0 else ("DIST",), seed)  # seed 0: the full run other tests share
    bad = [r.message() for r in report.results if r.id.startswith("DIST") and r.status is not Status.PASS]
    assert bad == [], bad
    assert report["DIST001"].observed["n_drawn"] == DEFAULT_SETTINGS["max_samples"]


@pytest.mark.parametrize("member", ["eps_trained_x0_sampled", "eps_trained_x0_sampled_unclipped"])
def test_the_experiments_noise_is_called_noise_within_16_samples(member):
    """With the default settings (not the zoo's 16-sample cap) the stop rule ends sampling at 16.

    On this fixture the eps network decoded as x0 gives heavy-tailed, slightly blue noise, so the
    line reads "(non-Gaussian) noise"; Gaussian values read "Gaussian noise" (tests/checks/test_dist.py).
    """
    pipe = load_member(member)
    data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
    r = diffcheck.run_checks(pipe, data=data, select=["DIST001"], seed=0)["DIST001"]
    assert r.status is Status.FAIL, r.message()
    assert r.summary.startswith("samples are indistinguishable from"), r.summary
    assert r.observed["n_drawn"] == 16 and r.observed["structure"] < 0.25

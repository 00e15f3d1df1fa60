"""Memory independent of T: the oracle runs and traces keep running statistics, not every step's tensors.

The kept memory is measured where it peaks, at the sampler's last step: the bytes of every torch
tensor alive then (from the garbage collector's view of live objects), for T = 50 and T = 200.
Keeping one tensor per step (the old x0_hat list, the old x_t list) makes the difference grow
by 150 steps' worth; running statistics keep it at a few steps' worth whatever T is.
"""

from __future__ import annotations

import gc
import importlib.util
import tracemalloc

import numpy as np
import pytest
import torch

import diffcheck
from diffcheck.measure.consistency import SATURATION_TOL, SaturationTally
from diffcheck.engine.context import Context
from diffcheck.measure.samples import SNAPSHOT_FRACTIONS, _Recorder
from tests.conftest import ROOT

LENGTH = 256


def _homemade():
    spec = importlib.util.spec_from_file_location("homemade_example", ROOT / "examples" / "homemade_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _live_tensor_bytes() -> int:
    """Bytes of the distinct storages of every torch tensor alive now."""
    storages = {}
    for obj in gc.get_objects():
        if issubclass(type(obj), torch.Tensor):  # type(): no attribute access on lazy modules
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _kept_at_last_step(fixture_name: str, T: int) -> int:
    """Live tensor bytes at the last step of the home-made sampler inside ``fixture_name``'s run."""
    example, seen = _homemade(), []
    torch.manual_seed(0)
    pipe = example.pipeline(example.DDPM(example.UNet1D(width=8), length=LENGTH, T=T), diffcheck.Normaliser())
    sample = pipe.sample

    def measured(n, *, generator=None, callback=None):
        def measure(info):
            if callback is not None:
                callback(info)
            if info["t"] == 0:
                seen.append(_live_tensor_bytes())
        return sample(n, generator=generator, callback=measure)

    pipe.sample = measured
    Context(pipeline=pipe, data=None, seed=0).get(fixture_name)
    return max(seen)


@pytest.mark.parametrize("fixture_name", ["sampler_oracles", "clip_probe", "trajectory_marginals"])
def test_oracle_runs_keep_the_same_tensors_at_T_50_and_200(fixture_name):
    kept = {T: _kept_at_last_step(fixture_name, T) for T in (50, 200)}
    # One step of the largest run (32 samples) in float64: keeping every step costs 150 of these more.
    one_step = 32 * LENGTH * 8
    assert kept[200] - kept[50] < 2 * one_step, kept


def _saturation_at_once(hats: list) -> float:
    """The definition, over all steps' values at once (what a run kept in memory before)."""
    values = torch.cat([h.flatten().abs().double() for h in hats])
    return float((values >= values.max() - SATURATION_TOL).double().mean())


def _steps(case: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    steps = [torch.randn(2, 1, 64, generator=g) * (0.2 + 0.1 * k) for k in range(30)]
    if case == "clipped":
        return [h.clamp(-0.5, 0.5) for h in steps]
    if case == "max_late":  # values near an early max that a later, larger max leaves out
        return [*[h.clamp(-0.3, 0.3) for h in steps[:-1]], steps[-1].clamp(-0.3 - 5e-7, 0.3 + 5e-7)]
    if case == "float32_grid":  # many distinct float32 values within the tolerance of the max
        base = torch.full((2, 1, 64), 0.75) - torch.arange(128).view(2, 1, 64) * 6e-8
        return [base.clone() for _ in range(5)] + steps[:3]
    if case == "nan":
        steps[7][0, 0, 3] = float("nan")
        return steps
    if case == "inf":
        steps[4][1, 0, 9] = float("inf")
        return steps
    return steps


@pytest.mark.parametrize("case", ["plain", "clipped", "max_late", "float32_grid", "nan", "inf"])
def test_saturation_tally_gives_exactly_the_fraction_over_all_steps(case):
    steps, tally = _steps(case), SaturationTally()
    for h in steps:
        tally.add(h)
    assert tally.fraction() == _saturation_at_once(steps)


def test_saturation_tally_sees_clipping_and_skips_steps_without_x0_hat():
    tally = SaturationTally()
    for h in [None, *_steps("clipped"), None]:
        tally.add(h)
    assert tally.fraction() > 0.05 and tally.values.numel() == 1  # one distinct value kept: the clip
    assert SaturationTally().fraction() is None


def test_dist_trace_is_exact_and_not_kept_in_memory():
    length, snapshots, kept = 4096, {}, {}
    for T in (50, 200):
        rec = _Recorder(lambda *a: None, "sampling", keep=True)
        tracemalloc.start()
        g = torch.Generator().manual_seed(T)
        rows = [torch.randn(2, 1, length, generator=g) for _ in range(T)]
        start = tracemalloc.get_traced_memory()[0]
        for i, x in enumerate(rows):
            rec({"i": i, "t": torch.tensor([T - 1 - i]), "x_t": x})
        kept[T] = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.stop()
        final = np.zeros(length)
        snapshots[T] = rec.snapshots(final)
        picks = sorted({round(f * T) for f in SNAPSHOT_FRACTIONS})
        for (i, t, x), p in zip(snapshots[T], picks):
            if p == T:
                assert np.isnan(t) and x is final
            else:
                assert (i, t) == (p, float(T - 1 - p)) and np.array_equal(x, rows[p][0, 0].numpy())
    # Keeping sample 0's x_t per step costs 150 x 16 KiB more at T=200; the (step, t) index is bytes per step.
    assert kept[200] - kept[50] < 4 * length * 4, kept

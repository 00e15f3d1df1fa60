"""The tests' sample memo (tests.conftest.SAMPLE_MEMO) is exact: a memoised call returns what
sampling returns, replays the same callbacks and leaves the generator where sampling leaves it."""

from __future__ import annotations

import copy
import dataclasses

import torch

from diffcheck.pipelines.reference.ddpm import GaussianDiffusion
from tests.conftest import _SampleMemo


def _ddim(healthy, steps=8):
    return GaussianDiffusion(healthy.network, dataclasses.replace(healthy.diffusion.config, sampler="ddim",
                                                                  sample_steps=steps))


def _draw(diffusion, seed, n=3):
    gen = torch.Generator().manual_seed(seed)
    calls = []
    x = diffusion.sample((n, 1, 512), generator=gen, callback=lambda info: calls.append(info["x_t"].clone()))
    after = torch.randn(4, generator=gen)  # where the generator was left
    return x, calls, after


def test_a_memoised_call_equals_sampling_and_a_changed_input_misses(healthy):
    original = GaussianDiffusion.sample
    diffusion = _ddim(healthy)
    truth = _draw(diffusion, 5)
    memo = _SampleMemo()
    with memo.active():
        first, second = _draw(diffusion, 5), _draw(diffusion, 5)
        other_seed = _draw(diffusion, 6)
        other_steps = _draw(_ddim(healthy, steps=9), 5)
    assert memo.hits == 1
    for got in (first, second):
        assert torch.equal(got[0], truth[0]) and torch.equal(got[2], truth[2])
        assert len(got[1]) == len(truth[1]) == 8 and all(torch.equal(a, b) for a, b in zip(got[1], truth[1]))
    assert not torch.equal(other_seed[0], truth[0]) and not torch.equal(other_steps[0], truth[0])
    twin = GaussianDiffusion(copy.deepcopy(diffusion.model), diffusion.config)
    with memo.active():
        same = _draw(twin, 5)  # another object with the same weights: a hit
        with torch.no_grad():
            next(twin.model.parameters()).add_(1e-3)
        changed = _draw(twin, 5)  # one weight changed: sampled again
    assert memo.hits == 2 and torch.equal(same[0], truth[0]) and not torch.equal(changed[0], truth[0])
    assert GaussianDiffusion.sample is original  # restored after each block


def test_a_network_whose_state_is_not_its_weights_is_not_memoised(healthy):
    class Oracle(torch.nn.Module):  # like the exact oracles the SMP checks swap in: no parameters
        def __init__(self, scale):
            super().__init__()
            self.scale = scale

        def forward(self, x, t):
            return self.scale * x

    memo = _SampleMemo()
    with memo.active():
        a = _draw(GaussianDiffusion(Oracle(0.1), healthy.diffusion.config), 5)
        b = _draw(GaussianDiffusion(Oracle(0.2), healthy.diffusion.config), 5)
    assert memo.hits == 0 and not memo.store and not torch.equal(a[0], b[0])

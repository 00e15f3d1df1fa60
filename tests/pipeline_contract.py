"""The contract every Pipeline implementation honours, as one test base class (like diffusers'
``SchedulerCommonTest``): the reference pipeline, each adapter, the function route and the
home-made example each have a ``Test...Contract(PipelineContract)`` class next to their own tests
whose ``build()`` returns the pipeline (the ``pipe`` fixture of tests/conftest.py calls it once per
class); every test here then runs on it.

What a check may assume of any pipeline is what is asserted here:
- the declared shape, schedule and description are plain and consistent;
- the sampler is reproducible from diffcheck's generator and leaves the global RNG alone;
- it reports each network call as a :class:`~diffcheck.pipelines.pipeline.Step`, t stepping down;
- ``network_replaced`` reaches the network the sampler and the loss call, and is gone afterwards;
- the forward process follows the declared schedule;
- every optional capability is either there and works, or declared unavailable with one reason,
  and a call of it then SKIPs with that same reason;
- the modules whose state the runner restores hold the sampled network's parameters;
- ``to_flux`` undoes the declared normalisation.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

import diffcheck
from diffcheck.errors import Skip
from diffcheck.measure.learned import ZeroNetwork
from diffcheck.pipelines.pipeline import CAPABILITIES, Step


class _Spy(ZeroNetwork):
    """diffcheck's zero predictor, counting its calls: a stand-in network called as an oracle would be."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.calls += 1
        return super().forward(x_t, t, *args, **kwargs)


def _generator(pipe: diffcheck.Pipeline, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=pipe.device).manual_seed(seed)


def _x0(pipe: diffcheck.Pipeline, n: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((n, *pipe.sample_shape), generator=g) * 1.6 - 0.8).to(pipe.device)


class PipelineContract:
    """Subclass it as ``Test<Implementation>Contract`` with a static ``build()`` returning the pipeline."""

    @staticmethod
    def build() -> diffcheck.Pipeline:
        raise NotImplementedError("a contract test class says which pipeline it checks")

    def test_declares_a_plain_shape_schedule_and_description(self, pipe):
        channels, length = pipe.sample_shape
        assert isinstance(channels, int) and isinstance(length, int) and channels >= 1 and length >= 2
        ab = np.asarray(pipe.schedule.alpha_bar, dtype=float)
        assert len(ab) == pipe.schedule.T >= 1 and np.all((ab > 0) & (ab <= 1)) and np.all(np.diff(ab) < 0)
        assert isinstance(pipe.device, torch.device)
        described = json.loads(json.dumps(pipe.describe()))
        assert described["name"] and described["T"] == pipe.schedule.T

    def test_sampling_is_reproducible_from_the_generator_and_leaves_the_global_rng_alone(self, pipe):
        before = torch.random.get_rng_state()
        a = pipe.sample(2, generator=_generator(pipe))
        assert torch.equal(torch.random.get_rng_state(), before), "sample() moved the global torch RNG"
        b = pipe.sample(2, generator=_generator(pipe))
        assert tuple(a.shape) == (2, *pipe.sample_shape) and torch.isfinite(a).all()
        assert torch.equal(a, b)
        assert not torch.equal(a, pipe.sample(2, generator=_generator(pipe, seed=1)))

    def test_each_network_call_of_the_sampler_is_reported_as_a_step(self, pipe):
        steps: list = []
        pipe.sample(1, generator=_generator(pipe), callback=steps.append)
        assert steps and all(isinstance(s, Step) for s in steps)
        assert [s.i for s in steps] == list(range(len(steps)))
        ts = [float(s.t) for s in steps]
        assert all(0 <= t <= pipe.schedule.T - 1 for t in ts) and ts[0] > ts[-1]
        assert all(tuple(s.x_t.shape) == (1, *pipe.sample_shape) for s in steps)
        assert steps[0]["t"] == steps[0].t and steps[0].get("no such field", "default") == "default"

    def test_a_replaced_network_is_what_the_sampler_and_the_loss_call_and_it_is_gone_after(self, pipe):
        original, spy = pipe.network, _Spy().to(pipe.device)
        with torch.no_grad(), pipe.network_replaced(spy):
            pipe.sample(1, generator=_generator(pipe))
            sampled = spy.calls
            if pipe.provides("training_loss"):
                pipe.training_loss(_x0(pipe), generator=_generator(pipe))
        assert sampled >= 1, "the sampler did not call the replacement"
        if pipe.provides("training_loss"):
            assert spy.calls > sampled, "the training loss did not call the replacement"
        after = spy.calls
        assert pipe.network is original
        pipe.sample(1, generator=_generator(pipe))
        assert spy.calls == after, "the replacement is still called after the block"

    def test_the_forward_process_follows_the_declared_schedule(self, pipe):
        x0, noise = _x0(pipe, 3), torch.randn((3, *pipe.sample_shape), generator=torch.Generator().manual_seed(2))
        t = torch.tensor([0, pipe.schedule.T // 2, pipe.schedule.T - 1], device=pipe.device)
        noise = noise.to(pipe.device)
        got = pipe.q_sample(x0, t, noise)
        torch.testing.assert_close(got.double(), pipe.schedule.q_sample(x0.double(), t, noise.double()),
                                   rtol=1e-4, atol=1e-5)

    @pytest.mark.parametrize("capability", list(CAPABILITIES))
    def test_each_optional_capability_works_or_is_declared_unavailable_with_one_reason(self, pipe, capability):
        reason = pipe.unavailable(capability)
        x0 = _x0(pipe)
        t = torch.tensor([1, pipe.schedule.T - 1], device=pipe.device)
        calls = {
            "training_loss": lambda: pipe.training_loss(x0, generator=_generator(pipe)),
            "training_loss_at": lambda: pipe.training_loss_at(x0, t, torch.randn_like(x0)),
            "denoise": lambda: pipe.denoise(pipe.q_sample(x0, t, torch.randn_like(x0)), t),
            "make_network": lambda: pipe.make_network(),
        }
        if reason is not None:
            assert isinstance(reason, str) and reason.strip() and "\n" not in reason
            assert not pipe.provides(capability)
            with pytest.raises(Skip, match="^" + re.escape(reason) + "$"):
                pipe.require(capability)
            with pytest.raises(Skip, match=re.escape(reason)):
                calls[capability]()
            return
        pipe.require(capability)
        with torch.no_grad():
            out = calls[capability]()
        if capability == "training_loss":
            assert out.dim() == 0 and torch.isfinite(out)
        elif capability == "training_loss_at":
            assert tuple(out.shape) == (2,) and torch.isfinite(out).all()
        elif capability == "denoise":
            assert tuple(out.shape) == (2, *pipe.sample_shape) and torch.isfinite(out).all()
        else:
            assert isinstance(out, nn.Module)
            assert sum(p.numel() for p in out.parameters()) == sum(p.numel() for p in pipe.network.parameters())

    def test_the_modules_the_runner_restores_hold_the_sampled_networks_parameters(self, pipe):
        held = {id(p) for m in pipe.state_modules() for p in m.parameters()}
        assert {id(p) for p in pipe.network.parameters()} <= held

    def test_to_flux_undoes_the_declared_normalisation(self, pipe):
        flux = np.random.default_rng(3).uniform(0.2, 1.4, size=(4, pipe.sample_shape[1]))
        if not pipe.normaliser.invertible:
            pytest.skip("per-spectrum normalisation: not invertible")
        np.testing.assert_allclose(pipe.to_flux(pipe.normaliser.normalise(flux)), flux, rtol=1e-6, atol=1e-9)

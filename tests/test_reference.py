"""The reference pipeline is known-good: its own loss and samplers agree with exact oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from diffcheck.measure.param import PARAMETERISATIONS, targets, to_x0_eps
from diffcheck.pipelines.reference.ddpm import DiffusionConfig, GaussianDiffusion
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from diffcheck.pipelines.reference.unet import UNetConfig
from diffcheck.pipelines.schedule import cosine_betas, linear_betas, make_schedule
from tests.pipeline_contract import PipelineContract

TINY = UNetConfig(channels=(8, 16, 32, 64), blocks_per_level=1, groups=4)


class PointOracle(nn.Module):
    """Exact denoiser for data concentrated on one spectrum x0*, in parameterisation ``kind``."""

    def __init__(self, x0: torch.Tensor, schedule, kind: str) -> None:
        super().__init__()
        self.x0, self.kind = x0, kind
        self.a = torch.as_tensor(schedule.signal_scale(), dtype=torch.float64)
        self.s = torch.as_tensor(schedule.noise_scale(), dtype=torch.float64)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.a[t.long()].view(-1, 1, 1), self.s[t.long()].view(-1, 1, 1)
        eps = (x_t.double() - a * self.x0.double()) / s
        return targets(self.x0.double().expand_as(eps), eps, a, s)[self.kind].float()


def test_linear_schedule_matches_ho_et_al():
    s = make_schedule("linear", 1000)
    assert s.betas[0] == 1e-4 and s.betas[-1] == pytest.approx(0.02)
    assert s.alpha_bar[-1] == pytest.approx(4.04e-5, rel=0.01)
    assert s.grid((0, 0.1, 0.3, 0.6, 1.0)) == [0, 100, 300, 600, 999]


def test_cosine_schedule_reaches_zero_snr_and_is_clipped():
    betas = cosine_betas(1000)
    assert betas.max() <= 0.999 and np.all(np.diff(np.cumprod(1 - betas)) < 0)
    assert np.cumprod(1 - betas)[-1] < 1e-6


def test_unknown_schedule_names_the_known_ones():
    with pytest.raises(ValueError, match="known: cosine, linear"):
        make_schedule("quadratic", 10)


def _closed_form_case():
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 1, 8, generator=g, dtype=torch.float64), torch.randn(3, 1, 8, generator=g, dtype=torch.float64)
    a = torch.tensor([0.99, 0.6, 0.05], dtype=torch.float64).view(-1, 1, 1)
    s = (1 - a**2).sqrt()
    return x0, eps, a, s, a * x0 + s * eps


def test_targets_are_the_closed_forms():
    """eps, x0 and v = alpha eps - sigma x0 (Salimans & Ho 2022, eq. 6), written independently of diffcheck.measure.param."""
    x0, eps, a, s, _ = _closed_form_case()
    got = targets(x0, eps, a, s)
    torch.testing.assert_close(got["eps"], eps, rtol=0, atol=0)
    torch.testing.assert_close(got["x0"], x0, rtol=0, atol=0)
    torch.testing.assert_close(got["v"], a * eps - s * x0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", PARAMETERISATIONS)
def test_conversions_to_x0_and_eps_are_the_closed_forms(kind):
    """x0 = (x_t - sigma eps) / alpha; from v (alpha^2 + sigma^2 = 1): x0 = alpha x_t - sigma v,
    eps = sigma x_t + alpha v; from x0: eps = (x_t - alpha x0) / sigma."""
    x0, eps, a, s, x_t = _closed_form_case()
    out = {"eps": eps, "x0": x0, "v": a * eps - s * x0}[kind]
    expected = {"eps": ((x_t - s * out) / a, out),
                "x0": (out, (x_t - a * out) / s),
                "v": (a * x_t - s * out, s * x_t + a * out)}[kind]
    x0_hat, eps_hat = to_x0_eps(kind, out, x_t, a, s)
    torch.testing.assert_close(x0_hat, expected[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(eps_hat, expected[1], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kind", PARAMETERISATIONS)
def test_conversions_round_trip(kind):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 1, 16, generator=g), torch.randn(4, 1, 16, generator=g)
    a = torch.rand(4, 1, 1, generator=g) * 0.9 + 0.05
    s = (1 - a**2).sqrt()
    x_t = a * x0 + s * eps
    x0_hat, eps_hat = to_x0_eps(kind, targets(x0, eps, a, s)[kind], x_t, a, s)
    torch.testing.assert_close(x0_hat, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eps_hat, eps, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("objective", PARAMETERISATIONS)
def test_training_loss_is_zero_for_the_oracle_of_its_objective(objective):
    pipe = ReferencePipeline.build(TINY, DiffusionConfig(T=100, objective=objective), length=64)
    x0 = torch.rand(1, 1, 64) * 2 - 1
    for kind in PARAMETERISATIONS:
        with pipe.network_replaced(PointOracle(x0, pipe.schedule, kind)):
            loss = float(pipe.training_loss(x0.expand(16, -1, -1), generator=torch.Generator().manual_seed(1)))
        assert (loss < 1e-8) == (kind == objective), (kind, loss)


@pytest.mark.parametrize("sampler,steps", [("ancestral", None), ("ddim", 20), ("ddim", 100)])
@pytest.mark.parametrize("objective", PARAMETERISATIONS)
def test_sampler_lands_on_the_oracle_target(objective, sampler, steps):
    config = DiffusionConfig(T=100, objective=objective, sampler=sampler, sample_steps=steps)
    pipe = ReferencePipeline.build(TINY, config, length=64)
    x0 = (torch.rand(1, 1, 64, generator=torch.Generator().manual_seed(2)) * 1.8 - 0.9)
    with pipe.network_replaced(PointOracle(x0, pipe.schedule, objective)):
        out = pipe.sample(3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0.expand(3, -1, -1), atol=1e-4, rtol=0)


def test_ancestral_sampler_visits_every_timestep_once_in_decreasing_order():
    pipe = ReferencePipeline.build(TINY, DiffusionConfig(T=50), length=64)
    seen = []
    pipe.sample(1, generator=torch.Generator().manual_seed(0), callback=lambda s: seen.append(s["t"]))
    assert seen == list(range(49, -1, -1))


def test_q_sample_is_the_closed_form():
    diffusion = GaussianDiffusion(nn.Identity(), DiffusionConfig(T=1000))
    x0, noise = torch.randn(5, 1, 32), torch.randn(5, 1, 32)
    t = torch.tensor([0, 10, 500, 900, 999])
    ab = torch.as_tensor(np.cumprod(1 - linear_betas(1000)))[t].view(-1, 1, 1)
    expected = ab.sqrt() * x0.double() + (1 - ab).sqrt() * noise.double()
    torch.testing.assert_close(diffusion.q_sample(x0, t, noise), expected.float())


def test_checkpoint_round_trip_loads_weights_only(tmp_path):
    pipe = ReferencePipeline.build(TINY, DiffusionConfig(T=10, objective="v"), length=64, seed=5)
    pipe.save(tmp_path / "c.pt", step=7, ema_decay=0.99)
    torch.load(tmp_path / "c.pt", weights_only=True)  # no code objects inside
    loaded = ReferencePipeline.from_checkpoint(tmp_path / "c.pt")
    assert loaded.diffusion.config.objective == "v" and loaded.meta["step"] == 7
    x, t = torch.randn(2, 1, 64), torch.tensor([1, 8])
    torch.testing.assert_close(loaded.network(x, t), pipe.network.eval()(x, t))


class TestReferencePipelineContract(PipelineContract):
    """The shared pipeline contract (tests/pipeline_contract.py) on the reference pipeline, ancestral."""

    @staticmethod
    def build():
        return ReferencePipeline.build(TINY, DiffusionConfig(T=50), length=64)


class TestReferenceDDIMContract(PipelineContract):
    """The shared pipeline contract on the reference pipeline's DDIM sampler (v objective, eta 0.5)."""

    @staticmethod
    def build():
        config = DiffusionConfig(T=100, objective="v", sampler="ddim", sample_steps=10, ddim_eta=0.5)
        return ReferencePipeline.build(TINY, config, length=64, seed=3)

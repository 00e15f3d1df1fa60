"""Oracle denoisers: exact for their parameterisation, and t mapped back whatever its convention."""

from __future__ import annotations

import pytest
import torch

from diffcheck.measure.oracles import ExactOracle, PosteriorMeanOracle, TimeRecord, timestep_index
from diffcheck.measure.param import PARAMETERISATIONS
from diffcheck.pipelines.schedule import make_schedule

SCHED = make_schedule("linear", 200)


@pytest.mark.parametrize("t,expected,convention", [
    (torch.tensor([0, 57, 199]), [0, 57, 199], "index"),
    (torch.tensor([0.0, 0.285, 0.995]), [0, 57, 199], "unit"),
    (torch.tensor([0.0, 285.0, 995.0]), [0, 57, 199], "x1000"),
])
def test_timestep_index_maps_each_convention(t, expected, convention):
    record = TimeRecord()
    assert timestep_index(t, 200, record).tolist() == expected
    assert record.conventions == [convention]


def test_timestep_index_refuses_unknown_scales():
    with pytest.raises(ValueError, match="fit no known convention"):
        timestep_index(torch.tensor([-3.0, 5000.0]), 200)


@pytest.mark.parametrize("kind", PARAMETERISATIONS)
def test_exact_oracle_returns_the_target_of_its_kind(kind):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(4, 1, 32, generator=g) * 2 - 1, torch.randn(4, 1, 32, generator=g)
    t = torch.tensor([0, 50, 120, 199])
    a = torch.as_tensor(SCHED.signal_scale()[t], dtype=torch.float64).view(-1, 1, 1)
    s = torch.as_tensor(SCHED.noise_scale()[t], dtype=torch.float64).view(-1, 1, 1)
    x_t = (a * x0.double() + s * eps.double()).float()
    out = ExactOracle(x0, SCHED, kind)(x_t, t)
    # the closed forms, written here rather than taken from diffcheck.measure.param (v: Salimans & Ho 2022, eq. 6)
    x0d, epsd = x0.double(), eps.double()
    expected = {"eps": epsd, "x0": x0d, "v": a * epsd - s * x0d}[kind].float()
    torch.testing.assert_close(out, expected, atol=2e-4, rtol=1e-4)


def test_posterior_mean_oracle_picks_the_nearest_spectrum_at_low_noise():
    data = torch.stack([torch.full((1, 16), -0.5), torch.full((1, 16), 0.5)])
    x_t = data[1:2] + 0.01 * torch.randn(1, 1, 16, generator=torch.Generator().manual_seed(0))
    out = PosteriorMeanOracle(data, SCHED, "x0")(x_t, torch.tensor([0]))
    torch.testing.assert_close(out, data[1:2])
    # at t=T-1 of a schedule with zero terminal SNR the posterior is the data mean
    far = PosteriorMeanOracle(data, make_schedule("cosine", 1000), "x0")(torch.randn(1, 1, 16), torch.tensor([999]))
    assert float(far.abs().max()) < 0.1

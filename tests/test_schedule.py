"""The schedule owns its maths: each quantity is written once (diffcheck.pipelines.schedule) and checked here
against a derivation that does not share its code (Gaussian algebra, the step-by-step forward chain)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffcheck.pipelines.schedule import make_schedule


@pytest.fixture(params=["linear", "cosine"])
def schedule(request):
    return make_schedule(request.param, 200)


def test_alpha_bar_prev_is_alpha_bar_one_step_earlier(schedule):
    prev = schedule.alpha_bar_prev()
    assert prev[0] == 1.0
    np.testing.assert_array_equal(prev[1:], schedule.alpha_bar[:-1])


def test_the_posterior_is_bayes_rule_on_the_two_gaussians(schedule):
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0): precisions add, means weight by them."""
    b, ab_prev = schedule.betas, schedule.alpha_bar_prev()
    prec_prior, prec_step = 1.0 / (1.0 - ab_prev[1:]), (1.0 - b[1:]) / b[1:]  # t >= 1: the prior is not a point
    var = 1.0 / (prec_prior + prec_step)
    c0 = var * prec_prior * np.sqrt(ab_prev[1:])
    ct = var * np.sqrt(1.0 - b[1:]) / b[1:]
    post = schedule.posterior()
    np.testing.assert_allclose(post["var"][1:], var, rtol=1e-10)
    np.testing.assert_allclose(post["c0"][1:], c0, rtol=1e-10)
    np.testing.assert_allclose(post["ct"][1:], ct, rtol=1e-10)
    assert post["var"][0] == 0.0 and post["c0"][0] == pytest.approx(1.0)  # at t=0 the posterior is x_0 itself


def test_q_sample_matches_the_forward_chain_run_step_by_step(schedule):
    """x_t from t+1 single steps x_{s} = sqrt(1-beta_s) x_{s-1} + sqrt(beta_s) z_s has the closed form's
    moments: mean sqrt(alpha_bar_t) x0, variance 1 - alpha_bar_t."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.linspace(-1, 1, 64, dtype=torch.float64).repeat(4000, 1)[:, None, :]
    t = 120
    x = x0.clone()
    for s in range(t + 1):
        x = np.sqrt(1 - schedule.betas[s]) * x + np.sqrt(schedule.betas[s]) * torch.randn(x.shape, generator=g,
                                                                                          dtype=x.dtype)
    closed = schedule.q_sample(x0, torch.full((x0.shape[0],), t), torch.randn(x0.shape, generator=g, dtype=x0.dtype))
    for sample in (x, closed):
        np.testing.assert_allclose((sample.mean(0) / x0[0]).mean(), np.sqrt(schedule.alpha_bar[t]), rtol=0.02)
        np.testing.assert_allclose(sample.var(0).mean(), 1 - schedule.alpha_bar[t], rtol=0.03)


def test_q_sample_keeps_the_dtype_and_is_exact_at_the_coefficients(schedule):
    x0, noise = torch.randn(3, 1, 8), torch.randn(3, 1, 8)
    t = torch.tensor([0, 50, 199])
    out = schedule.q_sample(x0, t, noise)
    assert out.dtype == torch.float32
    for i, step in enumerate(t.tolist()):
        a, s = schedule.coefficients(step)
        torch.testing.assert_close(out[i], (a * x0[i].double() + s * noise[i].double()).float())


def test_ddim_with_eta_one_between_neighbours_is_the_ancestral_posterior(schedule):
    """Song et al. 2021 eq. 16: eta = 1 from t to t-1 gives the DDPM posterior std, and the same mean."""
    post = schedule.posterior()
    ab = schedule.alpha_bar
    for step in (1, 50, 199):
        c_x0, c_eps, sigma = schedule.ddim_step(step, step - 1, 1.0)
        assert sigma == pytest.approx(np.sqrt(post["var"][step]), rel=1e-10)
        # the mean c_x0 x0 + c_eps eps_hat, with eps_hat = (x_t - sqrt(ab) x0) / sqrt(1 - ab), in x0 and x_t:
        s_t = np.sqrt(1 - ab[step])
        assert c_eps / s_t == pytest.approx(post["ct"][step], rel=1e-8)
        assert c_x0 - c_eps * np.sqrt(ab[step]) / s_t == pytest.approx(post["c0"][step], rel=1e-8)


def test_deterministic_ddim_to_x0_returns_the_prediction(schedule):
    assert schedule.ddim_step(100, -1, 0.0) == (1.0, 0.0, 0.0)


def test_timesteps_are_evenly_spread_and_end_at_both_ends(schedule):
    ts = schedule.timesteps(12)
    assert ts[0] == 0 and ts[-1] == schedule.T - 1 and len(ts) == 12
    assert np.all(np.diff(ts) > 0) and np.ptp(np.diff(ts)) <= 1
    assert list(schedule.timesteps(10_000)) == list(range(schedule.T))  # more than T: every step once

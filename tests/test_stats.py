"""diffcheck.measure.stats against scipy's reference implementations and known cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from diffcheck.measure.stats import band_power, column_ks, ks_critical, lag_autocorr, null_distribution, pooled_distance, \
    power_bands


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_pooled_distance_equals_scipy_ks_and_wasserstein(rng):
    a, b = rng.normal(0.2, 1.0, (7, 50)), rng.normal(0.0, 1.3, (11, 50))
    d, w1 = pooled_distance(a, np.sort(b.ravel()))
    assert d == pytest.approx(sps.ks_2samp(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert w1 == pytest.approx(sps.wasserstein_distance(a.ravel(), b.ravel()), rel=1e-9)


def test_column_ks_equals_scipy_per_column(rng):
    a, b = rng.normal(size=(9, 6)), rng.normal(0.5, 1.0, size=(13, 6))
    expected = [sps.ks_2samp(a[:, j], b[:, j]).statistic for j in range(6)]
    np.testing.assert_allclose(column_ks(a, b), expected, atol=1e-12)


def test_ks_critical_matches_the_asymptotic_distribution():
    n, m, alpha = 400, 500, 0.01
    en = np.sqrt(n * m / (n + m))
    assert sps.kstwobign.sf(ks_critical(n, m, alpha) * en) == pytest.approx(alpha, rel=0.02)


def test_lag_autocorr_is_zero_for_white_noise_and_near_one_for_smooth_curves(rng):
    white = rng.normal(size=(200, 512))
    smooth = np.cumsum(rng.normal(size=(20, 512)), axis=1)
    assert abs(lag_autocorr(white).mean()) < 0.01
    assert lag_autocorr(smooth).mean() > 0.9
    assert np.all(lag_autocorr(np.ones((3, 10))) == 0)  # constant spectra: defined, zero


def test_band_power_is_scale_free_and_sees_smoothing(rng):
    x = rng.normal(size=(50, 512))
    edges = power_bands(512)
    np.testing.assert_allclose(band_power(3.0 * x + 7.0, edges), band_power(x, edges), rtol=1e-10)
    white = band_power(x, edges)
    assert white[-1] == pytest.approx(0.5, abs=0.02)  # half of white noise's power is above 1/4 cycle/px
    kernel = np.exp(-0.5 * (np.arange(-8, 9) / 2.0) ** 2)
    blurred = np.stack([np.convolve(row, kernel / kernel.sum(), mode="same") for row in x])
    assert band_power(blurred, edges)[-1] < 0.01 * white[-1]


def test_null_distribution_draws_subsets_of_the_requested_size(rng):
    pool = np.arange(100.0)[:, None] * np.ones((1, 3))
    null = null_distribution(lambda s: s.shape[0] + len(np.unique(s[:, 0])) / 100, pool, 10, 25, rng)
    assert null.values.shape == (25,) and null.n == 10
    assert np.all(null.values == 10.1)  # without replacement: 10 distinct rows each time

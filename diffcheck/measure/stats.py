"""Two-sample statistics on spectra, vectorised, and their calibration by resampling real data.

All functions take numpy arrays of spectra, ``[n, L]``. A statistic that compares generated
spectra with real ones is judged against its own *null distribution*: the same statistic between
``n`` real spectra drawn from a pool (the training split) and the same reference (the held-out
split). That is the spread a perfect model would show at this sample size, so a verdict does not
rest on a p-value that a large ``n`` makes tiny, nor on pixels treated as independent (they are
not: one spectrum's pixels move together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["pooled_distance", "bootstrap", "column_ks", "ks_critical", "lag_autocorr", "large_scale_fraction", "structure_score",
           "band_power", "power_bands", "NullDistribution", "null_distribution"]


def pooled_distance(a: np.ndarray, b_sorted: np.ndarray) -> tuple[float, float]:
    """(KS D, Wasserstein-1) between the pooled values of ``a`` and the sorted pooled ``b_sorted``."""
    a = np.sort(np.ravel(a))
    grid = np.sort(np.concatenate([a, b_sorted]), kind="stable")  # two sorted runs: merged, same values
    diff = np.abs(np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b_sorted, grid, "right") / b_sorted.size)
    return float(diff.max()), float(np.sum(diff[:-1] * np.diff(grid)))


def column_ks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample KS D per column (per wavelength) between ``a`` [n, L] and ``b`` [m, L]."""
    n, m = a.shape[0], b.shape[0]
    order = np.argsort(np.concatenate([a, b], axis=0), axis=0, kind="stable")
    from_a = order < n
    cdf_a = np.cumsum(from_a, axis=0) / n
    cdf_b = np.cumsum(~from_a, axis=0) / m
    return np.abs(cdf_a - cdf_b).max(axis=0)


def ks_critical(n: int, m: int, alpha: float) -> float:
    """Asymptotic two-sample KS critical D at level ``alpha`` (Smirnov): c(alpha) * sqrt((n+m)/(n m))."""
    return float(np.sqrt(-0.5 * np.log(alpha / 2.0)) * np.sqrt((n + m) / (n * m)))


def lag_autocorr(x: np.ndarray, lag: int = 1) -> np.ndarray:
    """Per-spectrum autocorrelation at ``lag`` pixels (each spectrum's own mean removed)."""
    x = x - x.mean(axis=1, keepdims=True)
    num = np.sum(x[:, lag:] * x[:, :-lag], axis=1)
    den = np.sum(x * x, axis=1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def large_scale_fraction(x: np.ndarray, min_period: float = 16.0) -> tuple[np.ndarray, float]:
    """Per-spectrum fraction of variance at periods >= ``min_period`` pixels, and white noise's expectation.

    Spectra keep most of their variance in the continuum and broad features; white noise spreads
    it evenly over frequencies. Unlike the lag-1 autocorrelation, the fraction hardly moves when a
    sampler leaves a little small-scale noise on real structure.
    """
    x = x - x.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freq = np.fft.rfftfreq(x.shape[1])
    low = (freq > 0) & (freq <= 1.0 / min_period)
    total = power[:, 1:].sum(axis=1)
    frac = np.divide(power[:, low].sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
    return frac, float(low.sum() / (freq > 0).sum())


def structure_score(x: np.ndarray, real: np.ndarray) -> tuple[float, float, float, float]:
    """How far ``x`` is from white noise towards ``real``: 0 for white noise, 1 for real spectra.

    Returns (score, large-scale fraction of x, of real, of white noise), means over spectra.
    """
    fx, white = large_scale_fraction(x)
    fr, _ = large_scale_fraction(real)
    gen, ref = float(fx.mean()), float(fr.mean())
    return (gen - white) / max(ref - white, 1e-12), gen, ref, white


def power_bands(length: int, n_bands: int = 5) -> np.ndarray:
    """Octave band edges in cycles per pixel, the top band ending at Nyquist (0.5)."""
    return 0.5 / 2.0 ** np.arange(n_bands, -1, -1)


def band_power(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean over spectra of the fraction of each spectrum's variance in each frequency band.

    Fractions, not absolute powers: a scale error (wrong de-normalisation) does not move them,
    a model that blurs its lines (less power at high frequency) or adds noise (more) does.
    """
    x = x - x.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freq = np.fft.rfftfreq(x.shape[1])
    total = power[:, 1:].sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    fractions = [power[:, (freq > lo) & (freq <= hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])]
    return (np.stack(fractions, axis=1) / total).mean(axis=0)


@dataclass(frozen=True)
class NullDistribution:
    """A statistic's values for ``n`` real spectra vs the reference, over ``draws`` resamples."""

    values: np.ndarray  # [draws, ...]
    n: int

    def quantile(self, q: float) -> np.ndarray | float:
        out = np.quantile(self.values, q, axis=0)
        return float(out) if np.ndim(out) == 0 else out


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray | float], sample: np.ndarray, draws: int,
              rng: np.random.Generator) -> np.ndarray:
    """``statistic`` of ``draws`` resamples (rows with replacement) of ``sample``: its sampling spread."""
    n = sample.shape[0]
    return np.asarray([statistic(sample[rng.integers(0, n, size=n)]) for _ in range(draws)], dtype=np.float64)


def null_distribution(statistic: Callable[[np.ndarray], np.ndarray | float], pool: np.ndarray, n: int,
                      draws: int, rng: np.random.Generator) -> NullDistribution:
    """``statistic`` of ``draws`` random ``n``-subsets of ``pool`` (without replacement when possible)."""
    replace = n > pool.shape[0]
    values = [statistic(pool[rng.choice(pool.shape[0], size=n, replace=replace)]) for _ in range(draws)]
    return NullDistribution(values=np.asarray(values, dtype=np.float64), n=n)

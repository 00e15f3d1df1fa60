"""Figures of the DIST family: what a person would otherwise judge by eye, with the numbers on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
from scipy import stats as sps

from diffcheck.formats.plotting import STATUS_COLOURS, plt, save
from diffcheck.measure.samples import Reference, SampleSet

GEN, REAL = STATUS_COLOURS["measured"], "0.35"


def _axis(ref: Reference, length: int) -> tuple[np.ndarray, str]:
    if ref.wave is not None:
        return ref.wave, "wavelength [Å]"
    return np.arange(length), "pixel"


def _flux_label(ref: Reference) -> str:
    return "flux" if ref.units == "physical" else "normalised flux"


def plot_grid(s: SampleSet, ref: Reference, outdir: Path) -> Path:
    """4x4 panels: each generated spectrum (colour) over the real held-out spectrum closest to it (grey)."""
    flux = s.flux[s.finite][:16]
    x_axis, xlabel = _axis(ref, flux.shape[1])
    nearest = np.argmin(((flux[:, None, :] - ref.flux[None, :, :]) ** 2).mean(-1), axis=1)
    fig, axes = plt.subplots(4, 4, figsize=(13, 8), sharex=True)
    for k, ax in enumerate(axes.flat):
        if k >= len(flux):
            ax.axis("off")
            continue
        ax.plot(x_axis, ref.flux[nearest[k]], color=REAL, lw=0.6, label="closest real spectrum")
        ax.plot(x_axis, flux[k], color=GEN, lw=0.6, label="generated")
        ax.set_title(f"sample {k}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(x=0)
    axes.flat[0].legend(fontsize=7, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(f"DIST001 generated spectra (red) over the closest of {ref.flux.shape[0]} real held-out spectra "
                 f"(grey), {_flux_label(ref)}", fontsize=11)
    fig.tight_layout()
    return save(fig, outdir, "dist_samples_grid.png")


def plot_noise(o: Mapping[str, Any], outdir: Path) -> Path:
    """Autocorrelation by lag (samples, real, white noise) and the values against N(0, 1)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    lags = np.arange(len(o["_autocorr_lags"]))
    a1.plot(lags, o["_autocorr_lags_real"], "-", color=REAL, label="real spectra")
    a1.plot(lags, o["_autocorr_lags"], "o-", ms=3, color=GEN, label="samples")
    a1.axhline(0, color=STATUS_COLOURS["declared"], ls="--", lw=1, label="white noise")
    a1.set_xlabel("lag [pixels]")
    a1.set_ylabel("autocorrelation")
    a1.set_title(f"structure score {o['structure']:.3f}; lag-1: samples {o['autocorr_gen']:.3f}, real {o['autocorr_real']:.3f}", fontsize=10)
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    values = o["_samples"].x[o["_samples"].finite].ravel()
    real = o["_reference"].x.ravel()
    lo, hi = min(np.percentile(values, 0.1), -4.0), max(np.percentile(values, 99.9), 4.0)
    bins = np.linspace(lo, hi, 120)
    a2.hist(real, bins=bins, density=True, color=REAL, alpha=0.4, label="real spectra")
    a2.hist(values, bins=bins, density=True, histtype="step", color=GEN, lw=1.2, label="samples")
    grid = np.linspace(lo, hi, 400)
    a2.plot(grid, sps.norm.pdf(grid), color=STATUS_COLOURS["declared"], ls="--", lw=1, label="N(0, 1)")
    a2.set_xlabel("value in the network's space")
    a2.set_yscale("log")
    a2.set_ylim(1e-4, None)
    a2.set_title(f"KS D vs N(0, 1): {o['ks_vs_standard_normal']:.3f}", fontsize=10)
    a2.legend(fontsize=8)
    fig.suptitle(f"DIST001 are the samples noise? ({o['n_samples']} samples)", fontsize=11)
    fig.tight_layout()
    return save(fig, outdir, "dist_noise.png")


def plot_reverse(s: SampleSet, ref: Reference, outdir: Path) -> Path:
    """Sample 0's x_t through the reverse process, from the first step to the output."""
    n = len(s.snapshots)
    x_axis, xlabel = _axis(ref, s.x.shape[1])
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.3 * n + 0.8), sharex=True)
    for ax, (i, t, x) in zip(np.atleast_1d(axes), s.snapshots):
        ax.plot(x_axis, x, color=GEN if np.isnan(t) else "0.2", lw=0.5)
        label = "output (network space)" if np.isnan(t) else f"step {i + 1}/{s.steps}, t = {t:g}"
        ax.text(0.005, 0.92, label, transform=ax.transAxes, va="top", fontsize=8,
                bbox={"fc": "white", "alpha": 0.8, "lw": 0})
        ax.margins(x=0)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[-1].set_xlabel(xlabel)
    fig.suptitle("DIST001 one sample through the pipeline's own sampler (x_t)", fontsize=11)
    fig.tight_layout()
    return save(fig, outdir, "dist_reverse_process.png")


def plot_flux_hist(o: Mapping[str, Any], outdir: Path) -> Path:
    """Pooled flux histograms with KDEs, samples against real, and the KS / W1 numbers."""
    flux, ref = o["_flux"].ravel(), o["_reference"]
    real = ref.flux.ravel()
    lo = min(np.percentile(flux, 0.1), np.percentile(real, 0.1))
    hi = max(np.percentile(flux, 99.9), np.percentile(real, 99.9))
    bins = np.linspace(lo, hi, 100)
    grid = np.linspace(lo, hi, 400)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(8, 4))
    for values, colour, label in ((real, REAL, f"real ({ref.flux.shape[0]} spectra)"),
                                  (flux, GEN, f"samples ({o['n_samples']})")):
        ax.hist(values, bins=bins, density=True, color=colour, alpha=0.3, label=label)
        sub = values[rng.choice(values.size, size=min(values.size, 20000), replace=False)]
        if np.ptp(sub) > 0:
            ax.plot(grid, sps.gaussian_kde(sub)(grid), color=colour, lw=1.5)
    status = "PASS" if o["ks_d"] <= o["ks_limit"] and o["w1"] <= o["w1_limit"] else "FAIL"
    ax.set_title(f"DIST002 {status}: KS D {o['ks_d']:.4f} (limit {o['ks_limit']:.4f}), "
                 f"W1 {o['w1']:.3g} (limit {o['w1_limit']:.3g})", fontsize=10)
    ax.set_xlabel(_flux_label(ref))
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, outdir, "dist_flux_hist.png")


def plot_ks_map(o: Mapping[str, Any], outdir: Path) -> Path:
    """Mean +- std spectra (samples vs real) and the per-wavelength KS D against its critical value."""
    flux, ref = o["_flux"], o["_reference"]
    x_axis, xlabel = _axis(ref, flux.shape[1])
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for data, colour, label in ((ref.flux, REAL, "real"), (flux, GEN, "samples")):
        m, sd = data.mean(0), data.std(0)
        a1.fill_between(x_axis, m - sd, m + sd, color=colour, alpha=0.2, lw=0)
        a1.plot(x_axis, m, color=colour, lw=0.8, label=f"{label}: mean +- std")
    a1.set_ylabel(_flux_label(ref))
    a1.legend(fontsize=8)
    a1.margins(x=0)
    d, crit = o["_d"], o["pixel_critical_d"]
    null_hi = np.quantile(o["_null_d"], 0.99, axis=0)
    a2.fill_between(x_axis, 0, null_hi, color=REAL, alpha=0.25, lw=0, label="real-vs-real 99 % per wavelength")
    a2.plot(x_axis, d, color=GEN, lw=0.6, label="samples vs real")
    a2.axhline(crit, color=STATUS_COLOURS["declared"], ls="--", lw=1, label=f"critical D {crit:.3f}")
    a2.set_ylabel("KS D")
    a2.set_xlabel(xlabel)
    a2.legend(fontsize=8, ncol=3, loc="upper right")
    a2.margins(x=0)
    fig.suptitle(f"DIST003 mean KS D {o['mean_pixel_d']:.3f} (limit {o['mean_d_limit']:.3f}), mean spectrum offset "
                 f"{o['mean_offset_z']:.3f} std (limit {o['offset_limit']:.3f}); {o['percent_disagreeing']:g} % of "
                 f"wavelengths past the critical D; {o['n_samples']} samples vs {o['n_reference']} real", fontsize=10)
    fig.tight_layout()
    return save(fig, outdir, "dist_ks_map.png")


def plot_power(o: Mapping[str, Any], outdir: Path) -> Path:
    """Fraction of variance per frequency band, samples against real, with the real-vs-real range."""
    labels = [f"{a:g}-{b:g}" for a, b in o["band_periods_px"]]
    k = np.arange(len(labels))
    real = np.asarray(o["power_real"])
    fig, ax = plt.subplots(figsize=(8, 4))
    lo, hi = real * 10 ** np.asarray(o["log10_low"]), real * 10 ** np.asarray(o["log10_high"])
    ax.fill_between(k, lo, hi, color=REAL, alpha=0.25, lw=0, label="allowed (real-vs-real range + tolerance)")
    ax.plot(k, real, "s-", color=REAL, label="real spectra")
    ax.plot(k, o["power_gen"], "o-", color=GEN, label="samples")
    ax.set_yscale("log")
    ax.set_xticks(k, labels)
    ax.set_xlabel("period band [pixels]")
    ax.set_ylabel("fraction of variance")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"DIST004 power per band (worst: {labels[o['worst_band']]} px, "
                 f"ratio {o['worst_ratio']:.3g})", fontsize=10)
    fig.tight_layout()
    return save(fig, outdir, "dist_power.png")

"""DIST: are the samples spectra like the real ones? Judged with numbers, never by eye.

Every DIST check uses the same samples, drawn once per run with the pipeline's own sampler
(:mod:`diffcheck.samples`), in physical flux units after the pipeline's own de-normalisation.
Statistics that compare with real spectra are judged against their null distribution: the same
statistic for the same number of *real* spectra (see :mod:`diffcheck.stats`).
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch
from scipy import stats as sps

from diffcheck.check import Check
from diffcheck.errors import Skip
from diffcheck.results import Status, Verdict
from diffcheck.samples import Reference, SampleSet
from diffcheck.stats import band_power, column_ks, ks_critical, lag_autocorr, null_distribution, pooled_distance, \
    power_bands, structure_score

__all__ = ["DIST001", "DIST002", "DIST003", "DIST004"]

_th = MappingProxyType
NULL_DRAWS = 200
#: A white sample set counts as *Gaussian* noise when its values are this close (KS D) to a normal
#: law fitted to them (clipped where the sampler clips).
GAUSSIAN_D = 0.05


def _rng(generator: torch.Generator) -> np.random.Generator:
    # drawn on the generator's own device (a CUDA generator cannot drive a CPU draw)
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)))


def _finite(s: SampleSet) -> tuple[np.ndarray, np.ndarray]:
    if not s.finite.any():
        raise Skip(f"all {s.n} samples contain NaN/Inf (DIST001 reports it)")
    return s.x[s.finite], s.flux[s.finite]


def _counts(s: SampleSet, ref: Reference) -> dict[str, Any]:
    return {"n_samples": int(s.finite.sum()), "n_drawn": s.n, "n_reference": int(ref.flux.shape[0]),
            "stop_reason": s.stop_reason, "units": ref.units, "split": ref.split}


def _gaussian_fit(values: np.ndarray) -> dict[str, float]:
    """KS D of ``values`` against a normal law fitted robustly (median, MAD), clipped where they are.

    A sampler that clips its x0 prediction piles values on the clip bounds; those are compared
    as point masses, the interior against the truncated normal.
    """
    v = np.sort(values)
    mu = float(np.median(v))
    sigma = float(1.4826 * np.median(np.abs(v - mu))) or 1e-12
    lo, hi = float(v[0]), float(v[-1])
    at_lo, at_hi = float(np.mean(v == lo)), float(np.mean(v == hi))
    clipped = max(at_lo, at_hi) > 0.005
    if not clipped:
        return {"mu": mu, "sigma": sigma, "clip_fraction": 0.0,
                "gaussian_d": float(sps.kstest((v - mu) / sigma, "norm").statistic)}  # standardised here: newer
                # scipy's kstest(..., "norm", args=(mu, sigma)) passes the args to ndtr, which takes none
    inner = v[(v > lo) & (v < hi)]
    p_lo, p_hi = sps.norm.cdf(lo, mu, sigma), sps.norm.sf(hi, mu, sigma)
    span = max(1.0 - p_lo - p_hi, 1e-12)
    d_inner = sps.kstest(inner, lambda u: (sps.norm.cdf(u, mu, sigma) - p_lo) / span).statistic if inner.size else 1.0
    d = max(float(d_inner), abs(at_lo - p_lo), abs(at_hi - p_hi))
    return {"mu": mu, "sigma": sigma, "clip_fraction": at_lo + at_hi, "gaussian_d": d}


class DIST001(Check):
    """Samples are not noise: their variance sits at large scales, as in real spectra"""

    id = "DIST001"
    explains = frozenset({"DIST002", "DIST003", "DIST004"})
    next_step = ("plot a few samples next to real spectra (dist_samples_grid.png); if no PAR or SMP check failed, "
                 "compare the sampling script with the training script line by line: objective, schedule, t scale, "
                 "weights loaded")
    trained_only = True
    thresholds = _th({"min_structure": 0.5})

    def measure(self, dist_samples: SampleSet, dist_reference: Reference) -> dict[str, Any]:
        s, ref = dist_samples, dist_reference
        out = {**_counts(s, ref), "nonfinite": int((~s.finite).sum()),
               "_samples": s, "_reference": ref}
        if not s.finite.any():
            return out
        x = s.x[s.finite]
        score, f_gen, f_real, f_white = structure_score(x, ref.x)
        values = x.ravel()
        fit = _gaussian_fit(values)
        return {**out, "structure": score, "large_scale_gen": f_gen, "large_scale_real": f_real,
                "large_scale_white": f_white, "large_scale_gen_pct": round(100 * f_gen, 1),
                "large_scale_real_pct": round(100 * f_real, 1), "large_scale_white_pct": round(100 * f_white, 1),
                "autocorr_gen": float(lag_autocorr(x).mean()), "autocorr_real": float(lag_autocorr(ref.x).mean()),
                "constant_fraction": float(np.mean(x.std(axis=1) == 0)),
                "ks_vs_standard_normal": float(sps.kstest(values, "norm").statistic),
                "value_mean": float(values.mean()), "value_std": float(values.std()),
                "fit_mu": fit["mu"], "fit_sigma": fit["sigma"], "clip_fraction": fit["clip_fraction"],
                "gaussian_d": fit["gaussian_d"],
                "_autocorr_lags": _acf(x, 32), "_autocorr_lags_real": _acf(ref.x, 32)}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        n = o["n_drawn"]
        if o["nonfinite"]:
            return Verdict(Status.FAIL, f"{o['nonfinite']} of {n} samples contain NaN or Inf",
                           causes=("the network produces NaN/Inf for some x_t (check WGT and the weights)",
                                   "a division by a schedule term that is 0 at one end (1 - alpha_bar at t=0)"))
        score = o["structure"]
        share = (f"{o['large_scale_gen_pct']:g} % of the variance at periods >= 16 px vs "
                 f"{o['large_scale_real_pct']:g} % in real spectra (white noise {o['large_scale_white_pct']:g} %)")
        evidence = (f"structure score {score:.3f} (white noise 0, real spectra 1) vs >= {th['min_structure']:g}: "
                    + share,
                    f"lag-1 autocorrelation: samples {o['autocorr_gen']:.3f}, real spectra {o['autocorr_real']:.3f}",
                    f"values in the network's space: mean {o['value_mean']:.3f}, std {o['value_std']:.3f}; "
                    f"KS D vs N(0, 1) {o['ks_vs_standard_normal']:.3f}; vs the fitted normal "
                    f"N({o['fit_mu']:.2f}, {o['fit_sigma']:.2f}^2) {o['gaussian_d']:.3f}"
                    + (f", {100 * o['clip_fraction']:.1f} % of values on the clip bounds" if o["clip_fraction"] else ""),
                    f"{o['n_samples']} samples ({o['stop_reason']})")
        if o["constant_fraction"] > 0.5:
            return Verdict(Status.FAIL, f"{o['constant_fraction']:.3g} of the samples are constant spectra",
                           evidence, ("the sampler returns a fixed value (a zeroed network output or "
                                      "an all-clipped x0)",))
        if score >= th["min_structure"]:
            return Verdict(Status.PASS, f"samples are structured like spectra, not noise: structure score "
                           f"{score:.3f} ({share})", evidence)
        gaussian = o["gaussian_d"] < GAUSSIAN_D
        what = "indistinguishable from Gaussian noise" if gaussian else "indistinguishable from (non-Gaussian) noise"
        return Verdict(
            Status.FAIL,
            f"samples are {what}: structure score {score:.3f} < {th['min_structure']:g} ({share})"
            + (f", KS D {o['gaussian_d']:.3f} from N({o['fit_mu']:.3g}, {o['fit_sigma']:.3g}^2)" if gaussian
               else f", values {o['gaussian_d']:.3f} (KS D) from the closest normal law"),
            evidence,
            ("the sampler decodes the network output with another parameterisation than training (eps "
             "trained, decoded as x0: the experiment that started diffcheck; see PAR004)",
             "the sampler returns x_T, or adds noise after its last step (see SMP003)",
             "the network ignores x_t or t (see TEMB and TOY), or its weights were not loaded (WGT)"),
            observed={"gaussian": gaussian})

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        if "structure" not in o:
            return []
        from ._dist_plots import plot_grid, plot_noise, plot_reverse

        figs = [plot_grid(o["_samples"], o["_reference"], outdir), plot_noise(o, outdir)]
        if o["_samples"].snapshots:
            figs.append(plot_reverse(o["_samples"], o["_reference"], outdir))
        return figs


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    return np.array([1.0] + [float(lag_autocorr(x, lag).mean()) for lag in range(1, max_lag + 1)])


class DIST002(Check):
    """Pooled flux values of samples match the real spectra's (KS D and Wasserstein, calibrated)"""

    id = "DIST002"
    explains = frozenset({"DIST003"})
    next_step = ("compare the samples' flux range with the data's (dist_flux_hist.png): Pipeline.to_flux must invert "
                 "the normalisation training used, with the same constants; then compare with a longer-trained "
                 "checkpoint")
    trained_only = True
    thresholds = _th({"max_ks_factor": 1.5, "max_w1_factor": 1.5, "null_quantile": 0.99})
    threshold_bounds = _th({"null_quantile": (0.0, 1.0)})
    #: Figures ``diffcheck run --baseline`` compares with the promoted model (same seed, same sample count).
    quality = _th({"ks_d": "lower", "w1": "lower"})

    def measure(self, dist_samples: SampleSet, dist_reference: Reference,
                generator: torch.Generator) -> dict[str, Any]:
        s, ref = dist_samples, dist_reference
        _, flux = _finite(s)
        d, w1 = pooled_distance(flux, ref.sorted_flux)
        null = null_distribution(lambda f: pooled_distance(f, ref.sorted_flux), ref.pool, flux.shape[0],
                                 NULL_DRAWS, _rng(generator))
        q = np.quantile(null.values, [0.5, 0.99, 1.0], axis=0)
        return {**_counts(s, ref), "ks_d": d, "w1": w1, "_null": null.values,
                "null_ks_median": float(q[0, 0]), "null_w1_median": float(q[0, 1]),
                "null_ks_max": float(q[2, 0]), "null_w1_max": float(q[2, 1]),
                "flux_gen_percentiles": np.percentile(flux, [1, 50, 99]).round(4).tolist(),
                "flux_real_percentiles": np.percentile(ref.flux, [1, 50, 99]).round(4).tolist(),
                "_flux": flux, "_reference": ref}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        null = o["_null"]
        q_ks, q_w1 = (float(v) for v in np.quantile(null, th["null_quantile"], axis=0))
        lim_ks, lim_w1 = th["max_ks_factor"] * q_ks, th["max_w1_factor"] * q_w1
        derived = {"null_ks_q": q_ks, "null_w1_q": q_w1, "ks_limit": lim_ks, "w1_limit": lim_w1,
                   "ks_factor": o["ks_d"] / max(q_ks, 1e-300), "w1_factor": o["w1"] / max(q_w1, 1e-300)}
        g, r = o["flux_gen_percentiles"], o["flux_real_percentiles"]
        evidence = (f"KS D {o['ks_d']:.4f} (real-vs-real at n={o['n_samples']}: median {o['null_ks_median']:.4f}, "
                    f"q{100 * th['null_quantile']:g} {q_ks:.4f}, limit {lim_ks:.4f})",
                    f"Wasserstein-1 {o['w1']:.4g} (real-vs-real median {o['null_w1_median']:.4g}, "
                    f"q{100 * th['null_quantile']:g} {q_w1:.4g}, limit {lim_w1:.4g}) in {o['units']} flux units",
                    f"flux 1/50/99th percentiles: samples {g[0]:.3g} / {g[1]:.3g} / {g[2]:.3g}, "
                    f"real {r[0]:.3g} / {r[1]:.3g} / {r[2]:.3g}",
                    f"{o['n_samples']} samples vs {o['n_reference']} real spectra ({o['split']})")
        bad = [name for name, v, lim in (("KS D", o["ks_d"], lim_ks), ("Wasserstein-1", o["w1"], lim_w1)) if v > lim]
        if not bad:
            return Verdict(Status.PASS, f"pooled flux matches the real spectra: KS D {o['ks_d']:.4f} <= {lim_ks:.4f}, "
                           f"W1 {o['w1']:.3g} <= {lim_w1:.3g}", evidence, observed=derived)
        name = bad[0]
        v, lim, factor = ((o["ks_d"], lim_ks, derived["ks_factor"]) if name == "KS D"
                          else (o["w1"], lim_w1, derived["w1_factor"]))
        return Verdict(
            Status.FAIL,
            f"pooled flux differs from the real spectra: {name} {v:.3g} vs at most {lim:.3g} "
            f"({factor:.3g}x the real-vs-real {th['null_quantile']:g} quantile at n={o['n_samples']})",
            evidence,
            ("the samples are not de-normalised (their range is the network's, e.g. [-1, 1]): Pipeline.to_flux",
             "wrong de-normalisation constants (min/max of another data set or split)",
             "the model is undertrained or the sampler is broken (see DIST001, PAR, SMP)"),
            observed=derived)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._dist_plots import plot_flux_hist

        return [plot_flux_hist(o, outdir)]


class DIST003(Check):
    """Flux distributions match the real spectra's at each wavelength (KS map, mean spectrum)"""

    id = "DIST003"
    next_step = ("compare the mean spectra in dist_ks_map.png: a mirrored or shifted pattern means the wavelength "
                 "order or grid of the output differs; an offset everywhere, the de-normalisation")
    trained_only = True
    # Two per-wavelength statistics, each judged as DIST002 judges its pooled ones (at most 1.5x
    # the real-vs-real 99th percentile at the same n): the mean over wavelengths of the KS D, and
    # the RMS offset of the mean spectrum in units of the real spread. Not the share of wavelengths
    # past a critical D: neighbouring wavelengths move together (a sample set with a few more cool
    # stars shifts thousands at once), so that share has a heavy-tailed null whose 99th percentile
    # swung from 3 % to 31 % between seeds of 200 draws at n=32, where the mean D's swung 0.26-0.29.
    thresholds = _th({"max_d_factor": 1.5, "max_offset_factor": 1.5, "null_quantile": 0.99})
    threshold_bounds = _th({"null_quantile": (0.0, 1.0)})
    #: Significance of the per-wavelength KS critical D behind "x % of wavelengths disagree": the
    #: share is reported, not judged (see above), so its alpha is not a threshold.
    PIXEL_ALPHA = 0.01
    quality = _th({"mean_pixel_d": "lower", "mean_offset_z": "lower"})

    def measure(self, dist_samples: SampleSet, dist_reference: Reference,
                generator: torch.Generator) -> dict[str, Any]:
        s, ref = dist_samples, dist_reference
        _, flux = _finite(s)
        mu, sd = ref.flux.mean(0), ref.flux.std(0) + 1e-12

        def stats(f: np.ndarray) -> np.ndarray:  # per-wavelength KS D, then the mean spectrum's RMS offset
            return np.append(column_ks(f, ref.flux), np.sqrt(np.mean(((f.mean(0) - mu) / sd) ** 2)))

        own = stats(flux)
        null = null_distribution(stats, ref.pool, flux.shape[0], NULL_DRAWS, _rng(generator)).values
        d = own[:-1]
        return {**_counts(s, ref), "_d": d, "_null_d": null[:, :-1], "_null_offset": null[:, -1],
                "_flux": flux, "_reference": ref,
                "mean_pixel_d": float(d.mean()), "mean_offset_z": float(own[-1]),
                "max_pixel_d": float(d.max()),
                "worst_pixel": int(np.argmax(d)),
                "worst_wavelength": float(ref.wave[int(np.argmax(d))]) if ref.wave is not None else None,
                "std_ratio_median": float(np.median(flux.std(0) / sd))}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        null_d, null_z = o["_null_d"].mean(axis=1), o["_null_offset"]
        q_d, q_z = (float(np.quantile(v, th["null_quantile"])) for v in (null_d, null_z))
        lim_d, lim_z = th["max_d_factor"] * q_d, th["max_offset_factor"] * q_z
        crit = ks_critical(o["n_samples"], o["n_reference"], self.PIXEL_ALPHA)
        frac = float(np.mean(o["_d"] > crit))
        derived = {"null_mean_d_median": float(np.median(null_d)), "null_mean_d_q": q_d, "mean_d_limit": lim_d,
                   "d_factor": o["mean_pixel_d"] / max(q_d, 1e-300),
                   "null_offset_median": float(np.median(null_z)), "null_offset_q": q_z, "offset_limit": lim_z,
                   "offset_factor": o["mean_offset_z"] / max(q_z, 1e-300),
                   "pixel_alpha": self.PIXEL_ALPHA, "pixel_critical_d": crit, "fraction_disagreeing": frac,
                   "percent_disagreeing": round(100 * frac, 1)}
        where = (f" (worst at {o['worst_wavelength']:.1f} Å, D {o['max_pixel_d']:.3f})" if o["worst_wavelength"] is not None
                 else f" (worst at pixel {o['worst_pixel']}, D {o['max_pixel_d']:.3f})")
        qn = f"q{100 * th['null_quantile']:g}"
        evidence = (f"mean KS D over wavelengths {o['mean_pixel_d']:.3f} (real-vs-real at n={o['n_samples']}: median "
                    f"{derived['null_mean_d_median']:.3f}, {qn} {q_d:.3f}, limit {lim_d:.3f})",
                    f"mean spectrum offset: RMS {o['mean_offset_z']:.3f} real standard deviations (real-vs-real median "
                    f"{derived['null_offset_median']:.3f}, {qn} {q_z:.3f}, limit {lim_z:.3f})",
                    f"{100 * frac:.1f} % of wavelengths have KS D > {crit:.3f} (alpha {self.PIXEL_ALPHA:g})" + where,
                    f"median std ratio (samples / real) {o['std_ratio_median']:.3f}")
        bad = [(name, v, lim, factor)
               for name, v, lim, factor in (("mean KS D", o["mean_pixel_d"], lim_d, derived["d_factor"]),
                                            ("mean spectrum offset", o["mean_offset_z"], lim_z, derived["offset_factor"]))
               if v > lim]
        if not bad:
            return Verdict(Status.PASS, f"flux matches the real spectra wavelength by wavelength: mean KS D "
                           f"{o['mean_pixel_d']:.3f} <= {lim_d:.3f}, mean spectrum offset {o['mean_offset_z']:.3f} "
                           f"<= {lim_z:.3f}", evidence, observed=derived)
        name, v, lim, factor = max(bad, key=lambda b: b[3])
        return Verdict(
            Status.FAIL,
            f"flux differs from the real spectra wavelength by wavelength: {name} {v:.3f} vs at most {lim:.3f} "
            f"({factor:.3g}x the real-vs-real {th['null_quantile']:g} quantile at n={o['n_samples']}); "
            f"{100 * frac:.1f} % of wavelengths disagree",
            evidence,
            ("spectra on another wavelength grid: reversed, shifted or resampled on output",
             "wrong de-normalisation (offset or scale at every wavelength; see DIST002)",
             "the model misses features at fixed wavelengths (lines, bands) or adds spurious ones: too few "
             "training steps, or a sampler bug (see PAR, SMP)"),
            observed=derived)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._dist_plots import plot_ks_map

        return [plot_ks_map(o, outdir)]


class DIST004(Check):
    """Samples keep the real spectra's small-scale structure (power per frequency band)"""

    id = "DIST004"
    next_step = ("see dist_power.png: smoother than real means blur or too few steps; noisier means residual noise "
                 "(the last step) or DDIM eta=0 on a weak network, so compare with eta=1")
    trained_only = True
    thresholds = _th({"log10_tolerance": 0.1, "null_quantile": 0.995})
    threshold_bounds = _th({"null_quantile": (0.0, 1.0)})

    def measure(self, dist_samples: SampleSet, dist_reference: Reference,
                generator: torch.Generator) -> dict[str, Any]:
        s, ref = dist_samples, dist_reference
        x, _ = _finite(s)
        edges = power_bands(x.shape[1])
        real = band_power(ref.x, edges)

        def log_ratio(sample: np.ndarray) -> np.ndarray:
            return np.log10(np.maximum(band_power(sample, edges), 1e-30) / np.maximum(real, 1e-30))

        null = null_distribution(log_ratio, ref.pool_x, x.shape[0], NULL_DRAWS, _rng(generator))
        periods = [[round(1 / hi, 3), round(1 / lo, 3)] for lo, hi in zip(edges[:-1], edges[1:])]
        return {**_counts(s, ref), "band_periods_px": periods, "power_gen": band_power(x, edges).tolist(),
                "power_real": real.tolist(), "log10_ratio": log_ratio(x).tolist(), "_null": null.values}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        q = th["null_quantile"]
        lo = np.quantile(o["_null"], 1 - q, axis=0) - th["log10_tolerance"]
        hi = np.quantile(o["_null"], q, axis=0) + th["log10_tolerance"]
        r = np.asarray(o["log10_ratio"])
        excess = np.maximum(lo - r, r - hi)  # > 0 outside [lo, hi]
        worst = int(np.argmax(excess))
        derived = {"log10_low": lo.round(4).tolist(), "log10_high": hi.round(4).tolist(), "worst_band": worst,
                   "worst_ratio": float(10 ** r[worst]), "worst_low": float(10 ** lo[worst]),
                   "worst_high": float(10 ** hi[worst])}
        p = o["band_periods_px"][worst]
        band = f"periods {p[0]:g}-{p[1]:g} px"
        evidence = tuple(f"periods {a:g}-{b:g} px: {100 * g:.3g} % of the variance (real {100 * rr:.3g} %), "
                         f"ratio {10 ** v:.3g} (allowed {10 ** lw:.3g}-{10 ** hg:.3g})"
                         for (a, b), g, rr, v, lw, hg in zip(o["band_periods_px"], o["power_gen"], o["power_real"],
                                                             r, lo, hi))
        if excess[worst] <= 0:
            return Verdict(Status.PASS, f"power in every frequency band within the real-vs-real range "
                           f"(closest to a limit: {band}, ratio {10 ** r[worst]:.3g})", evidence, observed=derived)
        smooth = r[worst] < lo[worst]
        what = ("samples are smoother than the real spectra: absorption lines blurred or lost"
                if smooth else "samples are noisier than the real spectra at small scales")
        return Verdict(
            Status.FAIL,
            f"{what} ({band}: {10 ** r[worst]:.3g}x the real power, allowed {10 ** lo[worst]:.3g}-{10 ** hi[worst]:.3g}x)",
            evidence,
            (("an over-smoothed model (too few steps, too much regularisation, a low-pass layer)",
              "the sampler stops early or averages (x0 prediction returned at a high noise level)")
             if smooth else
             ("residual noise: the sampler skips its last steps or adds noise after the last one (SMP003)",
              "the network is undertrained at low noise levels",
              "a deterministic sampler (DDIM eta=0) with a network too weak for it: compare with eta=1 "
              "(diffcheck's tiny healthy fixture: 15-17x the real power with eta=0, a PASS with eta=1)")),
            observed=derived)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._dist_plots import plot_power

        return [plot_power(o, outdir)]

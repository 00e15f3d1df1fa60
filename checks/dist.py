"""DIST: are the samples spectra like the real ones? Judged with numbers, never by eye.

Every DIST check uses the same samples, drawn once per run with the pipeline's own sampler
(:mod:`diffcheck.measure.samples`), in physical flux units after the pipeline's own de-normalisation.
Statistics that compare with real spectra are judged against their null distribution: the same
statistic for the same number of *real* spectra (see :mod:`diffcheck.measure.stats`).

A bug is not a quality figure. DIST002-004 measure how far the samples are from real spectra, as
a factor of what real spectra reach among themselves (their real-vs-real quantile at the same n):

- within the quality limit (1.5x by default): PASS;
- beyond it: QUALITY, the gap with its 68 % bootstrap interval. A healthy but under-trained or
  small network lands here; the run still passes unless it is strict (``--strict``), gated by a
  baseline (``--baseline``), or the ``fail_*`` threshold was lowered in ``[tool.diffcheck]``;
- beyond the ``fail_*`` limit, far past what healthy networks of diffcheck's fixtures reach: FAIL.

What is wrong whatever the network (samples that are noise, DIST001; a de-normalisation that does
not invert the training normalisation, DIST005) is a bug and fails.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch
from scipy import stats as sps

from diffcheck.engine.check import Check, Stage
from diffcheck.errors import Skip
from diffcheck.engine.results import Status, Verdict
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.measure.samples import Reference, SampleSet
from diffcheck.measure.stats import band_power, bootstrap, column_ks, ks_critical, lag_autocorr, null_distribution, pooled_distance, \
    power_bands, structure_score

__all__ = ["DIST001", "DIST002", "DIST003", "DIST004", "DIST005"]

_th = MappingProxyType
NULL_DRAWS = 200
#: Resamples of the samples behind a quality gap's 68 % interval: the estimate plus or minus the
#: bootstrap's standard deviation (the percentile interval can miss the estimate where resampling
#: noise-like samples biases a distance upwards).
BOOT_DRAWS = 100

#: A white sample set counts as *Gaussian* noise when its values are this close (KS D) to a normal
#: law fitted to them (clipped where the sampler clips).
GAUSSIAN_D = 0.05


def _rng(generator: torch.Generator) -> np.random.Generator:
    # drawn on the generator's own device (a CUDA generator cannot drive a CPU draw)
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)))


def _interval(estimate: float, boot: np.ndarray, floor: float = 0.0) -> tuple[float, float]:
    sd = float(np.std(boot))
    return max(estimate - sd, floor), estimate + sd


#: A quality finding's likely causes lead with the model; a bug's with the pipeline.
_WEAK_MODEL = "the model is under-trained or small (compare a longer-trained checkpoint with --baseline)"


def _ranked_causes(status: Status, causes: tuple[str, ...]) -> tuple[str, ...]:
    return (_WEAK_MODEL, *causes) if status is Status.QUALITY else causes


def _gap(limit: float, fail: float, what: str, ratio: float, boot: np.ndarray,
         q: float, quantile: float, n: int) -> tuple[Status, str, dict[str, float]]:
    """The status and first line of a statistic past its quality limit: QUALITY up to ``fail``
    times the real-vs-real quantile ``q`` (FAIL beyond), with the bootstrap interval of ``ratio``."""
    lo, hi = _interval(ratio, boot / max(q, 1e-300))
    status = Status.FAIL if ratio > fail else Status.QUALITY
    tail = (f"{ratio:.3g}x the real-vs-real {quantile:g} quantile at n={n} (68 % interval {lo:.3g}-{hi:.3g}x; "
            f"quality limit {limit:.3g}x, a bug beyond {fail:g}x)")
    head = (f"{what}: {tail}" if status is Status.FAIL
            else f"sample quality, not a bug: {what}, {tail}")
    return status, head, {"gap_factor": ratio, "gap_low": lo, "gap_high": hi, "fail_factor": fail}


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
    # fail_factor: twice the worst a healthy pipeline of diffcheck's fixtures reached whose samples are
    # not noise (DIST001 passing): 7.7x, the reference network stopped at 300 of 3000 steps
    # (benchmarks/results/dist_tiers_cpu.json). Wrong units and grids are caught structurally (DIST005).
    thresholds = _th({"max_ks_factor": 1.5, "max_w1_factor": 1.5, "null_quantile": 0.99, "fail_factor": 15.0})
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
        boot = bootstrap(lambda f: pooled_distance(f, ref.sorted_flux), flux, BOOT_DRAWS, _rng(generator))
        q = np.quantile(null.values, [0.5, 0.99, 1.0], axis=0)
        return {**_counts(s, ref), "ks_d": d, "w1": w1, "_null": null.values, "_boot": boot,
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
        bad = [(name, v, lim, factor, col, q, lim_f)
               for name, v, lim, factor, col, q, lim_f in (
                   ("KS D", o["ks_d"], lim_ks, derived["ks_factor"], 0, q_ks, th["max_ks_factor"]),
                   ("Wasserstein-1", o["w1"], lim_w1, derived["w1_factor"], 1, q_w1, th["max_w1_factor"]))
               if v > lim]
        if not bad:
            return Verdict(Status.PASS, f"pooled flux matches the real spectra: KS D {o['ks_d']:.4f} <= {lim_ks:.4f}, "
                           f"W1 {o['w1']:.3g} <= {lim_w1:.3g}", evidence, observed=derived)
        name, v, lim, factor, col, q, lim_f = max(bad, key=lambda b: b[3])
        status, head, gap = _gap(lim_f, th["fail_factor"], f"pooled flux differs from the real spectra: {name} "
                                 f"{v:.3g} vs at most {lim:.3g}", factor, o["_boot"][:, col], q,
                                 th["null_quantile"], o["n_samples"])
        return Verdict(
            status, head,
            evidence,
            _ranked_causes(status, (
                "the samples are not de-normalised (their range is the network's, e.g. [-1, 1]; see DIST005)",
                "wrong de-normalisation constants (min/max of another data set or split; see DIST005)",
                "the sampler is broken (see DIST001, PAR, SMP)")),
            observed={**derived, **gap})

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
    # fail_factor: twice the worst healthy one (16.9x, the 300-step network), as for DIST002.
    thresholds = _th({"max_d_factor": 1.5, "max_offset_factor": 1.5, "null_quantile": 0.99, "fail_factor": 35.0})
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
        boot = bootstrap(stats, flux, BOOT_DRAWS, _rng(generator))
        d = own[:-1]
        return {**_counts(s, ref), "_d": d, "_null_d": null[:, :-1], "_null_offset": null[:, -1],
                "_boot": np.stack([boot[:, :-1].mean(axis=1), boot[:, -1]], axis=1),
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
        bad = [(name, v, lim, factor, col, q, lim_f)
               for name, v, lim, factor, col, q, lim_f in (
                   ("mean KS D", o["mean_pixel_d"], lim_d, derived["d_factor"], 0, q_d, th["max_d_factor"]),
                   ("mean spectrum offset", o["mean_offset_z"], lim_z, derived["offset_factor"], 1, q_z,
                    th["max_offset_factor"]))
               if v > lim]
        if not bad:
            return Verdict(Status.PASS, f"flux matches the real spectra wavelength by wavelength: mean KS D "
                           f"{o['mean_pixel_d']:.3f} <= {lim_d:.3f}, mean spectrum offset {o['mean_offset_z']:.3f} "
                           f"<= {lim_z:.3f}", evidence, observed=derived)
        name, v, lim, factor, col, q, lim_f = max(bad, key=lambda b: b[3])
        status, head, gap = _gap(lim_f, th["fail_factor"], f"flux differs from the real spectra wavelength by "
                                 f"wavelength: {name} {v:.3f} vs at most {lim:.3f}", factor, o["_boot"][:, col], q,
                                 th["null_quantile"], o["n_samples"])
        return Verdict(
            status, f"{head}; {100 * frac:.1f} % of wavelengths disagree",
            evidence,
            _ranked_causes(status, (
                "spectra on another wavelength grid: reversed, shifted or resampled on output (see DIST005)",
                "wrong de-normalisation (offset or scale at every wavelength; see DIST002, DIST005)",
                "the model misses features at fixed wavelengths (lines, bands) or adds spurious ones: too few "
                "training steps, or a sampler bug (see PAR, SMP)")),
            observed={**derived, **gap})

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._dist_plots import plot_ks_map

        return [plot_ks_map(o, outdir)]


class DIST004(Check):
    """Samples keep the real spectra's small-scale structure (power per frequency band)"""

    id = "DIST004"
    next_step = ("see dist_power.png: smoother than real means blur or too few steps; noisier means residual noise "
                 "(the last step) or DDIM eta=0 on a weak network, so compare with eta=1")
    trained_only = True
    # A quality figure only, by measurement (benchmarks/results/dist_tiers_cpu.json): a healthy network
    # sampled with DDIM eta=0 leaves 15x the real power at 2-4 px periods, 0.93 decades beyond the
    # allowed range, farther than samples of pure noise (1.26) or lines blurred by 2 px (0.7-0.8);
    # band powers are shares of the variance, so no sample set gets much beyond 1.5 decades. So
    # fail_log10 is off (10 decades) by default; lower it in [tool.diffcheck] to make a gap a gate.
    # What DIST004 sees a bug cause is proven elsewhere: noise (DIST001), the last step (SMP003),
    # training-mode dropout (SMP005).
    thresholds = _th({"log10_tolerance": 0.1, "null_quantile": 0.995, "fail_log10": 10.0})
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
        boot = bootstrap(log_ratio, x, BOOT_DRAWS, _rng(generator))
        periods = [[round(1 / hi, 3), round(1 / lo, 3)] for lo, hi in zip(edges[:-1], edges[1:])]
        return {**_counts(s, ref), "band_periods_px": periods, "power_gen": band_power(x, edges).tolist(),
                "power_real": real.tolist(), "log10_ratio": log_ratio(x).tolist(), "_null": null.values,
                "_boot": boot}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        q = th["null_quantile"]
        lo = np.quantile(o["_null"], 1 - q, axis=0) - th["log10_tolerance"]
        hi = np.quantile(o["_null"], q, axis=0) + th["log10_tolerance"]
        r = np.asarray(o["log10_ratio"])
        excess = np.maximum(lo - r, r - hi)  # > 0 outside [lo, hi]
        worst = int(np.argmax(excess))
        derived = {"log10_low": lo.round(4).tolist(), "log10_high": hi.round(4).tolist(), "worst_band": worst,
                   "worst_ratio": float(10 ** r[worst]), "worst_low": float(10 ** lo[worst]),
                   "worst_high": float(10 ** hi[worst]), "beyond_log10": float(excess[worst])}
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
        b_lo, b_hi = (float(10 ** v) for v in _interval(float(r[worst]), o["_boot"][:, worst], -np.inf))
        beyond = float(excess[worst])
        status = Status.FAIL if beyond > th["fail_log10"] else Status.QUALITY
        derived.update({"ratio_low": b_lo, "ratio_high": b_hi})
        body = (f"{band}: {10 ** r[worst]:.3g}x the real power (68 % interval {b_lo:.3g}-{b_hi:.3g}x), allowed "
                f"{10 ** lo[worst]:.3g}-{10 ** hi[worst]:.3g}x; {beyond:.2f} decades beyond, a bug beyond "
                f"{th['fail_log10']:g}")
        return Verdict(
            status,
            f"{what} ({body})" if status is Status.FAIL else f"sample quality, not a bug: {what} ({body})",
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


class DIST005(Check):
    """The pipeline's de-normalisation inverts the normalisation training used (real spectra round-trip)"""

    id = "DIST005"
    # Structural, not a sample statistic: real spectra, normalised as training normalised them
    # (the pipeline's declared normaliser), must come back from Pipeline.to_flux as they went in.
    # Where they do not, every sample is in the wrong units or on the wrong grid however good the
    # network is: a proven contradiction, which a flux comparison (DIST002/003) alone cannot tell
    # from a model that is merely short of real spectra.
    stage = Stage.SAMPLER
    explains = frozenset({"DIST002", "DIST003"})
    next_step = ("make Pipeline.to_flux undo exactly what training applied to the data: the same kind of scaling "
                 "with the same constants (the training set's min/max), in the same wavelength order; or declare "
                 "the normaliser training really used")
    #: Largest round-trip error allowed, as a fraction of the real flux range (float32 arithmetic: ~1e-7).
    thresholds = _th({"max_error": 1e-3})
    threshold_bounds = _th({"max_error": (0.0, 1.0)})
    #: Shifts (pixels) tried when naming what the round trip does.
    MAX_SHIFT = 8

    def measure(self, pipeline: Pipeline, dist_reference: Reference) -> dict[str, Any]:
        ref = dist_reference
        if ref.units != "physical":
            raise Skip("the pipeline's normalisation is not invertible (per-spectrum scaling): samples are compared "
                       "in the network's space, so there is no de-normalisation to check")
        flux = ref.flux
        back = np.asarray(pipeline.to_flux(ref.x.copy()), dtype=np.float64)
        if back.shape != flux.shape:
            raise ValueError(f"Pipeline.to_flux returned shape {back.shape} for real spectra of shape {flux.shape}")
        span = float(np.ptp(flux)) or 1.0
        out = {"n_spectra": int(flux.shape[0]), "flux_range": span, "normaliser": pipeline.normaliser.to_dict(),
               "finite": bool(np.isfinite(back).all())}
        if not out["finite"]:
            return {**out, "max_error": float("inf"), "what": "nonfinite"}

        def rel(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.max(np.abs(a - b)) / span)

        slope, offset = np.polyfit(flux.ravel(), back.ravel(), 1)
        fitted = slope * flux + offset
        shifts = {k: rel(back[:, max(k, 0):flux.shape[1] + min(k, 0)], flux[:, max(-k, 0):flux.shape[1] - max(k, 0)])
                  for k in range(-self.MAX_SHIFT, self.MAX_SHIFT + 1) if k}
        best_shift = min(shifts, key=shifts.get)
        return {**out, "max_error": rel(back, flux), "mean_error": float(np.mean(np.abs(back - flux)) / span),
                "identity_error": rel(back, ref.x), "reversed_error": rel(back, flux[:, ::-1]),
                "affine_slope": float(slope), "affine_offset": float(offset), "affine_error": rel(back, fitted),
                "best_shift_px": int(best_shift), "shift_error": shifts[best_shift],
                "back_range": [float(back.min()), float(back.max())], "flux_range_values": [float(flux.min()),
                                                                                          float(flux.max())]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        n, lim = o["n_spectra"], th["max_error"]
        if o.get("what") == "nonfinite":
            return Verdict(Status.FAIL, "Pipeline.to_flux returns NaN or Inf for real spectra in the network's space",
                           causes=("a division by a normalisation constant that is 0 (max == min)",))
        err = o["max_error"]
        evidence = (f"{n} real spectra normalised with the declared normaliser ({o['normaliser']['kind']}, "
                    f"lo {o['normaliser']['lo']:.4g}, hi {o['normaliser']['hi']:.4g}), then Pipeline.to_flux: "
                    f"largest error {err:.3g} of the flux range {o['flux_range']:.4g} (allowed {lim:g})",
                    f"range after the round trip {o['back_range'][0]:.4g}..{o['back_range'][1]:.4g}, "
                    f"real {o['flux_range_values'][0]:.4g}..{o['flux_range_values'][1]:.4g}")
        if err <= lim:
            return Verdict(Status.PASS, f"Pipeline.to_flux inverts the training normalisation: {n} real spectra "
                           f"round-trip within {err:.2g} of the flux range (<= {lim:g})", evidence)
        causes = {"constants": "to_flux de-normalises with other constants than training normalised with "
                               "(percentiles, another split, another data set)",
                  "none": "the samples are saved without de-normalisation",
                  "grid": "the writer reverses or shifts the wavelength grid",
                  "declared": "the pipeline declares another normaliser than the one training used"}
        if o["identity_error"] <= lim:
            what, first = ("returns its input unchanged: samples stay in the network's space "
                           f"({o['back_range'][0]:.3g}..{o['back_range'][1]:.3g}), never de-normalised"), "none"
        elif o["reversed_error"] <= lim:
            what, first = "reverses the wavelength order: the blue end comes back at the red end", "grid"
        elif o["shift_error"] <= lim:
            what, first = f"shifts the spectra by {o['best_shift_px']} px along the wavelength grid", "grid"
        elif o["affine_error"] <= lim:
            what, first = (f"rescales the flux: it returns {o['affine_slope']:.4g} x flux + {o['affine_offset']:.4g} "
                           "(other constants than the normalisation training used)"), "constants"
        else:
            what, first = "does not return the spectra it was given", "constants"
        return Verdict(
            Status.FAIL,
            f"Pipeline.to_flux {what}; the round trip of {n} real spectra is off by up to {err:.3g} of the flux range "
            f"(allowed {lim:g})",
            evidence, (causes.pop(first), *causes.values()))

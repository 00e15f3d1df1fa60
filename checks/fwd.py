"""FWD: the forward process q(x_t | x_0), measured on the pipeline's own ``q_sample``.

The closed form (Ho et al. 2020, eq. 4) is x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps.
These checks measure what the pipeline actually does and compare it with the schedule it declares.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch
from scipy import stats

from diffcheck.engine.check import Check
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.measure.probes import Probe
from diffcheck.engine.results import Status, Verdict

__all__ = ["FWD001", "FWD002", "FWD003", "FWD004", "FWD005"]

_th = MappingProxyType


def _nonfinite_t(m: dict) -> list[int]:
    """Timesteps of forward_moments where q_sample's x_t held NaN or Inf (its moments are not finite)."""
    bad = ~(np.isfinite(m["a_hat"]) & np.isfinite(m["s_hat"]))
    return [int(t) for t in np.asarray(m["t"])[bad]]


def _nonfinite_verdict(o: Mapping[str, Any]) -> Verdict:
    """FAIL: q_sample returned NaN or Inf, so no moment of x_t can be judged (never a PASS or WARN)."""
    bad, n = o["nonfinite_t"], len(o["t"])
    return Verdict(Status.FAIL, f"q_sample returns NaN or Inf at {len(bad)} of {n} probed timesteps (first t={bad[0]})",
                   (f"non-finite x_t at t = {', '.join(map(str, bad[:12]))}{', ...' if len(bad) > 12 else ''}",),
                   ("a division by sqrt(1 - alpha_bar) or sqrt(alpha_bar) that reaches 0",
                    "alpha_bar indexed past its end, or betas outside (0, 1)",
                    "NaN in the data batch (see --data)"))


class FWD001(Check):
    """x_t moments over noise draws match sqrt(alpha_bar_t)*x0 and sqrt(1-alpha_bar_t)"""

    id = "FWD001"
    explains = frozenset({"FWD003", "FWD004", "PAR001", "TEMB002", "TEMB004", "LOSS001", "TOY001", "DIST"})
    next_step = ("print your q_sample's signal and noise coefficients at a few t next to sqrt(alpha_bar_t) and "
                 "sqrt(1 - alpha_bar_t) of the declared schedule: the same T and betas, no off-by-one, and the noise "
                 "scaled by the square root of 1 - alpha_bar")
    thresholds = _th({"max_coef_error": 0.01, "z_margin": 5.0, "max_shape_ratio": 2.0})

    def measure(self, pipeline: Pipeline, forward_moments: dict, forward_trajectory: dict) -> dict[str, Any]:
        m = forward_moments
        return {
            "draws": m["draws"], "spectra": m["spectra"], "t": m["t"].tolist(),
            "signal": m["a_hat"].tolist(), "noise": m["s_hat"].tolist(),
            "declared_signal": m["a_decl"].tolist(), "declared_noise": m["s_decl"].tolist(),
            "signal_se": m["se_a"].tolist(), "noise_se": m["se_s"].tolist(),
            "max_shape_ratio": float(m["shape_ratio"].max()),
            "median_timestep_shift": _timestep_shift(pipeline.schedule.signal_scale(), m),
            "nonfinite_t": _nonfinite_t(m),
            "_trajectory": forward_trajectory,
        }

    def judge(self, observed: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if observed["nonfinite_t"]:
            return _nonfinite_verdict(observed)
        o = dict(observed)
        a, s = np.array(o["signal"]), np.array(o["noise"])
        da, ds = np.abs(a - o["declared_signal"]), np.abs(s - o["declared_noise"])
        # Error beyond the statistical margin: sampling noise alone cannot make it positive.
        excess = np.maximum(da - th["z_margin"] * np.array(o["signal_se"]),
                            ds - th["z_margin"] * np.array(o["noise_se"])).clip(min=0.0)
        w = int(np.argmax(excess))
        derived = dict(max_coef_error=float(excess.max()), worst_t=o["t"][w], signal_at_worst=float(a[w]),
                       declared_signal_at_worst=o["declared_signal"][w], noise_at_worst=float(s[w]),
                       declared_noise_at_worst=o["declared_noise"][w])
        o.update(derived)
        evidence = (
            f"fit over {o['draws']} noise draws x {o['spectra']} spectra at {len(o['t'])} timesteps "
            f"(errors counted beyond {th['z_margin']:g} standard errors); "
            f"worst t={o['worst_t']}: signal coefficient {o['signal_at_worst']:.4f} "
            f"(declared {o['declared_signal_at_worst']:.4f}), noise std {o['noise_at_worst']:.4f} "
            f"(declared {o['declared_noise_at_worst']:.4f})",
            f"max shape ratio {o['max_shape_ratio']:.2f} (1 = mean proportional to x0; "
            f"limit {th['max_shape_ratio']:g})",
        )
        if o["max_coef_error"] <= th["max_coef_error"] and o["max_shape_ratio"] <= th["max_shape_ratio"]:
            return Verdict(Status.PASS, f"x_t follows the declared schedule (max coefficient error "
                           f"{o['max_coef_error']:.4f} vs {th['max_coef_error']:g})", evidence, observed=derived)
        if o["max_coef_error"] > th["max_coef_error"]:
            summary = (f"x_t does not follow the declared schedule: at t={o['worst_t']} signal "
                       f"{o['signal_at_worst']:.3f} vs sqrt(alpha_bar)={o['declared_signal_at_worst']:.3f}, noise "
                       f"{o['noise_at_worst']:.3f} vs {o['declared_noise_at_worst']:.3f} (max coefficient error "
                       f"{o['max_coef_error']:.3f} vs {th['max_coef_error']:g})")
        else:
            summary = (f"the mean of x_t is not proportional to x0 (shape ratio {o['max_shape_ratio']:.2f} vs "
                       f"{th['max_shape_ratio']:g}): q_sample transforms x0 beyond scaling it")
        if o["median_timestep_shift"]:
            evidence += (f"the measured signal matches the declared schedule {o['median_timestep_shift']:+d} "
                         "steps away (median over t): an indexing offset",)
        causes = ("q_sample uses another schedule than the one declared (beta range, T, linear vs cosine)",
                  "x_t is re-normalised, clipped or rescaled after noising (see FWD002)",
                  "timesteps indexed off by one or reversed (alpha_bar[t-1], alpha_bar[T-1-t])",
                  "the coefficients are wrong: alpha_bar for sqrt(alpha_bar), or 1-alpha_bar for its sqrt")
        return Verdict(Status.FAIL, summary, evidence, causes, observed=derived)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._fwd_plots import plot_coefficients, plot_trajectory  # matplotlib only when figures are made

        return [plot_coefficients(o, outdir), plot_trajectory(o["_trajectory"], outdir)]


def _timestep_shift(signal: np.ndarray, m: dict) -> int:
    """Median offset between each t and the declared t whose signal matches the measured one,
    over timesteps where one step of the schedule is resolvable (|d signal/dt| > 2 SE)."""
    slope = np.abs(np.gradient(signal))[m["t"]]
    ok = slope > 2 * m["se_a"]
    if not ok.any():
        return 0
    effective = np.array([int(np.argmin(np.abs(signal - a))) for a in m["a_hat"][ok]])
    return int(np.median(effective - m["t"][ok]))


class FWD002(Check):
    """x_t is not re-normalised per sample (its statistics follow x0's)"""

    id = "FWD002"
    explains = frozenset({"FWD001", "FWD003", "PAR001", "TEMB002", "TEMB004", "LOSS001", "TOY001", "DIST"})
    next_step = ("remove the per-sample normalisation of x_t ((x - mean) / std, min-max) from q_sample and the "
                 "training step: x_t must be sqrt(alpha_bar)·x0 + sqrt(1 - alpha_bar)·eps; normalise x0 once, in the "
                 "data loader")
    thresholds = _th({"min_response": 0.8, "min_affine_r2": 0.9})
    threshold_bounds = _th({"min_affine_r2": (0.0, 1.0)})
    #: Probes span a factor 4 in amplitude and +-0.4 in offset around the given spectra.
    SCALES, SHIFTS, MIN_ALPHA_BAR = (0.25, 1.0), (-0.4, 0.4), 0.9

    @torch.no_grad()
    def measure(self, pipeline: Pipeline, x0_probe: Probe, generator: torch.Generator) -> dict[str, Any]:
        x0 = x0_probe.x0
        k = x0.shape[0]
        c = torch.linspace(*self.SCALES, k, device=x0.device, dtype=x0.dtype).view(-1, 1, 1)
        d = torch.linspace(*self.SHIFTS, k, device=x0.device, dtype=x0.dtype).flip(0).view(-1, 1, 1)
        probes = c * x0 + d
        ab = pipeline.schedule.alpha_bar
        t_max = int(np.flatnonzero(ab >= self.MIN_ALPHA_BAR).max(initial=0))
        rows = [self._response(pipeline, probes, int(t), ab[int(t)], generator)
                for t in np.unique(np.round(np.linspace(0, t_max, 6)).astype(int))]
        worst = min(rows, key=lambda r: min(r["std_response"], r["mean_response"]))
        return {"response": min(worst["std_response"], worst["mean_response"]), **worst, "probes": k,
                "timesteps": [r["t"] for r in rows]}

    @staticmethod
    def _response(pipeline: Pipeline, probes: torch.Tensor, t: int, ab: float, gen: torch.Generator) -> dict:
        noise = torch.randn(probes.shape, generator=gen, device=probes.device)
        tt = torch.full((probes.shape[0],), t, dtype=torch.long, device=probes.device)
        q = pipeline.q_sample(probes, tt, noise).double().flatten(1).cpu().numpy()
        z = (np.sqrt(ab) * probes.double() + np.sqrt(1 - ab) * noise.double()).flatten(1).cpu().numpy()
        sq, sz = q.std(axis=1), z.std(axis=1)
        std_resp = float(np.polyfit(np.log(sz), np.log(np.maximum(sq, 1e-12)), 1)[0])
        mean_resp = float(np.polyfit(z.mean(axis=1), q.mean(axis=1), 1)[0])
        qc, zc = q - q.mean(axis=1, keepdims=True), z - z.mean(axis=1, keepdims=True)
        r2 = (qc * zc).sum(1) ** 2 / np.maximum((qc * qc).sum(1) * (zc * zc).sum(1), 1e-300)
        return {"t": t, "std_response": std_resp, "mean_response": mean_resp, "min_affine_r2": float(r2.min()),
                "xt_std_min": float(sq.min()), "xt_std_max": float(sq.max()),
                "expected_std_min": float(sz.min()), "expected_std_max": float(sz.max()),
                "xt_mean_min": float(q.mean(axis=1).min()), "xt_mean_max": float(q.mean(axis=1).max()),
                "expected_mean_min": float(z.mean(axis=1).min()), "expected_mean_max": float(z.mean(axis=1).max())}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        evidence = (
            f"{o['probes']} probes a*x0+b (a in 0.25..1, b in -0.4..0.4) noised at t={o['t']}: per-sample std of "
            f"x_t {o['xt_std_min']:.3f}..{o['xt_std_max']:.3f}, closed form {o['expected_std_min']:.3f}.."
            f"{o['expected_std_max']:.3f}; per-sample mean {o['xt_mean_min']:.3f}..{o['xt_mean_max']:.3f}, "
            f"closed form {o['expected_mean_min']:.3f}..{o['expected_mean_max']:.3f}",
            f"response of x_t's per-sample std to x0's: {o['std_response']:.3f}; of its mean: "
            f"{o['mean_response']:.3f} (1 = follows x0, 0 = fixed by a re-normalisation)",
        )
        if o["min_affine_r2"] < th["min_affine_r2"]:
            return Verdict(Status.SKIP, f"cannot judge: x_t is not an affine function of the closed form per "
                           f"sample (R2 {o['min_affine_r2']:.3f} at t={o['t']} vs >= {th['min_affine_r2']:g}); "
                           "FWD001 judges the schedule", evidence)
        if o["response"] >= th["min_response"]:
            return Verdict(Status.PASS, f"x_t keeps x0's amplitude and offset (response {o['response']:.3f} vs "
                           f">= {th['min_response']:g})", evidence)
        which = "std" if o["std_response"] < th["min_response"] else "mean"
        lo, hi, elo, ehi = (round(o[f"{k}_{which}_{m}"], 3) + 0.0  # no "-0.000"
                            for k in ("xt", "expected") for m in ("min", "max"))
        summary = (f"x_t is re-normalised per sample: its per-sample {which} stays {lo:.3f}..{hi:.3f} while the "
                   f"closed form's spans {elo:.3f}..{ehi:.3f} at t={o['t']} (response {round(o['response'], 3) + 0.0:.3f} vs "
                   f">= {th['min_response']:g})")
        causes = ("x_t standardised per sample ((x - mean) / std) or min-max scaled inside q_sample or the "
                  "training step (the network never sees the noise level)",
                  "a normalisation layer on the raw input inside the model wrapper, applied before q_sample returns",
                  "instance/window normalisation applied in training but not in the sampler")
        return Verdict(Status.FAIL, summary, evidence, causes)


class FWD003(Check):
    """x_T, the end of the forward process, is distributed as N(0, 1)"""

    id = "FWD003"
    explains = frozenset({"DIST"})
    next_step = ("look at q_sample(x0, T-1, noise): if the schedule leaves signal there, see FWD004 (beta_end, T); "
                 "otherwise check the noise draw (torch.randn, not rand) and its scale")
    thresholds = _th({"warn_ks_d": 0.01, "fail_ks_d": 0.05})

    def measure(self, forward_moments: dict) -> dict[str, Any]:
        x_T = forward_moments["x_T"].astype(np.float64)
        res = stats.kstest(x_T, "norm")
        return {"ks_d": float(res.statistic), "n": int(x_T.size), "mean": float(x_T.mean()),
                "std": float(x_T.std()), "t": int(forward_moments["t"][-1]),
                "nonfinite_values": int((~np.isfinite(x_T)).sum())}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if o["nonfinite_values"]:
            return Verdict(Status.FAIL, f"x_T, the sampler's starting point, holds NaN or Inf: {o['nonfinite_values']} "
                           f"of {o['n']} values at t={o['t']}",
                           causes=("q_sample divides by a coefficient that reaches 0 at t=T-1",
                                   "alpha_bar indexed past its end at the last timestep"))
        evidence = (f"KS D={o['ks_d']:.4f} against N(0,1) over n={o['n']} values of x_T at t={o['t']}; "
                    f"mean {o['mean']:+.4f}, std {o['std']:.4f}",)
        if o["ks_d"] <= th["warn_ks_d"]:
            return Verdict(Status.PASS, f"x_T is N(0,1) (KS D={o['ks_d']:.4f} vs {th['warn_ks_d']:g})", evidence)
        status = Status.FAIL if o["ks_d"] > th["fail_ks_d"] else Status.WARN
        limit = th["fail_ks_d"] if status is Status.FAIL else th["warn_ks_d"]
        summary = (f"x_T is not N(0,1), the sampler's starting point: KS D={o['ks_d']:.4f} (mean {o['mean']:+.3f}, "
                   f"std {o['std']:.3f}) vs {limit:g}")
        causes = ("the schedule leaves signal in x_T (see FWD004)",
                  "the noise is scaled or shifted in q_sample (std should be 1 at t=T-1)",
                  "q_sample re-normalises or clips x_t (see FWD002)")
        return Verdict(status, summary, evidence, causes)


class FWD004(Check):
    """Terminal SNR is near zero: no data leaks into x_T"""

    id = "FWD004"
    explains = frozenset({"FWD003", "SMP001", "DIST"})
    next_step = ("raise beta_end or T, or use a schedule whose alpha_bar_T is ~0 (cosine, or rescaled to zero "
                 "terminal SNR): the sampler starts from N(0, 1), which is not what training saw at T")
    thresholds = _th({"max_terminal_snr": 1e-3})

    def measure(self, pipeline: Pipeline, forward_moments: dict) -> dict[str, Any]:
        m = forward_moments
        a, s = max(float(m["a_hat"][-1]), 0.0), float(m["s_hat"][-1])
        return {"terminal_snr": a * a / (s * s), "signal_coefficient": a,
                "declared_terminal_snr": float(pipeline.schedule.snr()[-1]),
                "declared_signal_coefficient": float(pipeline.schedule.signal_scale()[-1]),
                "t": int(m["t"][-1])}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if not np.isfinite(o["terminal_snr"]):
            return Verdict(Status.FAIL, f"terminal SNR is not finite ({o['terminal_snr']}): q_sample returns NaN or "
                           f"Inf at t={o['t']}, so what the sampler starts from is unknown",
                           causes=("q_sample divides by a coefficient that reaches 0 at t=T-1",
                                   "alpha_bar indexed past its end at the last timestep"))
        evidence = (f"measured on q_sample at t={o['t']}: signal coefficient {o['signal_coefficient']:.4f}, "
                    f"SNR {o['terminal_snr']:.3g}; declared schedule: sqrt(alpha_bar_T)="
                    f"{o['declared_signal_coefficient']:.4f}, SNR {o['declared_terminal_snr']:.3g}",)
        if o["terminal_snr"] <= th["max_terminal_snr"]:
            return Verdict(Status.PASS, f"terminal SNR {o['terminal_snr']:.2g} (signal coefficient "
                           f"{o['signal_coefficient']:.4f}) vs <= {th['max_terminal_snr']:g}", evidence)
        summary = (f"data leaks into x_T: terminal SNR {o['terminal_snr']:.3g} (signal coefficient "
                   f"{o['signal_coefficient']:.3f}) vs <= {th['max_terminal_snr']:g}; the sampler starts from pure "
                   "noise that training never showed the network")
        causes = ("beta_end too small or T too short for the schedule (the linear 1e-4..0.02 schedule needs T~1000)",
                  "a schedule without zero terminal SNR: samples keep a mean-level bias (Lin et al. 2024); "
                  "rescale the schedule or accept the bias")
        return Verdict(Status.WARN, summary, evidence, causes)


class FWD005(Check):
    """SNR decreases strictly with t, in the declared schedule and in q_sample"""

    id = "FWD005"
    explains = frozenset({"FWD001", "FWD003", "FWD004", "PAR001", "TEMB002", "TEMB004", "LOSS001", "TOY001", "DIST"})
    next_step = ("check the index into alpha_bar in q_sample and the loss: alpha_bar[t], not alpha_bar[T-1-t] or a "
                 "flipped schedule array; the SNR must fall as t grows")
    thresholds = _th({"rise_tolerance": 0.25, "min_signal_se": 10.0})

    def measure(self, pipeline: Pipeline, forward_moments: dict) -> dict[str, Any]:
        betas, m = pipeline.schedule.betas, forward_moments
        bad = np.flatnonzero((betas <= 0) | (betas >= 1))
        snr = np.maximum(m["a_hat"], 0.0) ** 2 / m["s_hat"] ** 2
        return {"first_bad_beta_t": int(bad[0]) if bad.size else -1,
                "first_bad_beta": float(betas[bad[0]]) if bad.size else 0.0,
                "t": m["t"].tolist(), "measured_snr": snr.tolist(),
                "signal_z": (m["a_hat"] / m["se_a"]).tolist(), "nonfinite_t": _nonfinite_t(m)}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if o["first_bad_beta_t"] >= 0:
            return Verdict(Status.FAIL, f"declared schedule is not a diffusion: beta at t={o['first_bad_beta_t']} "
                           f"is {o['first_bad_beta']:.4g}, outside (0, 1), so alpha_bar is not strictly decreasing",
                           causes=("betas built with the wrong sign or range", "betas indexed past their end"))
        if o["nonfinite_t"]:
            return _nonfinite_verdict(o)
        t, snr = o["t"], o["measured_snr"]
        # Only where the signal is measured well above its standard error is its SNR comparable.
        pts = [i for i, z in enumerate(o["signal_z"]) if z > th["min_signal_se"]]
        if len(pts) < 2:
            return Verdict(Status.FAIL, f"the SNR of q_sample cannot be ordered: its signal stands above "
                           f"{th['min_signal_se']:g} standard errors at {len(pts)} of {len(t)} probed timesteps "
                           "(at least 2 needed)",
                           causes=("q_sample drops x0 at almost every t (see FWD001)",
                                   "a schedule whose alpha_bar is ~0 from the first steps on"),
                           observed={"measured_timesteps": len(pts)})
        for i, j in zip(pts, pts[1:]):
            if snr[j] > snr[i] * (1 + th["rise_tolerance"]):
                return Verdict(Status.FAIL, f"SNR of q_sample rises with t: {snr[i]:.3g} at t={t[i]} to "
                               f"{snr[j]:.3g} at t={t[j]} (tolerance {th['rise_tolerance']:g})",
                               ("measured SNR by t: " + ", ".join(f"{t[k]}: {snr[k]:.3g}" for k in pts),),
                               ("timesteps reversed inside q_sample (alpha_bar[T-1-t])",
                                "a schedule array that is not sorted"))
        return Verdict(Status.PASS, f"SNR decreases strictly with t (declared betas in (0,1); measured at "
                       f"{len(pts)} timesteps)", observed={"measured_timesteps": len(pts)})

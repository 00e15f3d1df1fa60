"""SMP: the sampler's contract, from a trace of its calls to the network (a spy) under oracles.

Judged by effect, not by index: where the sampler starts is judged by the SNR there (diffusers'
"leading" spacing starts at 980 of 1000, which is fine where alpha_bar is ~0), where it ends by
whether it lands on x0* under the oracle (DDIM loops end at t > 0 and jump to x0 legitimately).
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch

from diffcheck.engine.check import Check
from diffcheck.errors import Skip
from diffcheck.measure.oracles import timestep_index
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.engine.results import Status, Verdict

__all__ = ["SMP001", "SMP002", "SMP003", "SMP004", "SMP005", "SMP006", "SMP007"]

_th = MappingProxyType


def _decoded_run(sampler_oracles: dict, decoding: str) -> tuple[str, dict]:
    """The oracle run of the decoding the sampler uses (the ``decoding`` fixture: PAR002's, with the
    run's PAR002 thresholds)."""
    return decoding, sampler_oracles["runs"][decoding]


class SMP001(Check):
    """The sampler starts where the schedule has no signal left"""

    id = "SMP001"
    explains = frozenset({"DIST"})
    next_step = ("start the sampler at t = T-1 ('trailing' or 'linspace' timestep spacing in diffusers) or use more "
                 "steps, so that its first x_t is pure noise")
    thresholds = _th({"max_start_snr": 0.01})

    def measure(self, pipeline: Pipeline, sampler_oracles: dict, decoding: str) -> dict[str, Any]:
        _, run = _decoded_run(sampler_oracles, decoding)
        T, first = pipeline.schedule.T, run["t"][0]
        idx = int(timestep_index(torch.tensor([first]), T)[0])
        snr = pipeline.schedule.snr()
        return {"first_t": first, "first_index": idx, "start_snr": float(snr[idx]),
                "terminal_snr": float(snr[-1]), "T": T, "in_range": "index" not in run["conventions"] or first <= T - 1}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        limit = max(th["max_start_snr"], 2 * o["terminal_snr"])
        if not o["in_range"]:
            return Verdict(Status.FAIL, f"the sampler starts at t={o['first_t']:g}, outside the trained range "
                           f"0..{o['T'] - 1}", causes=("a loop over range(T, 0, -1) that passes t instead of t-1",))
        if o["start_snr"] <= limit:
            return Verdict(Status.PASS, f"starts at t={o['first_t']:g} where SNR is {o['start_snr']:.2g} "
                           f"(vs <= {limit:.2g})", observed={"limit": limit})
        return Verdict(Status.FAIL, f"the sampler starts at t={o['first_t']:g} where SNR is {o['start_snr']:.3g} "
                       f"(vs <= {limit:.2g}): x_T ~ N(0,1) meets a noise level that still carries signal",
                       causes=("timestep spacing (e.g. 'leading' with few steps) skips the noisiest timesteps",
                               "the sampler's step count or offset does not reach T-1"), observed={"limit": limit})


class SMP002(Check):
    """Timesteps strictly decrease through the sampler"""

    id = "SMP002"
    explains = frozenset({"SMP003", "SMP007", "DIST"})
    next_step = ("print the sampler's timestep list: strictly decreasing, no repeats (build it descending, round "
                 "once, then deduplicate)")

    def measure(self, sampler_oracles: dict, decoding: str) -> dict[str, Any]:
        t = np.asarray(_decoded_run(sampler_oracles, decoding)[1]["t"], dtype=float)
        # NaN compares false with everything: a NaN t would never count as a violation
        bad = np.flatnonzero(~(np.diff(t) < 0))
        nonfinite = np.flatnonzero(~np.isfinite(t))
        return {"steps": int(t.size), "first_violation": int(bad[0]) if bad.size else -1,
                "t_at_violation": [float(t[bad[0]]), float(t[bad[0] + 1])] if bad.size else [],
                "first_nonfinite_call": int(nonfinite[0]) if nonfinite.size else -1}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if o["first_nonfinite_call"] >= 0:
            return Verdict(Status.FAIL, f"the sampler passes a non-finite t to the network at call "
                           f"{o['first_nonfinite_call']} of {o['steps']}",
                           causes=("a timestep grid built with a division by 0 (e.g. T // steps with steps > T)",
                                   "a t rescaled by a NaN factor before the network call"))
        if o["steps"] == 0:
            return Verdict(Status.FAIL, "the sampler never called the network",
                           causes=("a sampler loop over an empty timestep list",))
        if o["first_violation"] < 0:
            return Verdict(Status.PASS, f"{o['steps']} network calls, t strictly decreasing")
        a, b = o["t_at_violation"]
        return Verdict(Status.FAIL, f"t does not decrease at call {o['first_violation']}: {a:g} then {b:g}",
                       causes=("a timestep list built in ascending order", "a repeated timestep from rounding"))


class SMP003(Check):
    """The sampler lands on x0, finite: its final step removes all the noise (point oracle)"""

    id = "SMP003"
    explains = frozenset({"DIST"})
    next_step = ("make the last step return the x0 estimate at t=0 without adding noise: the loop must include t=0, "
                 "add noise only for t > 0, and nothing may post-process the output")
    requires = frozenset({"PAR002"})  # landing means something only under the decoded parameterisation
    thresholds = _th({"max_landing_error": 1e-3})

    def measure(self, sampler_oracles: dict, decoding: str) -> dict[str, Any]:
        kind, run = _decoded_run(sampler_oracles, decoding)
        return {"kind": kind, "landing_error": run["max_error"], "last_t": run["t"][-1],
                "target_max": sampler_oracles["target_max"], "finite": run["finite"],
                "affine_scale": run["affine_scale"], "affine_offset": run["affine_offset"],
                "affine_error": run["affine_error"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if not o["finite"]:
            return Verdict(Status.FAIL, f"the sampler returns NaN or Inf under the exact {o['kind']} oracle",
                           causes=("a division by sqrt(alpha_bar) or sqrt(1 - alpha_bar) that reaches 0",
                                   "a schedule table indexed past its end"))
        if o["landing_error"] <= th["max_landing_error"]:
            return Verdict(Status.PASS, f"lands on x0* within {o['landing_error']:.2g} (vs "
                           f"{th['max_landing_error']:g}; last network call at t={o['last_t']:g})")
        if o["affine_error"] <= th["max_landing_error"]:
            return Verdict(Status.FAIL, f"the sampler's output is x0* rescaled: {o['affine_scale']:.4g} x0* "
                           f"{o['affine_offset']:+.4g} (landing error {o['landing_error']:.3g} vs "
                           f"{th['max_landing_error']:g}; the rescaled x0* fits within {o['affine_error']:.2g})",
                           (f"under the exact {o['kind']} oracle the samples are an exact linear map of x0*: the steps are "
                            "right, the units of what the sampler returns are not",),
                           ("the sampler returns the network's [-1, 1] values where the pipeline declares physical flux "
                            "(returns='flux'), or flux where it declares the network's space",
                            "the output is de-normalised with other constants than the data were normalised with",
                            "the output is rescaled after the last step"))
        return Verdict(Status.FAIL, f"the sampler stops short of x0: samples are {o['landing_error']:.3g} from x0* "
                       f"under the exact {o['kind']} oracle (vs {th['max_landing_error']:g}); last network call at "
                       f"t={o['last_t']:g}",
                       causes=("the DDPM loop skips its t=0 step, leaving that step's noise in every sample",
                               "the final step adds noise (sigma_0 != 0) or does not jump to alpha_bar = 1",
                               "clipping of x0 predictions cuts the data (see SMP006)",
                               "the sampler post-processes its output (smoothing, rescaling) after the last step"))


class SMP004(Check):
    """The sampler passes t to the network on the same scale as training"""

    id = "SMP004"
    explains = frozenset({"TEMB003", "TOY001", "DIST"})
    next_step = ("pass t to the network on the scale training used: compare the time argument in the training loss "
                 "with the sampler's (integer index, t/T or t·1000/T)")

    def measure(self, loss_oracles: dict, sampler_oracles: dict, decoding: str) -> dict[str, Any]:
        kind, run = _decoded_run(sampler_oracles, decoding)
        train = loss_oracles["time"][kind]
        return {"training_conventions": train["conventions"], "training_t_max": train["t_max"],
                "training_dtypes": train["dtypes"], "sampler_conventions": run["conventions"],
                "sampler_t_max": run["t_max"], "sampler_dtypes": run["dtypes"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        names = {"index": "integer t (0..T-1)", "unit": "t/T in [0, 1]", "x1000": "t*1000/T"}
        tr, sm = set(o["training_conventions"]), set(o["sampler_conventions"])
        if tr == sm:
            return Verdict(Status.PASS, f"both pass {', '.join(names[c] for c in sorted(tr))} "
                           f"(max {o['sampler_t_max']:g} vs {o['training_t_max']:g})")
        return Verdict(Status.FAIL, f"the sampler passes {', '.join(names[c] for c in sorted(sm))} (max "
                       f"{o['sampler_t_max']:g}) but training passes {', '.join(names[c] for c in sorted(tr))} "
                       f"(max {o['training_t_max']:g})",
                       causes=("the sampler normalises t (t/T) for a network trained on integer steps, or the reverse",
                               "a scheduler's timesteps (x1000) passed to a network trained on indices"))


class SMP005(Check):
    """The network is in eval mode while sampling (no dropout noise)"""

    id = "SMP005"
    explains = frozenset({"DIST"})
    next_step = ("call model.eval() (and use torch.no_grad()) in the sampling entry point, before the loop")

    thresholds = _th({"max_mode_change": 1e-6})

    def measure(self, network_mode: dict) -> dict[str, Any]:
        return {"training_mode": network_mode["training"], "first_t": network_mode["t"],
                "repeat_change": network_mode.get("repeat_change", 0.0),
                "eval_change": network_mode.get("eval_change", 0.0)}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if not o["training_mode"]:
            return Verdict(Status.PASS, "network in eval mode at the sampler's first call")
        change = max(o["repeat_change"], o["eval_change"])
        evidence = (f"at the first call (t={o['first_t']:g}), relative to the output: a second call in training "
                    f"mode changes it by {o['repeat_change']:.3g}, the same call in eval mode by "
                    f"{o['eval_change']:.3g}",)
        if not change > th["max_mode_change"]:  # NaN is not a pass
            return Verdict(Status.PASS, f"the network samples in training mode, but nothing in it depends on the mode "
                           f"(output change {change:.2g} vs <= {th['max_mode_change']:g}: no active dropout or batch "
                           "statistics)", evidence)
        return Verdict(Status.FAIL, f"the network is in training mode while sampling (first call, t={o['first_t']:g}): "
                       f"its output changes by {change:.3g} of its size between calls or against eval mode "
                       f"(vs <= {th['max_mode_change']:g}): dropout or batch statistics add noise to every step",
                       evidence, causes=("model.eval() missing in the sampling entry point",))


class SMP006(Check):
    """x0 predictions are not clipped inside the data range"""

    id = "SMP006"
    explains = frozenset({"TOY001", "DIST"})
    next_step = ("set the x0 clip range to the data's normalised range ([-1, 1] for min-max scaling) or turn "
                 "clipping off")
    thresholds = _th({"max_saturated": 0.01})

    requires = frozenset({"PAR002"})

    def measure(self, clip_probe: dict) -> dict[str, Any]:
        if clip_probe["saturated_fraction"] is None:
            raise Skip("the sampler's callback reports no x0_hat")
        return {"saturated_fraction": clip_probe["saturated_fraction"], "target_max": clip_probe["target_max"],
                "kind": clip_probe["kind"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if o["saturated_fraction"] <= th["max_saturated"]:
            return Verdict(Status.PASS, f"{o['saturated_fraction']:.2%} of x0 predictions at the extreme "
                           f"(vs <= {th['max_saturated']:.0%})")
        return Verdict(Status.FAIL, f"{o['saturated_fraction']:.1%} of x0 predictions are pinned at one value "
                       f"(vs <= {th['max_saturated']:.0%}) for a target within ±{o['target_max']:.2f}: the clip range "
                       "cuts the data", causes=("clip range narrower than the data's normalised range",
                                                "data not normalised to [-1, 1] before training"))


class SMP007(Check):
    """The sampler's x_t follows q(x_t) at every step under the ideal denoiser"""

    id = "SMP007"
    explains = frozenset({"DIST"})
    next_step = ("check the noise the sampler adds per step: once, the posterior std (from beta_tilde_t or beta_t) "
                 "times torch.randn, with no extra factor")
    requires = frozenset({"PAR002"})
    thresholds = _th({"max_log_std_ratio": 0.3, "max_mean_z": 3.0, "max_snr": 1.0})

    def measure(self, trajectory_marginals: dict) -> dict[str, Any]:
        rows = trajectory_marginals["rows"]
        return {"kind": trajectory_marginals["kind"], "t": [r["t"] for r in rows], "snr": [r["snr"] for r in rows],
                "std_ratio": [r["std_ratio"] for r in rows], "mean_z": [r["mean_z"] for r in rows],
                "samples": trajectory_marginals["samples"], "spectra": trajectory_marginals["spectra"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        snr = np.asarray(o["snr"])
        # Where noise dominates (SNR <= 1) pixels are nearly independent and the moments precise.
        idx = np.flatnonzero(snr <= th["max_snr"])
        ratio, mz = np.asarray(o["std_ratio"])[idx], np.asarray(o["mean_z"])[idx]
        w = int(idx[np.argmax(np.abs(np.log(ratio)))])
        d = {"worst_t": o["t"][w], "worst_std_ratio": o["std_ratio"][w], "max_mean_z": float(mz.max()),
             "judged_t_min": float(min(o["t"][i] for i in idx))}
        ev = (f"{o['samples']} samples with the ideal denoiser of {o['spectra']} spectra; at {idx.size} steps with "
              f"SNR <= {th['max_snr']:g}: std(x_t)/std(q) in {ratio.min():.3f}..{ratio.max():.3f}, mean z up to "
              f"{mz.max():.2f}",)
        if abs(np.log(d["worst_std_ratio"])) <= th["max_log_std_ratio"] and d["max_mean_z"] <= th["max_mean_z"]:
            return Verdict(Status.PASS, f"x_t matches q(x_t) (worst std ratio {d['worst_std_ratio']:.3f} at "
                           f"t={d['worst_t']:g}; mean z <= {d['max_mean_z']:.2f})", ev, observed=d)
        return Verdict(Status.FAIL, f"the sampler's x_t leaves q(x_t): std ratio {d['worst_std_ratio']:.3f} at "
                       f"t={d['worst_t']:g}, mean z {d['max_mean_z']:.2f} (vs |log ratio| <= "
                       f"{th['max_log_std_ratio']:g}, z <= {th['max_mean_z']:g})", ev,
                       ("the sampler's noise is scaled (sigma_t x k) or uses the wrong posterior variance",
                        "the sampler's schedule differs from training's (betas, T, cosine vs linear)",
                        "the sampler looks up alpha_bar at a shifted or rescaled t"), observed=d)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from diffcheck.formats.plotting import STATUS_COLOURS, plt, save

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharex=True)
        axes[0].plot(o["t"], o["std_ratio"], color=STATUS_COLOURS["measured"], lw=1)
        axes[0].axhline(1.0, color=STATUS_COLOURS["declared"], lw=1)
        axes[0].set_ylabel("std(x_t) / std of q(x_t)")
        axes[1].plot(o["t"], o["mean_z"], color=STATUS_COLOURS["measured"], lw=1)
        axes[1].axhline(1.0, color=STATUS_COLOURS["declared"], lw=1)
        axes[1].set_ylabel("rms z of the mean of x_t")
        for ax in axes:
            ax.axvspan(o["judged_t_min"], max(o["t"]), color="0.9", zorder=0, label="judged (SNR <= 1)")
            ax.set_xlabel("t (sampler order: right to left)")
            ax.grid(alpha=0.3)
        axes[0].legend(loc="lower right", fontsize=8)
        fig.suptitle(f"SMP007 sampler marginals under the ideal denoiser ({o['samples']} samples, "
                     f"{o['spectra']} spectra)", fontsize=11)
        fig.tight_layout()
        return [save(fig, outdir, "smp_marginals.png")]

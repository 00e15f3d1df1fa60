"""PAR: which parameterisation (eps, x0, v) the training loss, the sampler and the network use.

Training target and sampler decoding are proven with exact oracles in place of the network
(no trained network needed); the network's own behaviour is a regression of its output on each
target. PAR004 demands that all three agree: the motivating experiment trained eps and decoded x0.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from diffcheck.engine.check import Check, Stage
from diffcheck.measure.consistency import LANDING_RATIO, TRAJECTORY_Z, decoded_kind, identify_decoding
from diffcheck.errors import Skip
from diffcheck.measure.param import PARAMETERISATIONS
from diffcheck.engine.results import Result, Status, Verdict

__all__ = ["PAR001", "PAR002", "PAR003", "PAR004"]

_th = MappingProxyType


def _ranked(scores: Mapping[str, float]) -> list[str]:
    return sorted(scores, key=lambda k: scores[k])


def _fmt(scores: Mapping[str, float], prefix: str = "") -> str:
    return ", ".join(f"{prefix}{k} {scores[k]:.2g}" for k in _ranked(scores))


class PAR001(Check):
    """The training loss's target is identified by oracle (eps, x0 or v)"""

    id = "PAR001"
    explains = frozenset({"PAR003", "LOSS001", "TOY001", "DIST"})
    next_step = ("print the target your training loss compares with (noise, x0 or v) and the x_t and t it gives the "
                 "network: all from the same q_sample draw, with no extra scaling, clipping or re-normalisation")
    thresholds = _th({"max_loss_ratio": 1e-4})

    def measure(self, loss_oracles: dict) -> dict[str, Any]:
        losses = loss_oracles["losses"]
        best, second = _ranked(losses)[:2]
        return {**{f"loss_{k}": v for k, v in losses.items()}, "best": best,
                "loss_ratio": losses[best] / max(losses[second], 1e-300),
                "t_conventions": loss_oracles["time"][best]["conventions"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        losses = {k: o[f"loss_{k}"] for k in PARAMETERISATIONS}
        evidence = (f"the pipeline's own training loss with an exact oracle in place of the network: {_fmt(losses)}",)
        if not all(np.isfinite(v) for v in losses.values()):
            bad = [k for k in PARAMETERISATIONS if not np.isfinite(losses[k])]
            return Verdict(Status.FAIL, f"the training loss is not finite even with an exact network ({_fmt(losses)}): "
                           "it cannot train", evidence,
                           ("NaN or Inf in the loss's own arithmetic (a log or division of 0, an sqrt of a negative "
                            "1 - alpha_bar)", "NaN or Inf in the data batch the loss draws (see --data)",
                            "a schedule whose alpha_bar reaches 0 or 1 exactly at a sampled t"),
                           observed={"identified": None, "non_finite": bad})
        if max(losses.values()) == 0.0:
            return Verdict(Status.FAIL, f"the training loss is 0 for every oracle ({_fmt(losses)}): it does not "
                           "depend on the network's output", evidence,
                           ("the loss compares the target with itself (e.g. loss(target, target), or a detached copy)",
                            "the network output is overwritten or multiplied by 0 before the loss"),
                           observed={"identified": None})
        if o["loss_ratio"] <= th["max_loss_ratio"]:
            return Verdict(Status.PASS, f"training target is {o['best']} (oracle loss {_fmt(losses)})", evidence,
                           observed={"identified": o["best"]})
        summary = (f"no parameterisation drives the training loss to zero (best {o['best']}: {losses[o['best']]:.3g}, "
                   f"ratio to the next {o['loss_ratio']:.3g} vs <= {th['max_loss_ratio']:g}): the loss's forward "
                   "process or schedule is not the declared one")
        causes = ("x_t re-normalised or clipped in the training step (see FWD002)",
                  "the loss builds x_t with another schedule or T than the pipeline declares",
                  "timesteps offset in the loss (alpha_bar[t+1] for t, or a t/T scale the schedule lookup ignores)",
                  "the target is not one of eps, x0, v (e.g. a mix, or eps scaled by a constant)")
        return Verdict(Status.FAIL, summary, evidence, causes, observed={"identified": None})


class PAR002(Check):
    """The sampler decodes the network output as exactly one parameterisation (by oracle)"""

    id = "PAR002"
    stage = Stage.SAMPLER
    explains = frozenset({"TOY001", "DIST"})
    next_step = ("compare the sampler's schedule and conversion with training: the same alpha_bar array and T, and "
                 "one formula from the network output to x0 (for eps: (x_t - sqrt(1 - alpha_bar)·eps) / "
                 "sqrt(alpha_bar))")
    thresholds = _th({"max_error_ratio": LANDING_RATIO, "max_trajectory_z": TRAJECTORY_Z})

    def measure(self, sampler_oracles: dict) -> dict[str, Any]:
        runs = sampler_oracles["runs"]
        errors = {k: r["max_error"] for k, r in runs.items()}
        best, second = _ranked(errors)[:2]
        # Where two land alike (every sampler's last steps barely tell eps from v), the trajectory
        # decides: under the right decoding (x_t - a x0*)/s stays N(0, 1) noise at every step.
        return {**{f"error_{k}": v for k, v in errors.items()},
                **{f"mean_z_{k}": r["mean_z"] for k, r in runs.items()},
                **{f"spread_z_{k}": r["spread_z"] for k, r in runs.items()},
                "best": best, "error_ratio": errors[best] / max(errors[second], 1e-300),
                "oracle_batch": sampler_oracles["batch"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        errors = {k: o[f"error_{k}"] for k in PARAMETERISATIONS}
        runs = {k: {"max_error": errors[k], "mean_z": o[f"mean_z_{k}"], "spread_z": o[f"spread_z_{k}"]}
                for k in PARAMETERISATIONS}
        identified, how = identify_decoding(runs, th["max_error_ratio"], th["max_trajectory_z"])
        # what every check downstream of the decoding traces (diffcheck.measure.consistency.decoding)
        traced = {"decoded": decoded_kind(runs, th["max_error_ratio"], th["max_trajectory_z"])}
        evidence = (f"max |sample - x0*| of the pipeline's own sampler with a point oracle for x0* in place of the "
                    f"network: {_fmt(errors)} (ratio of the best to the next {o['error_ratio']:.3g}; one decoding "
                    f"identifies itself by landing at <= {th['max_error_ratio']:g})",
                    f"trajectory mean over {o['oracle_batch']} oracle samples, max |projection of (x_t - a x0*)/s on "
                    "x0*| in standard errors: "
                    + _fmt({k: o[f"mean_z_{k}"] for k in PARAMETERISATIONS})
                    + f" (consistent at <= {th['max_trajectory_z']:g})",
                    "trajectory spread, max |log std((x_t - a x0*)/s)| in standard errors: "
                    + _fmt({k: o[f"spread_z_{k}"] for k in PARAMETERISATIONS})
                    + " (breaks a tie of means; samplers adding more than the posterior noise, e.g. DDPM's "
                      "sigma^2 = beta, exceed it by design)")
        if identified is not None:
            by = {"landing": "its landing", "mean": "its trajectory mean", "spread": "its trajectory spread"}[how]
            return Verdict(Status.PASS, f"sampler decodes the output as {identified} (identified by {by}; landing "
                           f"error {_fmt(errors)})", evidence, observed={"identified": identified, "identified_by": how,
                                                                 **traced})
        summary = (f"the sampler decodes no parameterisation consistently ({how}: best landing {o['best']} at "
                   f"{errors[o['best']]:.3g}, ratio to the next {o['error_ratio']:.3g} vs <= {th['max_error_ratio']:g}; "
                   f"trajectory mean z {_fmt({k: o[f'mean_z_{k}'] for k in PARAMETERISATIONS})} vs <= "
                   f"{th['max_trajectory_z']:g})")
        causes = ("the sampler's schedule differs from the training schedule (T, betas, linear vs cosine)",
                  "timesteps indexed off by one or mapped to the wrong alpha_bar in the sampler",
                  "a conversion formula is wrong (eps -> x0, v -> x0), or eps is not recomputed after clipping")
        return Verdict(Status.FAIL, summary, evidence, causes,
                       observed={"identified": None, "identified_by": None, **traced})


class PAR003(Check):
    """The trained network's output fits one parameterisation (regression on noised data)"""

    id = "PAR003"
    stage = Stage.LEARNED
    explains = frozenset({"DIST"})
    next_step = ("check that the sampled weights are the trained ones (WGT), that training ran long enough, and "
                 "which objective the checkpoint was trained with")
    trained_only = True
    thresholds = _th({"min_peak_r2": 0.5, "min_win_share": 0.6})
    threshold_bounds = _th({"min_peak_r2": (0.0, 1.0), "min_win_share": (0.0, 1.0)})
    #: 1 - mean R² of the identified target: the share of the target the network fails to predict,
    #: its normalised denoising error; what ``--baseline`` compares (diffcheck.engine.baseline).
    quality = _th({"fit_unexplained": "lower"})

    def measure(self, learned_fit: dict) -> dict[str, Any]:
        # Each target has its own hard regime (x0 at high noise, eps near t=0), so the vote is per
        # timestep: the best-fitting target wins it; timesteps where two targets nearly coincide
        # (|cos| > 0.95, e.g. v ~ eps at high SNR) do not vote.
        r2_by_t = {k: np.asarray(v) for k, v in learned_fit["r2"].items()}
        voting = [i for i, c in enumerate(learned_fit["collinearity"]) if c <= 0.95]
        wins = {k: sum(1 for i in voting if max(r2_by_t, key=lambda j: r2_by_t[j][i]) == k) for k in r2_by_t}
        best = max(wins, key=lambda k: (wins[k], r2_by_t[k].mean()))
        return {**{f"r2_{k}": float(v.mean()) for k, v in r2_by_t.items()}, "best": best,
                "fit_unexplained": float(1.0 - r2_by_t[best].mean()),
                "win_share": wins[best] / max(len(voting), 1), "wins": wins, "voting_timesteps": len(voting),
                "peak_r2": float(r2_by_t[best].max()), "t": learned_fit["t"],
                **{f"r2_{k}_by_t": v.tolist() for k, v in r2_by_t.items()},
                "collinear_t": [learned_fit["t"][i] for i in range(len(learned_fit["t"])) if i not in voting]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        r2 = {k: o[f"r2_{k}"] for k in PARAMETERISATIONS}
        fits = ", ".join(f"{k}-fit R² {r2[k]:.2f}" for k in _ranked({k: -v for k, v in r2.items()}))
        evidence = (f"mean R² over {len(o['t'])} timesteps of the network output against each target: {fits}",
                    f"best fit per timestep: {', '.join(f'{k} {n}' for k, n in o['wins'].items())} of "
                    f"{o['voting_timesteps']} (targets nearly collinear at t = {o['collinear_t']} do not vote)")
        if o["peak_r2"] >= th["min_peak_r2"] and o["win_share"] >= th["min_win_share"]:
            return Verdict(Status.PASS, f"the network predicts {o['best']} ({fits}; best at "
                           f"{o['win_share']:.0%} of timesteps)", evidence, observed={"identified": o["best"]})
        summary = (f"the network fits no parameterisation clearly (best {o['best']}: peak R² {o['peak_r2']:.2f}, best at "
                   f"{o['win_share']:.0%} of timesteps; need >= {th['min_peak_r2']:g} and >= {th['min_win_share']:.0%})")
        causes = ("the network is untrained or barely trained (a preflight on fresh weights expects this)",
                  "it was trained with another time input than the pipeline passes (see TEMB)",
                  "it learned a parameterisation diffcheck does not know, or only the data mean")
        return Verdict(Status.FAIL, summary, evidence, causes, observed={"identified": None})


class PAR004(Check):
    """Training target, sampler decoding and the network's learned output agree"""

    id = "PAR004"
    stage = Stage.SAMPLER
    explains = frozenset({"TOY001", "LOSS001", "TEMB002", "TEMB004", "DIST"})
    next_step = ("store the training objective (prediction_type) with the checkpoint and make the sampler read it: "
                 "its conversion from the network output to x0 must be written for the target training_loss computes")
    requires = frozenset({"PAR002"})
    # The training target (PAR001) is unknown where a pipeline has no training loss (diffusers),
    # the network's output (PAR003) on fresh weights: PAR004 compares whichever sides are known.
    uses = frozenset({"PAR001", "PAR003"})

    def measure(self, results: dict) -> dict[str, Any]:
        def ident(cid: str) -> str | None:
            r: Result | None = results.get(cid)
            return r.observed.get("identified") if r is not None and r.status is Status.PASS else None

        def numbers(cid: str, prefix: str) -> dict[str, float]:
            r = results.get(cid)
            return {f"{prefix}{k}": r.observed[f"{prefix}{k}"] for k in PARAMETERISATIONS
                    if r is not None and f"{prefix}{k}" in r.observed}

        sides = {"training": ident("PAR001"), "sampler": ident("PAR002"), "network": ident("PAR003")}
        if sum(v is not None for v in sides.values()) < 2:
            raise Skip("only the sampler's decoding is identified: " + "; ".join(
                f"{cid} {results[cid].status.value}" if cid in results else f"{cid} did not run"
                for cid in ("PAR001", "PAR003")))
        return {**sides, **numbers("PAR003", "r2_"), **numbers("PAR001", "loss_"), **numbers("PAR002", "error_")}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        sides = {k: o[k] for k in ("training", "sampler", "network") if o[k] is not None}
        seen = ", ".join(f"{k}: {v}" for k, v in sides.items())
        if o["network"] is None:
            seen += " (network: not identified; PAR003 did not pass or did not run)"
        if len(set(sides.values())) <= 1:
            return Verdict(Status.PASS, f"all agree on {next(iter(sides.values()))} ({seen})")
        fits = ", ".join(f"{k}-fit R² {o[f'r2_{k}']:.2f}" for k in PARAMETERISATIONS if f"r2_{k}" in o)
        if o["network"] is not None and o["sampler"] != o["network"]:
            summary = (f"sampler decodes the output as {o['sampler']} but the network predicts {o['network']} ({fits})")
        else:
            tr, sm = o["training"], o["sampler"]
            summary = (f"sampler decodes the output as {sm} but the training loss targets {tr} (oracle loss {tr} "
                       f"{o[f'loss_{tr}']:.2g}, {sm} {o[f'loss_{sm}']:.2g}; landing error {sm} {o[f'error_{sm}']:.2g}, "
                       f"{tr} {o[f'error_{tr}']:.2g})")
        causes = ("prediction_type / objective not stored with the checkpoint, and the sampler's default differs",
                  "the sampler's conversion formula was written for another parameterisation",
                  "the training script computes a different target than its config says")
        return Verdict(Status.FAIL, summary, (seen,), causes)

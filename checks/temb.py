"""TEMB: does the trained network use its time input, and on the scale the sampler passes?

All four checks read one probe (``time_probe``): probe spectra noised at 12 true timesteps, the
network given every grid time in the pipeline's own convention (``model_time``) and given each
known convention (integer index, t/T, t*1000/T, zero). Losses go through the pipeline's own
training loss at the true timestep, so "the loss" is always the loss the network was trained on.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from diffcheck.engine.check import Check, Stage
from diffcheck.errors import Skip
from diffcheck.measure.learned import TIME_CONVENTIONS, geometric_mean
from diffcheck.engine.results import Status, Verdict

__all__ = ["TEMB001", "TEMB002", "TEMB003", "TEMB004", "TEMB005"]

_th = MappingProxyType
#: A row of the identification matrix whose loss varies less than this (max/min) across t' is flat.
FLAT_SPREAD = 1.2
_NAMES = {"index": "integer t (0..T-1)", "unit": "t/T in [0, 1]", "x1000": "t*1000/T", "zero": "t = 0 (no time)"}
_TIME_CAUSES = ("t cast to long inside the network (t/T in [0, 1) becomes 0)",
                "the time embedding is computed but not added to the residual blocks",
                "t passed on a scale where the sinusoidal embedding is nearly constant (t/T with max_period 10000)")


def _finite(time_probe: dict) -> dict:
    """``time_probe``, or Skip when the network's losses are NaN or Inf (WGT001 reports the weights)."""
    if not np.isfinite(time_probe["matrix"]).all():
        raise Skip("the network's loss is NaN or Inf at some timesteps, so its use of t cannot be measured (see WGT001)")
    return time_probe


def _t_sensitive_target(time_probe: dict) -> dict:
    """``time_probe``, or Skip for an x0 target, whose loss barely depends on the t given.

    Decoding eps (or v) from x_t needs the exact noise scale, so a wrong t inflates their loss many
    times; an x0 predictor reads the noise level from x_t and a wrong t only changes how much it
    smooths (the healthy x0 fixture: shuffled t raises the loss 1.2x, against 14x for eps).
    """
    if time_probe["kind"] == "x0":
        raise Skip("the loss targets x0, which depends too weakly on the t given to judge (an x0 predictor reads the "
                   "noise level from x_t); TEMB001 and TEMB003 still apply")
    return _finite(time_probe)


class TEMB001(Check):
    """The network's output depends on t at fixed x_t"""

    id = "TEMB001"
    explains = frozenset({"TEMB002", "TEMB004", "DIST"})
    next_step = ("trace t through the network's forward: the time embedding must reach the residual blocks, on a "
                 "scale where the sinusoidal embedding varies (no cast of t/T to long)")
    trained_only = True
    thresholds = _th({"min_sensitivity": 0.01})

    def measure(self, time_probe: dict) -> dict[str, Any]:
        s = np.asarray(_finite(time_probe)["sensitivity"])
        return {"t": time_probe["t"].tolist(), "sensitivity": s.tolist(), "median_sensitivity": float(np.median(s)),
                "max_sensitivity": float(s.max()), "spectra": time_probe["matrix_spectra"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ev = (f"relative change ||f(x_t, t') - f(x_t, t)|| / ||f(x_t, t)|| over {len(o['t'])} grid times t' at fixed "
              f"x_t, {o['spectra']} spectra: median {o['median_sensitivity']:.3g}, max {o['max_sensitivity']:.3g}",)
        limit = {"min_sensitivity": th["min_sensitivity"]}
        if o["median_sensitivity"] >= th["min_sensitivity"]:
            return Verdict(Status.PASS, f"output changes with t (median relative change {o['median_sensitivity']:.3g} "
                           f"vs >= {th['min_sensitivity']:g})", ev, observed=limit)
        return Verdict(Status.FAIL, f"the network ignores t: its output changes by {o['median_sensitivity']:.3g} "
                       f"(median relative change) across the whole range of t (vs >= {th['min_sensitivity']:g})",
                       ev, _TIME_CAUSES, observed=limit)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._temb_plots import plot_sensitivity

        return [plot_sensitivity(o, outdir)]


def _row_ratios(matrix: np.ndarray) -> np.ndarray:
    """Per true t: the mean loss at the other grid times over the loss at the true one."""
    g = matrix.shape[0]
    return (matrix.sum(1) - np.diag(matrix)) / (g - 1) / np.maximum(np.diag(matrix), 1e-300)


class TEMB002(Check):
    """The loss at the true t beats the loss at shuffled t"""

    id = "TEMB002"
    explains = frozenset({"TEMB004", "DIST"})
    next_step = ("check how t reaches the network in training and in sampling (same scale, never dropped) and that "
                 "training drew t over the whole range")
    trained_only = True
    # Two limits. The probe gives the network the same x_t with every grid t, so a network that
    # ignores t scores exactly 1.00x: the zoo's t-blind, untrained and wrong-convention networks sit
    # at 0.998-1.0001x (2 seeds each). Under fail_shuffled_ratio that is a bug. A trained network
    # scores 12x and more (learned_cpu.json, 20 seeds); the reference network stopped at 300 of 3000
    # steps 1.06-1.07x: between the two limits the network learned little of t, a QUALITY finding.
    thresholds = _th({"min_shuffled_ratio": 1.5, "fail_shuffled_ratio": 1.02})
    threshold_bounds = _th({"fail_shuffled_ratio": (1.0, float("inf"))})

    def measure(self, time_probe: dict) -> dict[str, Any]:
        m = np.asarray(_t_sensitive_target(time_probe)["matrix"])
        ratios = _row_ratios(m)
        return {"loss_true_t": float(np.diag(m).mean()), "loss_shuffled_t": float((m.sum() - np.trace(m)) / (m.size - len(m))),
                "shuffled_ratio": geometric_mean(ratios),
                "worst_row_ratio": float(ratios.min()), "worst_row_t": int(time_probe["t"][int(ratios.argmin())])}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ev = (f"mean loss with the true t {o['loss_true_t']:.3g}, with another grid t {o['loss_shuffled_t']:.3g}; "
              f"geometric mean ratio per true t {o['shuffled_ratio']:.3g}, lowest {o['worst_row_ratio']:.3g} at "
              f"t={o['worst_row_t']}",)
        if o["shuffled_ratio"] >= th["min_shuffled_ratio"]:
            return Verdict(Status.PASS, f"shuffling t raises the loss {o['shuffled_ratio']:.3g}x (vs >= "
                           f"{th['min_shuffled_ratio']:g}x)", ev)
        if o["shuffled_ratio"] >= th["fail_shuffled_ratio"]:
            return Verdict(Status.QUALITY, f"the network has learned little of t, not a bug: shuffled t raises the loss "
                           f"{o['shuffled_ratio']:.3g}x (a trained network >= {th['min_shuffled_ratio']:g}x; one that "
                           f"ignores t < {th['fail_shuffled_ratio']:g}x)", ev,
                           ("the network is under-trained (few steps, or an EMA still close to its initial weights: "
                            "see WGT004)",
                            "training drew t from part of the range only"))
        return Verdict(Status.FAIL, f"the loss does not depend on t: shuffled t raises it only {o['shuffled_ratio']:.3g}x "
                       f"(vs >= {th['fail_shuffled_ratio']:g}x for a network that uses t at all)", ev,
                       ("the network ignores its time input (see TEMB001)",
                        "the network was trained with another time input than the pipeline passes (see TEMB003)",
                        "the network is untrained, or trained at a single noise level"))


class TEMB003(Check):
    """The time convention the network learned is the one the sampler passes"""

    id = "TEMB003"
    stage = Stage.SAMPLER
    explains = frozenset({"TEMB001", "TEMB002", "TEMB004", "PAR003", "LOSS001", "DIST"})
    next_step = ("find the time scale the checkpoint was trained with (integer, t/T, t·1000/T) and pass that one in "
                 "the loss and in the sampler")
    trained_only = True
    thresholds = _th({"min_margin": 1.25})

    def measure(self, time_probe: dict, sampler_oracles: dict, decoding: str) -> dict[str, Any]:
        losses = {c: geometric_mean(v) for c, v in _finite(time_probe)["conventions"].items()}
        sampler = sorted(set(sampler_oracles["runs"][decoding]["conventions"]))
        equal = _equivalents(time_probe["t"], time_probe["T"])
        best = min(losses, key=losses.get)
        others = [c for c in losses if c not in equal[best]]
        runner_up = min(others, key=losses.get)
        return {**{f"loss_{c}": v for c, v in losses.items()}, "learned": best, "equivalent": equal[best],
                "runner_up": runner_up, "margin": losses[runner_up] / max(losses[best], 1e-300),
                "sampler_conventions": sampler, "sampler_decoding": decoding, "kind": time_probe["kind"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ranked = sorted(TIME_CONVENTIONS, key=lambda c: o[f"loss_{c}"])
        ev = ("geometric mean loss over the grid with the network given each convention: "
              + ", ".join(f"{c} {o[f'loss_{c}']:.3g}" for c in ranked),)
        learned, sampler = o["learned"], o["sampler_conventions"]
        if o["margin"] < th["min_margin"]:
            return Verdict(Status.SKIP, f"no time convention fits clearly (best {learned}, {o['margin']:.2f}x better than "
                           f"{o['runner_up']}, vs >= {th['min_margin']:g}x): the network barely uses t (see TEMB001)", ev)
        if set(sampler) <= set(o["equivalent"]):
            return Verdict(Status.PASS, f"the network learned {_NAMES[learned]} ({o['margin']:.2f}x better than "
                           f"{o['runner_up']}) and the sampler passes it", ev)
        said = ", ".join(_NAMES[c] for c in sampler)
        if learned == "zero":
            summary = (f"the network was trained without its time input: it denoises best when given t = 0 "
                       f"({o['margin']:.2f}x better than {o['runner_up']}), but the sampler passes {said}")
        else:
            summary = (f"the network learned {_NAMES[learned]} ({o['margin']:.2f}x better than {o['runner_up']}) but the "
                       f"sampler passes {said}")
        return Verdict(Status.FAIL, summary, ev,
                       ("the checkpoint was trained by code with another time scale than the pipeline now passes",
                        "t normalised (t/T) in one path and integer in the other; a scheduler's x1000 timesteps",
                        "the training step zeroes or drops t before the network (t cast to long, t * 0)"))


def _equivalents(ts: np.ndarray, T: int) -> dict[str, list[str]]:
    """For each convention, the conventions that give the network the same values on the grid."""
    import torch

    idx = torch.as_tensor(ts)
    vals = {c: fn(idx, T).double() for c, fn in TIME_CONVENTIONS.items()}
    return {c: [d for d in vals if torch.allclose(vals[c], vals[d])] for c in vals}


class TEMB004(Check):
    """Noise-level identification: the loss at each true t is lowest when the network is given that t"""

    id = "TEMB004"
    explains = frozenset({"DIST"})
    next_step = ("compare the schedule and T of training with the declared ones and look for an off-by-one in t; "
                 "flat rows in temb_identification.png mean t is ignored (TEMB001)")
    trained_only = True
    # A row identifies its t when the loss with the true t is within max_excess_loss of the row's
    # lowest: near T the rows of a healthy network are nearly flat and their argmin is noise.
    # Below min_diagonal_share, where the rows miss the true t tells a bug from a weak network: a
    # schedule or T that differs from training, or t off by some steps, shifts every row's best t the
    # same way (the zoo's t + 273: a median offset of 3 grid cells); an under-trained network misses
    # on both sides of the diagonal (the reference at 300 of 3000 steps: 75 % of 12 rows, median
    # offset 0). A median offset under max_offset_cells grid cells is a QUALITY finding.
    thresholds = _th({"min_diagonal_share": 0.75, "max_excess_loss": 0.1, "min_row_spread": FLAT_SPREAD,
                      "max_offset_cells": 1.0})
    threshold_bounds = _th({"min_diagonal_share": (0.0, 1.0)})

    def measure(self, time_probe: dict) -> dict[str, Any]:
        m, ts = np.asarray(_t_sensitive_target(time_probe)["matrix"]), time_probe["t"]
        best, low = m.argmin(1), np.maximum(m.min(1), 1e-300)
        offset = float(np.median(ts[best] - ts))
        cell = max((ts[-1] - ts[0]) / max(len(ts) - 1, 1), 1)  # the grid's spacing in steps
        return {"t": ts.tolist(), "best_t": [int(ts[j]) for j in best], "excess_loss": (np.diag(m) / low - 1).tolist(),
                "median_offset_steps": offset, "distinct_best": int(np.unique(best).size),
                "median_offset_cells": offset / cell,
                "median_row_spread": float(np.median(m.max(1) / low)), "rows": len(ts), "_matrix": m,
                "kind": time_probe["kind"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        share = float(np.mean(np.asarray(o["excess_loss"]) <= th["max_excess_loss"]))
        d = {"diagonal_share": share}
        ev = (f"best-fitting network time per true t: {', '.join(f'{t}->{b}' for t, b in zip(o['t'], o['best_t']))}",
              f"loss with the true t over the row's lowest, minus 1: "
              f"{', '.join(f'{v:.2g}' for v in o['excess_loss'])} (identified: <= {th['max_excess_loss']:g})")
        flat = o["median_row_spread"] < th["min_row_spread"]
        if share >= th["min_diagonal_share"] and not flat:
            return Verdict(Status.PASS, f"the network identifies the noise level at {share:.0%} of {o['rows']} timesteps "
                           f"(vs >= {th['min_diagonal_share']:.0%})", ev, observed=d)
        causes = ("flat rows: the network ignores t or was trained with another time input (TEMB001, TEMB003)",
                  "a shifted diagonal: the schedule or T differs from training, or t is off by one",
                  "the network is undertrained")
        if flat:
            return Verdict(Status.FAIL, f"the network does not identify the noise level: the loss varies only "
                           f"{o['median_row_spread']:.3f}x across the t it is given (median over rows; vs >= "
                           f"{th['min_row_spread']:g}x), so t is ignored", ev, causes, observed=d)
        if abs(o["median_offset_cells"]) < th["max_offset_cells"]:
            return Verdict(Status.QUALITY, f"the network has learned the noise level only roughly, not a bug: it "
                           f"identifies it at {share:.0%} of {o['rows']} timesteps (a trained network >= "
                           f"{th['min_diagonal_share']:.0%}), missing on both sides of the true t (median offset "
                           f"{o['median_offset_cells']:.2g} grid cells, a shifted diagonal >= {th['max_offset_cells']:g})",
                           ev, ("the network is under-trained (few steps, or an EMA still close to its initial "
                                "weights: see WGT004)", "a small network for the data"), observed=d)
        return Verdict(Status.FAIL, f"the network identifies the noise level at only {share:.0%} of {o['rows']} "
                       f"timesteps (vs >= {th['min_diagonal_share']:.0%}), every row shifted the same way: median "
                       f"offset {o['median_offset_steps']:g} steps ({o['median_offset_cells']:.2g} grid cells, vs < "
                       f"{th['max_offset_cells']:g}) from the diagonal", ev, causes[1:], observed=d)

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._temb_plots import plot_matrix

        return [plot_matrix(o, outdir)]


class TEMB005(Check):
    """The training loss passes the network the t it noised with (not a constant)"""

    id = "TEMB005"
    stage = Stage.TRAINING
    explains = frozenset({"PAR001", "TEMB001", "TEMB002", "TEMB004", "TOY001", "DIST"})
    next_step = ("in the training step, give the network the t drawn for the noise (model(x_t, t)), not a constant, "
                 "zero or a long-cast t/T")

    def measure(self, loss_oracles: dict) -> dict[str, Any]:
        kind = min(loss_oracles["losses"], key=loss_oracles["losses"].get)
        rec = loss_oracles["time"][kind]
        return {"t_min": rec["t_min"], "t_max": rec["t_max"], "conventions": rec["conventions"],
                "loss_oracle": loss_oracles["losses"][kind], "kind": kind}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        if o["t_max"] > o["t_min"]:
            return Verdict(Status.PASS, f"the training loss passes t from {o['t_min']:g} to {o['t_max']:g} "
                           f"({', '.join(_NAMES[c] for c in o['conventions'])})")
        return Verdict(Status.FAIL, f"the training loss passes the network the same t={o['t_min']:g} for every noise "
                       "level it draws: the network cannot learn the noise level from t",
                       (f"a batch of probe spectra at random timesteps through the pipeline's training loss; the "
                        f"network saw t in [{o['t_min']:g}, {o['t_max']:g}]",),
                       ("t multiplied by 0, or cast to long after scaling to [0, 1), before the network call",
                        "the network is called with a fixed t (e.g. torch.zeros) in the training step"))

"""LOSS: is the trained network's loss better than what a trivial predictor gets for free?

A low loss is not evidence of a working model (taxonomy class 20): with low-variance data an eps
loss of 0.007 is also what predicting the data mean gives at many noise levels. The network's
loss at each grid t is compared with two predictors that learned nothing: zeros, and the data mean
(the exact denoiser of a one-spectrum data set), on the same spectra and noise, in the loss's own
target space.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from diffcheck.engine.check import Check
from diffcheck.engine.results import Status, Verdict

__all__ = ["LOSS001"]

_th = MappingProxyType


class LOSS001(Check):
    """The network's per-t loss clearly beats predicting zeros or the data mean"""

    id = "LOSS001"
    explains = frozenset({"PAR003", "TEMB002", "TEMB004", "DIST"})
    next_step = ("check that the sampled weights are the trained ones (EMA, strict load: WGT) and that the training "
                 "loss fell; then train longer: loss_vs_baselines.png shows where the network loses to the mean "
                 "predictor")
    trained_only = True
    thresholds = _th({"min_peak_skill": 0.5})
    threshold_bounds = _th({"min_peak_skill": (0.0, 1.0)})
    #: Figures a baseline comparison tracks (``diffcheck run --baseline``).
    quality = _th({"peak_skill": "higher", "median_loss": "lower"})

    def measure(self, loss_baselines: dict) -> dict[str, Any]:
        lb = loss_baselines
        model, best = np.asarray(lb["model"]), np.minimum(lb["zero"], lb["mean"])
        with np.errstate(invalid="ignore"):
            skill = 1.0 - model / np.maximum(best, 1e-300)
        finite = bool(np.isfinite(model).all())
        peak = int(np.nanargmax(skill)) if finite else 0
        return {"t": [int(t) for t in lb["t"]], "loss": model.tolist(), "loss_zero": list(lb["zero"]),
                "loss_mean": list(lb["mean"]), "skill": skill.tolist(), "finite": finite,
                "peak_skill": float(skill[peak]) if finite else float("nan"), "peak_t": int(lb["t"][peak]),
                "median_loss": float(np.median(model)), "median_loss_mean": float(np.median(lb["mean"])),
                "kind": lb["kind"], "spectra": lb["spectra"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        i = o["t"].index(o["peak_t"])
        ev = (f"loss ({o['kind']} target, {o['spectra']} spectra) at t = {o['t']}: network "
              f"{', '.join(f'{v:.2g}' for v in o['loss'])}",
              f"predicting the data mean: {', '.join(f'{v:.2g}' for v in o['loss_mean'])}; predicting zeros: "
              f"{', '.join(f'{v:.2g}' for v in o['loss_zero'])}")
        if not o["finite"]:
            return Verdict(Status.FAIL, "the network's loss is NaN or Inf at some timesteps", ev,
                           ("NaN or Inf in the weights (see WGT001)", "an fp16 overflow in the network"))
        pair = (f"loss {o['loss'][i]:.3g} vs {min(o['loss_mean'][i], o['loss_zero'][i]):.3g} for the best trivial "
                f"predictor at t={o['peak_t']}")
        if o["peak_skill"] >= th["min_peak_skill"]:
            return Verdict(Status.PASS, f"the network beats the trivial predictors by up to {o['peak_skill']:.0%} ({pair}; "
                           f"vs >= {th['min_peak_skill']:.0%})", ev)
        return Verdict(Status.FAIL, f"the network is no better than predicting the data mean or zeros: at best "
                       f"{o['peak_skill']:.0%} lower loss ({pair}; vs >= {th['min_peak_skill']:.0%}); median loss "
                       f"{o['median_loss']:.3g} looks small only because the mean predictor's is {o['median_loss_mean']:.3g}",
                       ev, ("the network learned only the data mean (undertrained, collapsed, or t ignored)",
                            "the weights sampled are not the trained ones (EMA at its initialisation, a non-strict "
                            "load; see WGT)", "the network was trained on another objective or time input (PAR, TEMB)"))

    def plot(self, o: Mapping[str, Any], outdir: Path) -> list[Path]:
        from ._loss_plots import plot_loss

        return [plot_loss(o, outdir)]

"""TOY: the T=2 toy diffusion. A fresh network trained for seconds on two noise levels with the
pipeline's own loss must denoise, through the pipeline's own decoding, better than the noisy input
and the data mean. A broken training or sampling path fails here before any long training.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from diffcheck.check import Check
from diffcheck.results import Status, Verdict

__all__ = ["TOY001"]

_th = MappingProxyType


class TOY001(Check):
    """A fresh network trained briefly on 2 noise levels denoises better than the trivial estimates"""

    id = "TOY001"
    thresholds = _th({"max_error_ratio": 0.9})

    def measure(self, toy_run: dict) -> dict[str, Any]:
        rows = toy_run["levels"]
        ratios = [r["toy"] / max(min(r["noisy"], r["mean"]), 1e-300) for r in rows]
        worst = int(np.nanargmax(ratios)) if np.isfinite(ratios).all() else int(np.argmin(np.isfinite(ratios)))
        return {"t": [r["t"] for r in rows], "alpha_bar": [r["alpha_bar"] for r in rows],
                "error": [r["toy"] for r in rows], "error_noisy": [r["noisy"] for r in rows],
                "error_mean": [r["mean"] for r in rows], "error_ratio": ratios, "worst_ratio": float(ratios[worst]),
                "worst_t": rows[worst]["t"], "loss_first": toy_run["losses"][0], "loss_last": toy_run["losses"][-1],
                "steps": toy_run["steps"], "batch": toy_run["batch"], "train_spectra": toy_run["train_spectra"],
                "eval_spectra": toy_run["eval_spectra"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ev = (f"{o['steps']} steps of batch {o['batch']} on {o['train_spectra']} spectra; training loss "
              f"{o['loss_first']:.3g} -> {o['loss_last']:.3g}",
              *(f"t={t} (alpha_bar {ab:.2f}): rms error of the decoded x0 {e:.3g}, noisy input x_t/sqrt(alpha_bar) "
                f"{n:.3g}, data mean {m:.3g}" for t, ab, e, n, m in
                zip(o["t"], o["alpha_bar"], o["error"], o["error_noisy"], o["error_mean"])))
        ok = np.isfinite(o["worst_ratio"]) and o["worst_ratio"] <= th["max_error_ratio"]
        if ok:
            return Verdict(Status.PASS, f"the toy denoises to {o['worst_ratio']:.2f}x the error of the best trivial "
                           f"estimate at worst (t={o['worst_t']}; vs <= {th['max_error_ratio']:g})", ev)
        return Verdict(Status.FAIL, f"a fresh network trained with this pipeline's loss cannot denoise through its "
                       f"decoding: error {o['worst_ratio']:.3g}x the best trivial estimate at t={o['worst_t']} (vs <= "
                       f"{th['max_error_ratio']:g})", ev,
                       ("the sampler decodes another parameterisation than the loss trains (see PAR004)",
                        "the loss and the sampler pass t differently, or the loss drops t (see SMP004, TEMB003)",
                        "the decoding clips or rescales x0 outside the data range (see SMP006)",
                        "the loss's forward process differs from q_sample (see FWD, PAR001)"))

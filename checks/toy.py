"""TOY: the T=2 toy diffusion. A fresh network trained for seconds on two noise levels with the
pipeline's own loss must denoise, through the pipeline's own decoding, better than the noisy input
and the data mean. A loss and a decoding that disagree fail here before any long training; what
the toy cannot see (a t passed differently only by the sampler loop, a loss that drops t) is in
diffcheck/toy.py's docstring.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from diffcheck.engine.check import Check
from diffcheck.engine.results import Status, Verdict

__all__ = ["TOY001"]

_th = MappingProxyType


class TOY001(Check):
    """A fresh network trained briefly on 2 noise levels denoises better than the trivial estimates"""

    id = "TOY001"
    explains = frozenset({"DIST"})
    next_step = ("run one training step and one decoding by hand: the target the loss uses, the t it passes and the "
                 "conversion the decoding applies must match (see PAR, SMP, TEMB)")
    # At the cleaner level (SNR 9) the toy must beat the noisy input and the data mean clearly. At
    # the noisier one (SNR 1) how well a fresh network learns in 60 steps depends on its
    # architecture, so the pipeline's decoding is judged against the toy's own raw output decoded
    # as eps, x0 and v: a decoding that does not match the trained target is far worse than the
    # best of the three (eps read as v: 1.4x the error at SNR 1; as x0: 4x).
    thresholds = _th({"max_error_ratio": 0.9, "max_decoding_ratio": 1.25})

    def measure(self, toy_run: dict) -> dict[str, Any]:
        rows = toy_run["levels"]
        ratios = [r["toy"] / max(min(r["noisy"], r["mean"]), 1e-300) for r in rows]
        decoding = [r["toy"] / max(min(r["decoded_as"].values()), 1e-300) if r["decoded_as"] else float("nan")
                    for r in rows]
        best_kind = [min(r["decoded_as"], key=r["decoded_as"].get) if r["decoded_as"] else None for r in rows]
        return {"t": [r["t"] for r in rows], "alpha_bar": [r["alpha_bar"] for r in rows],
                "error": [r["toy"] for r in rows], "error_noisy": [r["noisy"] for r in rows],
                "error_mean": [r["mean"] for r in rows], "error_ratio": ratios, "clean_level_ratio": float(ratios[0]),
                "decoding_ratio": decoding, "worst_decoding_ratio": float(np.nanmax(decoding)) if
                np.isfinite(decoding).any() else float("nan"), "best_decoding": best_kind,
                "loss_first": toy_run["losses"][0], "loss_last": toy_run["losses"][-1],
                "steps": toy_run["steps"], "batch": toy_run["batch"], "train_spectra": toy_run["train_spectra"],
                "eval_spectra": toy_run["eval_spectra"]}

    def judge(self, o: Mapping[str, Any], th: Mapping[str, float]) -> Verdict:
        ev = (f"{o['steps']} steps of batch {o['batch']} on {o['train_spectra']} spectra; training loss "
              f"{o['loss_first']:.3g} -> {o['loss_last']:.3g}",
              *(f"t={t} (alpha_bar {ab:.2f}): rms error of the decoded x0 {e:.3g}, noisy input x_t/sqrt(alpha_bar) "
                f"{n:.3g}, data mean {m:.3g}; {d:.3g}x the best decoding of the same output ({k})" for t, ab, e, n, m, d, k
                in zip(o["t"], o["alpha_bar"], o["error"], o["error_noisy"], o["error_mean"], o["decoding_ratio"],
                       o["best_decoding"])))
        clean, dec = o["clean_level_ratio"], o["worst_decoding_ratio"]
        causes = ("the sampler decodes another parameterisation than the loss trains (see PAR004)",
                  "the loss and the decoding pass t to the network on different scales (training_loss_at vs denoise)",
                  "the decoding clips or rescales x0 outside the data range (see SMP006)",
                  "the loss's forward process differs from q_sample (see FWD, PAR001)")
        if not (np.isfinite(clean) and clean <= th["max_error_ratio"]):
            return Verdict(Status.FAIL, f"a fresh network trained with this pipeline's loss cannot denoise through its "
                           f"decoding: error {clean:.3g}x the best trivial estimate at t={o['t'][0]} (vs <= "
                           f"{th['max_error_ratio']:g})", ev, causes)
        if np.isfinite(dec) and dec > th["max_decoding_ratio"]:
            i = int(np.nanargmax(o["decoding_ratio"]))
            return Verdict(Status.FAIL, f"the pipeline's decoding does not match what its loss trained: at t={o['t'][i]} "
                           f"its x0 is {dec:.3g}x as far off as the same output decoded as {o['best_decoding'][i]} (vs "
                           f"<= {th['max_decoding_ratio']:g})", ev, causes)
        return Verdict(Status.PASS, f"the toy denoises to {clean:.2f}x the error of the best trivial estimate at "
                       f"t={o['t'][0]} (vs <= {th['max_error_ratio']:g}); its decoding is {dec:.2f}x the best "
                       f"(vs <= {th['max_decoding_ratio']:g})", ev)

"""Figures of the FWD family."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from diffcheck.formats.plotting import STATUS_COLOURS, plt, save


def plot_coefficients(o: Mapping[str, Any], outdir: Path) -> Path:
    """Measured signal and noise coefficients of q_sample against the declared schedule."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for ax, key, label in ((axes[0], "signal", r"signal coefficient  $\sqrt{\bar\alpha_t}$"),
                           (axes[1], "noise", r"noise std  $\sqrt{1-\bar\alpha_t}$")):
        ax.plot(o["t"], o[f"declared_{key}"], "-", color=STATUS_COLOURS["declared"], label="declared schedule")
        ax.plot(o["t"], o[key], "o", ms=4, color=STATUS_COLOURS["measured"], label="measured on q_sample")
        ax.set_xlabel("t")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"FWD001 forward process (max coefficient error {o['max_coef_error']:.4f})", fontsize=11)
    fig.tight_layout()
    return save(fig, outdir, "fwd_coefficients.png")


def plot_trajectory(tr: Mapping[str, Any], outdir: Path) -> Path:
    """One spectrum's x_t at t = 0, .1T, .3T, .6T, T-1, with the closed form's mean and +-2 std band."""
    x_axis = tr["wave"] if tr["wave"] is not None else np.arange(tr["x0"].size)
    n = len(tr["t"])
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.6 * n + 0.6), sharex=True)
    for ax, t, xt, a, s in zip(np.atleast_1d(axes), tr["t"], tr["x_t"], tr["a_decl"], tr["s_decl"]):
        mean = a * tr["x0"]
        ax.fill_between(x_axis, mean - 2 * s, mean + 2 * s, color=STATUS_COLOURS["declared"], alpha=0.15,
                        lw=0, label=r"$\sqrt{\bar\alpha_t}\,x_0 \pm 2\sqrt{1-\bar\alpha_t}$")
        ax.plot(x_axis, xt, color="0.2", lw=0.5, label="x_t (q_sample)")
        ax.plot(x_axis, mean, color=STATUS_COLOURS["declared"], lw=0.8)
        ax.text(0.005, 0.92, f"t = {t}   " + r"$\sqrt{\bar\alpha_t}$" + f" = {a:.3f}", transform=ax.transAxes,
                va="top", fontsize=9, bbox={"fc": "white", "alpha": 0.8, "lw": 0})
        ax.margins(x=0)
    axes[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncol=2, frameon=False)
    axes[-1].set_xlabel("wavelength [Å]" if tr["wave"] is not None else "pixel")
    fig.suptitle("FWD001 one spectrum through the pipeline's q_sample", fontsize=11)
    fig.tight_layout()
    return save(fig, outdir, "fwd_xt_trajectory.png")

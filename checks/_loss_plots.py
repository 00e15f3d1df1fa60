"""Figures of the LOSS family (matplotlib is imported only when a figure is drawn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from diffcheck.formats.plotting import STATUS_COLOURS, plt, save


def plot_loss(o: Mapping[str, Any], outdir: Path) -> Path:
    """The network's loss per t against predicting zeros and predicting the data mean."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    floor = 1e-8
    ax.plot(o["t"], np.maximum(o["loss"], floor), "o-", ms=4, color=STATUS_COLOURS["measured"], label="network")
    ax.plot(o["t"], np.maximum(o["loss_mean"], floor), "s--", ms=3, color=STATUS_COLOURS["data"],
            label="predict the data mean")
    ax.plot(o["t"], np.maximum(o["loss_zero"], floor), "^--", ms=3, color=STATUS_COLOURS["declared"],
            label="predict zeros")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(f"loss ({o['kind']} target)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"LOSS001 loss vs trivial predictors (peak skill {o['peak_skill']:.0%} at t={o['peak_t']})",
                 fontsize=10)
    fig.tight_layout()
    return save(fig, outdir, "loss_vs_baselines.png")

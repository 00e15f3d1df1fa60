"""Figures of the TEMB family (matplotlib is imported only when a figure is drawn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from diffcheck.formats.plotting import STATUS_COLOURS, plt, save


def plot_sensitivity(o: Mapping[str, Any], outdir: Path) -> Path:
    """Relative output change over the other grid times, at each true t."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    floor = 1e-6  # a network that ignores t changes by exactly 0: drawn at the floor of the log axis
    ax.plot(o["t"], np.maximum(o["sensitivity"], floor), "o-", ms=4, color=STATUS_COLOURS["measured"],
            label="measured (0 drawn at 1e-6)")
    ax.axhline(o["min_sensitivity"], color=STATUS_COLOURS["declared"], lw=1, ls="--", label="threshold (median)")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, max(2.0, max(o["sensitivity"]) * 2))
    ax.legend(fontsize=8)
    ax.set_xlabel("true t (x_t fixed)")
    ax.set_ylabel("rms relative change of the output\nover the other grid times t'")
    ax.grid(alpha=0.3)
    ax.set_title(f"TEMB001 time sensitivity (median {o['median_sensitivity']:.3g})", fontsize=11)
    fig.tight_layout()
    return save(fig, outdir, "temb_sensitivity.png")


def plot_matrix(o: Mapping[str, Any], outdir: Path) -> Path:
    """log10 loss at true t (rows) with the network given t' (columns); the best t' per row marked."""
    m, ts = np.log10(np.maximum(np.asarray(o["_matrix"]), 1e-12)), o["t"]
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(m, origin="lower", cmap="viridis")
    best = [ts.index(b) for b in o["best_t"]]
    ax.plot(best, range(len(ts)), "x", color="white", ms=7, mew=2, label="lowest loss in the row")
    ax.plot([0, len(ts) - 1], [0, len(ts) - 1], "--", color="white", lw=0.8, label="diagonal (healthy)")
    ax.set_xticks(range(len(ts)), [str(t) for t in ts], rotation=60, fontsize=7)
    ax.set_yticks(range(len(ts)), [str(t) for t in ts], fontsize=7)
    ax.set_xlabel("t' given to the network")
    ax.set_ylabel("true t of x_t")
    fig.colorbar(im, ax=ax, label=f"log10 loss ({o['kind']} target)")
    ax.legend(loc="upper left", fontsize=7, framealpha=0.6)
    ax.set_title(f"TEMB004 noise-level identification ({o['diagonal_share']:.0%} of rows identify their t)", fontsize=10)
    fig.tight_layout()
    return save(fig, outdir, "temb_identification.png")

"""Shared figure helpers (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save"]

STATUS_COLOURS = {"declared": "#1f77b4", "measured": "#d62728", "data": "#2ca02c"}


def save(fig: "plt.Figure", outdir: Path, name: str) -> Path:
    """Save ``fig`` as ``outdir/name`` at a readable resolution and close it."""
    path = Path(outdir) / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

"""Spectra a run is checked against, validated against the pipeline and normalised once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import InputError
from .normalise import Normaliser
from .spectra import read_spectra_h5

__all__ = ["Dataset", "load_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Flux in physical units and its normalised twin, with the held-out split."""

    flux: np.ndarray  # [N, L] physical units
    x: np.ndarray  # [N, L] normalised (the network's space)
    heldout: np.ndarray  # [N] bool
    wave: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return int(self.flux.shape[0])

    def probe_rows(self) -> np.ndarray:
        """Rows for probes: the held-out split where there is one, else every row."""
        rows = np.flatnonzero(self.heldout)
        return rows if rows.size else np.arange(len(self))

    def tensor(self, rows: np.ndarray, channels: int, device: torch.device | str) -> torch.Tensor:
        x = torch.as_tensor(self.x[rows], dtype=torch.float32, device=device)
        return x[:, None, :].expand(-1, channels, -1).contiguous()


def load_dataset(path: str | os.PathLike, *, length: int, normaliser: Normaliser,
                 dataset: str = "flux") -> Dataset:
    """Read an HDF5 spectra file; InputError when it cannot serve a pipeline of this ``length``."""
    spectra = read_spectra_h5(path, dataset=dataset)
    flux = np.asarray(spectra.flux, dtype=np.float64)
    name = Path(path).name
    if flux.shape[1] != length:
        raise InputError(f"data {name}:{dataset} has {flux.shape[1]} pixels per spectrum but the "
                         f"pipeline works on {length}")
    bad = ~np.isfinite(flux).all(axis=1)
    if bad.any():
        raise InputError(f"data {name}:{dataset} has non-finite flux (NaN or Inf) in {int(bad.sum())} of "
                         f"{len(flux)} spectra (first at row {int(np.flatnonzero(bad)[0])})")
    if len(flux) == 0:
        raise InputError(f"data {name}:{dataset} holds no spectra")
    return Dataset(flux=flux, x=normaliser.normalise(flux), heldout=np.asarray(spectra.heldout, bool),
                   wave=spectra.wave, source=str(path))

"""Spectra a run is checked against, validated against the pipeline and normalised once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffcheck.errors import InputError
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.measure.spectra import read_spectra_h5

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
    _check_spectra(flux, f"data {name}:{dataset}")
    x = normaliser.normalise(flux)
    _check_range(x, normaliser, f"data {name}:{dataset}")
    return Dataset(flux=flux, x=x, heldout=np.asarray(spectra.heldout, bool), wave=spectra.wave, source=str(path))


#: Fewest spectra a run judges with: probes compare spectra with each other and with their mean
#: (FWD002's per-sample statistics, LOSS001's mean predictor), and DIST splits them in two.
MIN_SPECTRA = 8
#: The network works on about [-1, 1]; normalised flux beyond this many times that range means the
#: data is not in the units the pipeline's normaliser was fitted on.
MAX_ABS_X = 10.0
#: Share of normalised values allowed beyond MAX_ABS_X (outliers, cosmic rays).
MAX_OUTSIDE = 0.01


def _check_spectra(flux: np.ndarray, where: str) -> None:
    """InputError for data no verdict on a model can rest on: too few, constant or identical spectra."""
    n = len(flux)
    if n < MIN_SPECTRA:
        raise InputError(f"{where} holds {n} spectr{'um' if n == 1 else 'a'}; diffcheck needs at least "
                         f"{MIN_SPECTRA} (probes compare spectra with each other and with their mean)")
    constant = np.flatnonzero(np.ptp(flux, axis=1) == 0)
    if constant.size:
        raise InputError(f"{where}: {constant.size} of {n} spectra are constant (first at row {int(constant[0])}, "
                         f"flux {flux[constant[0], 0]:g} at every pixel); a spectrum varies with wavelength: "
                         "remove those rows or check how the file was written")
    if np.all(np.ptp(flux, axis=0) == 0):
        raise InputError(f"{where}: all {n} spectra are identical; pass the real (held-out) spectra")


def _check_range(x: np.ndarray, normaliser: Normaliser, where: str) -> None:
    """InputError where the normalised flux lies far outside the network's [-1, 1]: other units."""
    outside = float(np.mean(np.abs(x) > MAX_ABS_X))
    if outside > MAX_OUTSIDE:
        raise InputError(f"{where}: after the pipeline's normaliser ({normaliser.kind}, lo={normaliser.lo:g}, "
                         f"hi={normaliser.hi:g}) {100 * outside:.1f}% of flux values lie beyond +-{MAX_ABS_X:g} "
                         f"(they span {x.min():.3g} to {x.max():.3g}) while the network works on about [-1, 1]; "
                         "is the flux in other units than the training data (e.g. x1000), or the wrong --dataset?")

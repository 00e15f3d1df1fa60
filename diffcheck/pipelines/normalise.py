"""Data normalisation between physical flux and the network's space, stored with the weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Normaliser"]

_KINDS = ("identity", "global_minmax", "per_spectrum_minmax")


@dataclass(frozen=True)
class Normaliser:
    """Maps flux to [-1, 1] (``normalise``) and back (``denormalise``).

    ``global_minmax`` uses one (lo, hi) pair for the whole data set and is invertible;
    ``per_spectrum_minmax`` scales each spectrum by its own extrema, as in many spectra
    pipelines, and cannot be inverted without per-spectrum constants.
    """

    kind: str = "identity"
    lo: float = -1.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown normalisation {self.kind!r}; known: {', '.join(_KINDS)}")
        if self.kind == "global_minmax" and not self.hi > self.lo:
            raise ValueError(f"global_minmax needs hi > lo, got lo={self.lo}, hi={self.hi}")

    @classmethod
    def fit(cls, flux: np.ndarray, kind: str = "global_minmax") -> "Normaliser":
        if kind == "global_minmax":
            return cls(kind, float(np.min(flux)), float(np.max(flux)))
        return cls(kind)

    @property
    def invertible(self) -> bool:
        return self.kind != "per_spectrum_minmax"

    def normalise(self, flux: np.ndarray) -> np.ndarray:
        flux = np.asarray(flux, dtype=np.float64)
        if self.kind == "identity":
            return flux
        if self.kind == "global_minmax":
            lo, hi = self.lo, self.hi
        else:
            lo = flux.min(axis=-1, keepdims=True)
            hi = flux.max(axis=-1, keepdims=True)
        return 2.0 * (flux - lo) / (hi - lo) - 1.0

    def denormalise(self, x: np.ndarray) -> np.ndarray:
        if not self.invertible:
            raise ValueError("per_spectrum_minmax normalisation cannot be inverted")
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "identity":
            return x
        return (x + 1.0) / 2.0 * (self.hi - self.lo) + self.lo

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Normaliser":
        return cls(str(d.get("kind", "identity")), float(d.get("lo", -1.0)), float(d.get("hi", 1.0)))

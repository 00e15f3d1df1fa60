"""Noise schedules of discrete-time DDPMs, in float64.

Notation follows Ho et al. (2020): beta_t for t = 0..T-1 (zero-based, as code indexes it),
alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t} alpha_s, and the forward marginal
q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)   (Ho et al. 2020, eq. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Schedule", "linear_betas", "cosine_betas", "make_schedule"]


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Linear betas of Ho et al. (2020, sec. 4): beta_start..beta_end over T steps, not rescaled by T."""
    return np.linspace(beta_start, beta_end, T, dtype=np.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Cosine schedule of Nichol & Dhariwal (2021, eq. 17), betas clipped at max_beta."""
    steps = np.arange(T + 1, dtype=np.float64) / T
    f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return np.clip(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.0, max_beta)


_KINDS = {"linear": linear_betas, "cosine": cosine_betas}


def make_schedule(kind: str, T: int, **params: float) -> "Schedule":
    """Build a named schedule; raises ValueError naming the known kinds."""
    if kind not in _KINDS:
        raise ValueError(f"unknown beta schedule {kind!r}; known: {', '.join(sorted(_KINDS))}")
    if T < 1:
        raise ValueError(f"T must be at least 1, got {T}")
    return Schedule(betas=_KINDS[kind](T, **params), name=kind)


@dataclass(frozen=True, eq=False)
class Schedule:
    """A discrete schedule: betas[t] for t = 0..T-1, every derived quantity in float64."""

    betas: np.ndarray
    name: str = "custom"
    alpha_bar: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        betas = np.asarray(self.betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size == 0:
            raise ValueError(f"betas must be a non-empty 1D array, got shape {betas.shape}")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "alpha_bar", np.cumprod(1.0 - betas))

    @property
    def T(self) -> int:
        return int(self.betas.size)

    def snr(self) -> np.ndarray:
        """SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (Kingma et al. 2021, eq. 2); inf where beta=0."""
        with np.errstate(divide="ignore"):
            return self.alpha_bar / (1.0 - self.alpha_bar)

    def signal_scale(self) -> np.ndarray:
        """sqrt(alpha_bar_t), the coefficient of x_0 in x_t."""
        return np.sqrt(self.alpha_bar)

    def noise_scale(self) -> np.ndarray:
        """sqrt(1 - alpha_bar_t), the coefficient of eps in x_t."""
        return np.sqrt(1.0 - self.alpha_bar)

    def scales_at(self, t: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        """(signal_scale, noise_scale) at integer timesteps ``t`` [B], float64 [B, 1, 1] on t's device."""
        import torch

        a = torch.as_tensor(self.signal_scale(), device=t.device)[t].view(-1, 1, 1)
        return a, torch.as_tensor(self.noise_scale(), device=t.device)[t].view(-1, 1, 1)

    def grid(self, fractions: "list[float] | tuple[float, ...]") -> list[int]:
        """Timesteps at the given fractions of the range, e.g. (0, .1, .3, .6, 1) -> 0,100,300,600,999."""
        return sorted({min(self.T - 1, max(0, round(f * self.T))) for f in fractions})

    def to_config(self) -> dict:
        return {"name": self.name, "T": self.T}

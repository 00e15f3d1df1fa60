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

    def coefficients(self, step: int) -> tuple[float, float]:
        """(signal_scale, noise_scale) at one integer timestep, as floats."""
        return float(self.signal_scale()[step]), float(self.noise_scale()[step])

    def q_sample(self, x0: "torch.Tensor", t: "torch.Tensor", noise: "torch.Tensor") -> "torch.Tensor":
        """The closed-form forward process x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps
        (Ho et al. 2020, eq. 4) at integer timesteps ``t`` [B], computed in float64, returned in x0's dtype."""
        a, s = self.scales_at(t.to(x0.device))
        return (a * x0.double() + s * noise.double()).to(x0.dtype)

    def alpha_bar_prev(self) -> np.ndarray:
        """alpha_bar_{t-1}, with alpha_bar_{-1} = 1 (nothing noised before the first step)."""
        return np.concatenate([[1.0], self.alpha_bar[:-1]])

    def posterior(self) -> dict[str, np.ndarray]:
        """The posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var) of Ho et al. 2020, eq. 7:
        ``var`` (beta-tilde), ``c0`` and ``ct`` for every t."""
        ab, ab_prev, b = self.alpha_bar, self.alpha_bar_prev(), self.betas
        return {"var": b * (1.0 - ab_prev) / (1.0 - ab), "c0": b * np.sqrt(ab_prev) / (1.0 - ab),
                "ct": (1.0 - ab_prev) * np.sqrt(1.0 - b) / (1.0 - ab)}

    def ddim_step(self, step: int, prev: int, eta: float) -> tuple[float, float, float]:
        """DDIM's x_prev = c_x0 x0_hat + c_eps eps_hat + sigma z from ``step`` to ``prev`` (-1: to x_0)
        (Song et al. 2021, eq. 12, sigma = eta times the posterior std of eq. 16): (c_x0, c_eps, sigma)."""
        ab = self.alpha_bar
        ab_t, ab_prev = ab[step], (ab[prev] if prev >= 0 else 1.0)
        sigma = eta * np.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) if eta > 0 else 0.0
        return float(np.sqrt(ab_prev)), float(np.sqrt(max(1 - ab_prev - sigma**2, 0.0))), float(sigma)

    def timesteps(self, n: int) -> np.ndarray:
        """``n`` timesteps evenly spread over 0..T-1 ("linspace" spacing), ascending, without repeats."""
        return np.unique(np.round(np.linspace(0, self.T - 1, n)).astype(np.int64))

    def grid(self, fractions: "list[float] | tuple[float, ...]") -> list[int]:
        """Timesteps at the given fractions of the range, e.g. (0, .1, .3, .6, 1) -> 0,100,300,600,999."""
        return sorted({min(self.T - 1, max(0, round(f * self.T))) for f in fractions})

    def to_config(self) -> dict:
        return {"name": self.name, "T": self.T}

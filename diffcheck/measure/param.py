"""Parameterisations of a denoiser's output: eps, x0 and v, converted through one representation.

Every conversion goes through the pair (x0, eps) with x_t = a*x0 + s*eps, where
a = sqrt(alpha_bar_t) and s = sqrt(1 - alpha_bar_t) (Ho et al. 2020, eq. 4), and
v = a*eps - s*x0 (Salimans & Ho 2022, sec. 4). Training targets and sampler decodings both
use these functions, so a pipeline built on them cannot disagree with itself.
"""

from __future__ import annotations

from typing import Literal

import torch

Parameterisation = Literal["eps", "x0", "v"]
PARAMETERISATIONS: tuple[str, ...] = ("eps", "x0", "v")

__all__ = ["Parameterisation", "PARAMETERISATIONS", "check_parameterisation", "targets", "to_x0_eps"]


def check_parameterisation(kind: str) -> str:
    """Return ``kind`` if it is a known parameterisation, else raise ValueError naming the known ones."""
    if kind not in PARAMETERISATIONS:
        raise ValueError(f"unknown parameterisation {kind!r}; known: {', '.join(PARAMETERISATIONS)}")
    return kind


def targets(x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> dict[str, torch.Tensor]:
    """The regression target of each parameterisation for the pair (x0, eps)."""
    return {"eps": eps, "x0": x0, "v": a * eps - s * x0}


def to_x0_eps(
    kind: str, out: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor, s: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a network output of parameterisation ``kind`` into (x0_hat, eps_hat).

    ``a`` and ``s`` broadcast against ``x_t`` (shape [B, 1, 1] for a batch of timesteps).
    eps: x0 = (x_t - s*eps)/a (Ho et al. 2020, eq. 15); v: x0 = a*x_t - s*v, eps = s*x_t + a*v.
    """
    check_parameterisation(kind)
    if kind == "eps":
        return (x_t - s * out) / a, out
    if kind == "x0":
        return out, (x_t - a * out) / s
    return a * x_t - s * out, s * x_t + a * out

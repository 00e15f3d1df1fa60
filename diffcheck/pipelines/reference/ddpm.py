"""A DDPM (Ho et al. 2020) with eps, x0 and v objectives, an ancestral sampler and DDIM.

Known-good by construction: training targets and sampler decodings go through the same
functions in :mod:`diffcheck.measure.param`, and every schedule quantity is computed in float64
before it is cast to the network's dtype.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffcheck.measure.param import check_parameterisation, targets, to_x0_eps
from diffcheck.pipelines.pipeline import Step, StepCallback
from diffcheck.pipelines.schedule import Schedule, make_schedule

__all__ = ["DiffusionConfig", "GaussianDiffusion", "StepCallback"]

_SAMPLERS = ("ancestral", "ddim")


@dataclass(frozen=True)
class DiffusionConfig:
    """How the reference pipeline noises, trains and samples."""

    T: int = 1000
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    objective: str = "eps"
    sampler: str = "ancestral"
    sample_steps: int | None = None  # DDIM steps; None = T
    ddim_eta: float = 0.0
    clip_x0: float | None = 1.0  # clip the x0 prediction to [-c, c] while sampling; None = off

    def __post_init__(self) -> None:
        check_parameterisation(self.objective)
        if self.sampler not in _SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; known: {', '.join(_SAMPLERS)}")
        if self.sample_steps is not None and not 1 <= self.sample_steps <= self.T:
            raise ValueError(f"sample_steps must be in 1..T={self.T}, got {self.sample_steps}")

    def make_schedule(self) -> Schedule:
        if self.schedule == "linear":
            return make_schedule("linear", self.T, beta_start=self.beta_start, beta_end=self.beta_end)
        return make_schedule(self.schedule, self.T)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown diffusion config keys: {', '.join(sorted(unknown))}")
        return cls(**d)


class GaussianDiffusion:
    """Forward process, training loss and samplers around a network ``model(x_t, t)``.

    ``model`` is a plain attribute: replacing it changes what the loss and the samplers call.
    The network receives integer timesteps 0..T-1 (int64).
    """

    def __init__(self, model: nn.Module, config: DiffusionConfig, schedule: Schedule | None = None) -> None:
        self.model = model
        self.config = config
        self.schedule = schedule if schedule is not None else config.make_schedule()
        self._tensors: dict[tuple[str, torch.device], torch.Tensor] = {}

    # -- schedule lookups -------------------------------------------------------------
    def _coef(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """Schedule quantity ``name`` at timesteps ``t``, shaped [B, 1, 1] for broadcasting."""
        key = (name, t.device)
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(self._table(name), dtype=torch.float32, device=t.device)
        return self._tensors[key][t.long()].view(-1, 1, 1)

    def _table(self, name: str) -> np.ndarray:
        s = self.schedule
        if name == "a":
            return s.signal_scale()
        if name == "s":
            return s.noise_scale()
        return s.posterior()[name.removeprefix("post_")]  # q(x_{t-1} | x_t, x_0), Ho et al. 2020 eq. 7

    # -- forward process and loss -------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4)."""
        return self._coef("a", t) * x0 + self._coef("s", t) * noise

    def loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Simple loss (Ho et al. 2020, eq. 14) for the configured objective, t ~ U{0..T-1}."""
        t = torch.randint(0, self.schedule.T, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator, dtype=x0.dtype)
        return self.loss_at(x0, t, noise).mean()

    def loss_at(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The simple loss per sample [B] at given timesteps ``t`` [B] and ``noise`` (what :meth:`loss` averages)."""
        x_t = self.q_sample(x0, t, noise)
        target = targets(x0, noise, self._coef("a", t), self._coef("s", t))[self.config.objective]
        return F.mse_loss(self.model(x_t, t), target, reduction="none").flatten(1).mean(1)

    # -- sampling ---------------------------------------------------------------------------
    def predict(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat, raw output); x0_hat clipped and eps_hat recomputed after clipping."""
        out = self.model(x_t, t)
        a, s = self._coef("a", t), self._coef("s", t)
        x0_hat, eps_hat = to_x0_eps(self.config.objective, out, x_t, a, s)
        if self.config.clip_x0 is not None:
            x0_hat = x0_hat.clamp(-self.config.clip_x0, self.config.clip_x0)
            eps_hat = (x_t - a * x0_hat) / s
        return x0_hat, eps_hat, out

    @torch.no_grad()
    def sample(
        self,
        shape: tuple[int, ...],
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        callback: StepCallback | None = None,
    ) -> torch.Tensor:
        """Draw samples with the configured sampler, starting from x_T ~ N(0, I)."""
        x = torch.randn(shape, generator=generator, device=device)
        if self.config.sampler == "ddim":
            return self._ddim_loop(x, generator, callback)
        return self._ancestral_loop(x, generator, callback)

    def _ancestral_loop(self, x: torch.Tensor, gen: torch.Generator | None, cb: StepCallback | None) -> torch.Tensor:
        """Ho et al. 2020, Algorithm 2, with the posterior mean of eq. 7 and variance beta-tilde."""
        for i, step in enumerate(range(self.schedule.T - 1, -1, -1)):
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            x0_hat, _, out = self.predict(x, t)
            mean = self._coef("post_c0", t) * x0_hat + self._coef("post_ct", t) * x
            if step > 0:
                z = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
                x_next = mean + self._coef("post_var", t).sqrt() * z
            else:
                x_next = mean
            if cb is not None:
                cb(Step(i=i, t=step, x_t=x, x0_hat=x0_hat, out=out, x_next=x_next))
            x = x_next
        return x

    def ddim_timesteps(self) -> list[int]:
        """Evenly spaced timesteps from T-1 down to 0 ("linspace" spacing)."""
        return [int(v) for v in self.schedule.timesteps(self.config.sample_steps or self.schedule.T)[::-1]]

    def _ddim_loop(self, x: torch.Tensor, gen: torch.Generator | None, cb: StepCallback | None) -> torch.Tensor:
        """Song et al. 2021 (DDIM), eq. 12, with sigma_t = eta * sqrt posterior std (eq. 16)."""
        steps = self.ddim_timesteps()
        for i, step in enumerate(steps):
            prev = steps[i + 1] if i + 1 < len(steps) else -1
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            x0_hat, eps_hat, out = self.predict(x, t)
            c_x0, c_eps, sigma = self.schedule.ddim_step(step, prev, self.config.ddim_eta)
            x_next = c_x0 * x0_hat + c_eps * eps_hat
            if sigma > 0:
                x_next = x_next + sigma * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            if cb is not None:
                cb(Step(i=i, t=step, x_t=x, x0_hat=x0_hat, out=out, x_next=x_next))
            x = x_next
        return x

"""Exact denoisers that stand in for the network: they prove what the loss and the sampler expect.

Each oracle is an ``nn.Module`` called like the network, ``oracle(x_t, t)``, and returns the exact
eps, x0 or v for the declared schedule (Ho et al. 2020 eq. 4; v from Salimans & Ho 2022). The
timestep the pipeline passes is mapped back to a schedule index with :func:`timestep_index`,
which also records the convention it saw (integer index, t/T in [0, 1], or t*1000/T).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from diffcheck.measure.param import check_parameterisation, targets
from diffcheck.pipelines.schedule import Schedule

__all__ = ["TimeRecord", "timestep_index", "ExactOracle", "PosteriorMeanOracle"]


@dataclass
class TimeRecord:
    """What the oracle saw of t: dtype, range and the conventions each call matched."""

    dtypes: set[str] = field(default_factory=set)
    t_min: float = float("inf")
    t_max: float = float("-inf")
    conventions: list[str] = field(default_factory=list)


def timestep_index(t: torch.Tensor, T: int, record: TimeRecord | None = None) -> torch.Tensor:
    """Map the pipeline's t back to integer indices 0..T-1.

    Integral values within 0..T-1 are indices, unless they are floats no larger than 1 (then
    t/T: index = round(t*T), clamped); values up to 1000 beyond T-1 are t*1000/T.
    """
    td = t.detach().double().flatten()
    integral = bool(torch.all(torch.abs(td - td.round()) < 1e-4))
    is_float = t.is_floating_point()
    if td.min() < 0:
        raise ValueError(f"timesteps {td.min():.4g}..{td.max():.4g} fit no known convention for T={T}")
    if integral and td.max() <= T - 1 and not (is_float and td.max() <= 1.0):
        convention, idx = "index", td.round()
    elif td.max() <= 1.0:
        convention, idx = "unit", (td * T).round().clamp(0, T - 1)
    elif td.max() <= 1000.0:
        convention, idx = "x1000", (td * T / 1000.0).round().clamp(0, T - 1)
    else:
        raise ValueError(f"timesteps {td.min():.4g}..{td.max():.4g} fit no known convention for T={T}")
    if record is not None:
        record.dtypes.add(str(t.dtype).replace("torch.", ""))
        record.t_min, record.t_max = min(record.t_min, float(td.min())), max(record.t_max, float(td.max()))
        record.conventions.append(convention)
    return idx.long().to(t.device)


class _ScheduleOracle(nn.Module):
    def __init__(self, schedule: Schedule, kind: str) -> None:
        super().__init__()
        self.kind = check_parameterisation(kind)
        self.T = schedule.T
        self.register_buffer("a", torch.as_tensor(schedule.signal_scale(), dtype=torch.float64), persistent=False)
        self.register_buffer("s", torch.as_tensor(schedule.noise_scale(), dtype=torch.float64), persistent=False)
        self.times = TimeRecord()

    def coefficients(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        finite = torch.isfinite(t)
        if not bool(finite.all()):  # as a network would, answer a NaN t with NaN (SMP002 names the call)
            self.times.conventions.append("non-finite")
            a, s = self.coefficients(x_t, torch.where(finite, t, torch.zeros_like(t)))
            bad = (~finite).view(-1, *([1] * (x_t.dim() - 1)))
            return a.masked_fill(bad, float("nan")), s.masked_fill(bad, float("nan"))
        idx = timestep_index(t, self.T, self.times)
        if idx.numel() == 1:
            idx = idx.expand(x_t.shape[0])
        a, s = self.a.to(x_t.device)[idx], self.s.to(x_t.device)[idx]
        return a.view(-1, *([1] * (x_t.dim() - 1))), s.view(-1, *([1] * (x_t.dim() - 1)))

    def emit(self, x0: torch.Tensor, x_t: torch.Tensor, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        eps = (x_t.double() - a * x0) / s
        return targets(x0.expand_as(eps), eps, a, s)[self.kind].to(x_t.dtype)


def row_of(module: nn.Module, i: int) -> nn.Module:
    """``module`` as it answers for row ``i`` of the batch it was built for, called with that row
    alone (a user's loss that returns the batch mean is called one spectrum at a time). A module
    holding a value per row (an oracle's x0, a probe's time values) gives its row (``row(i)``); any
    other answers each row on its own already and is itself."""
    row = getattr(module, "row", None)
    return row(i) if callable(row) else module


def rows_done(module: nn.Module) -> None:
    """Tell ``module`` that its rows were called one at a time and the batch is complete."""
    done = getattr(module, "rows_done", None)
    if callable(done):
        done()


class ExactOracle(_ScheduleOracle):
    """Knows the clean x0: one spectrum [1, C, L] (a point data set) or the loss's batch [B, C, L]
    (row i of x_t comes from row i of x0). Returns the exact target of ``kind`` for each call.

    Per call it records two statistics of the residual r = (x_t - a x0) / s, which a sampler that
    decodes this oracle's output correctly keeps distributed as q(x_t | x0) prescribes, N(0, I):

    - ``residual_mean_z``: the projection of r on the direction of x0, summed over the batch and
      divided by sqrt(batch) and by r's std: N(0, 1) whatever noise level the sampler adds,
      because every sampler's mean step E[x_{t-1}] = a_{t-1} x0 holds for an exact x0;
    - ``residual_std``: the std of r, 1 only where the sampler also adds the posterior noise
      level (DDIM with any eta, DDPM with the posterior variance; not DDPM's sigma^2 = beta).
    """

    def __init__(self, x0: torch.Tensor, schedule: Schedule, kind: str) -> None:
        super().__init__(schedule, kind)
        self.x0 = x0.detach().double()
        self.residual_std: list[float] = []
        self.residual_mean_z: list[float] = []

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        a, s = self.coefficients(x_t, t)
        x0 = self.x0.to(x_t.device)
        r = (x_t.double() - a * x0) / s
        std = r.std()
        direction = x0.expand_as(r).flatten(1)
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-300)
        along = (r.flatten(1) * direction).sum(1)
        self.residual_std.append(float(std))
        self.residual_mean_z.append(float(along.sum() / (along.numel() ** 0.5 * std.clamp_min(1e-300))))
        return self.emit(x0, x_t, a, s)

    def row(self, i: int) -> ExactOracle:
        """The oracle of row i's spectrum (the point data set x0[i]); its records are this one's."""
        if self.x0.shape[0] == 1:
            return self
        view = copy.copy(self)
        view.__dict__["x0"] = self.x0[i : i + 1]
        return view


class PosteriorMeanOracle(_ScheduleOracle):
    """The ideal denoiser for an empirical data set of K spectra: E[x0 | x_t] under q.

    With x_t = a x0 + s eps and x0 uniform over the K spectra, the posterior weights are
    softmax_k(-||x_t - a x0_k||^2 / (2 s^2)); the output is that mean in parameterisation ``kind``.
    """

    def __init__(self, data: torch.Tensor, schedule: Schedule, kind: str) -> None:
        super().__init__(schedule, kind)
        self.data = data.detach().double()

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        a, s = self.coefficients(x_t, t)
        xt, data = x_t.double().flatten(1), self.data.to(x_t.device).flatten(1)
        a2, s2 = a.flatten()[:, None], s.flatten()[:, None]
        # ||x_t - a x0_k||^2 expanded: one matmul instead of a [B, K, L] difference.
        dist = (xt * xt).sum(1, keepdim=True) - 2 * a2 * (xt @ data.T) + a2 * a2 * (data * data).sum(1)[None]
        w = torch.softmax(-dist / (2 * s2 * s2), dim=1)
        x0_hat = (w @ data).view_as(x_t.double())
        return self.emit(x0_hat, x_t, a, s)


class Spy(nn.Module):
    """Wraps the network a pipeline calls and records every call: t, its dtype, the mode.

    ``stop_after`` raises :class:`StopSampling` after that many calls, so a probe of the real
    network's mode costs one forward pass instead of a whole sampler run.
    """

    def __init__(self, inner: nn.Module, stop_after: int | None = None, measure_mode: bool = False) -> None:
        super().__init__()
        self.inner, self.stop_after, self.measure_mode = inner, stop_after, measure_mode
        self.calls: list[dict] = []

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = self.inner(x_t, t, *args, **kwargs)
        call = {"t": t.detach().flatten()[0].item() if t.numel() else float("nan"),
                "t_dtype": str(t.dtype).replace("torch.", ""), "training": bool(self.inner.training)}
        if self.measure_mode and not self.calls:
            call.update(_mode_effect(self.inner, out, x_t, t, args, kwargs))
        self.calls.append(call)
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise StopSampling
        return out


def _output_tensor(out) -> torch.Tensor:
    """The tensor of a network's output (diffusers returns a dataclass with ``.sample``, some a tuple)."""
    if torch.is_tensor(out):
        return out
    if hasattr(out, "sample"):
        return out.sample
    return out[0]


def _mode_effect(net: nn.Module, out, x_t: torch.Tensor, t: torch.Tensor, args, kwargs) -> dict:
    """What the network's current mode does to this call's output: the relative change of a second
    call in the same mode (dropout draws again) and of the same call in eval mode (dropout off, batch
    norm on its running statistics). Every module's own mode is restored afterwards."""
    modes = {m: m.training for m in net.modules()}
    first = _output_tensor(out).detach().double()
    scale = float(first.abs().max().clamp_min(1e-12))
    with torch.no_grad():
        again = _output_tensor(net(x_t, t, *args, **kwargs)).detach().double()
        net.eval()
        try:
            evaluated = _output_tensor(net(x_t, t, *args, **kwargs)).detach().double()
        finally:
            for m, training in modes.items():
                m.training = training
    return {"repeat_change": float((again - first).abs().max()) / scale,
            "eval_change": float((evaluated - first).abs().max()) / scale}


class StopSampling(Exception):
    """Raised by :class:`Spy` to end a sampler run early."""

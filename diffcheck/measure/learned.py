"""Fixtures of the learned-behaviour families (TEMB, LOSS, WGT): the trained network probed at
chosen timesteps, with chosen time inputs, through the pipeline's own loss.

Every probe goes through :func:`per_sample_loss`: the pipeline's ``training_loss_at`` (its own
forward process, target and weighting) at true schedule indices, with the network wrapped so that
it receives a time value diffcheck chooses (:class:`TimeOverride`). Pipelines without
``training_loss_at`` are probed with the target of the parameterisation their sampler decodes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from diffcheck.engine.context import fixture
from diffcheck.pipelines.data import Dataset
from diffcheck.measure.oracles import ExactOracle, row_of
from diffcheck.measure.param import PARAMETERISATIONS, targets
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.measure.probes import Probe

__all__ = ["TIME_CONVENTIONS", "geometric_mean", "TimeOverride", "ZeroNetwork", "per_sample_loss", "has_loss_at", "grid",
           "learned_target", "time_probe", "mean_spectrum", "loss_baselines", "fresh_network", "ema_probe"]

#: Timesteps of the probes (rows and columns of the noise-level identification matrix).
GRID = 12
#: Probe spectra per cell of the matrix (a row costs GRID x this many network calls).
MATRIX_SPECTRA = 4
#: Time conventions a network may have been trained with, as functions of schedule indices and T.
TIME_CONVENTIONS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "index": lambda idx, T: idx,
    "unit": lambda idx, T: idx.double().div(T).float(),
    "x1000": lambda idx, T: idx.double().mul(1000.0 / T).float(),
    "zero": lambda idx, T: torch.zeros_like(idx),
}


class TimeOverride(nn.Module):
    """Calls ``inner`` with ``value`` [B] in place of the t the pipeline passes; keeps the last output."""

    def __init__(self, inner: nn.Module, value: torch.Tensor) -> None:
        super().__init__()
        self.inner, self.value = inner, value
        self.last: torch.Tensor | None = None

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        out = self.inner(x_t, self.value, *args, **kwargs)
        self.last = out.detach()
        return out

    def row(self, i: int) -> nn.Module:
        """Row i alone: the inner network's row given ``value[i]``; ``last`` is the rows' outputs
        joined once ``rows_done`` is called (see oracles.row_of)."""
        return _TimeRow(self, i)

    def rows_done(self) -> None:
        rows = self.__dict__.pop("_rows", {})
        if rows:
            self.last = torch.cat([rows[i] for i in sorted(rows)])


class _TimeRow(nn.Module):
    def __init__(self, parent: TimeOverride, i: int) -> None:
        super().__init__()
        self.__dict__["parent"] = parent  # not a submodule: the row is a view of its parent
        self.i = i

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        p, i = self.parent, self.i
        value = p.value[i : i + 1] if p.value.dim() and p.value.numel() > 1 else p.value
        out = row_of(p.inner, i)(x_t, value, *args, **kwargs)
        p.__dict__.setdefault("_rows", {})[i] = out.detach()
        return out


class ZeroNetwork(nn.Module):
    """The trivial predictor that outputs zeros (a baseline)."""

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return torch.zeros_like(x_t)


def geometric_mean(values) -> float:
    """exp(mean(log(values))), values floored at 1e-300 (losses and ratios spread over decades)."""
    return float(np.exp(np.log(np.maximum(np.asarray(values, dtype=float), 1e-300)).mean()))


def has_loss_at(pipeline: Pipeline) -> bool:
    """Whether the pipeline implements the optional ``training_loss_at``."""
    return pipeline.provides("training_loss_at")


@torch.no_grad()
def per_sample_loss(pipeline: Pipeline, network: nn.Module, x0: torch.Tensor, t: torch.Tensor,
                    noise: torch.Tensor, time_value: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss per sample [B], network output) of ``network`` given ``time_value`` at true indices ``t``.

    Through the pipeline's ``training_loss_at`` where it has one, else the MSE against the
    ``kind`` target on the pipeline's own q_sample.
    """
    wrapped = TimeOverride(network, time_value)
    if has_loss_at(pipeline):
        with pipeline.network_replaced(wrapped):
            loss = pipeline.training_loss_at(x0, t, noise)
        return loss.double().reshape(-1), wrapped.last
    a, s = pipeline.schedule.scales_at(t.to(x0.device))
    out = wrapped(pipeline.q_sample(x0, t, noise), t)
    target = targets(x0.double(), noise.double(), a, s)[kind]
    return (out.double() - target).pow(2).flatten(1).mean(1), wrapped.last


@fixture
def learned_target(pipeline: Pipeline, x0_probe: Probe, seed: int, lazy: Callable[[str], Any]) -> str:
    """The parameterisation the probes' loss measures: the training loss's own (identified by exact
    oracles through ``training_loss_at``), else the one the sampler decodes (the run's ``decoding``,
    through the cache: the sampler oracles run once per run, and only where needed)."""
    if not has_loss_at(pipeline):
        return lazy("decoding")
    x0 = x0_probe.x0
    gen = torch.Generator(device=x0.device).manual_seed(seed)
    ts = torch.as_tensor(pipeline.schedule.timesteps(x0.shape[0]), device=x0.device)
    t = ts[torch.arange(x0.shape[0], device=x0.device) % ts.numel()]
    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    losses = {}
    for kind in PARAMETERISATIONS:
        oracle = ExactOracle(x0, pipeline.schedule, kind).to(x0.device)
        losses[kind] = float(per_sample_loss(pipeline, oracle, x0, t, noise, t, kind)[0].mean())
    return min(losses, key=losses.get)


def mean_spectrum(data: Dataset | None, x0_probe: Probe) -> torch.Tensor:
    """The data mean [1, C, L] in the network's space: training rows of ``--data``, else the probe's."""
    if data is None:
        return x0_probe.x0.mean(0, keepdim=True)
    rows = np.flatnonzero(~data.heldout) if (~data.heldout).any() else np.arange(len(data))
    channels = x0_probe.x0.shape[1]
    return data.tensor(rows, channels, x0_probe.x0.device).mean(0, keepdim=True)


@fixture
def time_probe(pipeline: Pipeline, x0_probe: Probe, learned_target: str, generator: torch.Generator) -> dict:
    """The network at every true timestep of the grid, given every grid time and every convention.

    ``matrix[i, j]``: mean loss at true index ``t[i]`` with the network given ``model_time(t[j])``;
    ``sensitivity[i]``: rms over j of ||out(t[j]) - out(t[i])|| / ||out(t[i])|| at fixed x_t;
    ``conventions[c][i]``: the loss at ``t[i]`` with the network given convention ``c`` of ``t[i]``.
    Every cell averages the same ``MATRIX_SPECTRA`` probe spectra and noise draws.
    """
    x0, T, net = x0_probe.x0, pipeline.schedule.T, pipeline.network
    net.eval()
    ts = torch.as_tensor(pipeline.schedule.timesteps(GRID), device=x0.device)
    g, k = ts.numel(), min(MATRIX_SPECTRA, x0.shape[0])
    noise = torch.randn((g, *x0.shape), generator=generator, device=x0.device)
    values = pipeline.model_time(ts)
    matrix, sens = np.zeros((g, g)), np.zeros(g)
    conv = {c: np.zeros(g) for c in TIME_CONVENTIONS}
    for i in range(g):
        t_true = ts[i].repeat(g * k)
        loss, out = per_sample_loss(pipeline, net, x0[:k].repeat(g, 1, 1), t_true, noise[i, :k].repeat(g, 1, 1),
                                    values.repeat_interleave(k), learned_target)
        matrix[i] = loss.view(g, k).mean(1).cpu().numpy()
        out = out.double().view(g, k, -1)
        change = (out - out[i : i + 1]).norm(dim=2) / out[i : i + 1].norm(dim=2).clamp_min(1e-12)
        sens[i] = float(change.pow(2).mean().sqrt())
        for c, fn in TIME_CONVENTIONS.items():
            t_row = ts[i].repeat(k)
            conv[c][i] = float(per_sample_loss(pipeline, net, x0[:k], t_row, noise[i, :k], fn(t_row, T),
                                               learned_target)[0].mean())
    return {"t": ts.cpu().numpy(), "matrix": matrix, "sensitivity": sens, "conventions": conv, "noise": noise,
            "kind": learned_target, "matrix_spectra": k, "spectra": int(x0.shape[0]), "T": T}


@fixture
def loss_baselines(pipeline: Pipeline, data: Dataset | None, x0_probe: Probe, time_probe: dict) -> dict:
    """Per grid t: the network's loss (true t, the matrix diagonal) and the trivial predictors' on the
    same spectra and noise: zeros, and the data mean (the exact denoiser of a one-spectrum data set)."""
    from diffcheck.measure.oracles import PosteriorMeanOracle

    k, kind, ts = time_probe["matrix_spectra"], time_probe["kind"], time_probe["t"]
    x0 = x0_probe.x0[:k]
    mean_oracle = PosteriorMeanOracle(mean_spectrum(data, x0_probe), pipeline.schedule, kind).to(x0.device)
    rows = {"zero": [], "mean": []}
    for i, step in enumerate(ts):
        t = torch.full((k,), int(step), dtype=torch.long, device=x0.device)
        noise = time_probe["noise"][i, :k]
        rows["zero"].append(float(per_sample_loss(pipeline, ZeroNetwork(), x0, t, noise, t, kind)[0].mean()))
        rows["mean"].append(float(per_sample_loss(pipeline, mean_oracle, x0, t, noise, t, kind)[0].mean()))
    return {"t": ts, "model": np.diag(time_probe["matrix"]).copy(), "zero": np.asarray(rows["zero"]),
            "mean": np.asarray(rows["mean"]), "kind": kind, "spectra": k}


def fresh_network(pipeline: Pipeline, seed: int) -> nn.Module | None:
    """``pipeline.make_network()`` under a seeded, forked RNG (no effect on global state); None where the
    pipeline declares it cannot (:meth:`Pipeline.unavailable`)."""
    if not pipeline.provides("make_network"):
        return None
    devices = [pipeline.device.index or 0] if pipeline.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return pipeline.make_network().to(pipeline.device)


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().flatten() for p in net.parameters()])


@fixture
def ema_probe(pipeline: Pipeline, x0_probe: Probe, time_probe: dict, seed: int) -> dict:
    """The EMA network (what the sampler calls) against the online one: weight distances, also from a
    fresh initialisation, and the loss of each on the probe's diagonal (same spectra, noise and t)."""
    from diffcheck.errors import Skip

    info = pipeline.weights_info()
    if info.online is None or info.online is pipeline.network:
        raise Skip("the pipeline reports no online network next to the one it samples with (no EMA copy)")
    ema, online = pipeline.network, info.online.eval()
    w_ema, w_online = _flat(ema), _flat(online)
    if w_ema.shape != w_online.shape:
        raise Skip(f"EMA and online networks differ in size ({w_ema.numel()} vs {w_online.numel()} parameters)")
    k, ts = time_probe["matrix_spectra"], time_probe["t"]
    x0 = x0_probe.x0[:k]
    online_loss = []
    for i, step in enumerate(ts):
        t = torch.full((k,), int(step), dtype=torch.long, device=x0.device)
        online_loss.append(float(per_sample_loss(pipeline, online, x0, t, time_probe["noise"][i, :k],
                                                 pipeline.model_time(t), time_probe["kind"])[0].mean()))
    fresh = fresh_network(pipeline, seed)
    w_fresh = _flat(fresh) if fresh is not None and _flat(fresh).shape == w_online.shape else None
    return {"t": ts, "ema_loss": np.diag(time_probe["matrix"]).copy(), "online_loss": np.asarray(online_loss),
            "ema_online_distance": float((w_ema - w_online).norm() / w_online.norm().clamp_min(1e-300)),
            "online_from_fresh": None if w_fresh is None else float((w_online - w_fresh).norm() / w_fresh.norm()),
            "ema_from_fresh": None if w_fresh is None else float((w_ema - w_fresh).norm() / w_fresh.norm()),
            "ema_decay": info.ema_decay, "steps": info.steps}


#: The fixtures this module provides, as the fixture registry reads them (diffcheck.engine.context).
FIXTURES = (learned_target, time_probe, loss_baselines, ema_probe,)

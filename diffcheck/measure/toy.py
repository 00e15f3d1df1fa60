"""The toy diffusion (TOY): a fresh network, trained in seconds on 2 noise levels with the
pipeline's own training loss, then asked to denoise through the pipeline's own sampler decoding.

A broken path between the loss and the decoding (a target the decoding does not expect, as in the
motivating experiment; a loss that noises with other coefficients than it declares, or re-normalises
x_t; a decoding that clips x0 inside the data range) cannot learn this easy task, whatever the
architecture; a healthy one beats the trivial estimates (the noisy input, the data mean) within
a few dozen optimiser steps. Nothing about the checkpoint is used except its code.

What it does not see: the toy passes t to ``training_loss_at`` and ``denoise`` itself, so a time
input that only the sampler loop passes differently (t/T at sampling: SMP004, TEMB003) is outside
it, and with two noise levels a fresh network reads the level from x_t's amplitude, so a loss that
drops t (TEMB005) still denoises here. The zoo (fixtures/zoo.toml) requires TOY001 to pass on both.
"""

from __future__ import annotations

import numpy as np
import torch

from diffcheck.engine.context import fixture
from diffcheck.pipelines.data import Dataset
from diffcheck.measure.learned import fresh_network, mean_spectrum
from diffcheck.measure.param import PARAMETERISATIONS, to_x0_eps
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.measure.probes import Probe, synthetic_spectra

__all__ = ["toy_run", "TOY_ALPHA_BARS", "TOY_STEPS"]

#: The noise levels, as alpha_bar (SNR 9 and 1): noisy enough that the noisy input is a worse
#: estimate than the data mean; at SNR 1 eps, x0 and v differ enough that decoding one as another
#: fails (at SNR 9, v and eps nearly coincide). A healthy toy reaches about 0.35x and 0.75x the best
#: trivial error in 60 steps.
TOY_ALPHA_BARS = (0.9, 0.5)
TOY_STEPS = 60
TOY_BATCH = 8
TOY_LR = 6e-3
TOY_TRAIN_SPECTRA = 64
TOY_EVAL_SPECTRA = 32


def _levels(pipeline: Pipeline) -> list[int]:
    ab = pipeline.schedule.alpha_bar
    return sorted({int(np.argmin(np.abs(ab - target))) for target in TOY_ALPHA_BARS})


def _spectra(pipeline: Pipeline, data: Dataset | None, seed: int, heldout: bool, n: int) -> torch.Tensor:
    """``n`` seeded rows of ``--data``'s held-out (or training) split, else synthetic spectra."""
    if data is None:
        return synthetic_spectra(pipeline, n, seed + (2 if heldout else 1))[0]
    split = data.heldout if heldout else ~data.heldout
    rows = np.flatnonzero(split) if split.any() else np.arange(len(data))
    pick = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, rows.size), replace=False))
    return data.tensor(pick, pipeline.sample_shape[0], pipeline.device)


def _train(pipeline: Pipeline, net: torch.nn.Module, x: torch.Tensor, levels: torch.Tensor,
           gen: torch.Generator) -> list[float]:
    opt = torch.optim.Adam(net.parameters(), lr=TOY_LR)
    # Linear decay to 0: the last steps settle instead of leaving the weights mid-jump.
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / TOY_STEPS)
    net.train()
    losses = []
    for _ in range(TOY_STEPS):
        idx = torch.randint(0, x.shape[0], (TOY_BATCH,), generator=gen, device=x.device)
        t = levels[torch.randint(0, levels.numel(), (TOY_BATCH,), generator=gen, device=x.device)]
        noise = torch.randn(x[idx].shape, generator=gen, device=x.device)
        with pipeline.network_replaced(net):
            loss = pipeline.training_loss_at(x[idx], t, noise).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay.step()
        losses.append(float(loss.detach()))
    return losses


def _rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).pow(2).mean().sqrt())


class _Recorder(torch.nn.Module):
    """The toy network, keeping its last raw output (what the pipeline's decoding received)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.out = inner, None

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        self.out = self.inner(x_t, t, *args, **kwargs)
        return self.out


@torch.no_grad()
def _evaluate(pipeline: Pipeline, net: torch.nn.Module, x0: torch.Tensor, mean: torch.Tensor, step: int,
              gen: torch.Generator) -> dict:
    """RMS error of the toy's decoded x0, of the trivial estimates, and of the toy's raw output
    decoded as each parameterisation (eps, x0, v) at one level."""
    t = torch.full((x0.shape[0],), step, dtype=torch.long, device=x0.device)
    x_t = pipeline.q_sample(x0, t, torch.randn(x0.shape, generator=gen, device=x0.device))
    net.eval()
    recorder = _Recorder(net)
    with pipeline.network_replaced(recorder):
        x0_hat = pipeline.denoise(x_t, t)
    a, s = pipeline.schedule.coefficients(step)
    decoded = {kind: _rms(to_x0_eps(kind, recorder.out.double(), x_t.double(), a, s)[0], x0)
               for kind in PARAMETERISATIONS} if recorder.out is not None else {}
    return {"t": step, "alpha_bar": a * a, "toy": _rms(x0_hat, x0), "noisy": _rms(x_t / a, x0),
            "mean": _rms(mean.expand_as(x0), x0), "decoded_as": decoded}


@fixture
def toy_run(pipeline: Pipeline, data: Dataset | None, x0_probe: Probe, seed: int) -> dict:
    """Train a fresh network on 2 noise levels with the pipeline's own loss; denoise the held-out probe."""
    pipeline.require("training_loss_at", "denoise", "make_network")
    net = fresh_network(pipeline, seed)
    device = pipeline.device
    x, x_eval = (_spectra(pipeline, data, seed, split, n)
                 for split, n in ((False, TOY_TRAIN_SPECTRA), (True, TOY_EVAL_SPECTRA)))
    gen = torch.Generator(device=device).manual_seed(seed)
    levels = _levels(pipeline)
    losses = _train(pipeline, net, x, torch.as_tensor(levels, device=device), gen)
    rows = [_evaluate(pipeline, net, x_eval, mean_spectrum(data, x0_probe), step, gen) for step in levels]
    return {"levels": rows, "losses": losses, "train_spectra": int(x.shape[0]), "eval_spectra": int(x_eval.shape[0]),
            "steps": TOY_STEPS, "batch": TOY_BATCH}


#: The fixtures this module provides, as the fixture registry reads them (diffcheck.engine.context).
FIXTURES = (toy_run,)

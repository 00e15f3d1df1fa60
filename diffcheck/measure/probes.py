"""Built-in fixtures: probe spectra and measurements of the pipeline's forward process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffcheck.engine.context import fixture
from diffcheck.pipelines.data import Dataset
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.pipeline import Pipeline

__all__ = ["Probe", "x0_probe", "synthetic_spectra", "forward_moments", "FIGURE_FRACTIONS"]

PROBE_SPECTRA = 8
MOMENT_DRAWS = 64
MOMENT_GRID = 16
#: The x_t figure's timesteps as fractions of T: 0, 100, 300, 600, 999 of 1000.
FIGURE_FRACTIONS = (0.0, 0.1, 0.3, 0.6, 1.0)


@dataclass(frozen=True, eq=False)
class Probe:
    """Clean spectra in the network's space, [K, C, L] on the pipeline's device."""

    x0: torch.Tensor
    wave: np.ndarray | None
    source: str


@fixture
def x0_probe(pipeline: Pipeline, data: Dataset | None, seed: int) -> Probe:
    """Held-out spectra from ``--data`` where given, else synthetic stellar spectra."""
    channels = pipeline.sample_shape[0]
    if data is not None:
        rows = data.probe_rows()
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(rows, size=min(PROBE_SPECTRA, rows.size), replace=False))
        return Probe(data.tensor(pick, channels, pipeline.device), data.wave, f"{data.source} (held-out)")
    x, wave = synthetic_spectra(pipeline, PROBE_SPECTRA, seed)
    return Probe(x, wave,
                 f"synthetic spectra (seed {seed}); pass --data for real ones")


def synthetic_spectra(pipeline: Pipeline, n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` synthetic stellar spectra [n, C, L] in the network's space (its normaliser where it is global,
    else per-spectrum min-max to [-1, 1]), and their wavelengths."""
    from diffcheck.measure.spectra import generate_spectra

    channels, length = pipeline.sample_shape
    spectra = generate_spectra(n, length=length, seed=seed)
    norm = pipeline.normaliser
    norm = norm if norm.kind == "global_minmax" else Normaliser("per_spectrum_minmax")
    x = torch.as_tensor(norm.normalise(spectra.flux), dtype=torch.float32, device=pipeline.device)
    return x[:, None, :].expand(-1, channels, -1).contiguous(), spectra.wave


@torch.no_grad()
def _moments_at(pipeline: Pipeline, x0: torch.Tensor, step: int, n: int, gen: torch.Generator):
    """Per-pixel mean and variance of x_t over ``n`` noise draws for fixed ``x0``."""
    k = x0.shape[0]
    x0_rep = x0.repeat(n, 1, 1)
    noise = torch.randn(x0_rep.shape, generator=gen, device=x0.device)
    t = torch.full((x0_rep.shape[0],), step, dtype=torch.long, device=x0.device)
    xt = pipeline.q_sample(x0_rep, t, noise).double().view(n, k, *x0.shape[1:])
    return xt.mean(0), xt.var(0), xt


@fixture
def forward_moments(pipeline: Pipeline, x0_probe: Probe, generator: torch.Generator) -> dict:
    """Fit x_t's per-pixel mean ~ a_t * x0 and its std ~ s_t on a grid of t, from the pipeline's q_sample."""
    sched, x0 = pipeline.schedule, x0_probe.x0
    x0d, n = x0.double(), MOMENT_DRAWS
    ts = sched.timesteps(MOMENT_GRID)
    rows = []
    for step in ts:
        mean, var, xt = _moments_at(pipeline, x0, int(step), n, generator)
        a_hat = float((mean * x0d).sum() / (x0d * x0d).sum())
        s_hat = float(var.mean().sqrt())
        resid = (mean - a_hat * x0d).pow(2).mean().sqrt()
        rows.append((a_hat, s_hat, float(s_hat / np.sqrt(n * float((x0d * x0d).sum()))),
                     s_hat / np.sqrt(2.0 * (n - 1) * x0.numel()),
                     float(resid / max(s_hat / np.sqrt(n), 1e-12))))
    a_hat, s_hat, se_a, se_s, shape = (np.array(c) for c in zip(*rows))
    return {"t": ts, "a_decl": sched.signal_scale()[ts], "s_decl": sched.noise_scale()[ts],
            "a_hat": a_hat, "s_hat": s_hat, "se_a": se_a, "se_s": se_s, "shape_ratio": shape,
            "x_T": xt.float().flatten().cpu().numpy(), "draws": n, "spectra": int(x0.shape[0])}


@fixture
def forward_trajectory(pipeline: Pipeline, x0_probe: Probe, generator: torch.Generator) -> dict:
    """One probe spectrum noised by the pipeline's q_sample at 0, .1, .3, .6, 1 of T, with one noise draw."""
    sched, x0 = pipeline.schedule, x0_probe.x0[:1]
    ts = sched.grid(FIGURE_FRACTIONS)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    with torch.no_grad():
        xs = [pipeline.q_sample(x0, torch.full((1,), t, dtype=torch.long, device=x0.device), noise)
              for t in ts]
    return {"t": ts, "x0": x0[0, 0].double().cpu().numpy(), "x_t": np.stack([x[0, 0].double().cpu().numpy() for x in xs]),
            "a_decl": sched.signal_scale()[ts], "s_decl": sched.noise_scale()[ts], "wave": x0_probe.wave}


#: The fixtures this module provides, as the fixture registry reads them (diffcheck.engine.context).
FIXTURES = (x0_probe, forward_moments, forward_trajectory,)

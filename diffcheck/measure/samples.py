"""Samples drawn with the pipeline's own sampler, once per run, and the real spectra they are judged by.

``dist_samples`` draws in batches of ``min_samples`` (on the pipeline's device) and stops early
once the verdict is certain, up to ``max_samples``. Certain means a failure no further sample
could overturn: NaN/Inf, or white noise (a structure score under 0.25, where white noise scores 0
and real spectra 1; see :func:`diffcheck.measure.stats.structure_score`). A flux distribution far from the
real one is no reason to stop: it is a quality figure (DIST002-004), measured the more precisely
the more samples there are. A model whose samples are not noise uses ``max_samples``. Both numbers
are run settings (``--min-samples``, ``--max-samples``) and the count used is in every DIST result.

``dist_reference`` holds the real spectra: the held-out split as the reference and the training
split as the pool that null distributions are drawn from (see :mod:`diffcheck.measure.stats`); without a
held-out split, a seeded random half of the data plays each role.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from diffcheck.engine.context import fixture
from diffcheck.pipelines.data import Dataset
from diffcheck.errors import InputError, Skip
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.measure.stats import structure_score

__all__ = ["Reference", "SampleSet", "dist_reference", "dist_samples", "DEFAULT_SETTINGS", "sample_settings"]

DEFAULT_SETTINGS: Mapping[str, int] = {"min_samples": 16, "max_samples": 32}
#: Early stop: samples' structure score (0 white noise, 1 real spectra; see stats.structure_score) below this.
STOP_STRUCTURE = 0.25
#: Fractions of the sampler's steps at which one sample's x_t is kept for the reverse-process figure.
SNAPSHOT_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 1.0)


@dataclass(frozen=True, eq=False)
class Reference:
    """Real spectra in the units samples are compared in, plus their network-space twins."""

    flux: np.ndarray  # [m, L] the reference (held-out split)
    pool: np.ndarray  # [k, L] where null draws come from (training split)
    x: np.ndarray  # reference in the network's space
    pool_x: np.ndarray
    units: str  # "physical" or "normalised"
    wave: np.ndarray | None
    split: str  # how reference and pool were chosen
    sorted_flux: np.ndarray  # the reference's pooled values, sorted (pooled KS and W1 need it)


@dataclass(frozen=True, eq=False)
class SampleSet:
    """What the pipeline's sampler produced: network space and physical units, plus its trace."""

    x: np.ndarray  # [n, L] network space
    flux: np.ndarray  # [n, L] in the reference's units
    finite: np.ndarray  # [n] bool: no NaN/Inf
    sampling_s: float
    stop_reason: str
    settings: Mapping[str, int]
    #: One sample's x_t through the reverse process: (step index, t, x_t [L]) at SNAPSHOT_FRACTIONS.
    snapshots: tuple[tuple[int, float, np.ndarray], ...] = field(default=())
    steps: int = 0

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def sample_settings(settings: Mapping[str, Any] | None) -> dict[str, int]:
    """min/max sample counts from run settings, validated (InputError on nonsense)."""
    out = dict(DEFAULT_SETTINGS)
    for key in DEFAULT_SETTINGS:
        if settings and settings.get(key) is not None:
            out[key] = int(settings[key])
    if out["min_samples"] < 2 or out["max_samples"] < out["min_samples"]:
        raise InputError(f"need 2 <= min_samples <= max_samples, got min_samples={out['min_samples']}, "
                         f"max_samples={out['max_samples']}")
    return out


def _split(data: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    ref_rows = np.flatnonzero(data.heldout)
    pool_rows = np.flatnonzero(~data.heldout)
    if ref_rows.size >= 2 and pool_rows.size >= 2:
        return ref_rows, pool_rows, f"held-out split ({ref_rows.size}) vs training split ({pool_rows.size})"
    rows = np.random.default_rng(seed).permutation(len(data))
    half = len(data) // 2
    return rows[:half], rows[half:], f"random halves of the data ({half} vs {len(data) - half}; no held-out split)"


@fixture
def dist_reference(pipeline: Pipeline, data: Dataset | None, seed: int) -> Reference:
    """The real spectra samples are judged against, in physical units where the pipeline can decode."""
    if data is None:
        raise Skip("no --data given: sample quality is judged against real spectra")
    if pipeline.sample_shape[0] != 1:
        raise Skip(f"sample-quality checks compare single-channel spectra; this pipeline has "
                   f"{pipeline.sample_shape[0]} channels")
    if len(data) < 8:
        raise Skip(f"--data holds {len(data)} spectra; judging sample quality needs at least 8")
    ref, pool, split = _split(data, seed)
    physical = pipeline.normaliser.invertible
    flux = data.flux if physical else data.x
    return Reference(flux=flux[ref], pool=flux[pool], x=data.x[ref], pool_x=data.x[pool],
                     units="physical" if physical else "normalised", wave=data.wave, split=split,
                     sorted_flux=np.sort(flux[ref].ravel()))


def _decided(x: np.ndarray, ref: Reference) -> str:
    """Why sampling can stop now ('' when it cannot): a failure more samples cannot overturn."""
    ok = np.isfinite(x).all(axis=1)
    if not ok.all():
        return f"{int((~ok).sum())} samples are NaN/Inf"
    score = structure_score(x, ref.x)[0]
    if score < STOP_STRUCTURE:
        return f"white noise: structure score {score:.2f} < {STOP_STRUCTURE}"
    return ""


class _Recorder:
    """Sampler callback: counts steps for the progress line, keeps sample 0's x_t at every step.

    The trace goes to an anonymous temporary file, not to memory: which steps the figure shows
    depends on the number of steps, known only at the end, and T x L floats (a quarter of a GB at
    T = 1000, L = 65,536) would otherwise stay in memory. Only the snapshots are read back.
    """

    def __init__(self, status: Callable[[str, float, float], None], label: str, keep: bool) -> None:
        self.status, self.label = status, label
        self.trace: list[tuple[int, float]] = []  # (step index, t) of each row of the file
        self.file = tempfile.TemporaryFile() if keep else None
        self.row_shape: tuple[int, ...] = ()
        self.steps = 0

    def __call__(self, info: dict[str, Any]) -> None:
        self.steps += 1
        if self.file is not None:
            t = info.get("t")
            t = float(t.flatten()[0]) if isinstance(t, torch.Tensor) else float(t)
            row = np.ascontiguousarray(info["x_t"][0, 0].detach().float().cpu().numpy())
            self.row_shape = row.shape
            self.file.write(row.tobytes())
            self.trace.append((int(info["i"]), t))
        if self.steps % 25 == 0:
            self.status(f"{self.label}, step {self.steps}", 0, 0)

    def _row(self, k: int) -> np.ndarray:
        size = int(np.prod(self.row_shape, dtype=np.int64)) * 4
        self.file.seek(k * size)
        return np.frombuffer(self.file.read(size), dtype=np.float32).reshape(self.row_shape).copy()

    def snapshots(self, final: np.ndarray) -> tuple[tuple[int, float, np.ndarray], ...]:
        """Sample 0's x_t at SNAPSHOT_FRACTIONS of the steps, the output last (its t is NaN); closes the trace."""
        if not self.trace:
            return ()
        n = len(self.trace)  # entries 0..n-1 are the steps, entry n is the output
        picks = sorted({round(f * n) for f in SNAPSHOT_FRACTIONS})
        out = tuple((self.trace[p][0], self.trace[p][1], self._row(p)) if p < n else
                    (self.trace[-1][0] + 1, float("nan"), final) for p in picks)
        self.close()
        return out

    def close(self) -> None:
        """Delete the trace file now (it is anonymous: it also goes when a failed run drops the recorder)."""
        if self.file is not None:
            self.file.close()
            self.file = None


@fixture
def dist_samples(pipeline: Pipeline, dist_reference: Reference, settings: Mapping[str, Any],
                 generator: torch.Generator, status: Callable[[str, float, float], None]) -> SampleSet:
    """Samples from the pipeline's own sampler, drawn in batches until the verdict is certain."""
    cfg = sample_settings(settings)
    batch, cap = cfg["min_samples"], cfg["max_samples"]
    xs: list[np.ndarray] = []
    trace: tuple = ()
    reason, steps, spent = "", 0, 0.0
    network = pipeline.network
    was_training = network.training
    try:
        while sum(len(x) for x in xs) < cap:
            drawn = sum(len(x) for x in xs)
            b = min(batch, cap - drawn)
            rec = _Recorder(status, f"sampling {drawn + 1}-{drawn + b} of up to {cap}", keep=not xs)
            t0 = time.perf_counter()
            with torch.no_grad():
                out = pipeline.sample(b, generator=generator, callback=rec)
            x = out.detach().float().cpu().numpy()[:, 0, :].astype(np.float64)
            spent += time.perf_counter() - t0
            if not xs:
                trace, steps = rec.snapshots(x[0]), rec.steps
            xs.append(x)
            allx = np.concatenate(xs)
            reason = _decided(allx, dist_reference)
            if reason:
                reason = f"stopped after {len(allx)} samples: {reason}"
                break
    finally:
        network.train(was_training)
    x = np.concatenate(xs)
    return SampleSet(x=x, flux=_to_flux(pipeline, x, dist_reference), finite=np.isfinite(x).all(axis=1),
                     sampling_s=spent, stop_reason=reason or f"drew the maximum, {len(x)} samples",
                     settings=cfg, snapshots=trace, steps=steps)


def _to_flux(pipeline: Pipeline, x: np.ndarray, ref: Reference) -> np.ndarray:
    if ref.units != "physical":
        return x
    flux = np.asarray(pipeline.to_flux(x), dtype=np.float64)
    if flux.shape != x.shape:
        raise ValueError(f"Pipeline.to_flux returned shape {flux.shape} for samples of shape {x.shape}")
    return flux


#: The fixtures this module provides, as the fixture registry reads them (diffcheck.engine.context).
FIXTURES = (dist_reference, dist_samples,)

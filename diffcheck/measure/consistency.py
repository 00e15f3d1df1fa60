"""Fixtures of the consistency families (PAR, SMP): the pipeline's own loss and sampler, driven
by exact oracles in place of the network, and the trained network's fit to each target.

Oracles need no trained network, so everything here except ``learned_fit`` also runs on a
freshly initialised pipeline (``diffcheck preflight``).
"""

from __future__ import annotations

import numpy as np
import torch

from diffcheck.engine.context import fixture
from diffcheck.measure.oracles import ExactOracle, PosteriorMeanOracle, Spy, StopSampling, TimeRecord, timestep_index
from diffcheck.measure.param import PARAMETERISATIONS, targets
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.measure.probes import Probe

__all__ = ["loss_oracles", "sampler_oracles", "identify_decoding", "decoded_kind", "decoding", "clip_probe",
           "learned_fit", "network_mode", "trajectory_marginals", "SaturationTally"]

#: Decoding is probed with a small target, inside any sane clip range, so a clipping bug cannot
#: hide the parameterisation; clipping is probed separately with a target spanning the data range.
DECODING_AMPLITUDE = 0.25
TARGET_LIMIT = 0.95
#: A decoding whose landing error is this many times below every other's is the sampler's.
LANDING_RATIO = 1e-2
#: A sampler run whose oracle residual stays within this many standard errors of zero mean (and,
#: to break ties, of unit variance) at every step decodes the oracle's parameterisation consistently.
TRAJECTORY_Z = 6.0
#: Batch of the oracle runs where the landing does not decide: the mean statistic of a wrong
#: decoding grows as sqrt(batch), the null stays N(0, 1). At 32 the wrong decodings of the zoo and
#: the library fixtures sit at z >= 10 and the right ones at z <= 3 (eps read as v under stochastic
#: DDIM, the hardest pair, ~18). Runs whose landing decides (and the clip probe) use LANDING_BATCH.
ORACLE_BATCH = 32
LANDING_BATCH = 2
FIT_GRID = 12
MARGINAL_SAMPLES = 32
MARGINAL_SPECTRA = 16
#: An x0 prediction within this of the run's largest |x0_hat| counts as pinned at the extreme (SMP006).
SATURATION_TOL = 1e-6


def _generator(pipeline: Pipeline, seed: int) -> torch.Generator:
    return torch.Generator(device=pipeline.device).manual_seed(seed)


def _conventions(record: TimeRecord) -> dict:
    conv = sorted(set(record.conventions))
    return {"conventions": conv, "dtypes": sorted(record.dtypes), "t_min": record.t_min, "t_max": record.t_max}


@fixture
def loss_oracles(pipeline: Pipeline, x0_probe: Probe, seed: int) -> dict:
    """The pipeline's own training loss with the network replaced by each exact oracle.

    Every oracle sees the same t and noise draws (same generator seed), so the losses compare.
    """
    pipeline.require("training_loss")
    x0, out = x0_probe.x0, {"losses": {}, "time": {}}
    for kind in PARAMETERISATIONS:
        oracle = ExactOracle(x0, pipeline.schedule, kind).to(pipeline.device)
        with torch.no_grad(), pipeline.network_replaced(oracle):
            out["losses"][kind] = float(pipeline.training_loss(x0, generator=_generator(pipeline, seed)))
        out["time"][kind] = _conventions(oracle.times)
    return out


@fixture
def sampler_oracles(pipeline: Pipeline, x0_probe: Probe, seed: int) -> dict:
    """The pipeline's own sampler with the network replaced by each point oracle for one x0*.

    Records how far each run lands from x0*, every t the sampler passed, and the saturation
    (clipping) of the x0 predictions the sampler reports through its callback.
    """
    x0 = x0_probe.x0[:1]
    target = x0 * (DECODING_AMPLITUDE / x0.abs().max().clamp_min(1e-12))
    batch = LANDING_BATCH
    runs = {kind: _oracle_run(pipeline, target, kind, seed, batch) for kind in PARAMETERISATIONS}
    if identify_decoding(runs)[1] != "landing":  # the trajectory decides: run again with its power
        batch = ORACLE_BATCH
        runs = {kind: _oracle_run(pipeline, target, kind, seed, batch) for kind in PARAMETERISATIONS}
    return {"runs": runs, "target_max": float(target.abs().max()), "batch": batch}


def decoded_kind(runs: dict, max_error_ratio: float = LANDING_RATIO, max_z: float = TRAJECTORY_Z) -> str:
    """The run the checks downstream of the decoding trace: the identified decoding (as PAR002
    identifies it, with these thresholds), else a consistent mean first, then the closest landing."""
    identified = identify_decoding(runs, max_error_ratio, max_z)[0]
    return identified or min(runs, key=lambda k: (runs[k]["mean_z"] > max_z, runs[k]["max_error"]))


@fixture
def decoding(sampler_oracles: dict, thresholds: dict) -> str:
    """The parameterisation the sampler decodes, decided with PAR002's thresholds in this run (a
    ``--threshold PAR002.*`` reaches every check that reads the decoding: SMP001-007, TEMB003, the
    learned probes of a pipeline without ``training_loss_at``)."""
    th = thresholds.get("PAR002", {})
    return decoded_kind(sampler_oracles["runs"], th.get("max_error_ratio", LANDING_RATIO),
                        th.get("max_trajectory_z", TRAJECTORY_Z))


def identify_decoding(runs: dict, max_error_ratio: float = LANDING_RATIO,
                      max_z: float = TRAJECTORY_Z) -> tuple[str | None, str]:
    """The parameterisation the sampler decodes, from its oracle runs, and what decided it.

    1. "landing": one oracle lands on x0* ``1/max_error_ratio`` times closer than every other;
    2. "mean": else the only run whose residual mean stays within ``max_z`` (robust to the
       sampler's choice of noise level);
    3. "spread": else, among runs with a consistent mean, the only one with a consistent spread.
    Returns (None, reason) where none of these singles one out.
    """
    errors = {k: r["max_error"] for k, r in runs.items()}
    best, second = sorted(errors, key=errors.get)[:2]
    if errors[best] <= max_error_ratio * errors[second]:
        return best, "landing"
    by_mean = [k for k, r in runs.items() if r["mean_z"] <= max_z]
    if len(by_mean) == 1:
        return by_mean[0], "mean"
    by_spread = [k for k in by_mean if runs[k]["spread_z"] <= max_z]
    if len(by_spread) == 1:
        return by_spread[0], "spread"
    return None, "no consistent mean" if not by_mean else f"{' and '.join(by_mean)} alike"


@fixture
def clip_probe(pipeline: Pipeline, x0_probe: Probe, decoding: str, seed: int) -> dict:
    """The decoded oracle's sampler run for a target spanning the data range (up to +-0.95).

    The probe spectrum is scaled (not clamped) to a peak of 0.95: a clamped target has every pixel
    beyond 0.95 tied at its maximum, and an exact oracle then returns those ties as "pinned" x0
    predictions (11.7 % of a synthetic spectrum's pixels at T=100, where no rounding breaks them).
    """
    x0 = x0_probe.x0[:1]
    target = x0 * (TARGET_LIMIT / x0.abs().max().clamp_min(1e-12))
    run = _oracle_run(pipeline, target, decoding, seed, LANDING_BATCH)
    return {**run, "target_max": float(target.abs().max()), "kind": decoding}


def _oracle_run(pipeline: Pipeline, target: torch.Tensor, kind: str, seed: int, batch: int) -> dict:
    """One run of the pipeline's sampler with the exact ``kind`` oracle for ``target`` as its network."""
    oracle = ExactOracle(target, pipeline.schedule, kind).to(pipeline.device)
    spy, saturation = Spy(oracle), SaturationTally()
    with torch.no_grad(), pipeline.network_replaced(spy):
        x = pipeline.sample(batch, generator=_generator(pipeline, seed),
                            callback=lambda s: saturation.add(s.get("x0_hat")))
    err = (x.double() - target.double()).abs()
    scale, offset, affine_error = _affine_fit(x.double(), target.double().expand_as(x))
    called = bool(oracle.residual_std)
    dev = np.max(np.abs(np.log(np.maximum(oracle.residual_std, 1e-12)))) if called else np.inf
    mean_z = np.nan_to_num(np.abs(oracle.residual_mean_z), nan=np.inf)
    return {"max_error": float(err.max()), "rms_error": float(err.pow(2).mean().sqrt()),
            "finite": bool(torch.isfinite(x).all()), "t": [c["t"] for c in spy.calls],
            # max over steps of |projection of (x_t - a x0*)/s on x0*|, in standard errors
            "mean_z": float(mean_z.max()) if called else float("inf"),
            # max over steps of |log std((x_t - a x0*)/s)|, in standard errors (SE = 1/sqrt(2N))
            "spread_z": float(dev * np.sqrt(2.0 * x.numel())),
            "saturated_fraction": saturation.fraction(), "affine_scale": scale, "affine_offset": offset,
            "affine_error": affine_error, **_conventions(oracle.times)}


def _affine_fit(x: torch.Tensor, target: torch.Tensor) -> tuple[float, float, float]:
    """x ~ scale * target + offset by least squares, and the largest residual of that fit: an output
    that misses x0* only by a rescaling (another de-normalisation) has a residual near 0."""
    xf, tf = x.flatten(), target.flatten()
    if not bool(torch.isfinite(xf).all()) or xf.numel() < 2:
        return float("nan"), float("nan"), float("inf")
    tc = tf - tf.mean()
    var = float((tc * tc).sum())
    scale = float((tc * (xf - xf.mean())).sum()) / var if var > 0 else float("nan")
    offset = float(xf.mean() - scale * tf.mean())
    return scale, offset, float((xf - (scale * tf + offset)).abs().max())


class SaturationTally:
    """Fraction of a run's |x0 prediction| values pinned at the run's extreme (a sign of clipping),
    counted step by step: exact, and O(1) in the number of steps.

    A value v counts iff v >= M - ``tol``, M the largest value over *all* steps. M only grows, so a
    value already below the running max minus ``tol`` can never count and is dropped at once; the
    values that still may count are kept as distinct values with their counts. That is the clip
    value alone for a clipping sampler, and otherwise the few values within ``tol`` of the max (at
    most the float32 grid points there), never a step's whole tensor. NaN anywhere gives 0, as the
    fraction over all values at once does (NaN max: no value compares >= it).
    """

    def __init__(self, tol: float = SATURATION_TOL) -> None:
        self.tol, self.total = tol, 0
        self.max: torch.Tensor | None = None
        self.values = torch.zeros(0, dtype=torch.float64)  # distinct values that may still count
        self.counts = torch.zeros(0, dtype=torch.float64)  # how often each was seen

    def add(self, x0_hat: torch.Tensor | None) -> None:
        """Count one step's x0 predictions (None: the sampler reports none at this step)."""
        if x0_hat is None:
            return
        h = x0_hat.detach().flatten().abs().double()
        self.total += h.numel()
        if h.numel() == 0:
            return
        self.max = h.max() if self.max is None else torch.maximum(self.max, h.max())
        floor = self.max - self.tol
        near = h[h >= floor]
        values = torch.cat([self.values.to(h.device), near])
        counts = torch.cat([self.counts.to(h.device), torch.ones_like(near)])
        self.values, inverse = torch.unique(values, return_inverse=True)
        self.counts = torch.zeros_like(self.values).scatter_add_(0, inverse, counts)
        keep = self.values >= floor
        self.values, self.counts = self.values[keep], self.counts[keep]

    def fraction(self) -> float | None:
        """The saturated fraction, None where no step reported an x0 prediction."""
        if self.max is None:
            return None
        pinned = int(self.counts[self.values >= self.max - self.tol].sum())
        return pinned / self.total


@fixture
def learned_fit(pipeline: Pipeline, x0_probe: Probe, generator: torch.Generator) -> dict:
    """R^2 of the network's output against the eps, x0 and v targets on noised probe spectra."""
    x0, sched, net = x0_probe.x0, pipeline.schedule, pipeline.network
    ts = sched.timesteps(FIT_GRID)
    r2 = {k: [] for k in PARAMETERISATIONS}
    collinear = []
    net.eval()
    for step in ts:
        a, s = sched.coefficients(step)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        t = torch.full((x0.shape[0],), int(step), dtype=torch.long, device=x0.device)
        with torch.no_grad():
            out = net(a * x0 + s * eps, pipeline.model_time(t)).double()
        tg = targets(x0.double(), eps.double(), torch.tensor(a), torch.tensor(s))
        for kind in PARAMETERISATIONS:
            r2[kind].append(_r2(out, tg[kind]))
        collinear.append(max(abs(_cos(tg["eps"], tg["v"])), abs(_cos(tg["x0"], tg["v"]))))
    return {"t": ts.tolist(), "r2": r2, "collinearity": collinear}


def _r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    sst = float((target - target.mean()).pow(2).sum())
    return 1.0 - float((pred - target).pow(2).sum()) / max(sst, 1e-300)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-300))


@fixture
def network_mode(pipeline: Pipeline, seed: int) -> dict:
    """Mode of the real network at the sampler's first call (the run stops after that call)."""
    spy = Spy(pipeline.network, stop_after=1, measure_mode=True)
    try:
        with torch.no_grad(), pipeline.network_replaced(spy):
            pipeline.sample(1, generator=_generator(pipeline, seed))
    except StopSampling:
        pass
    if not spy.calls:
        raise RuntimeError("the sampler never called the network")
    return spy.calls[0]


@fixture
def trajectory_marginals(pipeline: Pipeline, data, x0_probe: Probe, decoding: str, seed: int) -> dict:
    """Per-step mean and std of the sampler's x_t under the ideal denoiser of K spectra,
    against the forward marginal q(x_t) of the same K spectra at the same t."""
    spectra = _marginal_spectra(data, x0_probe, pipeline)
    kind = decoding
    oracle = PosteriorMeanOracle(spectra, pipeline.schedule, kind).to(pipeline.device)
    mu, var = spectra.double().mean(0), spectra.double().var(0, unbiased=False)
    rows: list[dict] = []  # one row of moments per step, computed as the step happens: no x_t is kept
    with torch.no_grad(), pipeline.network_replaced(oracle):
        pipeline.sample(MARGINAL_SAMPLES, generator=_generator(pipeline, seed),
                        callback=lambda s: rows.append(_marginal_row(pipeline, s["t"], s["x_t"].detach().double(),
                                                                     mu, var)))
    return {"kind": kind, "rows": rows, "samples": MARGINAL_SAMPLES, "spectra": int(spectra.shape[0])}


def _marginal_row(pipeline: Pipeline, t, x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor) -> dict:
    """Compare the samples' x_t at one step with q(x_t) = mixture of N(a x0_k, s^2) over the K spectra."""
    idx = int(timestep_index(torch.as_tensor([t]), pipeline.schedule.T)[0])
    a, s = pipeline.schedule.coefficients(idx)
    exp_mean, exp_var = a * mu, a * a * var + s * s
    n = x.shape[0]
    mean_z = ((x.mean(0) - exp_mean) / (exp_var / n).sqrt()).pow(2).mean().sqrt()
    var_ratio = x.var(0).mean() / exp_var.mean()
    return {"t": float(t), "index": idx, "snr": a * a / max(s * s, 1e-300),
            "mean_z": float(mean_z), "std_ratio": float(var_ratio.sqrt())}


def _marginal_spectra(data, x0_probe: Probe, pipeline: Pipeline) -> torch.Tensor:
    if data is None:
        return x0_probe.x0.clamp(-TARGET_LIMIT, TARGET_LIMIT)
    rows = data.probe_rows()[:MARGINAL_SPECTRA]
    return data.tensor(rows, pipeline.sample_shape[0], pipeline.device).clamp(-TARGET_LIMIT, TARGET_LIMIT)


#: The fixtures this module provides, as the fixture registry reads them (diffcheck.engine.context).
FIXTURES = (loss_oracles, sampler_oracles, decoding, clip_probe, learned_fit, network_mode, trajectory_marginals,)

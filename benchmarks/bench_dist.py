"""Benchmark the DIST family against drawing the same samples with the pipeline's own sampler alone.

    python benchmarks/bench_dist.py [--device cpu|cuda] [--samples 32] [--repeats 2] [--out PATH]

For each case, two timings per repeat, interleaved so that load on the machine hits both alike:
``sampler_s``, the pipeline's ``sample`` drawing ``--samples`` spectra in batches of the same
size DIST uses (``min_samples``), and ``dist_s``, the whole DIST family on the same pipeline
with ``min_samples = max_samples = --samples`` (so no early stop), figures included. The target
is ``dist_s / sampler_s <= 1.1``: everything DIST adds (reference statistics, 200-draw null
distributions, figures) costs at most 10 % of the sampling. Output: benchmarks/results/dist_<device>.json.

Cases: the tiny fixture (512 px, trained, 1000-step ancestral sampler) and, on CUDA only, a
seed-size pipeline (5.9M-parameter UNet1D, 4096 px, T=1000, fresh weights, the shipped 40 real
spectra as data). The seed-size case on CPU would take hours per repeat and is left out there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import diffcheck
from _results import write_results  # benchmarks/_results.py (scripts run from this folder)
from diffcheck.pipelines.data import load_dataset
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.reference.ddpm import DiffusionConfig
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from diffcheck.pipelines.reference.unet import UNetConfig

ROOT = Path(__file__).resolve().parent.parent


def cases(device: torch.device):
    tiny = diffcheck.load_pipeline(ROOT / "fixtures/checkpoints/healthy_tiny.pt", device=device)
    yield "tiny_fixture_512px", tiny, load_dataset(ROOT / "fixtures/data/spectra_tiny.h5", length=512,
                                                    normaliser=tiny.normaliser)
    if device.type == "cuda":
        real = ROOT / "fixtures/data/real_subset_4096.h5"
        from diffcheck.measure.spectra import read_spectra_h5

        norm = Normaliser.fit(read_spectra_h5(real).flux, "global_minmax")
        seed = ReferencePipeline.build(UNetConfig(), DiffusionConfig(), length=4096, normaliser=norm).to(device)
        yield "seed_size_4096px", seed, load_dataset(real, length=4096, normaliser=norm)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_sampler(pipe, n: int, batch: int, seed: int, device: torch.device) -> float:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        for start in range(0, n, batch):
            pipe.sample(min(batch, n - start), generator=g).cpu()
    _sync(device)
    return time.perf_counter() - t0


def time_dist(pipe, data, n: int, seed: int, device: torch.device, outdir: Path) -> tuple[float, dict]:
    t0 = time.perf_counter()
    report = diffcheck.run_checks(pipe, data=data, select=["DIST"], seed=seed, report_dir=outdir,
                                  settings={"min_samples": n, "max_samples": n})
    _sync(device)
    return time.perf_counter() - t0, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    device = diffcheck.resolve_device(args.device)
    rows = []
    for name, pipe, data in cases(device):
        n = args.samples if device.type == "cpu" else max(args.samples, 64)
        sampler, dist = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.repeats):
                sampler.append(time_sampler(pipe, n, n, seed, device))
                seconds, report = time_dist(pipe, data, n, seed, device, Path(tmp))
                dist.append(seconds)
        row = {"case": name, "samples": n, "parameters": sum(p.numel() for p in pipe.network.parameters()),
               "sampler_s_median": round(statistics.median(sampler), 3), "dist_s_median": round(statistics.median(dist), 3),
               "ratio": round(statistics.median(dist) / statistics.median(sampler), 3),
               "sampler_s_all": [round(t, 3) for t in sampler], "dist_s_all": [round(t, 3) for t in dist],
               "statuses": {r.id: r.status.value for r in report.results},
               "per_check_seconds": {r.id: round(r.duration_s, 3) for r in report.results},
               "peak_cuda_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None}
        rows.append(row)
        print(json.dumps(row))
    out = args.out or ROOT / "benchmarks" / "results" / f"dist_{device.type}.json"
    write_results(out, "DIST family vs the pipeline's own sampler", device, rows, repeats=args.repeats)


if __name__ == "__main__":
    main()

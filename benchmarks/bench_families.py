"""Benchmark check families: wall time per run and per check, peak memory, written as JSON.

    python benchmarks/bench_families.py [--select FWD] [--device cpu|cuda] [--repeats 3] [--out PATH]

Cases: the tiny fixture (512 px, trained) and a seed-size pipeline (default 5.9M-parameter
UNet1D, 4096 px, T=1000, fresh weights, probed with the shipped real spectra). FWD never calls
the network; PAR/SMP run the pipeline's own sampler with oracles (1000 steps each) and a few
network forwards. Output: benchmarks/results/<families>_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    seed = ReferencePipeline.build(UNetConfig(), DiffusionConfig(), length=4096,
                                   normaliser=Normaliser("per_spectrum_minmax")).to(device)
    yield "seed_size_4096px", seed, load_dataset(ROOT / "fixtures/data/real_subset_4096.h5", length=4096,
                                                  normaliser=seed.normaliser)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--select", default="FWD", help="comma-separated families or IDs")
    args = ap.parse_args()
    device = diffcheck.resolve_device(args.device)
    rows = []
    for name, pipe, data in cases(device):
        times = []
        for seed in range(args.repeats):
            t0 = time.perf_counter()
            report = diffcheck.run_checks(pipe, data=data, select=args.select.split(","), seed=seed)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        rows.append({"case": name, "parameters": sum(p.numel() for p in pipe.network.parameters()),
                     "seconds_median": round(statistics.median(times), 3), "seconds_all": [round(t, 3) for t in times],
                     "statuses": {r.id: r.status.value for r in report.results},
                     "per_check_seconds": {r.id: round(r.duration_s, 3) for r in report.results}})
        print(json.dumps(rows[-1]))
    tag = args.select.replace(",", "-").lower()
    out = args.out or ROOT / "benchmarks" / "results" / f"{tag}_{device.type}.json"
    write_results(out, f"families {args.select}", device, rows, repeats=args.repeats)


if __name__ == "__main__":
    main()

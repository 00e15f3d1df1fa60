"""Benchmark the FWD family: wall time and peak memory per run, written as JSON.

    python benchmarks/bench_fwd.py [--device cpu|cuda] [--repeats 3] [--out benchmarks/results/fwd_<device>.json]

Cases: the tiny fixture (512 px) and a seed-size pipeline (default 5.9M-parameter UNet1D, 4096 px,
T=1000, probed with the shipped real spectra). FWD never calls the network, so the time is the
forward-process probes themselves (16 timesteps x 64 draws x 8 spectra, plus the figures' data).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from pathlib import Path

import torch

import diffcheck
from diffcheck.data import load_dataset
from diffcheck.normalise import Normaliser
from diffcheck.reference.ddpm import DiffusionConfig
from diffcheck.reference.pipeline import ReferencePipeline
from diffcheck.reference.unet import UNetConfig

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
    args = ap.parse_args()
    device = diffcheck.resolve_device(args.device)
    rows = []
    for name, pipe, data in cases(device):
        times = []
        for seed in range(args.repeats):
            t0 = time.perf_counter()
            report = diffcheck.run_checks(pipe, data=data, select=["FWD"], seed=seed)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        rows.append({"case": name, "parameters": sum(p.numel() for p in pipe.network.parameters()),
                     "seconds_median": round(statistics.median(times), 3), "seconds_all": [round(t, 3) for t in times],
                     "statuses": {r.id: r.status.value for r in report.results},
                     "per_check_seconds": {r.id: round(r.duration_s, 3) for r in report.results}})
        print(json.dumps(rows[-1]))
    out = args.out or ROOT / "benchmarks" / "results" / f"fwd_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "FWD family", "device": str(device),
                               "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
                               "torch": torch.__version__, "threads": torch.get_num_threads(),
                               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                               "cases": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

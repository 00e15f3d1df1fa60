"""Benchmark and sweep the learned-behaviour families (TEMB, LOSS, WGT, TOY) on the tiny fixture.

    python benchmarks/bench_learned.py [--device cpu|cuda] [--seeds 20] [--out PATH]

For each seed: the whole TEMB+LOSS+WGT+TOY selection on the healthy tiny checkpoint, the wall time
of each check (``Result.duration_s``; the first check that needs a fixture pays for it), and
every non-PASS result except WGT005's SKIP (the reference format stores no schedule tensors), as
false alarms. Also the worst value of each judged statistic against its threshold.
Output: benchmarks/results/learned_<device>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.data import load_dataset
from diffcheck.pipelines.loading import load_pipeline

from _results import write_results  # benchmarks/_results.py (scripts run from this folder)

ROOT = Path(__file__).resolve().parent.parent
STATISTICS = {"TOY001": ("clean_level_ratio", "max_error_ratio", "max"),
              "TEMB001": ("median_sensitivity", "min_sensitivity", "min"),
              "TEMB002": ("shuffled_ratio", "min_shuffled_ratio", "min"), "TEMB003": ("margin", "min_margin", "min"),
              "TEMB004": ("diagonal_share", "min_diagonal_share", "min"), "LOSS001": ("peak_skill", "min_peak_skill", "min"),
              "WGT003": ("loss_ratio", "max_loss_ratio", "max")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    device = diffcheck.resolve_device(args.device)
    pipe = load_pipeline(ROOT / "fixtures/checkpoints/healthy_tiny.pt", device=device)
    data = load_dataset(ROOT / "fixtures/data/spectra_tiny.h5", length=pipe.sample_shape[1], normaliser=pipe.normaliser)
    durations: dict[str, list[float]] = {}
    alarms, worst, walls, cases = [], {}, [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        report = diffcheck.run_checks(pipe, data=data, select=["TEMB", "LOSS", "WGT", "TOY"], seed=seed)
        walls.append(time.perf_counter() - t0)
        for r in report.results:
            durations.setdefault(r.id, []).append(r.duration_s)
            if r.status is not Status.PASS and not (r.id == "WGT005" and r.status is Status.SKIP):
                alarms.append({"seed": seed, "id": r.id, "status": r.status.value, "summary": r.summary})
        for cid, (field, th, side) in STATISTICS.items():
            v = report[cid].observed[field]
            old = worst.get(cid, {}).get("worst", v)
            worst[cid] = {"field": field, "worst": (max if side == "max" else min)(old, v),
                          "threshold": report[cid].thresholds[th]}
        cases.append({"seed": seed, "wall_s": round(walls[-1], 2),
                      "observed": {cid: report[cid].observed[f] for cid, (f, _, _) in STATISTICS.items()}})
        print(f"seed {seed}: {walls[-1]:.1f}s, {len(alarms)} alarms so far", flush=True)
    summary = {"seeds": args.seeds, "false_alarms": alarms, "worst": worst,
               "wall_s_median": round(statistics.median(walls), 2), "wall_s_max": round(max(walls), 2),
               "check_s_median": {k: round(statistics.median(v), 3) for k, v in durations.items()},
               "check_s_max": {k: round(max(v), 3) for k, v in durations.items()}}
    path = args.out or ROOT / "benchmarks/results" / f"learned_{device.type}.json"
    write_results(path, "learned-behaviour families (TEMB, LOSS, WGT, TOY) on the healthy tiny fixture", device,
                  cases, meta=summary, repeats=args.seeds)


if __name__ == "__main__":
    main()

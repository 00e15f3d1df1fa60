"""Benchmark peak memory of ``diffcheck preflight`` on a home-made pipeline, against L and T.

    python benchmarks/bench_memory.py [--lengths 4096,16384,65536] [--steps 1000] [--t-check 100@4096]
                                      [--repeats 1] [--width 16] [--out PATH]

Each case is one ``diffcheck preflight --pipeline FILE:build --device cpu`` in a subprocess; its
peak RSS is that child's ``ru_maxrss`` (``os.wait4``), its wall time the subprocess's, its CPU time
user + system (less dependent on the machine's load than the wall time). The pipeline
is examples/homemade_pipeline.py unchanged (its UNet1D, default width 16; its DDPM with linear
betas, eps objective, ancestral sampler that clips x0 and reports it), fresh weights, with only
the length L and the number of steps T set per case (T other than 1000 with the betas scaled by 1000/T,
so that every case is a healthy pipeline whose checks all run): the same code a user's preflight runs.
The batches are the checks' own (oracle runs 2, or 32 where the landing does not decide; SMP007 32
samples; TOY001 8; FWD001 8 spectra x 64 noise draws). ``--t-check T@L`` adds a case at fewer steps
to show that the peak does not grow with T. Output: benchmarks/results/memory_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from _results import write_results  # benchmarks/_results.py (scripts run from this folder)

ROOT = Path(__file__).resolve().parent.parent
#: What the acceptance asks of the largest case: a preflight at L = 65,536 within this many MiB.
BUDGET_MIB = 4096

PIPELINE = '''"""examples/homemade_pipeline.py at L={length}, T={steps}, UNet1D width {width}, fresh weights."""
import importlib.util

import torch

import diffcheck

_spec = importlib.util.spec_from_file_location("homemade_example", {example!r})
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


def build(checkpoint):
    torch.manual_seed(0)
    ddpm = example.DDPM(example.UNet1D(width={width}), length={length}, T={steps})
    if ddpm.T != 1000:  # betas scaled by 1000/T (Nichol & Dhariwal 2021): the same terminal SNR at any T
        ddpm = example.DDPM(ddpm.model, length={length}, T=1000)
        _rescale(ddpm, {steps})
    return example.pipeline(ddpm, diffcheck.Normaliser())


def _rescale(ddpm, T):
    """The example's buffers for betas linspace(1e-4, 0.02) x 1000/T over T steps."""
    betas = torch.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    ddpm.T = T
    for name, value in {{"betas": betas, "alpha_bar": alpha_bar, "post_var": betas * (1 - prev) / (1 - alpha_bar),
                        "post_c0": betas * prev.sqrt() / (1 - alpha_bar),
                        "post_ct": (1 - prev) * (1 - betas).sqrt() / (1 - alpha_bar)}}.items():
        setattr(ddpm, name, value.float())
'''


def _preflight(folder: Path, length: int, steps: int, width: int) -> dict:
    """One preflight in a child process: exit code, wall time, peak RSS, the statuses it reported."""
    source = folder / f"homemade_L{length}_T{steps}.py"
    source.write_text(PIPELINE.format(length=length, steps=steps, width=width,
                                      example=str(ROOT / "examples" / "homemade_pipeline.py")))
    report_dir = folder / f"report_L{length}_T{steps}"
    cmd = [sys.executable, "-c", "from diffcheck.cli import main; main()", "preflight",
           "--pipeline", f"{source}:build", "--device", "cpu", "--report-dir", str(report_dir)]
    load = os.getloadavg()
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    stderr = child.stderr.read().decode(errors="replace").strip().splitlines()
    child.stderr.close()
    report = report_dir / "report.json"
    statuses = ({r["id"]: r["status"] for r in json.loads(report.read_text())["results"]}
                if report.exists() else {})
    return {"length": length, "steps": steps, "exit_code": os.waitstatus_to_exitcode(status),
            "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "load_avg_1m_before": round(load[0], 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "statuses": statuses, "stderr_tail": stderr[-2:]}


def _cases(lengths: list[int], steps: int, t_check: str | None) -> list[tuple[int, int]]:
    cases = [(length, steps) for length in lengths]
    if t_check:
        few, at = (int(v) for v in t_check.split("@"))
        cases.insert(lengths.index(at) if at in lengths else 0, (at, few))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="4096,16384,65536", help="comma-separated spectrum lengths L")
    ap.add_argument("--steps", type=int, default=1000, help="T of every case but the --t-check one")
    ap.add_argument("--t-check", default="100@4096", help="T@L: one more case at fewer steps ('' for none)")
    ap.add_argument("--width", type=int, default=16, help="UNet1D width (the example's default is 16)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    meta = {"budget_mib": BUDGET_MIB}
    out = args.out or ROOT / "benchmarks" / "results" / "memory_cpu.json"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for length, steps in _cases(lengths, args.steps, args.t_check):
            runs = [_preflight(Path(tmp), length, steps, args.width) for _ in range(args.repeats)]
            row = {**runs[-1], "width": args.width, "repeats": args.repeats,
                   "peak_rss_mib_all": [r["peak_rss_mib"] for r in runs], "wall_s_all": [r["wall_s"] for r in runs],
                   "within_budget": max(r["peak_rss_mib"] for r in runs) <= BUDGET_MIB}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("length", "steps", "exit_code", "wall_s", "cpu_s", "peak_rss_mib")}),
                  flush=True)
            # written after every case: a long run that is stopped keeps the cases it finished
            write_results(out, "preflight peak RSS, home-made pipeline", torch.device("cpu"), rows, meta=meta,
                          repeats=args.repeats)


if __name__ == "__main__":
    main()

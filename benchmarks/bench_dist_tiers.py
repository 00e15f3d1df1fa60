"""Where healthy pipelines and planted bugs land on DIST002-004's scale (the quality and bug tiers).

    python benchmarks/bench_dist_tiers.py                 # every case, seeds 0-2 (about 25 min on 2 cores)
    python benchmarks/bench_dist_tiers.py --part 1/2      # half the cases (run two parts side by side)
    python benchmarks/bench_dist_tiers.py --merge         # join the parts into dist_tiers_cpu.json

DIST002-004 call a gap between samples and real spectra a QUALITY finding up to their ``fail_*``
limit and a bug (FAIL) beyond it (checks/dist.py). This benchmark is the evidence for those limits:
healthy pipelines, converged and under-trained, with ancestral and deterministic (DDIM eta=0)
samplers, must stay below them; the zoo's bugs that only a sample comparison sees are told apart
structurally (DIST005) or land beyond them. It runs the DIST family only, at the sample counts a run
uses (32 for a healthy pipeline, the zoo's 16 for a bug), and records each check's factors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import diffcheck  # noqa: E402
from benchmarks._results import CODE_AT_START, write_results  # noqa: E402
from diffcheck.pipelines.data import load_dataset  # noqa: E402
from diffcheck.pipelines.loading import load_pipeline  # noqa: E402
from diffcheck.pipelines.reference.ddpm import GaussianDiffusion  # noqa: E402
from tests.conftest import HEALTHY_CKPT, TINY_DATA, ZOO_SAMPLES, load_member  # noqa: E402

DEGRADED_CKPT = ROOT / "fixtures" / "checkpoints" / "degraded_tiny.pt"
OUT = ROOT / "benchmarks" / "results" / "dist_tiers_cpu.json"
FIELDS = ("gap_factor", "gap_low", "gap_high", "ks_factor", "w1_factor", "d_factor", "offset_factor",
          "beyond_log10", "worst_ratio", "max_error", "structure")


def _ddim_eta0(pipe):
    """The same weights sampled with DDIM, 50 steps, eta=0 (deterministic): healthy code, a harder sampler."""
    if hasattr(pipe, "diffusion") and isinstance(pipe.diffusion, GaussianDiffusion):
        cfg = dataclasses.replace(pipe.diffusion.config, sampler="ddim", sample_steps=50, ddim_eta=0.0)
        pipe.diffusion = GaussianDiffusion(pipe.diffusion.model, cfg)
    elif hasattr(pipe, "eta"):  # diffusers adapter
        pipe.eta = 0.0
    else:  # denoising-diffusion-pytorch
        pipe.diffusion.ddim_sampling_eta = 0.0
    return pipe


def _reference(path: Path, eta0: bool = False):
    def build():
        pipe = load_pipeline(path, device=diffcheck.resolve_device("cpu"))
        return _ddim_eta0(pipe) if eta0 else pipe
    return build


def _member(name: str, eta0: bool = False):
    def build():
        pipe = load_member(name)
        return _ddim_eta0(pipe) if eta0 else pipe
    return build


#: name -> (kind, builder): "healthy" (converged or under-trained, correct code) or "bug" (a zoo member).
CASES = {
    "healthy": ("healthy", _reference(HEALTHY_CKPT)),
    "healthy_ddim50_eta0": ("healthy", _reference(HEALTHY_CKPT, eta0=True)),
    "degraded_300_steps": ("healthy", _reference(DEGRADED_CKPT)),
    "degraded_ddim50_eta0": ("healthy", _reference(DEGRADED_CKPT, eta0=True)),
    "ddp_trainer1d": ("healthy", _member("ddp_trainer1d")),
    "ddp_trainer1d_eta0": ("healthy", _member("ddp_trainer1d", eta0=True)),
    "diffusers_ddim50_leading": ("healthy", _member("diffusers_ddim50_leading")),
    "diffusers_ddim50_leading_eta0": ("healthy", _member("diffusers_ddim50_leading", eta0=True)),
    "diffusers_cosine_ddim50_trailing_eta0": ("healthy", _member("diffusers_cosine_ddim50_trailing", eta0=True)),
    **{name: ("bug", _member(name)) for name in (
        "not_denormalised", "robust_constants", "wavelength_reversed", "over_smoothed", "leaky_terminal",
        "sampler_t_over_T", "clip_too_narrow", "eps_trained_x0_sampled", "triple_noise", "dropout_train_mode",
        "cosine_sampler", "skips_final_step", "time_cast_to_long", "fn_not_denormalised")},
}


def run_case(name: str, seed: int) -> dict:
    kind, build = CASES[name]
    pipe = build()
    data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
    t0 = time.perf_counter()
    report = diffcheck.run_checks(pipe, data=data, select=["DIST"], seed=seed,
                                  settings=None if kind == "healthy" else ZOO_SAMPLES)
    checks = {r.id: {"status": r.status.value, "summary": r.summary,
                     **{k: r.observed[k] for k in FIELDS if isinstance(r.observed.get(k), (int, float))}}
              for r in report.results}
    return {"name": name, "kind": kind, "seed": seed, "samples": report["DIST001"].observed.get("n_drawn"),
            "checks": checks, "wall_s": round(time.perf_counter() - t0, 1)}


def summarise(rows: list[dict]) -> dict:
    """Per check: the largest factor any healthy run reached, and each bug's smallest."""
    out = {}
    for cid, keys in (("DIST002", ("ks_factor", "w1_factor")), ("DIST003", ("d_factor", "offset_factor")),
                      ("DIST004", ("beyond_log10",))):
        def value(c: dict) -> float:
            return float(np.nanmax([c.get(k, np.nan) for k in keys]))
        healthy = [value(r["checks"][cid]) for r in rows if r["kind"] == "healthy" and cid in r["checks"]]
        # the bug limits are set on these: healthy runs whose samples are not noise (DIST001 passes)
        not_noise = [value(r["checks"][cid]) for r in rows if r["kind"] == "healthy" and cid in r["checks"]
                     and r["checks"].get("DIST001", {}).get("status") == "PASS"]
        bugs = {}
        for r in rows:
            if r["kind"] == "bug" and cid in r["checks"]:
                bugs.setdefault(r["name"], []).append(value(r["checks"][cid]))
        key = "/".join(keys)
        out[cid] = {"field": key, "healthy_max": max(healthy, default=None),
                    "healthy_max_not_noise": max(not_noise, default=None),
                    "bug_min": {k: min(v) for k, v in sorted(bugs.items())}}
    out["statuses"] = {r["name"]: {} for r in rows}
    for r in rows:
        for cid, c in r["checks"].items():
            out["statuses"][r["name"]].setdefault(cid, []).append(c["status"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--part", default="1/1", help="k/m: the k-th of m interleaved slices of the cases")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--merge", action="store_true", help="join the part files into dist_tiers_cpu.json")
    args = ap.parse_args()
    if args.merge:
        parts = sorted(OUT.parent.glob("dist_tiers_part*.json"))
        rows = [row for p in parts for row in json.loads(p.read_text())["cases"]]
        if not parts:  # summarise the merged file again (after a change to summarise)
            done = json.loads(OUT.read_text())
            rows, parts = done["cases"], []
            for key in ("commit", "dirty"):
                CODE_AT_START[key] = done[key]
        write_results(OUT, "DIST tiers: healthy and bug factors", torch.device("cpu"), rows,
                      meta={"seeds": list(range(args.seeds)), "summary": summarise(rows), "parts": len(parts)},
                      repeats=args.seeds)
        for p in parts:
            p.unlink()
        print(json.dumps(summarise(rows), indent=1))
        return
    k, m = (int(v) for v in args.part.split("/"))
    wanted = [c for c in (args.cases.split(",") if args.cases else CASES)]
    mine = wanted[k - 1::m]
    out = OUT if m == 1 else OUT.parent / f"dist_tiers_part{k}of{m}.json"
    if m > 1:
        torch.set_num_threads(1)
    rows = []
    for name in mine:
        for seed in range(args.seeds):
            rows.append(run_case(name, seed))
            print(name, seed, {c: (v["status"], *(round(v[k], 2) for k in FIELDS if k in v))
                               for c, v in rows[-1]["checks"].items()}, f"{rows[-1]['wall_s']} s", flush=True)
            write_results(out, "DIST tiers: healthy and bug factors", torch.device("cpu"), rows,
                          meta={"seeds": list(range(args.seeds)), "summary": summarise(rows)}, repeats=args.seeds)


if __name__ == "__main__":
    main()

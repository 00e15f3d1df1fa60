"""TEMB/LOSS/WGT/TOY quality: false alarms on healthy pipelines across seeds, with the margins.

Seed 0 of the eps checkpoint runs in the zoo test; here seeds 1-2 of it and one seed each of the
v- and x0-objective checkpoints (their time handling, losses and EMA are independent trainings).
The 20-seed sweep of the eps checkpoint, with timings, is benchmarks/bench_learned.py; its
committed result (benchmarks/results/learned_cpu.json) is held to the same margins below.
"""

from __future__ import annotations

import json

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.data import load_dataset
from diffcheck.pipelines.loading import load_pipeline
from tests.conftest import FIXTURES, HEALTHY_CKPT, ROOT, TINY_DATA

CPU = diffcheck.resolve_device("cpu")
FAMILIES = ["TEMB", "LOSS", "WGT", "TOY"]
#: Statistic, the direction a false alarm pushes it, and the margin the healthy runs must keep.
MARGINS = {("TOY001", "clean_level_ratio"): ("max", 0.6), ("TOY001", "worst_decoding_ratio"): ("max", 1.1),
           ("TEMB001", "median_sensitivity"): ("min", 0.03),
           ("TEMB002", "shuffled_ratio"): ("min", 4.0), ("TEMB003", "margin"): ("min", 1.6),
           ("TEMB004", "diagonal_share"): ("min", 0.8), ("LOSS001", "peak_skill"): ("min", 0.7),
           ("WGT003", "loss_ratio"): ("max", 1.5)}
#: fixture -> (checkpoint, seeds, checks that may SKIP by design: no stored schedule tensors in the
#: reference format; an x0 target depends too weakly on the t given for TEMB002-004 to judge, so
#: those usually SKIP and at some seeds clear the margin and PASS. Neither may WARN or FAIL.)
HEALTHY = {
    "eps": (HEALTHY_CKPT, range(1, 3), {"WGT005"}),
    "v": (FIXTURES / "checkpoints/v_objective_tiny.pt", range(1), {"WGT005"}),
    "x0": (FIXTURES / "checkpoints/x0_objective_tiny.pt", range(1), {"WGT005", "TEMB002", "TEMB003", "TEMB004"}),
}
SWEEP = ROOT / "benchmarks" / "results" / "learned_cpu.json"


@pytest.mark.parametrize("name", list(HEALTHY))
def test_no_false_alarms_across_seeds(name):
    path, seeds, skipped = HEALTHY[name]
    pipe = load_pipeline(path, device=CPU)
    data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
    alarms, worst = [], {}
    for seed in seeds:
        report = diffcheck.run_checks(pipe, data=data, select=FAMILIES, seed=seed)
        ok = {r.id: {Status.SKIP, Status.PASS} if r.id in skipped else {Status.PASS} for r in report.results}
        alarms += [(seed, r.id, r.summary) for r in report.results if r.status not in ok[r.id]]
        for (cid, field), (side, _) in MARGINS.items():
            if cid not in skipped:
                value = report[cid].observed[field]
                best = max if side == "max" else min
                worst[cid, field] = value if (cid, field) not in worst else best(worst[cid, field], value)
    assert alarms == [], alarms
    for (cid, field), value in worst.items():
        side, margin = MARGINS[cid, field]
        assert (value <= margin) if side == "max" else (value >= margin), (cid, field, value, margin)


def test_the_committed_20_seed_sweep_raised_no_alarm_and_keeps_the_margins():
    sweep = json.loads(SWEEP.read_text())
    assert sweep["seeds"] == 20 and [c["seed"] for c in sweep["cases"]] == list(range(20))
    assert sweep["false_alarms"] == []
    for cid, worst in sweep["worst"].items():
        side, margin = MARGINS[cid, worst["field"]]
        assert (worst["worst"] <= margin) if side == "max" else (worst["worst"] >= margin), (cid, worst, margin)

"""The bug zoo at every seed, and the healthy fixtures at the defaults a user gets, on CPU.

    python benchmarks/bench_zoo.py [--seeds 5] [--members NAME,NAME] [--every-family] [--resume] [--out PATH]
    python benchmarks/bench_zoo.py --rerun NAME,NAME   # after those members' entries changed: keeps the rest

For each ``[[bug]]`` of fixtures/zoo.toml and each seed: the runs tests/quality/test_zoo_quality.py
makes (every check at seed 0 but a sampling or training family all of whose checks the member
declares as knock-ons; ``--every-family`` runs those too, at several minutes per member on 2 CPU
cores), the member's must_fail/must_warn checks at the other seeds, and what is wrong with the report
(``tests.conftest.zoo_problems``: a must_fail check that does not FAIL, a must_warn that does not
WARN, an undeclared flag, a diagnosis that does not lead with the member's own check or reports a
knock-on as a root cause of its own). For the healthy reference fixture and each ``[[library]]`` fixture: every check at each
seed with the default sample settings; any FAIL, WARN or ERROR, or an undeclared SKIP, is a false
alarm (a QUALITY finding is recorded apart: a gap, not an accusation). ``--rerun`` keeps the other
members' rows from the file and says so in ``rows_resumed_from`` (their commit, and which members ran
again). CI runs seed 0 and one more seed per member; this sweep is the 5-of-5-seeds evidence, and
tests/quality/test_zoo_quality.py checks that the committed file covers the zoo as it is now
(``zoo_sha256``). Output: benchmarks/results/zoo_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from _results import ROOT, write_results  # benchmarks/_results.py (scripts run from this folder)

sys.path.insert(0, str(ROOT))

from diffcheck import Status  # noqa: E402
from tests.conftest import (_REPORTS, EXTRAS, REFERENCE_MEMBER, ZOO, healthy_alarms, report_for,  # noqa: E402
                            swept_zoo_sha256, zoo_problems, zoo_selection)


def zoo_sha256() -> str:
    return swept_zoo_sha256(ZOO)


def _available(member: dict) -> bool:
    import importlib.util

    extra = member.get("requires")
    return extra is None or importlib.util.find_spec(EXTRAS[extra]) is not None


def _quality(report) -> dict[str, str]:
    return {r.id: r.summary for r in report.results if r.status is Status.QUALITY}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--members", default="", help="comma-separated member names (default: all)")
    ap.add_argument("--every-family", action="store_true", help="seed 0 also runs the knock-on-only costly families")
    ap.add_argument("--resume", action="store_true", help="keep the runs --out already holds for this zoo")
    ap.add_argument("--rerun", default="", help="comma-separated members whose entry changed: keep every other "
                    "member's runs from --out (its zoo hash may differ) and run these again")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    wanted = set(filter(None, args.members.split(",")))
    out = args.out or ROOT / "benchmarks" / "results" / "zoo_cpu.json"
    healthy = [REFERENCE_MEMBER, *ZOO.get("library", []), *ZOO.get("undertrained", [])]
    bugs, fine, missing = [], [], []
    rerun = set(filter(None, args.rerun.split(",")))
    if (args.resume or rerun) and out.exists():
        done = json.loads(out.read_text())
        if done.get("zoo_sha256") == zoo_sha256() or rerun:
            bugs = [r for r in done["cases"] if r["name"] not in rerun]
            fine = [r for r in done["healthy"] if r["name"] not in rerun]
    ran = {(r["name"], r["seed"]) for r in (*bugs, *fine)}
    earlier = ({"commit": done["commit"], "dirty": done["dirty"], "rows": len(ran), "rerun": sorted(rerun),
                **({"earlier": done["rows_resumed_from"]} if done.get("rows_resumed_from") else {})}
               if ran else None)
    for member in [*healthy, *ZOO["bug"]]:
        name = member["name"]
        if wanted and name not in wanted:
            continue
        if not _available(member):
            missing.append(name)
            continue
        for seed in range(args.seeds):
            if (name, seed) in ran:
                continue
            t0 = time.perf_counter()
            if member in healthy:
                report = report_for(name, (), seed)
                alarms = healthy_alarms(report.results, member)
                fine.append({"name": name, "seed": seed, "alarms": alarms, "quality": _quality(report),
                             "wall_s": round(time.perf_counter() - t0, 1),
                             "samples": report["DIST001"].observed.get("n_drawn")})
                print(f"healthy {name} seed {seed}: {len(alarms)} alarms, {fine[-1]['wall_s']} s", flush=True)
            else:
                select = zoo_selection(member, seed)
                report = report_for(name, select, seed, every_family=args.every_family)
                problems = zoo_problems(report, member, seed)
                bugs.append({"name": name, "seed": seed,
                             "selection": list(select) or ("every check" if args.every_family else "as CI"),
                             "flagged": {r.id: r.status.value for r in report.results
                                         if r.status in (Status.FAIL, Status.WARN, Status.QUALITY, Status.ERROR)},
                             "diagnosis": report.to_dict()["diagnosis"]["headline"], "problems": problems,
                             "wall_s": round(time.perf_counter() - t0, 1)})
                print(f"bug {name} seed {seed}: {'caught' if not problems else problems}, {bugs[-1]['wall_s']} s",
                      flush=True)
            _REPORTS.clear()  # the sweep keeps what it needs in its rows
            # written after every run: a long sweep that is stopped keeps what it finished
            meta = {"zoo_sha256": zoo_sha256(), "seeds": list(range(args.seeds)), "not_installed": missing,
                    "rows_resumed_from": earlier,
                    "bugs_with_problems": sorted({b["name"] for b in bugs if b["problems"]}),
                    "healthy_with_alarms": sorted({h["name"] for h in fine if h["alarms"]}),
                    "healthy": fine}
            write_results(out, "bug zoo at every seed, healthy fixtures at the defaults", torch.device("cpu"), bugs,
                          meta=meta, repeats=args.seeds)


if __name__ == "__main__":
    main()

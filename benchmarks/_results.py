"""The JSON every benchmark writes: what ran, on which commit, where, under what load, and its cases.

Every file records the commit (and whether the working tree differed from it), the machine's load
average when the benchmark started and when it wrote, the repeats (or seeds) each case ran, peak
memory, and the cases. A number cited in the README or in code names the file it comes from.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
#: The load average when this interpreter imported the module (the benchmark's start).
LOAD_AT_START = round(os.getloadavg()[0], 2)


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


#: The code the benchmark runs: the commit and whether tracked files differed from it, at its start
#: (a long benchmark writes as it goes, while the tree may move on).
CODE_AT_START = {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def provenance() -> dict:
    """Commit, dirty flag, CPU count and load: what a reader needs to judge a timing."""
    return {**CODE_AT_START, "cpu_count": os.cpu_count(), "load_avg_1m_start": LOAD_AT_START,
            "load_avg_1m_end": round(os.getloadavg()[0], 2)}


def write_results(out: Path, benchmark: str, device: torch.device, cases: list[dict], meta: dict | None = None,
                  *, repeats: int) -> None:
    """Write ``cases`` with the machine's description, provenance, ``repeats`` and ``meta`` to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    out.write_text(json.dumps({"benchmark": benchmark, "device": str(device), "device_name": name,
                               "torch": torch.__version__, "threads": torch.get_num_threads(), **provenance(),
                               "repeats": repeats,
                               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                               **(meta or {}), "cases": cases}, indent=2) + "\n")
    print(f"wrote {out}")

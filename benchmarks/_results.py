"""The JSON every benchmark writes: what ran where, peak memory, and its cases."""

from __future__ import annotations

import json
import platform
import resource
from pathlib import Path

import torch


def write_results(out: Path, benchmark: str, device: torch.device, cases: list[dict], meta: dict | None = None) -> None:
    """Write ``cases`` with the machine's description (and ``meta``, top level) to ``out`` (folders created)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    out.write_text(json.dumps({"benchmark": benchmark, "device": str(device), "device_name": name,
                               "torch": torch.__version__, "threads": torch.get_num_threads(),
                               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                               **(meta or {}), "cases": cases}, indent=2) + "\n")
    print(f"wrote {out}")

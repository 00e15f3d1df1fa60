"""The CI example (docs/ci/diffcheck-gate.yml) runs: its gate step, unchanged, in a project whose
pyproject.toml configures diffcheck, on the healthy fixture with itself as the promoted model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import HEALTHY_CKPT, ROOT, TINY_DATA
from tests.test_junit import assert_junit_structure

WORKFLOW = ROOT / "docs" / "ci" / "diffcheck-gate.yml"
GATE_STEP = "Run the diffcheck gate"
INSTALL_STEP = "Install diffcheck with a pinned CPU torch"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int) -> list[str]:
    """The lines indented deeper than ``lines[start]`` that follow it."""
    out = []
    for line in lines[start + 1:]:
        if line.strip() and _indent(line) <= _indent(lines[start]):
            break
        out.append(line)
    return out


def parse_workflow(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """The job's ``env`` and each named step's ``run`` script: the subset of YAML the example uses."""
    lines = text.splitlines()
    env_at = next(i for i, line in enumerate(lines) if line.strip() == "env:")
    env = dict(line.split("#")[0].strip().split(": ", 1) for line in _block(lines, env_at) if line.strip())
    runs, name = {}, None
    for i, line in enumerate(lines):
        key = line.strip().removeprefix("- ")
        if key.startswith("name: ") and line.lstrip().startswith("- name: "):
            name = key.removeprefix("name: ")
        elif key == "run: |" and name is not None:
            body = _block(lines, i)
            cut = min(_indent(b) for b in body if b.strip())
            runs[name] = "\n".join(b[cut:] for b in body).strip()
    return env, runs


def test_workflow_pins_torch_and_gates_strictly_with_junit_and_baseline():
    env, runs = parse_workflow(WORKFLOW.read_text())
    assert set(env) >= {"CANDIDATE", "PROMOTED", "DATA", "REPORT_DIR"}
    assert "torch==2.13.0" in runs[INSTALL_STEP] and "--index-url https://download.pytorch.org/whl/cpu" in runs[INSTALL_STEP]
    for flag in ("--strict", "--junit", "--baseline", "--report-dir"):
        assert flag in runs[GATE_STEP]
    assert re.search(r"path: \$\{\{ env\.REPORT_DIR \}\}", WORKFLOW.read_text())  # the report is kept


def test_the_gate_step_runs_on_the_fixtures(tmp_path):
    env, runs = parse_workflow(WORKFLOW.read_text())
    (tmp_path / "pyproject.toml").write_text("""
[tool.diffcheck]
device = "cpu"
select = ["FWD", "PAR"]

[tool.diffcheck.ignore]
PAR002 = "our sampler is checked by its own test suite"
""")
    bin_dir = Path(sys.executable).parent  # the diffcheck console script of this environment
    env = {**os.environ, **env, "CANDIDATE": str(HEALTHY_CKPT), "PROMOTED": str(HEALTHY_CKPT), "DATA": str(TINY_DATA),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", runs[GATE_STEP]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    report_dir = tmp_path / env["REPORT_DIR"]
    report = json.loads((report_dir / "report.json").read_text())
    assert report["strict"] is True and report["baseline"]["passed"] is True
    by_id = {r["id"]: r for r in report["results"]}
    assert by_id["PAR002"]["summary"] == "ignored: our sampler is checked by its own test suite"
    root = ET.parse(report_dir / "junit.xml").getroot()
    cases = assert_junit_structure(root)
    assert len(cases) == len(report["results"]) + 1  # one per check, one for the baseline comparison
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("0", "0", "1")

"""Ctrl-C during sampling, and a second run into a report dir in use, through real processes.

One run (FWD, then DIST's sampling through 1000 steps) is started; once the FWD checks have written
their figures a second run into the same report dir is refused, then the first gets SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import HEALTHY_CKPT, TINY_DATA

FWD = [f"FWD00{i}" for i in range(1, 6)]
DIST = [f"DIST00{i}" for i in range(1, 6)]
FWD_FIGURES = ("fwd_coefficients.png", "fwd_xt_trajectory.png")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")


def _command(rep: Path, select: str) -> list[str]:
    return [sys.executable, "-c", "from diffcheck.cli import main; main()", "run", str(HEALTHY_CKPT),
            "--data", str(TINY_DATA), "--device", "cpu", "--select", select, "--report-dir", str(rep),
            "--min-samples", "16", "--max-samples", "16"]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _wait_for(condition, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"run ended early with exit {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no sign of the run after {timeout:.0f} s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """(first run's exit code, stderr, report dir, second run's CompletedProcess, files seen before)."""
    tmp = tmp_path_factory.mktemp("interrupt")
    rep = tmp / "rep"
    env = {**os.environ, "DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "200"}
    with open(tmp / "stderr", "w+") as err:
        # SIG_DFL in the child: a test run started in the background of a shell ignores SIGINT, an
        # ignored signal stays ignored across exec, and Python then raises no KeyboardInterrupt
        first = subprocess.Popen(_command(rep, "FWD,DIST"), stdout=subprocess.DEVNULL, stderr=err, env=env,
                                 cwd=tmp, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # FWD's figures are on disk: FWD is done (FWD005 writes none; give it a moment) and DIST is sampling.
        _wait_for(lambda: all((rep / f).exists() for f in FWD_FIGURES), 300, first)
        time.sleep(3)
        seen = {p.name: p.read_bytes() for p in rep.iterdir() if p.is_file()}
        second = subprocess.run(_command(rep, "FWD001"), capture_output=True, text=True, env=env, cwd=tmp,
                                timeout=300)
        assert first.poll() is None, "the first run ended before it could be interrupted"
        first.send_signal(signal.SIGINT)
        code = first.wait(timeout=120)
        err.seek(0)
        return code, err.read(), rep, second, seen, first.pid


def test_ctrl_c_during_sampling_exits_130_with_one_line_and_an_incomplete_report(interrupted):
    code, stderr, rep, _, _, _ = interrupted
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    total = len(FWD) + len(DIST)
    assert _last_line(stderr) == f"interrupted after 5 of {total} checks; partial report: {rep / 'report.json'}", stderr
    report = json.loads((rep / "report.json").read_text())
    assert report["incomplete"] is True and report["exit_code"] == 130
    assert {r["id"]: r["status"] for r in report["results"]} == {i: "PASS" for i in FWD}
    assert report["not_run"] == DIST
    assert "incomplete: the run was interrupted" in (rep / "report.html").read_text()
    assert all((rep / f).exists() for f in FWD_FIGURES)
    assert not (rep / ".diffcheck.lock").exists()
    assert not [p.name for p in rep.iterdir() if p.name.endswith(".tmp")]


def test_a_second_run_into_the_dir_in_use_is_refused_and_leaves_it_alone(interrupted):
    _, _, rep, second, seen, pid = interrupted
    assert second.returncode == 2, second.stderr
    assert "Traceback" not in second.stderr
    assert _last_line(second.stderr) == (
        f"error: report dir {rep} is in use by run PID {pid}; wait for it to finish or pass another --report-dir "
        f"(or report_dir in [tool.diffcheck]) (if no run is going on, delete {rep / '.diffcheck.lock'})")
    for name, content in seen.items():  # what the first run had written is still there, byte for byte
        if name != ".diffcheck.lock":
            assert (rep / name).read_bytes() == content, name

"""diffcheck.formats.outputs: atomic writes, the previous run's files, the report-dir lock, clean text in every output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from diffcheck.formats import outputs
from diffcheck.engine.config import Options
from diffcheck.errors import ExitCode, InputError
from diffcheck.formats import write_report
from diffcheck.formats.html import html_text
from diffcheck.formats.junit import junit_text
from diffcheck.formats.outputs import (LOCK_NAME, MANIFEST_NAME, atomic_write, claim, clear_previous,
                               validate_output_paths)
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status

DIRTY = "\x1b[31mboom\x1b[0m at \x00step\x07 3"


def _report(*results: Result, **fields) -> Report:
    return Report(results=results, pipeline={"name": "toy"}, device="cpu", seed=0, duration_s=0.5, **fields)


def _dirty_result() -> Result:
    return Result(id="FWD001", title=f"title {DIRTY}", status=Status.FAIL, summary=f"summary {DIRTY}",
                  evidence=(f"evidence {DIRTY}",), causes=(f"cause {DIRTY}",), hint=f"hint {DIRTY}",
                  observed={"message": f"observed {DIRTY}"})


def _tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("fault", [OSError("disk full"), KeyboardInterrupt()], ids=["oserror", "ctrl-c"])
def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, fault):
    target = tmp_path / "report.json"
    target.write_text("old report\n")

    def broken_fsync(fd):
        raise fault

    monkeypatch.setattr(outputs.os, "fsync", broken_fsync)
    with pytest.raises(type(fault)):
        atomic_write(target, "new report that never lands\n")
    assert target.read_text() == "old report\n"
    assert _tmp_files(tmp_path) == []


def test_atomic_write_replaces_the_file_and_keeps_its_mode(tmp_path):
    target = tmp_path / "junit.xml"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, b"<new/>")
    assert target.read_bytes() == b"<new/>" and (target.stat().st_mode & 0o777) == 0o640
    assert _tmp_files(tmp_path) == []


def test_the_previous_runs_files_go_and_the_users_files_stay(tmp_path):
    rep = tmp_path / "rep"
    write_report(_report(Result(id="FWD001", title="t", status=Status.PASS, summary="ok",
                                figures=(str(rep / "fwd_old.png"),))), rep,
                 Options(report_dir=rep, json=rep / "copy.json").outputs())
    (rep / "fwd_old.png").write_bytes(b"png")
    (rep / "notes.txt").write_text("mine")
    (tmp_path / "outside.png").write_bytes(b"not diffcheck's")
    manifest = json.loads((rep / MANIFEST_NAME).read_text())["files"]
    assert manifest == ["copy.json", "fwd_old.png", "report.html", "report.json"]
    (rep / MANIFEST_NAME).write_text(json.dumps({"files": [*manifest, "../outside.png"]}))
    clear_previous(rep)
    assert sorted(p.name for p in rep.iterdir()) == ["notes.txt"]
    assert (tmp_path / "outside.png").exists()


def test_a_report_written_without_manifest_is_cleared_by_its_report_json(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    old = {"results": [{"id": "DIST001", "figures": ["elsewhere/rep/dist_samples_grid.png"]}]}
    (rep / "report.json").write_text(json.dumps(old))
    for name in ("report.html", "dist_samples_grid.png", "mine.png"):
        (rep / name).write_text("x")
    clear_previous(rep)
    assert sorted(p.name for p in rep.iterdir()) == ["mine.png"]


def test_a_second_claim_on_a_dir_in_use_is_refused_naming_the_pid(tmp_path):
    rep = tmp_path / "rep"
    with claim(rep):
        pid = (rep / LOCK_NAME).read_text().split()[0]
        assert pid == str(os.getpid())
        with pytest.raises(InputError, match=rf"^report dir .*rep is in use by run PID {pid}; wait for it"):
            with claim(rep):
                pass
        assert (rep / LOCK_NAME).exists()  # the refused claim did not release the holder's lock
    assert not rep.exists()  # created by the claim, left empty: removed again


def test_a_lock_naming_a_live_process_is_refused(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / LOCK_NAME).write_text(f"{os.getppid()}\n")
    with pytest.raises(InputError, match=rf"in use by run PID {os.getppid()};.*delete .*{LOCK_NAME}"):
        with claim(rep):
            pass
    assert (rep / LOCK_NAME).read_text() == f"{os.getppid()}\n"


def test_a_stale_lock_from_a_dead_process_is_taken_over(tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (rep / LOCK_NAME).write_text(f"{dead.pid}\n")
    with claim(rep):
        assert (rep / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        (rep / "report.json").write_text("{}")
    assert sorted(p.name for p in rep.iterdir()) == ["report.json"]


@pytest.mark.parametrize("make, args, message", [
    (lambda t: (t / "rep").write_text("x"), lambda t: (t / "rep", None, None), r"report dir .*rep is a file"),
    (lambda t: (t / "f").write_text("x"), lambda t: (t / "f" / "rep", None, None), r"lies under .*f, which is a file"),
    (lambda t: (t / "j").mkdir(), lambda t: (t / "rep", t / "j", None), r"--json .*j is a folder"),
    (lambda t: (t / "f").write_text("x"), lambda t: (t / "rep", None, t / "f" / "j.xml"), r"--junit .*lies under"),
], ids=["dir-is-file", "dir-under-file", "json-is-dir", "junit-under-file"])
def test_bad_output_paths_are_one_line_and_write_nothing(tmp_path, make, args, message):
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=message) as info:
        validate_output_paths(*args(tmp_path))
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_junit_with_control_characters_is_valid_xml():
    root = ET.fromstring(junit_text(_report(_dirty_result())))
    failure = root.find("./testsuite/testcase[@classname='FWD']/failure")
    assert failure.get("message") == "FWD001 summary boom at step 3"
    texts = [t for e in root.iter() for t in (e.text or "", *e.attrib.values())]
    assert all("\x1b" not in t and "\x00" not in t and "\x07" not in t for t in texts)
    assert "evidence boom at step 3" in failure.text and "cause boom at step 3" in failure.text


def test_json_and_html_hold_no_control_characters(tmp_path):
    report = _report(_dirty_result())
    text, page = report.to_json_text(), html_text(report, tmp_path)
    for out in (text, page):
        assert "\x1b" not in out and "\\u001b" not in out and "\x00" not in out and "\\u0000" not in out
    result = json.loads(text)["results"][0]
    assert result["summary"] == "summary boom at step 3"
    assert result["observed"]["message"] == "observed boom at step 3"
    assert "summary boom at step 3" in page


def test_an_incomplete_report_says_so_in_every_output(tmp_path):
    done = Result(id="FWD001", title="t", status=Status.PASS, summary="ok")
    report = _report(done, incomplete=True, not_run=("DIST001", "DIST002"))
    assert report.exit_code == ExitCode.INTERRUPTED == 130
    data = json.loads(report.to_json_text())
    assert data["incomplete"] is True and data["not_run"] == ["DIST001", "DIST002"] and data["exit_code"] == 130
    assert "interrupted</strong> after 1 checks; not run: DIST001, DIST002" in html_text(report, tmp_path)
    error = ET.fromstring(junit_text(report)).find("./testsuite/testcase[@name='diffcheck run complete']/error")
    assert error.get("message") == "run interrupted after 1 checks; not run: DIST001, DIST002"
    assert json.loads(_report(done).to_json_text())["incomplete"] is False


def test_every_format_in_the_table_writes_through_one_writer_from_the_cli_and_the_config(tmp_path):
    """--output FORMAT=PATH and [tool.diffcheck] outputs name any format of diffcheck.formats.FORMATS;
    an unknown one is a one-line usage error that lists them."""
    from diffcheck.formats import FORMATS
    from tests.adapters._helpers import invoke
    from tests.conftest import HEALTHY_CKPT

    rep = tmp_path / "rep"
    code, out = invoke("run", HEALTHY_CKPT, "--select", "FWD004", "--device", "cpu", "--report-dir", rep,
                       *[a for fmt in FORMATS for a in ("--output", f"{fmt}={tmp_path / ('copy.' + fmt)}")])
    assert code == 0, out
    assert json.loads((tmp_path / "copy.json").read_text())["results"][0]["id"] == "FWD004"
    assert ET.parse(tmp_path / "copy.junit").getroot().tag == "testsuites"
    assert "FWD004" in (tmp_path / "copy.html").read_text()
    assert f"junit: {tmp_path / 'copy.junit'}" in out
    manifest = json.loads((rep / MANIFEST_NAME).read_text())["files"]
    assert manifest == ["report.html", "report.json"]  # what lies outside the report dir is not the next run's to remove
    code, out = invoke("run", HEALTHY_CKPT, "--select", "FWD004", "--output", "sarif=x.sarif", "--report-dir", rep)
    assert code == 2 and out.count("\n") == 1 and "unknown report format 'sarif'; formats: json, html, junit" in out
    config = tmp_path / "pyproject.toml"
    config.write_text('[tool.diffcheck]\noutputs = { junit = "ci/j.xml" }\n')
    from diffcheck.engine.config import load_config

    assert load_config(config).outputs()[-1] == ("junit", tmp_path / "ci" / "j.xml")

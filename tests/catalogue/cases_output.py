"""Output paths that cannot be written, and a report dir in use: one line before any check runs (exit 2).

Root may write into a folder whose mode forbids it, so "cannot be written" uses /sys and /proc, where
no user (root included) can create a file.
"""

from __future__ import annotations

import os

from tests.catalogue import Case, quick_run
from tests.conftest import HEALTHY_CKPT, TINY_DATA

_USE = r"pass another --report-dir \(or report_dir in \[tool\.diffcheck\]\)$"


def _file(name: str):
    def setup(tmp):
        (tmp / name).write_text("a file the user keeps\n")
    return setup


def _folder(name: str):
    def setup(tmp):
        (tmp / name).mkdir()
    return setup


def _previous_run(lock: str):
    """A report dir holding a previous run's files and a lock naming ``lock`` (a PID and a host)."""
    def setup(tmp):
        rep = tmp / "rep"
        rep.mkdir()
        (rep / "report.json").write_text('{"results": [{"id": "FWD001", "figures": ["fwd_coefficients.png"]}]}\n')
        (rep / "fwd_coefficients.png").write_bytes(b"\x89PNG previous run")
        (rep / ".diffcheck.lock").write_text(lock.format(ppid=os.getppid()))
    return setup


def _pyproject(body: str, also=None):
    def setup(tmp):
        (tmp / "pyproject.toml").write_text(f"[tool.diffcheck]\n{body}\n")
        if also is not None:
            also(tmp)
    return setup


def _no_dir_flag(tmp):
    """A quick run whose output paths come from [tool.diffcheck] only."""
    return ["run", HEALTHY_CKPT, "--data", TINY_DATA, "--device", "cpu", "--select", "FWD001"]


def _out(id_, args, stderr, setup=None, outdir="absent"):
    return Case(f"output-{id_}", "output", args, r"^error: " + stderr, setup=setup, outdir=outdir)


CASES = [
    _out("dir-is-a-file", lambda tmp: quick_run(tmp), r"report dir .*rep is a file, not a folder; " + _USE,
         setup=_file("rep"), outdir="unchanged"),
    _out("dir-under-a-file", lambda tmp: quick_run(tmp, "--report-dir", tmp / "f" / "rep"),
         r"report dir .*f/rep lies under .*/f, which is a file; " + _USE, setup=_file("f")),
    _out("dir-deep-under-a-file", lambda tmp: quick_run(tmp, "--report-dir", tmp / "f" / "a" / "b"),
         r"report dir .*f/a/b lies under .*/f, which is a file", setup=_file("f")),
    _out("dir-unwritable", lambda tmp: quick_run(tmp, "--report-dir", "/sys/diffcheck-rep"),
         r"report dir /sys/diffcheck-rep: cannot write in /sys \(.+\); " + _USE),
    _out("dir-in-proc", lambda tmp: quick_run(tmp, "--report-dir", "/proc/diffcheck/rep"),
         r"report dir /proc/diffcheck/rep: cannot write in /proc \("),
    _out("json-is-a-folder", lambda tmp: quick_run(tmp, "--json", tmp / "j"),
         r"--json .*/j is a folder; pass a writable file path to --json, e.g. .*/j/report\.json$", setup=_folder("j")),
    _out("json-under-a-file", lambda tmp: quick_run(tmp, "--json", tmp / "f" / "out.json"),
         r"--json .*f/out\.json lies under .*/f, which is a file; pass a writable file path to --json$",
         setup=_file("f")),
    _out("json-unwritable", lambda tmp: quick_run(tmp, "--json", "/sys/out.json"),
         r"--json /sys/out\.json: cannot write in /sys"),
    _out("json-is-the-report-dir", lambda tmp: quick_run(tmp, "--json", tmp / "rep"),
         r"--json .*rep is where diffcheck writes its own report; pass another file path to --json$"),
    _out("json-overwrites-report-html", lambda tmp: quick_run(tmp, "--json", tmp / "rep" / "report.html"),
         r"--json .*rep/report\.html is where diffcheck writes its own report"),
    _out("junit-is-a-folder", lambda tmp: quick_run(tmp, "--junit", tmp / "j"),
         r"--junit .*/j is a folder; pass a writable file path to --junit", setup=_folder("j")),
    _out("junit-under-a-file", lambda tmp: quick_run(tmp, "--junit", tmp / "f" / "j.xml"),
         r"--junit .*f/j\.xml lies under .*/f, which is a file", setup=_file("f")),
    _out("junit-unwritable", lambda tmp: quick_run(tmp, "--junit", "/sys/junit.xml"),
         r"--junit /sys/junit\.xml: cannot write in /sys"),
    _out("junit-overwrites-report-json", lambda tmp: quick_run(tmp, "--junit", tmp / "rep" / "report.json"),
         r"--junit .*rep/report\.json is where diffcheck writes its own report; pass another file path to --junit$"),
    _out("dir-in-use-by-a-live-run", lambda tmp: quick_run(tmp),
         r"report dir .*rep is in use by run PID \d+; wait for it to finish or pass another --report-dir .*"
         r"\(if no run is going on, delete .*rep/\.diffcheck\.lock\)$",
         setup=_previous_run("{ppid}\n"), outdir="unchanged"),
    _out("dir-in-use-from-another-host", lambda tmp: quick_run(tmp),
         r"report dir .*rep is in use by run PID 4242; wait", setup=_previous_run("4242 some-other-host\n"),
         outdir="unchanged"),
    _out("toml-report-dir-is-a-file", _no_dir_flag, r"report dir .*/rfile is a file, not a folder; " + _USE,
         setup=_pyproject('report_dir = "rfile"', _file("rfile"))),
    _out("toml-report-dir-under-a-file", _no_dir_flag, r"report dir .*/f/rep lies under .*/f, which is a file",
         setup=_pyproject('report_dir = "f/rep"', _file("f"))),
    _out("toml-junit-is-a-folder", _no_dir_flag, r"--junit .*/jdir is a folder",
         setup=_pyproject('report_dir = "rep"\njunit = "jdir"', _folder("jdir"))),
    _out("toml-junit-under-a-file", _no_dir_flag, r"--junit .*/f/j\.xml lies under .*/f, which is a file",
         setup=_pyproject('report_dir = "rep"\njunit = "f/j.xml"', _file("f"))),
]

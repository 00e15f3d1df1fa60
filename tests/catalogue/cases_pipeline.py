"""Bad ``--pipeline file.py:function``: one line naming the file and what it did (exit 2)."""

from __future__ import annotations

from tests.catalogue import Case
from tests.conftest import HEALTHY_CKPT, TINY_DATA


def _file(body: str):
    def setup(tmp):
        (tmp / "p.py").write_text(body)
    return setup


def _args(spec: str):
    return lambda tmp: ["run", HEALTHY_CKPT, "--pipeline", spec.format(tmp=tmp), "--data", TINY_DATA,
                        "--device", "cpu", "--select", "FWD001", "--report-dir", tmp / "rep"]


def _pipe(id_, body, stderr, spec="{tmp}/p.py:build"):
    return Case(f"pipeline-{id_}", "pipeline", _args(spec), stderr, setup=_file(body) if body is not None else None)


ARGPARSE = """
import argparse
def build(checkpoint):
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.parse_args()
"""

CASES = [
    _pipe("file-missing", None, r"^error: --pipeline file not found: .*nope\.py", spec="{tmp}/nope.py:build"),
    _pipe("no-function-part", "def build(c): pass\n", r"^error: .*expected path/to/file\.py:function",
          spec="{tmp}/p.py"),
    _pipe("function-missing", "def other(c): pass\n", r"^error: --pipeline .*p\.py defines no function 'build'"),
    _pipe("not-callable", "build = 3\n", r"^error: --pipeline .*p\.py defines no function 'build'"),
    _pipe("syntax-error", "def build(c)\n    return 1\n", r"^error: --pipeline .* raised SyntaxError"),
    _pipe("import-error", "import no_such_module_xyz\n", r"^error: --pipeline .* raised ModuleNotFoundError: "
          r"No module named 'no_such_module_xyz'"),
    _pipe("raises", "def build(c):\n    raise ValueError('bad config\\nsecond line')\n",
          r"^error: --pipeline .* raised ValueError: bad config$"),
    _pipe("raises-with-ansi", "def build(c):\n    raise RuntimeError('\\x1b[31mred\\x1b[0m failure')\n",
          r"^error: --pipeline .* raised RuntimeError: red failure$"),
    _pipe("returns-none", "def build(c):\n    return None\n", r"^error: --pipeline .* returned NoneType, not a "
          r"diffcheck\.Pipeline$"),
    _pipe("returns-dict", "def build(c):\n    return {'net': 1}\n", r"returned dict, not a diffcheck\.Pipeline$"),
    _pipe("wrong-signature", "def build():\n    return None\n", r"^error: --pipeline .* raised TypeError"),
    _pipe("sys-exit", "import sys\ndef build(c):\n    sys.exit(3)\n",
          r"^error: --pipeline .* exited \(SystemExit 3\) instead of returning a Pipeline"),
    _pipe("argparse", ARGPARSE, r"^error: --pipeline .* exited \(SystemExit 2\) instead of returning a Pipeline.*"
          r"it printed: p\.py: error: the following arguments are required: --lr; build\(checkpoint\) must not"),
    _pipe("file-is-a-directory", None, r"^error: --pipeline file not found: ", spec="{tmp}:build"),
]

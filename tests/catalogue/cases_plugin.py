"""Plugins that fail to load: reported once on stderr, the exit code unchanged unless the run selects them.

A broken plugin that the run did not select must not turn a CI gate red (exit 0, one warning line,
a SKIP result ``PLUGIN-<NAME>``); selected by name it is an ERROR (exit 3); selecting its checks,
which never registered, is a usage error that names the plugin (exit 2).
"""

from __future__ import annotations

import json

from tests.catalogue import Case, quick_run
from tests.test_runner import PLUGIN, _install_plugin

_WARNING = r"^warning: plugin 'plug' failed to load \({}\); its checks did not run; --ignore PLUGIN-PLUG silences this$"


def _plugin(body: str, value: str = "dcplug:checks"):
    return lambda monkeypatch, tmp: _install_plugin(tmp, monkeypatch, body, value)


def _result(status: str, exit_code: int):
    def after(tmp):
        report = json.loads((tmp / "rep" / "report.json").read_text())
        results = {r["id"]: r for r in report["results"]}
        assert results["PLUGIN-PLUG"]["status"] == status, results["PLUGIN-PLUG"]
        assert results["FWD001"]["status"] == "PASS" or status == "ERROR"
        assert report["exit_code"] == exit_code
    return after


_IMPORT_ERROR = "raise ImportError('missing dependency xyz')\n"


def _case(id_, patch, stderr, *extra, exit_code=0, after=None, outdir="any"):
    return Case(f"plugin-{id_}", "plugin", lambda tmp: quick_run(tmp, *extra), stderr, exit_code=exit_code,
                outdir=outdir, after=after, patch=patch)


CASES = [
    _case("import-error-not-selected", _plugin(_IMPORT_ERROR), _WARNING.format(r"ImportError: missing dependency xyz"),
          after=_result("SKIP", 0)),
    _case("selected-by-name", _plugin(_IMPORT_ERROR), _WARNING.format(r"ImportError: missing dependency xyz"),
          "--select", "PLUGIN-plug", exit_code=3, after=_result("ERROR", 3)),
    _case("its-checks-selected", _plugin(_IMPORT_ERROR),
          r"^error: 'PLG' matches no check; families: .*; plugin 'plug' failed to load \(ImportError: missing "
          r"dependency xyz\)$", "--select", "PLG", exit_code=2, outdir="absent"),
    _case("missing-module", _plugin(PLUGIN, "dcplug_not_installed:checks"),
          _WARNING.format(r"ModuleNotFoundError: No module named 'dcplug_not_installed'"), after=_result("SKIP", 0)),
    _case("duplicate-builtin-id", _plugin(PLUGIN.replace('"PLG001"', '"FWD001"')),
          _WARNING.format(r"CheckDefinitionError: check FWD001 from entry point 'plug' .* duplicates the ID of .*"),
          after=_result("SKIP", 0)),
    _case("returns-no-checks", _plugin("def checks():\n    return 42\n"),
          _WARNING.format(r"CheckDefinitionError: returned int, expected Check classes"), after=_result("SKIP", 0)),
    _case("error-with-terminal-codes", _plugin("raise RuntimeError('\\x1b[31mCUDA\\x1b[0m driver \\x00missing')\n"),
          _WARNING.format(r"RuntimeError: CUDA driver missing"), after=_result("SKIP", 0)),
]

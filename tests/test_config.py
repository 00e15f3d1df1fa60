"""[tool.diffcheck] in pyproject.toml: parsing, one-line errors naming the key, flags over the file,
ignores with reasons in the report, strict from the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffcheck import InputError
from diffcheck.cli import app
from diffcheck.engine.config import Options, Tolerance, load_config
from tests.conftest import HEALTHY_CKPT, TINY_DATA

GOOD = """
[project]
name = "someone-elses-model"

[tool.diffcheck]
pipeline = "pipelines/mine.py:build"
data = "data/heldout.h5"
select = ["FWD", "par001"]
seed = 3
strict = true
junit = "out/junit.xml"

[tool.diffcheck.thresholds]
FWD001.max_coef_error = 0.02
"FWD004.max_terminal_snr" = 1e-9

[tool.diffcheck.ignore]
SMP006 = "we clip x0 to [-1, 1] on purpose"

[tool.diffcheck.baseline]
checkpoint = "models/promoted.pt"
rtol = 0.1
atol = 0.01
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    return path


def test_a_full_table_parses_with_paths_relative_to_the_file(tmp_path):
    o = load_config(write(tmp_path, GOOD))
    assert o.pipeline == f"{tmp_path / 'pipelines/mine.py'}:build" and o.data == tmp_path / "data/heldout.h5"
    assert (o.select, o.seed, o.strict, o.junit) == (("FWD", "PAR001"), 3, True, tmp_path / "out/junit.xml")
    assert o.thresholds == {"FWD001": {"max_coef_error": 0.02}, "FWD004": {"max_terminal_snr": 1e-9}}
    assert o.ignore == {"SMP006": "we clip x0 to [-1, 1] on purpose"}
    assert (o.baseline, o.tolerance) == (tmp_path / "models/promoted.pt", Tolerance(rtol=0.1, atol=0.01))


def test_no_table_or_no_file_gives_the_defaults(tmp_path, monkeypatch):
    assert load_config(write(tmp_path, "[project]\nname = 'x'\n")) == Options()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").unlink()
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    write(tmp_path / "a", "[tool.diffcheck]\nseed = 7\n")
    monkeypatch.chdir(nested)  # found by walking up from the working directory
    assert load_config().seed == 7


@pytest.mark.parametrize("body, message", [
    ("sead = 3", r"\[tool\.diffcheck\] has unknown key 'sead'; known keys: pipeline, data"),
    ("strict = 'yes'", r"\[tool\.diffcheck\] strict: expected true or false, got 'yes'"),
    ("ignore = ['SMP006']", r"\[tool\.diffcheck\] ignore: must map each ignored check to its reason"),
    ("[tool.diffcheck.ignore]\nSMP006 = ''", r"ignore: SMP006 needs a reason"),
    ("[tool.diffcheck.thresholds]\nFWD001.max_coef_error = 'tight'", r"thresholds: FWD001\.max_coef_error must be a finite number"),
    ("[tool.diffcheck.thresholds]\nFWD001 = 0.1", r"thresholds: 'FWD001' is not ID\.name"),
    ("seed = -1", r"seed: expected an integer from 0 to 2\*\*63-1, got -1"),
    ("select = 'FWD'\npipeline = 'nofunction.py'", r"pipeline: expected path/to/file\.py:function"),
    ("[tool.diffcheck.baseline]\ncheckpoint = 'p.pt'\nrtl = 0.1", r"baseline: unknown key 'rtl'"),
    ("[tool.diffcheck.baseline]\nrtol = -0.1", r"baseline: rtol must be >= 0, got -0.1"),
    ("seed = [", r"not valid TOML"),
], ids=["unknown-key", "strict-type", "ignore-without-reasons", "empty-reason", "threshold-type",
        "threshold-key", "seed", "pipeline-spec", "baseline-key", "negative-tolerance", "bad-toml"])
def test_a_bad_config_is_one_line_naming_the_key(tmp_path, body, message):
    text = body if body.startswith("[") else f"[tool.diffcheck]\n{body}"
    with pytest.raises(InputError, match=message) as info:
        load_config(write(tmp_path, text))
    assert "\n" not in str(info.value) and str(tmp_path / "pyproject.toml") in str(info.value)


def test_flags_override_the_file(tmp_path):
    o = load_config(write(tmp_path, GOOD)).with_flags(
        seed=0, strict=False, select=["SMP"], ignore=["fwd003"], data=Path("other.h5"),
        threshold={"FWD001": {"max_coef_error": 0.05}}, rtol=0.2, device=None)
    assert (o.seed, o.strict, o.select, o.data, o.device) == (0, False, ("SMP",), Path("other.h5"), "auto")
    assert o.ignore == {"SMP006": "we clip x0 to [-1, 1] on purpose", "FWD003": "--ignore on the command line"}
    assert o.thresholds["FWD001"] == {"max_coef_error": 0.05} and o.thresholds["FWD004"] == {"max_terminal_snr": 1e-9}
    assert o.tolerance == Tolerance(rtol=0.2, atol=0.01)


def test_cli_reads_the_config_shows_ignore_reasons_and_applies_strict(tmp_path, monkeypatch):
    write(tmp_path, f"""
[tool.diffcheck]
data = "{TINY_DATA}"
device = "cpu"
select = ["FWD002", "FWD004"]
strict = true
report_dir = "rep"

[tool.diffcheck.thresholds]
FWD004.max_terminal_snr = 1e-9

[tool.diffcheck.ignore]
FWD002 = "our q_sample standardises x_t on purpose (see ADR 12)"
""")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    strict = runner.invoke(app, ["run", str(HEALTHY_CKPT)])
    assert strict.exit_code == 1, strict.output  # FWD004 WARNs under the tightened threshold; strict fails it
    assert "ignored: our q_sample standardises x_t on purpose (see ADR 12)" in strict.output
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    by_id = {r["id"]: r for r in report["results"]}
    assert report["strict"] is True and by_id["FWD004"]["status"] == "WARN"
    assert by_id["FWD004"]["thresholds"]["max_terminal_snr"] == 1e-9
    assert by_id["FWD002"]["observed"] == {"ignored_by": "FWD002",
                                           "ignore_reason": "our q_sample standardises x_t on purpose (see ADR 12)"}
    relaxed = runner.invoke(app, ["run", str(HEALTHY_CKPT), "--no-strict", "--report-dir", str(tmp_path / "r2")])
    assert relaxed.exit_code == 0, relaxed.output


def test_cli_names_the_bad_key_in_one_line(tmp_path):
    config = write(tmp_path, "[tool.diffcheck]\nignore = ['FWD002']\n")
    result = CliRunner().invoke(app, ["run", str(HEALTHY_CKPT), "--config", str(config)])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and "ignore: must map each ignored check" in result.output
    assert "Traceback" not in result.output

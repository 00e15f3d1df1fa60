"""JUnit XML: parses with xml.etree, has the JUnit schema's structure, one testcase per check and
the right failure/error/skipped counts; --junit and --strict on the command line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from diffcheck import Report, Status
from diffcheck.cli import app
from diffcheck.formats.junit import write_junit
from tests.conftest import HEALTHY_CKPT, TINY_DATA, report_for

#: Children and required attributes of the JUnit schema (the Jenkins/Ant junit-10 XSD) we emit.
SUITE_CHILDREN = {"properties", "testcase", "system-out", "system-err"}
CASE_CHILDREN = {"failure", "error", "skipped", "system-out", "system-err"}
OUTCOMES = {"failure", "error", "skipped"}


def assert_junit_structure(root: ET.Element) -> list[ET.Element]:
    """Assert the JUnit schema's structure and consistent counts; return the testcases."""
    assert root.tag == "testsuites" and [c.tag for c in root] == ["testsuite"]
    suite = root[0]
    assert {c.tag for c in suite} <= SUITE_CHILDREN and suite.get("name")
    cases = suite.findall("testcase")
    for case in cases:
        assert case.get("name") and case.get("classname") and float(case.get("time")) >= 0
        assert {c.tag for c in case} <= CASE_CHILDREN
        assert sum(1 for c in case if c.tag in OUTCOMES) <= 1, ET.tostring(case)
        for outcome in case:
            if outcome.tag in ("failure", "error"):  # message = the full text's first line
                assert outcome.text.splitlines()[0] == outcome.get("message").removeprefix("WARN under --strict: ")
    for node in (root, suite):
        assert int(node.get("tests")) == len(cases)
        for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            assert int(node.get(attr)) == sum(1 for c in cases if c.find(tag) is not None)
        assert float(node.get("time")) >= 0
    assert cases[0].get("name") == "diagnosis"  # the diagnosis leads; the checks' testcases follow
    return cases[1:]


def parse(report: Report, tmp_path) -> ET.Element:
    path = write_junit(report, tmp_path / "junit.xml")
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.parse(path).getroot()


def test_one_testcase_per_check_with_failures_as_first_lines(tmp_path):
    report = report_for("reversed_t", ("FWD",))
    cases = assert_junit_structure(parse(report, tmp_path))
    assert [c.get("name").split()[0] for c in cases] == [r.id for r in report.results]
    assert {c.get("classname") for c in cases} == {"FWD"}
    failed = [r for r in report.results if r.status is Status.FAIL]
    assert len(failed) >= 2  # FWD005 and FWD001 at least (fixtures/zoo.toml)
    by_id = {c.get("name").split()[0]: c for c in cases}
    for r in failed:
        failure = by_id[r.id].find("failure")
        assert failure.get("message") == r.message().splitlines()[0] and failure.text == r.message()
    root = parse(report, tmp_path)
    assert int(root.get("failures")) == len(failed) + 1 and int(root.get("errors")) == 0  # + the diagnosis
    diagnosis = root[0].find("testcase").find("failure")
    assert diagnosis.get("message").startswith("diagnosis: root cause FWD005 ") and "explains FWD001" in diagnosis.text


def test_warn_passes_with_output_or_fails_under_strict(tmp_path):
    report = report_for("leaky_terminal", ("FWD004",))
    assert report["FWD004"].status is Status.WARN
    case = assert_junit_structure(parse(report, tmp_path))[0]
    assert case.find("failure") is None and case.find("system-out").text.startswith("WARN FWD004 data leaks")
    strict = assert_junit_structure(parse(replace(report, strict=True), tmp_path))[0]
    assert strict.find("failure").get("message").startswith("WARN under --strict: FWD004 data leaks into x_T")


def test_error_and_skip_results(tmp_path):
    report = report_for("healthy", ("FWD",))
    errored = replace(report["FWD002"], status=Status.ERROR, summary="check raised RuntimeError: boom")
    skipped = replace(report["FWD003"], status=Status.SKIP, summary="requires FWD001, which is FAIL")
    results = tuple({"FWD002": errored, "FWD003": skipped}.get(r.id, r) for r in report.results)
    root = parse(replace(report, results=results), tmp_path)
    cases = assert_junit_structure(root)
    assert (root.get("errors"), root.get("skipped"), root.get("failures")) == ("1", "1", "0")
    assert cases[1].find("error").get("message") == "FWD002 check raised RuntimeError: boom"
    assert cases[2].find("skipped").get("message") == "requires FWD001, which is FAIL"


@pytest.mark.parametrize("strict, code, failures", [(False, 0, "0"), (True, 1, "2")], ids=["default", "strict"])
def test_cli_writes_junit_and_strict_fails_a_warn(tmp_path, strict, code, failures):
    junit = tmp_path / "out" / "junit.xml"
    args = ["run", str(HEALTHY_CKPT), "--data", str(TINY_DATA), "--device", "cpu", "--select", "FWD004",
            "--threshold", "FWD004.max_terminal_snr=1e-9", "--report-dir", str(tmp_path / "rep"),
            "--junit", str(junit), *(["--strict"] if strict else [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    root = ET.parse(junit).getroot()
    assert_junit_structure(root)
    assert (root.get("tests"), root.get("failures")) == ("2", failures)  # the diagnosis and FWD004
    assert f"junit: {junit}" in result.output.replace("\n", "")

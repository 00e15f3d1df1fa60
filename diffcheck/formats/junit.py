"""JUnit XML for CI systems (``diffcheck run ... --junit report.xml``).

One ``<testsuite>`` whose first ``<testcase>`` is the diagnosis (classname ``diffcheck``, name
``diagnosis``: a ``<failure>`` whose message is the diagnosis's headline when the checks fail the
run, else it passes with the diagnosis in ``<system-out>``; the suite's ``<system-out>`` holds it
too), then one ``<testcase>`` per check (classname = family, name = ID and title):

- FAIL  -> ``<failure message="first line">`` with the full failure text;
- ERROR -> ``<error message="first line">``;
- SKIP  -> ``<skipped message="reason"/>``;
- WARN, QUALITY -> passes, with the text in ``<system-out>``; under ``--strict`` it is a ``<failure>``.

An interrupted run (Ctrl-C) adds one ``<error>`` testcase ``diffcheck run complete`` naming the
checks that did not run, so a CI publisher does not show a partial run as green. Every text is
free of terminal control codes (which XML 1.0 cannot hold).

A baseline comparison adds one testcase per compared check (classname ``BASELINE``) that fails
when a quality figure regressed. The suite's counts (tests, failures, errors, skipped) and times
follow the common JUnit schema that Jenkins, GitLab and the GitHub test reporters read.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from diffcheck.engine.baseline import BaselineComparison, FigureComparison, figures_by_check
from diffcheck.formats.report import Report
from diffcheck.engine.results import GATED, Result, Status
from diffcheck.text import plain

__all__ = ["junit_xml", "junit_text", "write_junit"]

SUITE_NAME = "diffcheck"


def junit_xml(report: Report) -> ET.ElementTree:
    """The report as a JUnit ``<testsuites>`` document with a single ``<testsuite>``."""
    cases = [_diagnosis_case(report), *(_case(r, report.strict) for r in report.results)]
    if report.incomplete:
        cases.append(_incomplete_case(report))
    if report.baseline is not None:
        cases += _baseline_cases(report.baseline)
    suite = ET.Element("testsuite", name=SUITE_NAME, tests=str(len(cases)),
                       failures=str(_count(cases, "failure")), errors=str(_count(cases, "error")),
                       skipped=str(_count(cases, "skipped")), time=_seconds(report.duration_s),
                       timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    suite.append(_properties(report))
    suite.extend(cases)
    ET.SubElement(suite, "system-out").text = _diagnosis_text(report)
    root = ET.Element("testsuites", name=SUITE_NAME, tests=suite.get("tests"), failures=suite.get("failures"),
                      errors=suite.get("errors"), skipped=suite.get("skipped"), time=suite.get("time"))
    root.append(suite)
    ET.indent(root)
    return ET.ElementTree(root)


def junit_text(report: Report) -> bytes:
    """:func:`junit_xml` serialised: UTF-8 with an XML declaration."""
    return ET.tostring(junit_xml(report).getroot(), encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: Report, path: str | os.PathLike) -> Path:
    """Write :func:`junit_text` to ``path`` atomically."""
    from diffcheck.formats.outputs import atomic_write

    return atomic_write(path, junit_text(report))


def _incomplete_case(report: Report) -> ET.Element:
    case = ET.Element("testcase", classname="diffcheck", name="diffcheck run complete", time=_seconds(0.0))
    missing = ", ".join(report.not_run) or "none"
    _child(case, "error", f"run interrupted after {len(report.results)} checks; not run: {missing}",
           f"not run: {missing}", "INTERRUPTED")
    return case


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _count(cases: list[ET.Element], tag: str) -> int:
    return sum(1 for c in cases if c.find(tag) is not None)


def _properties(report: Report) -> ET.Element:
    props = ET.Element("properties")
    values = {"seed": report.seed, "device": report.device, "strict": report.strict,
              "pipeline": report.pipeline.get("name", ""), **{f"meta.{k}": v for k, v in report.meta.items()}}
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=plain(value))
    return props


def _diagnosis_text(report: Report) -> str:
    return plain("\n".join(report.diagnosis().lines()))


def _diagnosis_case(report: Report) -> ET.Element:
    """The first testcase, the one a CI publisher lists first: the root causes and their knock-ons."""
    case = ET.Element("testcase", classname=SUITE_NAME, name="diagnosis", time=_seconds(0.0))
    failed = any(r.status.fails_run(report.strict) for r in report.results)
    if failed:
        _child(case, "failure", plain(report.diagnosis().headline), _diagnosis_text(report), "DIAGNOSIS")
    else:
        ET.SubElement(case, "system-out").text = _diagnosis_text(report)
    return case


def _case(r: Result, strict: bool) -> ET.Element:
    case = ET.Element("testcase", classname=plain(r.family), name=plain(f"{r.id} {r.title}"),
                      time=_seconds(r.duration_s))
    first = plain(r.message()).splitlines()[0]
    if r.status.fails_run(strict):
        label = "" if r.status is Status.FAIL else f"{r.status.value} under --strict: "
        _child(case, "failure", label + first, r.message(), r.status.value)
    elif r.status is Status.ERROR:
        _child(case, "error", first, r.message(), r.status.value)
    elif r.status is Status.SKIP:
        ET.SubElement(case, "skipped", message=plain(r.summary))
    elif r.status in GATED:
        ET.SubElement(case, "system-out").text = plain(f"{r.status.value} {r.message()}")
    return case


def _child(case: ET.Element, tag: str, message: str, text: str, kind: str) -> None:
    ET.SubElement(case, tag, message=plain(message), type=kind).text = plain(text)


def _baseline_cases(comparison: BaselineComparison) -> list[ET.Element]:
    cases = []
    for check_id, figures in figures_by_check(comparison).items():
        case = ET.Element("testcase", classname="BASELINE", name=plain(f"{check_id} quality vs {comparison.checkpoint}"),
                          time=_seconds(0.0))
        worse = [f for f in figures if f.regressed]
        if worse:
            _child(case, "failure", worse[0].message(), _lines(worse + [f for f in figures if not f.regressed]),
                   "BASELINE")
        else:
            ET.SubElement(case, "system-out").text = plain(_lines(figures))
        cases.append(case)
    return cases


def _lines(figures: list[FigureComparison]) -> str:
    return "\n".join(f.message() for f in figures)

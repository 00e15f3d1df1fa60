"""The HTML report: every check in the table, failures first, figures linked and present, text escaped."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import diffcheck
from diffcheck import Status
from diffcheck.formats.html import write_html


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.rows: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.rows.append(attrs["href"][1:])

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_lists_every_check_with_its_figures(healthy, tiny_data, tmp_path):
    report = diffcheck.run_checks(healthy, data=tiny_data, select=["FWD"], seed=0, report_dir=tmp_path)
    fail = replace(report["FWD002"], status=Status.FAIL, summary="x_t <re-normalised> & 'pinned' at 0.999")
    report = replace(report, results=tuple(fail if r.id == "FWD002" else r for r in report.results))
    page = write_html(report, tmp_path / "report.html").read_text()
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.rows[0] == "FWD002"  # failures first
    assert sorted(parsed.rows) == sorted(r.id for r in report.results)
    figures = [f for r in report.results for f in r.figures]
    assert figures and len(parsed.images) == len(figures)
    for src in parsed.images:
        assert not src.startswith("/") and (tmp_path / src).is_file()
    assert "x_t <re-normalised> & 'pinned' at 0.999" in "".join(parsed.text)  # escaped, not markup
    assert "<re-normalised>" not in page
    assert re.search(r"exit code 1\b", page)

"""Report formats: one small interface, one table of them, one writer for every front door.

A format turns a finished :class:`~diffcheck.Report` into the text of one file::

    ReportFormat(name="junit", render=lambda report, report_dir: junit_text(report))

``render`` gets the report and the report directory (so that a format can link the figures
relative to it). :data:`FORMATS` names the built-in ones; :func:`diffcheck.engine.config.Options.outputs`
says which file each run writes in which format, and :func:`write_report` writes them all,
each atomically, then the manifest the next run clears them by. ``diffcheck run``, the pytest
plugin and :mod:`diffcheck.testing` all write through it (via :func:`diffcheck.run`), so a new
format is one entry here and the option that names its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from diffcheck.formats.report import Report

__all__ = ["ReportFormat", "FORMATS", "write_report"]


@dataclass(frozen=True)
class ReportFormat:
    """A way to write a report: ``render(report, report_dir)`` is the file's text (str or bytes)."""

    name: str
    render: Callable[["Report", Path], str | bytes]
    description: str = ""


def _json(report: "Report", report_dir: Path) -> str:
    return report.to_json_text()


def _html(report: "Report", report_dir: Path) -> str:
    from diffcheck.formats.html import html_text

    return html_text(report, report_dir)


def _junit(report: "Report", report_dir: Path) -> bytes:
    from diffcheck.formats.junit import junit_text

    return junit_text(report)


#: The built-in formats by name.
FORMATS: dict[str, ReportFormat] = {f.name: f for f in (
    ReportFormat("json", _json, "the report as JSON (docs/report.schema.json)"),
    ReportFormat("html", _html, "one self-contained page: the diagnosis, the table, each check with its figures"),
    ReportFormat("junit", _junit, "JUnit XML, one testcase per check, the diagnosis first"),
)}


def write_report(report: "Report", report_dir: Path, outputs: Iterable[tuple[str, Path]]) -> list[Path]:
    """Write ``report`` in each (format, path) of ``outputs``, each atomically, then the manifest of
    what the run wrote in ``report_dir``; the paths written. Each format renders once."""
    from diffcheck.formats.outputs import atomic_write, write_manifest

    report_dir = Path(report_dir)
    rendered: dict[str, str | bytes] = {}
    written = []
    for name, path in outputs:
        if name not in rendered:
            rendered[name] = FORMATS[name].render(report, report_dir)
        written.append(atomic_write(path, rendered[name]))
    write_manifest(report, report_dir, written)
    return written

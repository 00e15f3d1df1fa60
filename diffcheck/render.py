"""Terminal rendering of a Report with rich: one line per check, problems expanded below."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .report import Report
from .results import Result, Status

__all__ = ["render_report", "STYLES"]

STYLES = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red",
          Status.SKIP: "dim", Status.ERROR: "bold magenta"}


def _table(report: Report) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    for r in report.results:
        style = STYLES[r.status]
        table.add_row(f"[{style}]{r.status.value}[/]", r.id, escape(r.summary))
    return table


def _details(r: Result) -> str:
    style = STYLES[r.status]
    lines = [f"[{style}]{r.status.value}[/] [bold]{escape(r.id)}[/] {escape(r.summary)}"]
    lines += [f"    {escape(line)}" for line in r.evidence]
    if r.causes:
        lines.append("  Likely causes:")
        lines += [f"    {i}. {escape(c)}" for i, c in enumerate(r.causes, 1)]
    if r.figures:
        lines.append("  Figures: " + ", ".join(escape(f) for f in r.figures))
    if r.hint:
        lines.append(f"  [dim]{escape(r.hint)}[/]")
    return "\n".join(lines)


def render_report(report: Report, console: Console) -> None:
    p = report.pipeline
    console.print(f"[bold]diffcheck[/]: {escape(str(p.get('name', 'pipeline')))}  T={p.get('T')}  "
                  f"device={report.device}  seed={report.seed}")
    console.print(_table(report))
    problems = [r for r in report.results if r.status in (Status.FAIL, Status.WARN, Status.ERROR)]
    for r in problems:
        console.print()
        console.print(_details(r), soft_wrap=True, highlight=False)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in report.counts().items() if n)
    console.print(f"\n{counts} in {report.duration_s:.1f}s; exit code {int(report.exit_code)}")

"""Terminal rendering of a Report with rich: the diagnosis first, one line per check, then the
problems expanded in diagnosis order (each root cause, then the failures it explains)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from diffcheck.engine.diagnosis import Diagnosis
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status

__all__ = ["render_report", "footer", "LogProgress", "STYLES"]

STYLES = {Status.PASS: "green", Status.QUALITY: "cyan", Status.WARN: "yellow", Status.FAIL: "bold red",
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


def _details(r: Result, roots: list[str]) -> str:
    style = STYLES[r.status]
    lines = [f"[{style}]{r.status.value}[/] [bold]{escape(r.id)}[/] {escape(r.summary)}"]
    if roots:
        lines.append(f"  follows from: {', '.join(roots)} (see the diagnosis above)")
    lines += [f"    {escape(line)}" for line in r.evidence]
    if r.causes:
        lines.append("  Likely causes:")
        lines += [f"    {i}. {escape(c)}" for i, c in enumerate(r.causes, 1)]
    if r.figures:
        lines.append("  Figures: " + ", ".join(escape(f) for f in r.figures))
    if r.hint:
        lines.append(f"  [dim]{escape(r.hint)}[/]")
    return "\n".join(lines)


def _diagnosis(d: Diagnosis, console: Console) -> None:
    style = "bold red" if d.kind in ("root_cause", "samples_only") else "bold"
    for i, line in enumerate(d.lines()):
        text = escape(line)
        console.print(f"[{style}]{text}[/]" if i == 0 else text, soft_wrap=True, highlight=False)


def render_report(report: Report, console: Console) -> None:
    """Line 1 the diagnosis's headline; then the run, the table, the problems, the counts."""
    d = report.diagnosis()
    _diagnosis(d, console)
    p = report.pipeline
    console.print(f"\n[bold]diffcheck[/]: {escape(str(p.get('name', 'pipeline')))}  T={p.get('T')}  "
                  f"device={report.device}  seed={report.seed}", soft_wrap=True, highlight=False)
    console.print(_table(report))
    by_id = {r.id: r for r in report.results}
    for check_id in d.order:
        roots = [c.id for c in d.causes if check_id in c.explains]
        console.print()
        console.print(_details(by_id[check_id], roots), soft_wrap=True, highlight=False)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in report.counts().items() if n)
    console.print(f"\n{counts} in {report.duration_s:.1f}s; exit code {int(report.exit_code)}")


def footer(report: Report, report_dir: Path) -> str:
    """``report: DIR/report.json, DIR/report.html; figures (N): a.png, b.png`` (names in the report dir)."""
    names = list(dict.fromkeys(Path(f).name for r in report.results for f in r.figures))
    figures = f"; figures ({len(names)}): {', '.join(names)}" if names else "; no figures"
    return f"report: {report_dir / 'report.json'}, {report_dir / 'report.html'}{figures}"


class LogProgress:
    """Progress as plain lines, for a log (CI) where no live bar shows: one line per check started
    (``diffcheck: [3/32] PAR002``), and a long fixture's status (sampling) at most every ``every_s``."""

    def __init__(self, console: Console, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.every_s, self.clock = console, every_s, clock
        self.started = self.last = clock()

    def check(self, check_id: str, i: int, n: int) -> None:
        """Check ``i`` (0-based) of ``n`` starts."""
        self.started = self.last = self.clock()
        self._print(f"diffcheck: [{i + 1}/{n}] {check_id}")

    def status(self, text: str) -> None:
        now = self.clock()
        if now - self.last >= self.every_s:
            self.last = now
            self._print(f"diffcheck:   {text} ({now - self.started:.0f} s)")

    def _print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

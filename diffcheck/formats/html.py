"""The HTML report: the table of checks with each check's figures next to its verdict.

One self-contained file (inline CSS, no scripts) written beside report.json; figures are linked
relative to it, so the report directory can be kept as a CI artifact and opened anywhere.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status
from diffcheck.text import plain

__all__ = ["write_html", "html_text"]

_COLOURS = {Status.PASS: "#1a7f37", Status.QUALITY: "#0969da", Status.WARN: "#9a6700", Status.FAIL: "#cf222e",
            Status.SKIP: "#6e7781", Status.ERROR: "#8250df"}
_ORDER = {Status.ERROR: 0, Status.FAIL: 1, Status.WARN: 2, Status.QUALITY: 3, Status.PASS: 4, Status.SKIP: 5}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#1f2328;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin:1.6em 0 .4em}
table{border-collapse:collapse;width:100%} td,th{padding:.35em .6em;border-bottom:1px solid #d0d7de;
text-align:left;vertical-align:top} th{background:#f6f8fa}
.badge{display:inline-block;min-width:3.6em;text-align:center;color:#fff;border-radius:4px;padding:0 .4em;
font-weight:600;font-size:.85em}
.meta{color:#59636e} pre{white-space:pre-wrap;background:#f6f8fa;padding:.7em;border-radius:6px;font-size:.9em}
section{border-top:1px solid #d0d7de;margin-top:1.2em} img{max-width:100%;border:1px solid #d0d7de;margin:.4em 0}
a{color:#0969da;text-decoration:none}
"""


def _text(value: object) -> str:
    """``value`` as HTML text: escaped, without terminal control codes."""
    return html.escape(plain(value))


def _badge(status: Status) -> str:
    return f'<span class="badge" style="background:{_COLOURS[status]}">{status.value}</span>'


def _row(r: Result) -> str:
    return (f"<tr><td>{_badge(r.status)}</td><td><a href=\"#{r.id}\">{r.id}</a></td>"
            f"<td>{_text(r.title)}</td><td>{_text(r.summary)}</td>"
            f"<td>{r.duration_s:.1f} s</td></tr>")


def _section(r: Result, outdir: Path) -> str:
    parts = [f'<section id="{_text(r.id)}"><h2>{_badge(r.status)} {_text(r.id)} {_text(r.title)}</h2>']
    parts.append(f"<pre>{_text(r.message())}</pre>")
    for fig in r.figures:
        rel = os.path.relpath(Path(fig).resolve(), outdir.resolve())
        parts.append(f'<a href="{html.escape(rel)}"><img src="{html.escape(rel)}" alt="{r.id} figure"></a>')
    parts.append("</section>")
    return "\n".join(parts)


def write_html(report: Report, path: str | os.PathLike) -> Path:
    """Write ``report`` as HTML to ``path`` (atomically); figure links are relative to its folder."""
    from diffcheck.formats.outputs import atomic_write

    return atomic_write(path, html_text(report, Path(path).parent))


def _incomplete(report: Report) -> list[str]:
    if not report.incomplete:
        return []
    missing = ", ".join(report.not_run) or "none"
    return [f'<p class="meta"><strong>incomplete: the run was interrupted</strong> after {len(report.results)} '
            f"checks; not run: {_text(missing)}</p>"]


def html_text(report: Report, outdir: Path) -> str:
    """``report`` as one HTML document; figure links are relative to ``outdir``."""
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    pipe = ", ".join(f"{k} {v}" for k, v in report.pipeline.items() if isinstance(v, (str, int, float)))
    data = f"data {report.data['source']} ({report.data['spectra']} spectra)" if report.data else "no data"
    ordered = _in_diagnosis_order(report)
    body = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>diffcheck report: {_text(report.pipeline.get('name', 'pipeline'))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>diffcheck report {_badge(_overall(report))}</h1>",
        *_diagnosis(report),
        f'<p class="meta">exit code {int(report.exit_code)} &middot; {_text(counts)} &middot; '
        f"device {_text(report.device)} &middot; seed {report.seed} &middot; {report.duration_s:.1f} s</p>",
        *_incomplete(report),
        f'<p class="meta">{_text(pipe)}<br>{_text(data)}</p>',
        "<table><tr><th>status</th><th>check</th><th>title</th><th>result</th><th>time</th></tr>",
        *(_row(r) for r in ordered), "</table>",
        *(_section(r, outdir) for r in ordered if r.status is not Status.SKIP or r.summary),
        "</body></html>",
    ]
    return "\n".join(body) + "\n"


def _overall(report: Report) -> Status:
    statuses = {r.status for r in report.results}
    for s in (Status.ERROR, Status.FAIL, Status.WARN, Status.QUALITY):
        if s in statuses:
            return s
    return Status.PASS


def _in_diagnosis_order(report: Report) -> list[Result]:
    """The flagged results in diagnosis order (each root cause, then what it explains), then the rest."""
    rank = {cid: i for i, cid in enumerate(report.diagnosis().order)}
    return sorted(report.results, key=lambda r: (rank.get(r.id, len(rank)), _ORDER[r.status], r.id))


def _diagnosis(report: Report) -> list[str]:
    """The diagnosis at the top: its headline, each root cause with its knock-ons and its next step."""
    from diffcheck.engine.diagnosis import compress_ids

    d = report.diagnosis()
    parts = [f'<section id="diagnosis"><h2>Diagnosis</h2><p><strong>{_text(d.headline)}</strong></p>']
    if d.causes:
        parts.append("<ol>")
        for c in d.causes:
            explains = _text(compress_ids(c.explains))
            parts.append(f"<li>{_badge(c.status)} <strong>{_text(c.id)}</strong> {_text(c.summary)}"
                         + (f"<br>explains {explains}" if explains else "")
                         + (f"<br>next step: {_text(c.next_step)}" if c.next_step else "") + "</li>")
        parts.append("</ol>")
    if d.candidates:
        parts.append("<p>candidate causes, most likely first:</p><ol>"
                     + "".join(f"<li>{_text(t)}</li>" for t in d.candidates) + "</ol>")
    if d.errored:
        parts.append(f"<p>errored (a bug in the check or the adapter, not a verdict): {_text(', '.join(d.errored))}</p>")
    return parts + ["</section>"]

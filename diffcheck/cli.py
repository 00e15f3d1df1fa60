"""The ``diffcheck`` command line: parses options, calls the Python API, renders the report.

Exit codes (:class:`diffcheck.ExitCode`): 0 all passed, 1 a check failed, 2 usage or input
error, 3 a check errored.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import ExitCode, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measured pass/fail diagnostics for diffusion pipelines.")


def _split(values: Optional[List[str]]) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v.strip()]


def _fail_input(console: Console, exc: InputError) -> None:
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(ExitCode.USAGE_ERROR))


@app.command()
def run(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file (diffcheck's format, or any with --pipeline)."),
    data: Optional[Path] = typer.Option(None, "--data", help="HDF5 spectra file to probe with (held-out split)."),
    dataset: str = typer.Option("flux", "--dataset", help="Name of the flux dataset in --data."),
    pipeline: Optional[str] = typer.Option(None, "--pipeline", help="file.py:function(checkpoint) returning a Pipeline."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda[:N]."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw in the run."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Check IDs or families to run (FWD, PAR001)."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Check IDs or families to skip."),
    threshold: Optional[List[str]] = typer.Option(None, "--threshold", help="Override a threshold: ID.name=value."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the JSON report here."),
    report_dir: Path = typer.Option(Path("diffcheck-report"), "--report-dir", help="Where report.json and figures go."),
) -> None:
    """Run the checks against CHECKPOINT and print a pass/fail report."""
    from . import api

    out, err = Console(), Console(stderr=True)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("loading", total=None)

            def progress(check_id: str, i: int, n: int) -> None:
                bar.update(task, description=f"running {check_id}", completed=i, total=n)

            report = api.run_path(checkpoint, data=data, dataset=dataset, pipeline=pipeline, device=device,
                                  seed=seed, select=_split(select), ignore=_split(ignore),
                                  threshold=_split(threshold), report_dir=report_dir, progress=progress)
    except InputError as exc:
        _fail_input(err, exc)
    from .render import render_report

    render_report(report, out)
    report.write_json(report_dir / "report.json")
    if json_path is not None:
        report.write_json(json_path)
    out.print(f"[dim]report: {report_dir / 'report.json'}[/]")
    raise typer.Exit(int(report.exit_code))


@app.command("list")
def list_checks(
    select: Optional[List[str]] = typer.Option(None, "--select", help="Only these IDs or families."),
) -> None:
    """List the registered checks with their thresholds."""
    from rich.table import Table

    from .registry import load_registry, select_checks

    out, err = Console(), Console(stderr=True)
    registry = load_registry()
    try:
        checks, _ = select_checks(registry.checks, _split(select))
    except InputError as exc:
        _fail_input(err, exc)
    table = Table("check", "title", "requires", "thresholds", box=None, header_style="bold")
    for c in checks:
        th = ", ".join(f"{k}={v:g}" for k, v in c.thresholds.items())
        table.add_row(c.id, c.title(), ", ".join(sorted(c.requires)), th)
    out.print(table)
    for name, msg in registry.broken:
        err.print(f"[bold magenta]plugin {name!r} failed to load:[/] {msg}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)

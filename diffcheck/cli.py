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


_CKPT_HELP = "Checkpoint file (diffcheck's format, or any with --pipeline)."


def _execute(checkpoint: Optional[Path], *, preflight: bool, trust_checkpoint: bool,
             json_path: Optional[Path], config: Optional[Path],
             select: Optional[List[str]], ignore: Optional[List[str]], threshold: Optional[List[str]],
             **flags) -> None:
    """Run with ``[tool.diffcheck]`` from pyproject.toml overridden by the flags (None = not given)."""
    from .config import load_config
    from .gate import run_gate
    from .loading import trusted_checkpoints
    from .runner import parse_threshold_overrides

    out, err = Console(), Console(stderr=True)
    try:
        options = load_config(config).with_flags(select=_split(select), ignore=_split(ignore),
                                                 threshold=parse_threshold_overrides(_split(threshold)), **flags)
        with trusted_checkpoints(trust_checkpoint), Progress(
                TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err, transient=True,
                disable=not err.is_terminal) as bar:
            task = bar.add_task("loading", total=None)

            current = ["loading"]

            def progress(check_id: str, i: int, n: int) -> None:
                current[0] = f"running {check_id}"
                bar.update(task, description=current[0], completed=i, total=n)

            def status(text: str, done: float, total: float) -> None:
                bar.update(task, description=f"{current[0]}: {text}")

            report = run_gate(checkpoint, options, progress=progress, preflight=preflight, status=status)
    except InputError as exc:
        _fail_input(err, exc)
    from .render import render_report

    render_report(report, out)
    _write_outputs(report, out, options, json_path)
    raise typer.Exit(int(report.exit_code))


def _write_outputs(report, out: Console, options, json_path: Optional[Path]) -> None:
    """The baseline lines, report.json (and --json), the JUnit file."""
    if report.baseline is not None:
        out.print("\n".join(escape(line) for line in report.baseline.lines()), highlight=False, soft_wrap=True)
    report.write_json(options.report_dir / "report.json")
    from .html import write_html

    write_html(report, options.report_dir / "report.html")
    if json_path is not None:
        report.write_json(json_path)
    if options.junit is not None:
        from .junit import write_junit

        write_junit(report, options.junit)
        out.print(f"[dim]junit: {options.junit}[/]")
    out.print(f"[dim]report: {options.report_dir / 'report.json'}[/]")


_DATA = typer.Option(None, "--data", help="HDF5 spectra file to probe with (held-out split).")
_DATASET = typer.Option(None, "--dataset", help="Name of the flux dataset in --data.  \\[default: flux]")
_PIPELINE = typer.Option(None, "--pipeline", help="file.py:function(checkpoint) returning a Pipeline.")
_DEVICE = typer.Option(None, "--device", help="auto (CUDA when present), cpu or cuda[:N].  \\[default: auto]")
_SEED = typer.Option(None, "--seed", help="Seed of every random draw in the run.  \\[default: 0]")
_SELECT = typer.Option(None, "--select", help="Check IDs or families to run (FWD, PAR001).")
_IGNORE = typer.Option(None, "--ignore", help="Check IDs or families to skip.")
_THRESHOLD = typer.Option(None, "--threshold", help="Override a threshold: ID.name=value.")
_JSON = typer.Option(None, "--json", help="Also write the JSON report here.")
_REPORT_DIR = typer.Option(None, "--report-dir", help="Where report.json and figures go.  \\[default: diffcheck-report]")
_TRUST = typer.Option(False, "--trust-checkpoint",
                      help="Load a checkpoint that needs arbitrary unpickling (this runs code the file names).")
_CONFIG = typer.Option(None, "--config", help="pyproject.toml with \\[tool.diffcheck] (default: the nearest one).")
_JUNIT = typer.Option(None, "--junit", help="Also write JUnit XML here (one testcase per check).")
_STRICT = typer.Option(None, "--strict/--no-strict", help="A WARN fails the run (exit code 1).")
_BASELINE = typer.Option(None, "--baseline", help="Promoted checkpoint: fail if a quality figure regressed against it.")
_RTOL = typer.Option(None, "--baseline-rtol", help="Allowed relative worsening of a quality figure.  \\[default: 0.1]")
_ATOL = typer.Option(None, "--baseline-atol", help="Allowed absolute worsening of a quality figure.  \\[default: 0]")
_MIN_SAMPLES = typer.Option(None, "--min-samples", min=2, help="DIST: samples per batch; a certain failure stops "
                            "after the first batch.  \\[default: 16]")
_MAX_SAMPLES = typer.Option(None, "--max-samples", min=2, help="DIST: most samples drawn.  \\[default: 32]")


@app.command()
def run(
    checkpoint: Path = typer.Argument(..., help=_CKPT_HELP),
    data: Optional[Path] = _DATA, dataset: str = _DATASET, pipeline: Optional[str] = _PIPELINE,
    device: str = _DEVICE, seed: int = _SEED, select: Optional[List[str]] = _SELECT,
    ignore: Optional[List[str]] = _IGNORE, threshold: Optional[List[str]] = _THRESHOLD,
    json_path: Optional[Path] = _JSON, report_dir: Optional[Path] = _REPORT_DIR,
    trust_checkpoint: bool = _TRUST,
    config: Optional[Path] = _CONFIG, junit: Optional[Path] = _JUNIT, strict: Optional[bool] = _STRICT,
    baseline: Optional[Path] = _BASELINE, baseline_rtol: Optional[float] = _RTOL,
    baseline_atol: Optional[float] = _ATOL,
    min_samples: Optional[int] = _MIN_SAMPLES, max_samples: Optional[int] = _MAX_SAMPLES,
) -> None:
    """Run the checks against CHECKPOINT and print a pass/fail report (options also from \\[tool.diffcheck])."""
    _execute(checkpoint, preflight=False, trust_checkpoint=trust_checkpoint,
             data=data, dataset=dataset, pipeline=pipeline, device=device,
             seed=seed, select=select, ignore=ignore, threshold=threshold, json_path=json_path,
             report_dir=report_dir, config=config, junit=junit, strict=strict, baseline=baseline,
             rtol=baseline_rtol, atol=baseline_atol, min_samples=min_samples, max_samples=max_samples)


@app.command()
def preflight(
    checkpoint: Optional[Path] = typer.Argument(None, help=_CKPT_HELP + " Optional with --pipeline."),
    data: Optional[Path] = _DATA, dataset: str = _DATASET, pipeline: Optional[str] = _PIPELINE,
    device: str = _DEVICE, seed: int = _SEED, select: Optional[List[str]] = _SELECT,
    ignore: Optional[List[str]] = _IGNORE, threshold: Optional[List[str]] = _THRESHOLD,
    json_path: Optional[Path] = _JSON, report_dir: Optional[Path] = _REPORT_DIR,
    trust_checkpoint: bool = _TRUST,
    config: Optional[Path] = _CONFIG, junit: Optional[Path] = _JUNIT, strict: Optional[bool] = _STRICT,
) -> None:
    """Check the pipeline's code before training: every check that needs no trained network."""
    _execute(checkpoint, preflight=True, trust_checkpoint=trust_checkpoint,
             data=data, dataset=dataset, pipeline=pipeline, device=device,
             seed=seed, select=select, ignore=ignore, threshold=threshold, json_path=json_path,
             report_dir=report_dir, config=config, junit=junit, strict=strict)


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
        err.print(f"[bold magenta]plugin {name!r} failed to load:[/] {escape(msg)}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)

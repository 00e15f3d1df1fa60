"""The ``diffcheck`` command line: parses options, calls the Python API, renders the report.

Exit codes (:class:`diffcheck.ExitCode`): 0 all passed, 1 a check failed, 2 usage or input
error, 3 a check errored.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from diffcheck.errors import ExitCode, InputError
from diffcheck.text import plain


def _click_errors() -> tuple[type[Exception], ...]:
    """The usage-error classes of the click typer runs on (vendored in new typer, click in old)."""
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name).ClickException)
        except ImportError:
            continue
    return tuple(found)


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad value, missing argument) as one stderr line, exit 2."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _click_errors() as exc:
            if not standalone_mode:
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `diffcheck`: the help text
                exc.show()
                sys.exit(int(ExitCode.USAGE_ERROR))
            ctx = getattr(exc, "ctx", None)
            where = " ".join(["diffcheck", *ctx.command_path.split()[1:]]) if ctx is not None else "diffcheck"
            where = f" (see {where} --help)"
            Console(stderr=True).print(f"[bold red]error:[/] {escape(plain(exc.format_message()))}{where}",
                                       highlight=False, soft_wrap=True)
            sys.exit(int(ExitCode.USAGE_ERROR))
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measured pass/fail diagnostics for diffusion pipelines.")


def _split(values: Optional[List[str]]) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v.strip()]


def _fail_input(console: Console, exc: InputError) -> None:
    console.print(f"[bold red]error:[/] {escape(plain(str(exc)))}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(ExitCode.USAGE_ERROR))


def _fail_interrupted(console: Console) -> None:
    console.print("[bold red]interrupted[/] before any check finished; no report written", highlight=False)
    raise typer.Exit(int(ExitCode.INTERRUPTED))


_CKPT_HELP = "Checkpoint file (diffcheck's format, or any with --pipeline)."


def _execute(checkpoint: Optional[Path], *, config: Optional[Path], select: Optional[List[str]],
             ignore: Optional[List[str]], threshold: Optional[List[str]], **flags) -> None:
    """One :func:`diffcheck.run` with ``[tool.diffcheck]`` from pyproject.toml overridden by the flags
    (None = not given), then the report on the terminal."""
    from diffcheck.api import WriteError, run
    from diffcheck.engine.config import load_config
    from diffcheck.formats.render import LogProgress
    from diffcheck.engine.runner import RunInterrupted, parse_threshold_overrides

    out, err = Console(), Console(stderr=True)
    try:
        options = load_config(config).with_flags(select=_split(select), ignore=_split(ignore),
                                                 threshold=parse_threshold_overrides(_split(threshold)), **flags)
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err,
                      transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("loading", total=None)
            current = ["loading"]
            log = None if err.is_terminal else LogProgress(err)  # a CI log: plain lines instead of the bar

            def progress(check_id: str, i: int, n: int) -> None:
                current[0] = f"running {check_id}"
                bar.update(task, description=current[0], completed=i, total=n)
                if log is not None:
                    log.check(check_id, i, n)

            def status(text: str, done: float, total: float) -> None:
                bar.update(task, description=f"{current[0]}: {text}")
                if log is not None:
                    log.status(f"{current[0]}: {text}")

            try:
                report = run(checkpoint, options, progress=progress, status=status)
            except RunInterrupted as exc:  # Ctrl-C during the checks: the finished ones were written
                report = exc.report
            except WriteError as exc:  # shown before the one-line error: nothing is lost
                _show(exc.report, out, err, options)
                raise
        _show(report, out, err, options)
    except InputError as exc:
        _fail_input(err, exc)
    except KeyboardInterrupt:
        _fail_interrupted(err)
    raise typer.Exit(int(report.exit_code))


def _show(report, out: Console, err: Console, options) -> None:
    """The report on the terminal, the baseline lines and where the files are; then the stderr lines:
    broken plugins, an interruption."""
    from diffcheck.formats.render import footer, render_report

    render_report(report, out)
    if report.baseline is not None:
        out.print("\n".join(escape(plain(line)) for line in report.baseline.lines()), highlight=False,
                  soft_wrap=True)
    if options.junit is not None:
        out.print(f"[dim]junit: {escape(str(options.junit))}[/]", highlight=False, soft_wrap=True)
    for fmt, path in options.extra_outputs.items():  # paths unwrapped: a CI log or a terminal copies them whole
        out.print(f"[dim]{fmt}: {escape(str(path))}[/]", highlight=False, soft_wrap=True)
    if options.report_dir is not None:
        out.print(f"[dim]{escape(footer(report, options.report_dir))}[/]", highlight=False, soft_wrap=True)
    for r in report.results:
        if "load_error" in r.observed:
            err.print(f"[bold magenta]warning:[/] {escape(plain(r.summary))}; --ignore {r.id} silences this",
                      highlight=False, soft_wrap=True)
    if report.incomplete:
        total = len(report.results) + len(report.not_run)
        err.print(f"[bold red]interrupted[/] after {len(report.results)} of {total} checks; partial report: "
                  f"{escape(str(options.report_dir / 'report.json'))}", highlight=False, soft_wrap=True)


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
_OUTPUT = typer.Option(None, "--output", help="Also write the report in FORMAT to PATH: FORMAT=PATH (json, html, junit).")
_STRICT = typer.Option(None, "--strict/--no-strict", help="A WARN or QUALITY finding fails the run (exit code 1).")
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
    config: Optional[Path] = _CONFIG, junit: Optional[Path] = _JUNIT, output: Optional[List[str]] = _OUTPUT,
    strict: Optional[bool] = _STRICT,
    baseline: Optional[Path] = _BASELINE, baseline_rtol: Optional[float] = _RTOL,
    baseline_atol: Optional[float] = _ATOL,
    min_samples: Optional[int] = _MIN_SAMPLES, max_samples: Optional[int] = _MAX_SAMPLES,
) -> None:
    """Run the checks against CHECKPOINT and print a pass/fail report (options also from \\[tool.diffcheck])."""
    _execute(checkpoint, mode="run", trust_checkpoint=trust_checkpoint or None,
             data=data, dataset=dataset, pipeline=pipeline, device=device,
             seed=seed, select=select, ignore=ignore, threshold=threshold, json=json_path,
             report_dir=report_dir, config=config, junit=junit, output=_split(output), strict=strict, baseline=baseline,
             rtol=baseline_rtol, atol=baseline_atol, min_samples=min_samples, max_samples=max_samples)


@app.command()
def preflight(
    checkpoint: Optional[Path] = typer.Argument(None, help=_CKPT_HELP + " Optional with --pipeline."),
    data: Optional[Path] = _DATA, dataset: str = _DATASET, pipeline: Optional[str] = _PIPELINE,
    device: str = _DEVICE, seed: int = _SEED, select: Optional[List[str]] = _SELECT,
    ignore: Optional[List[str]] = _IGNORE, threshold: Optional[List[str]] = _THRESHOLD,
    json_path: Optional[Path] = _JSON, report_dir: Optional[Path] = _REPORT_DIR,
    trust_checkpoint: bool = _TRUST,
    config: Optional[Path] = _CONFIG, junit: Optional[Path] = _JUNIT, output: Optional[List[str]] = _OUTPUT,
    strict: Optional[bool] = _STRICT,
) -> None:
    """Check the pipeline's code before training: every check that needs no trained network."""
    _execute(checkpoint, mode="preflight", trust_checkpoint=trust_checkpoint or None,
             data=data, dataset=dataset, pipeline=pipeline, device=device,
             seed=seed, select=select, ignore=ignore, threshold=threshold, json=json_path,
             report_dir=report_dir, config=config, junit=junit, output=_split(output), strict=strict)


@app.command("list")
def list_checks(
    select: Optional[List[str]] = typer.Option(None, "--select", help="Only these IDs or families."),
) -> None:
    """List the registered checks with their thresholds."""
    from rich.table import Table

    from diffcheck.engine.registry import load_registry, select_checks

    out, err = Console(), Console(stderr=True)
    registry = load_registry()
    try:
        checks, _ = select_checks(registry.checks, _split(select), broken=registry.broken)
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
    """Console-script entry point; Ctrl-C outside a run (while starting up) is one line, exit 130."""
    try:
        app()
    except KeyboardInterrupt:
        _interrupted_exit()
    except RuntimeError as exc:  # click's Abort: Ctrl-C while the options were parsed
        if type(exc).__name__ != "Abort":
            raise
        _interrupted_exit()


def _interrupted_exit() -> None:
    print("interrupted before the run started; nothing written", file=sys.stderr)
    sys.exit(int(ExitCode.INTERRUPTED))

"""diffcheck: measured pass/fail diagnostics for diffusion pipelines.

    >>> import diffcheck
    >>> report = diffcheck.run("fixtures/checkpoints/healthy_tiny.pt",
    ...                        diffcheck.Options(select=("FWD",), device="cpu", report_dir=None))
    >>> report.exit_code
    <ExitCode.OK: 0>

:func:`run` takes a checkpoint path or a :class:`Pipeline` and one :class:`Options`; it is what
``diffcheck run``, ``pytest --diffcheck`` and :mod:`diffcheck.testing` call. :func:`run_checks`
is the engine under it (checks on a pipeline, no config, no gate, no files but figures).
"""

from __future__ import annotations

__version__ = "0.1.0"

from diffcheck.api import run
from diffcheck.engine.check import Check
from diffcheck.engine.config import Options
from diffcheck.engine.context import fixture
from diffcheck.pipelines.data import Dataset, load_dataset
from diffcheck.errors import CheckDefinitionError, ExitCode, InputError, Skip
from diffcheck.pipelines.functions import from_functions
from diffcheck.pipelines.loading import load_pipeline, read_torch_file, resolve_device
from diffcheck.pipelines.normalise import Normaliser
from diffcheck.pipelines.pipeline import Pipeline, Step
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result, Status, Verdict
from diffcheck.engine.runner import run_checks
from diffcheck.pipelines.schedule import Schedule, make_schedule

__all__ = [
    "Check", "CheckDefinitionError", "Dataset", "ExitCode", "InputError", "Normaliser", "Options", "Pipeline",
    "Report", "Result", "Schedule", "Skip", "Status", "Step", "Verdict", "__version__", "fixture", "from_functions",
    "load_dataset", "load_pipeline", "make_schedule", "read_torch_file", "resolve_device", "run", "run_checks",
]

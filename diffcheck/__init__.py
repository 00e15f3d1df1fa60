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

from . import consistency as _consistency  # noqa: F401  (registers the PAR/SMP fixtures)
from . import learned as _learned  # noqa: F401  (registers the TEMB/LOSS/WGT fixtures)
from . import toy as _toy  # noqa: F401  (registers the TOY fixture)
from . import probes as _probes  # noqa: F401  (registers the built-in fixtures)
from . import samples as _samples  # noqa: F401  (registers the DIST fixtures)
from .api import run
from .check import Check
from .config import Options
from .context import fixture
from .data import Dataset, load_dataset
from .errors import CheckDefinitionError, ExitCode, InputError, Skip
from .functions import from_functions
from .loading import load_pipeline, resolve_device
from .normalise import Normaliser
from .pipeline import Pipeline
from .report import Report
from .results import Result, Status, Verdict
from .runner import run_checks
from .schedule import Schedule, make_schedule

__all__ = [
    "Check", "CheckDefinitionError", "Dataset", "ExitCode", "InputError", "Normaliser", "Options", "Pipeline",
    "Report", "Result", "Schedule", "Skip", "Status", "Verdict", "__version__", "fixture", "from_functions",
    "load_dataset", "load_pipeline", "make_schedule", "resolve_device", "run", "run_checks",
]

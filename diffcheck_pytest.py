"""diffcheck's pytest plugin, as registered under the ``pytest11`` entry point: options and fixtures.

This module is loaded by every pytest session in an environment where diffcheck is installed,
so it imports nothing but pytest: ``import diffcheck`` (torch, the checks) happens only when a
test asks for a diffcheck fixture or the session is run with ``--diffcheck``. The work itself
lives in :mod:`diffcheck.pytest_plugin`.

    pytest --diffcheck --diffcheck-checkpoint model.pt --diffcheck-data heldout.h5   # checks as test items
    pytest --diffcheck-checkpoint model.pt tests/                                    # your tests get the fixtures
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_addoption", "pytest_configure", "diffcheck_pipeline", "diffcheck_data"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("diffcheck", "diffcheck: measured diagnostics for diffusion pipelines")
    group.addoption("--diffcheck", action="store_true", default=False,
                    help="Collect one test item per diffcheck check (see --diffcheck-select).")
    group.addoption("--diffcheck-checkpoint", metavar="PATH", default=None,
                    help="Checkpoint for the diffcheck_pipeline fixture and the --diffcheck items.")
    group.addoption("--diffcheck-pipeline", metavar="FILE.PY:FUNCTION", default=None,
                    help="Pipeline factory, as diffcheck run --pipeline (default: [tool.diffcheck] pipeline).")
    group.addoption("--diffcheck-data", metavar="H5", default=None,
                    help="Spectra file for probes and the diffcheck_data fixture (default: [tool.diffcheck] data).")
    group.addoption("--diffcheck-select", metavar="IDS", default=None,
                    help="Comma-separated check IDs or families to collect (default: [tool.diffcheck] select, or all).")
    group.addoption("--diffcheck-device", metavar="DEVICE", default=None, help="auto, cpu or cuda[:N].")
    group.addoption("--diffcheck-seed", metavar="N", type=int, default=None, help="Seed of the run.")
    group.addoption("--diffcheck-strict", action="store_true", default=None, help="A WARN fails its item.")
    group.addoption("--diffcheck-trust-checkpoint", action="store_true", default=False,
                    help="Load a checkpoint that needs arbitrary unpickling (this runs code the file names).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "diffcheck: a diffcheck check collected by --diffcheck")
    if config.getoption("diffcheck"):
        from diffcheck.pytest_plugin import DiffcheckItems

        config.pluginmanager.register(DiffcheckItems(config), "diffcheck-items")


@pytest.fixture(scope="session")
def diffcheck_pipeline(pytestconfig: pytest.Config):
    """The pipeline named by --diffcheck-checkpoint / --diffcheck-pipeline (or [tool.diffcheck])."""
    from diffcheck.pytest_plugin import session_state

    return session_state(pytestconfig).pipeline()


@pytest.fixture(scope="session")
def diffcheck_data(pytestconfig: pytest.Config):
    """The Dataset of --diffcheck-data (or [tool.diffcheck] data), or None when none is named."""
    from diffcheck.pytest_plugin import session_state

    return session_state(pytestconfig).data()

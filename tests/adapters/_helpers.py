"""Shared by the adapter tests: the library fixtures, the extras they need, the CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffcheck.cli import app
from tests.conftest import FIXTURES, ROOT

LIBRARIES = FIXTURES / "libraries"
TRAINER1D_CKPT = LIBRARIES / "ddp_trainer1d.pt"
TRAINER1D_EXAMPLE = ROOT / "examples" / "trainer1d_pipeline.py"
HOMEMADE_EXAMPLE = ROOT / "examples" / "homemade_pipeline.py"

needs_ddp = pytest.mark.skipif(importlib.util.find_spec("denoising_diffusion_pytorch") is None,
                               reason="needs pip install 'diffcheck[ddp]'")
needs_diffusers = pytest.mark.skipif(importlib.util.find_spec("diffusers") is None,
                                     reason="needs pip install 'diffcheck[diffusers]'")


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(out: str) -> str:
    """The error line of a usage error (exit 2): it must stand alone, on one line."""
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


def diffusers_variant(tmp_path, folder: str, *, eta: float | None = None, **scheduler) -> Path:
    """A copy of a library folder with scheduler config keys (and the sidecar's eta) replaced."""
    import json
    import shutil

    out = tmp_path / folder
    shutil.copytree(LIBRARIES / folder, out)
    for path, changes in ((out / "scheduler" / "scheduler_config.json", scheduler),
                          (out / "diffcheck.json", {} if eta is None else {"eta": eta})):
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return out

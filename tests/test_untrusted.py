"""No route runs code from a checkpoint without --trust-checkpoint, and every route honours it (issue 16).

Each malicious file, once unpickled, opens a marker file (its ``__reduce__`` returns
``(open, (marker, "w"))``): the marker's absence proves that nothing of the file ran. The routes:
torch.save's zip and legacy formats, a plain pickle, diffcheck's own format, a diffusers folder
with a pickled .bin, Trainer1D through examples/trainer1d_pipeline.py, the home-made pipeline of
examples/homemade_pipeline.py, --baseline, preflight, the Python API and the pytest plugin.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from diffcheck.cli import app
from diffcheck.errors import InputError
from diffcheck.pipelines.loading import load_pipeline, read_torch_file, trusted_checkpoints
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from tests.adapters._helpers import HOMEMADE_EXAMPLE, LIBRARIES, TRAINER1D_EXAMPLE, needs_ddp, needs_diffusers
from tests.conftest import HEALTHY_CKPT, TINY_DATA

pytest_plugins = ["pytester"]

CPU = torch.device("cpu")
TRUST_ADVICE = "if you trust where the file comes from, pass --trust-checkpoint"


class Opener:
    """Unpickled, it opens ``marker`` for writing: the file appears only if the pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def bump(marker: str) -> int:
    """Appends a line to ``marker`` each time a pickle that names it is loaded."""
    with open(marker, "a") as f:
        f.write("loaded\n")
    return 0


class Counter(Opener):
    """Unpickled, it appends one line to ``marker``: the line count is the number of loads."""

    def __reduce__(self):
        return (bump, (self.marker,))


def _zip(obj, path: Path) -> None:
    torch.save(obj, path)


def _legacy(obj, path: Path) -> None:
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def _plain(obj, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


WRITERS = {"zip": _zip, "legacy": _legacy, "pickle": _plain}


def _evil(tmp_path: Path, writer: str = "zip", payload=None) -> tuple[Path, Path]:
    """A malicious file (``payload`` plus the opener) and the marker it would create."""
    marker = tmp_path / "MARKER"
    path = tmp_path / f"evil_{writer}.pt"
    WRITERS[writer]({**(payload or {"weights": torch.zeros(3)}), "x": Opener(marker)}, path)
    return path, marker


def _own_format(tmp_path: Path, extra) -> Path:
    """The healthy reference checkpoint with one more entry that needs a full load."""
    ckpt = torch.load(HEALTHY_CKPT, map_location="cpu", weights_only=True)
    path = tmp_path / "own.pt"
    torch.save({**ckpt, "extra": extra}, path)
    return path


def _cli(tmp_path: Path, *args):
    result = CliRunner().invoke(app, [str(a) for a in (*args, "--device", "cpu", "--report-dir", tmp_path / "rep")])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _error_line(result, exit_code: int = 2) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == exit_code, result.output
    assert len(lines) == 1 and "\x1b" not in result.stderr, result.stderr
    return lines[0]


def _assert_refused(result, marker: Path) -> str:
    line = _error_line(result)
    assert not marker.exists(), "the malicious file's code ran without --trust-checkpoint"
    assert line.endswith(TRUST_ADVICE) and "refusing to load" in line, line
    return line


# -- torch.save's formats and plain pickles, on the command line ------------------------------------
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_run_refuses_a_malicious_file_and_names_what_it_imports(tmp_path, writer):
    ckpt, marker = _evil(tmp_path, writer)
    line = _assert_refused(_cli(tmp_path, "run", ckpt, "--select", "FWD001"), marker)
    assert "io.open" in line, line
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_trust_checkpoint_loads_it_then_judges_its_content(tmp_path, writer):
    ckpt, marker = _evil(tmp_path, writer)
    line = _error_line(_cli(tmp_path, "run", ckpt, "--select", "FWD001", "--trust-checkpoint"))
    assert marker.exists(), "--trust-checkpoint was not honoured"
    assert "unknown checkpoint format" in line and "a dict with keys [weights, x]" in line, line


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_preflight_refuses_it_too(tmp_path, writer):
    ckpt, marker = _evil(tmp_path, writer)
    _assert_refused(_cli(tmp_path, "preflight", ckpt, "--select", "FWD001"), marker)


def test_random_bytes_are_not_a_checkpoint_and_get_no_trust_advice(tmp_path):
    ckpt = tmp_path / "noise.pt"
    ckpt.write_bytes(bytes(range(7, 250)) * 8)
    for trust in ((), ("--trust-checkpoint",)):
        line = _error_line(_cli(tmp_path, "run", ckpt, "--select", "FWD001", *trust))
        assert "not a PyTorch checkpoint" in line and "trust" not in line, line


def test_a_safe_plain_pickle_is_read_without_trust(tmp_path):
    path = tmp_path / "numbers.pkl"
    _plain({"a": 1, "b": [2.0, "c"]}, path)
    assert read_torch_file(path) == {"a": 1, "b": [2.0, "c"]}


# -- diffcheck's own format: trusted, it loads once and runs --------------------------------------------
def test_own_format_needing_unpickling_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    ckpt = _own_format(tmp_path, Opener(marker))
    _assert_refused(_cli(tmp_path, "run", ckpt, "--select", "FWD001"), marker)
    with pytest.raises(InputError, match="pass --trust-checkpoint"):
        ReferencePipeline.from_checkpoint(ckpt)
    assert not marker.exists()


def test_own_format_with_trust_checkpoint_loads_once_and_runs(tmp_path):
    marker = tmp_path / "MARKER"
    ckpt = _own_format(tmp_path, Counter(marker))
    result = _cli(tmp_path, "run", ckpt, "--select", "FWD001", "--trust-checkpoint")
    assert result.exit_code == 0, result.output
    assert marker.read_text().count("loaded") == 1, "the trusted file was not loaded exactly once"


def test_own_format_trust_through_the_python_api(tmp_path):
    marker = tmp_path / "MARKER"
    ckpt = _own_format(tmp_path, Counter(marker))
    with trusted_checkpoints():
        assert isinstance(load_pipeline(ckpt, device=CPU), ReferencePipeline)
    assert isinstance(ReferencePipeline.from_checkpoint(ckpt, trust=True), ReferencePipeline)
    assert marker.read_text().count("loaded") == 2
    with pytest.raises(InputError, match="pass --trust-checkpoint"):
        load_pipeline(ckpt, device=CPU)
    assert marker.read_text().count("loaded") == 2


# -- a diffusers folder whose unet holds a pickled .bin ------------------------------------------------
def _diffusers_with_bin(tmp_path: Path, extra=None) -> Path:
    from safetensors.torch import load_file

    folder = tmp_path / "diffusers_bin"
    shutil.copytree(LIBRARIES / "diffusers_ddpm", folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    weights.unlink()
    torch.save({**state, **({"x": extra} if extra is not None else {})}, weights.with_suffix(".bin"))
    return folder


@needs_diffusers
def test_a_diffusers_bin_is_refused_without_trust_and_loaded_with_it(tmp_path):
    marker = tmp_path / "MARKER"
    folder = _diffusers_with_bin(tmp_path, Opener(marker))
    line = _assert_refused(_cli(tmp_path, "run", folder, "--select", "FWD001"), marker)
    assert "diffusion_pytorch_model.bin" in line, line
    line = _error_line(_cli(tmp_path, "run", folder, "--select", "FWD001", "--trust-checkpoint"))
    assert marker.exists(), "--trust-checkpoint was not honoured for the .bin"
    assert "is not a state_dict of tensors" in line, line


@needs_diffusers
def test_a_safe_diffusers_bin_loads_the_same_weights_as_safetensors(tmp_path):
    folder = _diffusers_with_bin(tmp_path)
    from_bin = load_pipeline(folder, device=CPU)
    reference = load_pipeline(LIBRARIES / "diffusers_ddpm", device=CPU)
    assert from_bin.meta["load_report"] == {"missing_keys": [], "unexpected_keys": []}
    for (name, a), (_, b) in zip(from_bin.network.state_dict().items(), reference.network.state_dict().items()):
        assert torch.equal(a, b), name


# -- --pipeline files: Trainer1D and home-made -------------------------------------------------------------
@pytest.mark.parametrize(("example", "raised"), [
    pytest.param(TRAINER1D_EXAMPLE, "is not a Trainer1D checkpoint", marks=needs_ddp, id="trainer1d"),
    pytest.param(HOMEMADE_EXAMPLE, "raised KeyError", id="homemade")])
def test_pipeline_file_route_refuses_and_honours_trust(tmp_path, example, raised):
    ckpt, marker = _evil(tmp_path)
    pipeline = f"{example}:build"
    _assert_refused(_cli(tmp_path, "run", ckpt, "--pipeline", pipeline, "--select", "FWD001"), marker)
    line = _error_line(_cli(tmp_path, "run", ckpt, "--pipeline", pipeline, "--select", "FWD001", "--trust-checkpoint"))
    assert marker.exists() and raised in line, line


def test_a_factory_whose_own_torch_load_refuses_says_how_to_honour_trust(tmp_path):
    ckpt, marker = _evil(tmp_path)
    factory = tmp_path / "mine.py"
    factory.write_text("import torch\n\ndef build(ckpt):\n    return torch.load(ckpt, weights_only=True)\n")
    line = _error_line(_cli(tmp_path, "run", ckpt, "--pipeline", f"{factory}:build", "--select", "FWD001"))
    assert not marker.exists()
    assert "raised UnpicklingError" in line and "read_torch_file(checkpoint), which honours --trust-checkpoint" in line


# -- --baseline ------------------------------------------------------------------------------------------
def test_baseline_route_refuses_a_malicious_baseline(tmp_path):
    ckpt, marker = _evil(tmp_path)
    line = _assert_refused(_cli(tmp_path, "run", HEALTHY_CKPT, "--data", TINY_DATA, "--baseline", ckpt,
                                "--select", "FWD001"), marker)
    assert str(ckpt) in line
    assert not (tmp_path / "rep").exists()


def test_baseline_route_honours_trust(tmp_path):
    marker = tmp_path / "MARKER"
    baseline = _own_format(tmp_path, Counter(marker))
    result = _cli(tmp_path, "run", HEALTHY_CKPT, "--data", TINY_DATA, "--baseline", baseline, "--select", "FWD001",
                  "--trust-checkpoint")
    assert result.exit_code == 0, result.output
    assert marker.read_text().count("loaded") == 1


# -- the pytest plugin ---------------------------------------------------------------------------------
def test_the_pytest_plugin_refuses_a_malicious_checkpoint(pytester, tmp_path):
    ckpt, marker = _evil(tmp_path)
    result = pytester.runpytest("--diffcheck", "--diffcheck-checkpoint", str(ckpt), "--diffcheck-select", "FWD001",
                                "--diffcheck-device", "cpu", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*diffcheck: refusing to load {ckpt}*"])
    # pytest's own flag, not the CLI's
    assert "if you trust where the file comes from, pass --diffcheck-trust-checkpoint" in result.stdout.str()
    assert "Traceback" not in result.stdout.str()
    assert not marker.exists()


def test_the_pytest_plugin_honours_its_trust_flag(pytester, tmp_path):
    ckpt, marker = _evil(tmp_path)
    result = pytester.runpytest("--diffcheck", "--diffcheck-checkpoint", str(ckpt), "--diffcheck-select", "FWD001",
                                "--diffcheck-device", "cpu", "--diffcheck-trust-checkpoint", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)  # trusted, it loads (the marker shows the code ran) but is no known format
    assert marker.exists() and "unknown checkpoint format" in result.stdout.str()


def test_the_pytest_fixture_refuses_a_malicious_checkpoint(pytester, tmp_path):
    ckpt, marker = _evil(tmp_path, "legacy")
    pytester.makepyfile("def test_uses(diffcheck_pipeline):\n    pass\n")
    result = pytester.runpytest("--diffcheck-checkpoint", str(ckpt), "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    assert "refusing to load" in result.stdout.str() and not marker.exists()

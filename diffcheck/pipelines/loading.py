"""Turn what the user names on the command line into a Pipeline and a device.

:func:`load_pipeline` is the one entry point (the CLI, the Python API and ``[tool.diffcheck]``'s
``pipeline = "file.py:function"`` all call it): a user's ``file.py:function``, or a checkpoint
whose format is detected. Checkpoints load weights-only unless the user trusts them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from diffcheck.errors import InputError
from diffcheck.pipelines.pipeline import Pipeline
from diffcheck.pipelines.reference.checkpoint import FORMAT, load_torch_file, trusted_checkpoints, trusting
from diffcheck.text import first_line, plain

__all__ = ["resolve_device", "load_pipeline", "read_torch_file", "trusted_checkpoints"]


def resolve_device(device: str) -> torch.device:
    """``auto`` takes CUDA when present; asking for an absent CUDA is an InputError."""
    device = device.strip().lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__})")
        return torch.device(device)
    if device == "cpu":
        return torch.device("cpu")
    raise InputError(f"--device must be auto, cpu or cuda[:N], got {device!r}")


def _load_factory(spec: str):
    path_str, sep, func = spec.rpartition(":")
    if not sep or not path_str or not func:
        raise InputError(f"--pipeline {spec!r}: expected path/to/file.py:function")
    path = Path(path_str)
    if not path.is_file():
        raise InputError(f"--pipeline file not found: {path}")
    name = f"diffcheck_user_pipeline_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    factory = getattr(module, func, None)
    if not callable(factory):
        raise InputError(f"--pipeline {spec!r}: {path.name} defines no function {func!r}")
    return factory


def load_pipeline(checkpoint: str | os.PathLike | None, *, device: torch.device,
                  pipeline: str | None = None, trust_checkpoint: bool | None = None) -> Pipeline:
    """A Pipeline for ``checkpoint``, by ``file.py:function(checkpoint)`` or by its detected format.

    Detected formats: diffcheck's own checkpoint, a denoising-diffusion-pytorch Trainer1D
    checkpoint (which needs a pipeline file: the message says what to write), a whole
    GaussianDiffusion1D saved with ``torch.save`` (only with ``trust_checkpoint``) and a saved
    diffusers folder. With ``pipeline`` the checkpoint may be None (a preflight of code with fresh
    weights): the function is then called with None. ``trust_checkpoint`` None takes the value of
    :func:`trusted_checkpoints`, else False: weights-only loading.
    """
    if checkpoint is None and not pipeline:
        raise InputError("no checkpoint given; a preflight without one needs --pipeline file.py:function")
    if pipeline:
        return _from_factory(checkpoint, pipeline).to(device)
    return _detected(Path(checkpoint), trusting(trust_checkpoint)).to(device)


def _from_factory(checkpoint: str | os.PathLike | None, pipeline: str) -> Pipeline:
    if checkpoint is not None and not Path(checkpoint).exists():
        raise InputError(f"checkpoint not found: {checkpoint}")
    try:
        with _user_code(pipeline):
            result = _load_factory(pipeline)(None if checkpoint is None else str(checkpoint))
    except InputError:
        raise
    except Exception as exc:  # the user's factory: one line, not a traceback wall
        raise InputError(_factory_failure(pipeline, exc)) from None
    if not isinstance(result, Pipeline):
        raise InputError(f"--pipeline {pipeline!r} returned {type(result).__name__}, not a diffcheck.Pipeline")
    return result


@contextlib.contextmanager
def _user_code(pipeline: str) -> Iterator[None]:
    """Run the user's pipeline file and factory as its own program: ``sys.argv`` holds only the file
    (diffcheck's options are not the factory's), and a ``sys.exit`` (argparse refusing
    the arguments) is one InputError quoting what it printed, not the user's usage text. What the
    factory writes to stderr is passed on once it returns."""
    argv, captured = sys.argv, io.StringIO()
    sys.argv = [pipeline.rpartition(":")[0] or pipeline]
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except SystemExit as exc:
        said = first_line(captured.getvalue().strip().splitlines()[-1] if captured.getvalue().strip() else "", 200)
        raise InputError(f"--pipeline {pipeline!r} exited (SystemExit {exc.code}) instead of returning a Pipeline"
                         + (f"; it printed: {said}" if said else "")
                         + "; build(checkpoint) must not parse the command line or exit") from None
    finally:
        sys.argv = argv
    sys.stderr.write(captured.getvalue())


def _factory_failure(pipeline: str, exc: BaseException) -> str:
    """One line for an exception from the user's factory (its own text made plain)."""
    text = f"--pipeline {pipeline!r} raised {type(exc).__name__}: {first_line(exc, 200)}".rstrip(": ")
    if isinstance(exc, pickle.UnpicklingError):
        text += ("; a weights-only torch.load refused the checkpoint: load it with "
                 "diffcheck.read_torch_file(checkpoint), which honours --trust-checkpoint")
    return text


# -- format detection and safe loading ---------------------------------------------------------------
def read_torch_file(path: str | os.PathLike, *, trust: bool | None = None) -> Any:
    """``torch.load`` weights-only; a file that needs arbitrary unpickling is refused unless trusted.

    Unpickling runs code named in the file, so diffcheck does it only when the user says they
    trust the file (``trust``, else :func:`trusted_checkpoints`: ``--trust-checkpoint``), and
    then loads the file once, fully; every failure is a one-line InputError.
    """
    trust = trusting(trust)
    if trust:
        _importable_libraries()
    return load_torch_file(path, trust=trust)


def _importable_libraries() -> None:
    """Pickles of GaussianDiffusion1D name the library's 1D module: make it importable without torchvision."""
    from diffcheck.pipelines.adapters._imports import ddp1d

    with contextlib.suppress(InputError):
        ddp1d()


def _detected(path: Path, trust: bool) -> Pipeline:
    """The pipeline for a checkpoint file or folder in a format diffcheck knows."""
    if path.is_dir():
        from diffcheck.pipelines.adapters.diffusers import from_folder, is_diffusers_folder

        if is_diffusers_folder(path):
            return from_folder(path, trust=trust)
        raise InputError(f"{path} is a folder but not a saved diffusers pipeline (no model_index.json, nor unet/ "
                         f"and scheduler/ configs); {_pipeline_advice(path)}")
    obj = read_torch_file(path, trust=trust)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        from diffcheck.pipelines.reference.pipeline import ReferencePipeline

        return ReferencePipeline.from_payload(obj, path)
    from diffcheck.pipelines.adapters import ddp

    if ddp.is_trainer1d_checkpoint(obj):
        raise InputError(_trainer1d_advice(path, ddp.trainer1d_summary(obj)))
    if ddp.is_gaussian_diffusion_1d(obj):
        return ddp.DDPPipeline(obj.eval(), meta={"path": str(path), "weights": "as saved"})
    raise InputError(f"unknown checkpoint format in {path}: {_describe(obj)}; {_pipeline_advice(path)}")


def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return f"a bare state_dict of {len(obj)} tensors"
        return f"a dict with keys [{', '.join(sorted(plain(k) for k in obj)[:8])}]"
    return f"a {plain(type(obj).__name__)}"


def _pipeline_advice(path: Path) -> str:
    return ("diffcheck reads its own checkpoints, saved diffusers folders and (with a 10-line file) Trainer1D "
            "checkpoints; for anything else write my_pipeline.py whose build(checkpoint) returns a "
            "diffcheck.Pipeline (a complete one: examples/homemade_pipeline.py) and run: "
            f"diffcheck run {path} --pipeline my_pipeline.py:build")


def _trainer1d_advice(path: Path, s: dict[str, Any]) -> str:
    return (f"{path} is a denoising-diffusion-pytorch Trainer1D checkpoint (step {s['step']}, version "
            f"{s['version']}, T={s['T']}, trained with objective {s['objective']}, Unet1D dim {s['dim']}, "
            f"{s['channels']} input channel(s)); it stores weights but not the architecture, so copy "
            "examples/trainer1d_pipeline.py to trainer1d_pipeline.py, put your training script's Unet1D and "
            f"GaussianDiffusion1D arguments in it and run: diffcheck run {path} --pipeline "
            "trainer1d_pipeline.py:build")

"""Turn what the user names on the command line into a Pipeline and a device.

:func:`load_pipeline` is the one entry point (the CLI, the Python API and ``[tool.diffcheck]``'s
``pipeline = "file.py:function"`` all call it): a user's ``file.py:function``, or a checkpoint
whose format is detected. Checkpoints load weights-only unless the user trusts them.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import InputError
from .pipeline import Pipeline
from .reference.checkpoint import FORMAT, load_torch_file

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
    return _detected(Path(checkpoint), _trusting(trust_checkpoint)).to(device)


def _from_factory(checkpoint: str | os.PathLike | None, pipeline: str) -> Pipeline:
    if checkpoint is not None and not Path(checkpoint).exists():
        raise InputError(f"checkpoint not found: {checkpoint}")
    try:
        result = _load_factory(pipeline)(None if checkpoint is None else str(checkpoint))
    except InputError:
        raise
    except Exception as exc:  # the user's factory: one line, not a traceback wall
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(f"--pipeline {pipeline!r} raised {type(exc).__name__}: {detail}".rstrip(": ")) from None
    if not isinstance(result, Pipeline):
        raise InputError(f"--pipeline {pipeline!r} returned {type(result).__name__}, not a diffcheck.Pipeline")
    return result


# -- format detection and safe loading ---------------------------------------------------------------
_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("diffcheck_trust_checkpoint", default=False)


@contextlib.contextmanager
def trusted_checkpoints(trust: bool = True) -> Iterator[None]:
    """Within the block, checkpoints that need arbitrary unpickling load (``--trust-checkpoint``)."""
    token = _TRUST.set(trust)
    try:
        yield
    finally:
        _TRUST.reset(token)


def _trusting(trust: bool | None) -> bool:
    return _TRUST.get() if trust is None else trust


def read_torch_file(path: str | os.PathLike, *, trust: bool | None = None) -> Any:
    """``torch.load`` weights-only; a file that needs arbitrary unpickling is refused unless trusted.

    Unpickling runs code named in the file, so diffcheck does it only when the user says they
    trust the file (``--trust-checkpoint``); every other failure is a one-line InputError.
    """
    try:
        return load_torch_file(path)
    except InputError as exc:
        if not str(exc).startswith("refusing to load"):
            raise
        if not _trusting(trust):
            raise InputError(f"refusing to load {path}: a weights-only load cannot read it ({_unsafe_globals(path)}), "
                             "and a full load runs whatever code the file names; if you trust where the file comes "
                             "from, pass --trust-checkpoint") from None
    _importable_libraries()
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # a trusted file that still fails: a class that is not importable, truncation
        raise InputError(f"cannot read checkpoint {path} even with --trust-checkpoint ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None


def _unsafe_globals(path: str | os.PathLike) -> str:
    """What the file would make a full load import, e.g. "it names argparse.Namespace"."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # an old torch or an odd file: the refusal stands without the names
        return "it names Python objects beyond tensors"
    return f"it names {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}"


def _importable_libraries() -> None:
    """Pickles of GaussianDiffusion1D name the library's 1D module: make it importable without torchvision."""
    from .adapters._imports import ddp1d

    with contextlib.suppress(InputError):
        ddp1d()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else "no detail"


def _detected(path: Path, trust: bool) -> Pipeline:
    """The pipeline for a checkpoint file or folder in a format diffcheck knows."""
    if path.is_dir():
        from .adapters.diffusers import from_folder, is_diffusers_folder

        if is_diffusers_folder(path):
            return from_folder(path)
        raise InputError(f"{path} is a folder but not a saved diffusers pipeline (no model_index.json, nor unet/ "
                         f"and scheduler/ configs); {_pipeline_advice(path)}")
    obj = read_torch_file(path, trust=trust)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        from .reference.pipeline import ReferencePipeline

        return ReferencePipeline.from_checkpoint(path)
    from .adapters import ddp

    if ddp.is_trainer1d_checkpoint(obj):
        raise InputError(_trainer1d_advice(path, ddp.trainer1d_summary(obj)))
    if ddp.is_gaussian_diffusion_1d(obj):
        return ddp.DDPPipeline(obj.eval(), meta={"path": str(path), "weights": "as saved"})
    raise InputError(f"unknown checkpoint format in {path}: {_describe(obj)}; {_pipeline_advice(path)}")


def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return f"a bare state_dict of {len(obj)} tensors"
        return f"a dict with keys [{', '.join(sorted(map(str, obj))[:8])}]"
    return f"a {type(obj).__name__}"


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

"""Turn what the user names on the command line into a Pipeline and a device."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch

from .errors import InputError
from .pipeline import Pipeline

__all__ = ["resolve_device", "load_pipeline"]


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
                  pipeline: str | None = None) -> Pipeline:
    """A Pipeline for ``checkpoint``: diffcheck's own format, or ``file.py:function(checkpoint)``.

    With ``pipeline`` the checkpoint may be None (a preflight of code with fresh weights): the
    function is then called with None.
    """
    if checkpoint is None and not pipeline:
        raise InputError("no checkpoint given; a preflight without one needs --pipeline file.py:function")
    if pipeline:
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
        return result.to(device)
    from .reference.pipeline import ReferencePipeline

    return ReferencePipeline.from_checkpoint(checkpoint).to(device)

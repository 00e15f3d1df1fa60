"""The reference checkpoint format: self-describing, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of plain values and tensors::

    format="diffcheck.ddpm", format_version=1,
    model={"class": "UNet1D", "config": {...}}, diffusion={...DiffusionConfig...},
    data={"channels": C, "length": L, "normalisation": {...}, "source": str},
    state_dict, ema_state_dict (or None), ema_decay, step
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError

FORMAT = "diffcheck.ddpm"
FORMAT_VERSION = 1

__all__ = ["FORMAT", "FORMAT_VERSION", "save_checkpoint", "read_checkpoint", "load_torch_file"]


def save_checkpoint(path: str | os.PathLike, content: dict[str, Any]) -> None:
    """Write ``content`` (without the format keys) as a reference checkpoint."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **content}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def load_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a one-line InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise InputError(f"checkpoint is a directory, expected a file: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"refusing to load {p}: it needs arbitrary unpickling, which diffcheck does not do ({first[:160]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(
            f"cannot read checkpoint {p}: truncated or not a torch file ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:120] if str(exc).strip() else 'no detail'})"
        ) from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate a reference checkpoint; InputError when it is something else."""
    obj = load_torch_file(path)
    if not isinstance(obj, dict):
        raise InputError(f"unknown checkpoint format in {path}: a {type(obj).__name__}, expected a dict "
                         f"with format={FORMAT!r}; for other pipelines pass --pipeline file.py:function")
    fmt = obj.get("format")
    if fmt != FORMAT:
        keys = ", ".join(sorted(map(str, obj))[:8])
        what = "a bare state_dict" if obj and all(torch.is_tensor(v) for v in obj.values()) else f"a dict with keys [{keys}]"
        raise InputError(f"unknown checkpoint format in {path}: {what}, without format={FORMAT!r}; "
                         "for other pipelines pass --pipeline file.py:function")
    if obj.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"{path} has {FORMAT} version {obj['format_version']}; this diffcheck reads up to "
                         f"{FORMAT_VERSION}: upgrade diffcheck")
    missing = [k for k in ("model", "diffusion", "data", "state_dict") if k not in obj]
    if missing:
        raise InputError(f"checkpoint {path} lacks required keys: {', '.join(missing)}")
    return obj

"""The reference checkpoint format: self-describing, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a dict of plain values and tensors::

    format="diffcheck.ddpm", format_version=1,
    model={"class": "UNet1D", "config": {...}}, diffusion={...DiffusionConfig...},
    data={"channels": C, "length": L, "normalisation": {...}, "source": str},
    state_dict, ema_state_dict (or None), ema_decay, step
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from diffcheck.errors import InputError
from diffcheck.text import first_line, plain

FORMAT = "diffcheck.ddpm"
FORMAT_VERSION = 1

__all__ = ["FORMAT", "FORMAT_VERSION", "save_checkpoint", "read_checkpoint", "validate_checkpoint", "load_torch_file",
           "file_kind", "trusted_checkpoints", "trusting"]


def save_checkpoint(path: str | os.PathLike, content: dict[str, Any]) -> None:
    """Write ``content`` (without the format keys) as a reference checkpoint."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **content}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


# -- trust --------------------------------------------------------------------------------------------
_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("diffcheck_trust_checkpoint", default=False)


@contextlib.contextmanager
def trusted_checkpoints(trust: bool = True) -> Iterator[None]:
    """Within the block, checkpoints that need arbitrary unpickling load (``--trust-checkpoint``)."""
    token = _TRUST.set(trust)
    try:
        yield
    finally:
        _TRUST.reset(token)


def trusting(trust: bool | None = None) -> bool:
    """``trust``, or where it is None the value :func:`trusted_checkpoints` set (default False)."""
    return _TRUST.get() if trust is None else trust


# -- reading a file -----------------------------------------------------------------------------------
_ZIP = b"PK\x03\x04"
#: torch.save's legacy format begins with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_HDF5 = b"\x89HDF\r\n\x1a\n"
#: Globals a weights-only load accepts anyway; left out of "it names ..." in a refusal.
_TENSOR_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set")
_READ_ERRORS = (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError,
                TypeError, AttributeError, pickle.UnpicklingError, UnicodeDecodeError, MemoryError)


def load_torch_file(path: str | os.PathLike, *, trust: bool | None = None) -> Any:
    """What ``torch.save`` wrote to ``path``, weights-only unless trusted; every failure a one-line InputError.

    A full load (``trust``, else :func:`trusted_checkpoints`) runs whatever code the file names, so
    it is done only then, and only once. A file that is not a torch file (nor a pickle) is refused
    as such, before any unpickling.
    """
    p = _existing_file(Path(path))
    kind = file_kind(p)
    if trusting(trust):
        return _full_load(p, kind)
    if kind == "pickle":
        return _plain_pickle(p)
    try:
        with _quiet():
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(_refusal(p, _named_globals(p, kind))) from None
    except _READ_ERRORS as exc:
        raise InputError(f"cannot read checkpoint {p}: truncated or corrupt ({_detail(exc)})") from None


def file_kind(path: Path) -> str:
    """"zip" (torch.save), "legacy" (torch.save's format before torch 1.6) or "pickle"; else an InputError."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {_detail(exc)}") from None
    if head.startswith(_ZIP):
        return "zip"
    if head.startswith(_LEGACY):
        return "legacy"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    raise InputError(f"not a PyTorch checkpoint: {path} ({_what_it_is(path, head)}); diffcheck reads files "
                     "written by torch.save and saved diffusers folders")


def _existing_file(p: Path) -> Path:
    if not p.exists():
        raise InputError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise InputError(f"checkpoint is a directory, expected a file: {p}")
    return p


def _what_it_is(path: Path, head: bytes) -> str:
    if not head:
        return "the file is empty"
    if head.startswith(_HDF5):
        return "it is an HDF5 file; spectra go to --data"
    if path.suffix == ".safetensors" or head[8:10] in (b'{"', b"{ "):
        return ("it is a safetensors file of bare weights; pass the diffusers folder that holds it, or load it in a "
                "--pipeline file.py:function")
    return f"it begins with bytes {head[:8].hex(' ')}, neither a zip archive nor a pickle"


def _full_load(p: Path, kind: str) -> Any:
    """The trusted load: torch.load for torch files, pickle.load for plain pickles."""
    try:
        with _quiet():
            if kind == "pickle":
                with open(p, "rb") as f:
                    return pickle.load(f)
            return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # the file's own code may raise anything: one line, not a traceback
        raise InputError(f"cannot read checkpoint {p} even with --trust-checkpoint ({_detail(exc)})") from None


class _NoGlobals(pickle.Unpickler):
    """An unpickler that imports nothing: what it reads cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("a persistent id (torch storage)")


def _plain_pickle(p: Path) -> Any:
    """A plain ``pickle.dump`` file: read only when it names no code; otherwise refused."""
    try:
        with open(p, "rb") as f:
            return _NoGlobals(f).load()
    except pickle.UnpicklingError:
        raise InputError(_refusal(p, _named_globals(p, "pickle"), "a plain pickle, not a torch.save file")) from None
    except _READ_ERRORS as exc:
        raise InputError(f"cannot read checkpoint {p}: truncated or corrupt pickle ({_detail(exc)})") from None


def _refusal(p: Path, names: list[str], what: str = "a weights-only load cannot read it") -> str:
    named = f"it names {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}" if names else \
        "it names Python objects beyond tensors"
    return (f"refusing to load {p}: {what} ({named}), and a full load runs whatever code the file names; "
            "if you trust where the file comes from, pass --trust-checkpoint")


def _named_globals(p: Path, kind: str) -> list[str]:
    """The Python objects the file would make a full load import (read without unpickling)."""
    try:
        if kind == "zip":
            names = list(torch.serialization.get_unsafe_globals_in_checkpoint(p))
        else:
            names = _pickle_globals(p, pickles=4 if kind == "legacy" else 1)
    except Exception:  # an odd file: the refusal stands without the names
        return []
    names = [plain(n) for n in dict.fromkeys(names) if not str(n).startswith(_TENSOR_GLOBALS)]
    return [n for n in names if n]


def _pickle_globals(p: Path, pickles: int) -> list[str]:
    """GLOBAL and STACK_GLOBAL names of the first ``pickles`` pickles in ``p`` (pickletools: nothing runs)."""
    names: list[str] = []
    with open(p, "rb") as f:
        for _ in range(pickles):
            strings: list[str] = []
            for op, arg, _pos in pickletools.genops(f):
                if op.name in ("GLOBAL", "INST"):
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings.append(arg)
    return names


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch warns on stderr about pickle protocols; the user gets one line or the result, not that."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {first_line(exc, 160) or 'no detail'}"


def read_checkpoint(path: str | os.PathLike, *, trust: bool | None = None) -> dict[str, Any]:
    """Load and validate a reference checkpoint; InputError when it is something else."""
    return validate_checkpoint(load_torch_file(path, trust=trust), path)


def validate_checkpoint(obj: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``obj``, read from ``path``, if it is a reference checkpoint of a version this diffcheck reads."""
    if not isinstance(obj, Mapping):
        raise InputError(f"unknown checkpoint format in {path}: a {type(obj).__name__}, expected a dict "
                         f"with format={FORMAT!r}; for other pipelines pass --pipeline file.py:function")
    if obj.get("format") != FORMAT:
        keys = ", ".join(sorted(plain(k) for k in obj)[:8])
        what = "a bare state_dict" if obj and all(torch.is_tensor(v) for v in obj.values()) else f"a dict with keys [{keys}]"
        raise InputError(f"unknown checkpoint format in {path}: {what}, without format={FORMAT!r}; "
                         "for other pipelines pass --pipeline file.py:function")
    version = obj.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"checkpoint {path}: format_version is {plain(repr(version))[:40]}, expected an integer")
    if version > FORMAT_VERSION:
        raise InputError(f"{path} has {FORMAT} version {version}; this diffcheck reads up to "
                         f"{FORMAT_VERSION}: upgrade diffcheck")
    missing = [k for k in ("model", "diffusion", "data", "state_dict") if k not in obj]
    if missing:
        raise InputError(f"checkpoint {path} lacks required keys: {', '.join(missing)}")
    wrong = [k for k in ("model", "diffusion", "data", "state_dict") if not isinstance(obj[k], Mapping)]
    if wrong or not isinstance(obj["model"].get("config"), Mapping):
        what = ", ".join(wrong) if wrong else "model.config"
        raise InputError(f"checkpoint {path}: {what} must be a dict; re-save it with ReferencePipeline.save")
    return dict(obj)

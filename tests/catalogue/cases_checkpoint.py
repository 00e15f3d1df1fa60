"""Bad checkpoints: every kind of file or folder that is not a loadable pipeline, and untrusted pickles
on each route. One line, exit 2, nothing written; no code of the file runs without --trust-checkpoint."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import torch

from tests.catalogue import Case, quick_run
from tests.conftest import FIXTURES, HEALTHY_CKPT, ROOT, TINY_DATA

LIBRARIES = FIXTURES / "libraries"
TRUST = r"if you trust where the file comes from, pass --trust-checkpoint$"
NOT_TORCH = r"^error: not a PyTorch checkpoint: "


class _Opener:
    """Unpickled, it creates ``MARKER`` beside the file; the cases assert it never appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Raiser:
    """Unpickled, it raises a RuntimeError whose text carries ANSI colour codes."""

    def __reduce__(self):
        return (exec, ("raise RuntimeError('\\x1b[31mred\\x1b[0m failure')",))


def _no_marker(tmp: Path) -> None:
    assert not (tmp / "MARKER").exists(), "the checkpoint's code ran"


def _marker(tmp: Path) -> None:
    assert (tmp / "MARKER").exists(), "--trust-checkpoint was not honoured"


def _healthy() -> dict:
    return torch.load(HEALTHY_CKPT, map_location="cpu", weights_only=True)


def _write_bytes(data: bytes, name: str = "c.pt"):
    return lambda tmp: (tmp / name).write_bytes(data)


def _torch(make, name: str = "c.pt", **save):
    return lambda tmp: torch.save(make(tmp), tmp / name, **save)


def _pickle(make, name: str = "c.pt"):
    def setup(tmp):
        with open(tmp / name, "wb") as f:
            pickle.dump(make(tmp), f)
    return setup


def _evil(tmp: Path) -> dict:
    return {"weights": torch.zeros(2), "x": _Opener(tmp / "MARKER")}


def _own(**changes):
    """The healthy reference checkpoint with keys replaced (a value None deletes the key)."""
    def make(tmp):
        ckpt = {**_healthy(), **changes}
        return {k: v for k, v in ckpt.items() if v is not None}
    return make


def _truncated(tmp: Path) -> None:
    data = HEALTHY_CKPT.read_bytes()
    (tmp / "c.pt").write_bytes(data[: len(data) // 3])


def _truncated_legacy(tmp: Path) -> None:
    torch.save(_healthy(), tmp / "full.pt", _use_new_zipfile_serialization=False)
    data = (tmp / "full.pt").read_bytes()
    (tmp / "c.pt").write_bytes(data[: len(data) // 2])


def _foreign_zip(tmp: Path) -> None:
    with zipfile.ZipFile(tmp / "c.pt", "w") as z:
        z.writestr("readme.txt", "not a checkpoint")


def _safetensors(tmp: Path) -> None:
    shutil.copy(LIBRARIES / "diffusers_ddpm" / "unet" / "diffusion_pytorch_model.safetensors", tmp / "c.safetensors")


def _unreadable(tmp: Path) -> None:
    # As root, chmod 000 does not block reading: then the bytes themselves are refused.
    (tmp / "c.pt").write_bytes(b"\x00\x01 unreadable or not a checkpoint")
    os.chmod(tmp / "c.pt", 0)


def _dangling_link(tmp: Path) -> None:
    (tmp / "c.pt").symlink_to(tmp / "gone.pt")


def _trainer1d_damaged(tmp: Path) -> dict:
    return {"step": 10, "model": {"betas": "not a tensor"}, "opt": {}, "ema": {"ema_model.w": torch.zeros(1)}}


def _diffusers(edit):
    """A copy of the diffusers_ddpm fixture folder as ``tmp/d``, changed by ``edit(folder)``."""
    def setup(tmp):
        shutil.copytree(LIBRARIES / "diffusers_ddpm", tmp / "d")
        edit(tmp / "d")
    return setup


def _unet_config(text: str | bytes):
    def edit(folder):
        path = folder / "unet" / "config.json"
        (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return edit


def _unet_class(name):
    def edit(folder):
        path = folder / "unet" / "config.json"
        config = json.loads(path.read_text())
        path.write_text(json.dumps({**config, "_class_name": name}))
    return edit


def _no_weights(folder: Path) -> None:
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()


def _pickled_bin(folder: Path) -> None:
    from safetensors.torch import load_file

    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    weights.unlink()
    torch.save({**state, "x": _Opener(folder.parent / "MARKER")}, weights.with_suffix(".bin"))


def _case(id_, setup, stderr, *extra, ckpt="c.pt", after=_no_marker):
    return Case(f"checkpoint-{id_}", "checkpoint", lambda tmp: quick_run(tmp, *extra, ckpt=tmp / ckpt), stderr,
                setup=setup, after=after)


def _route(id_, setup, stderr, args, after=_no_marker):
    return Case(f"checkpoint-{id_}", "checkpoint", args, stderr, setup=setup, after=after)


def _with_pipeline(example: str):
    return lambda tmp: quick_run(tmp, "--pipeline", f"{ROOT / 'examples' / example}:build", ckpt=tmp / "c.pt")


CASES = [
    # files that are not torch files at all
    _case("missing", None, r"^error: checkpoint not found: .*nope\.pt", ckpt="nope.pt"),
    _case("dangling-symlink", _dangling_link, r"^error: checkpoint not found: .*c\.pt"),
    _case("empty-file", _write_bytes(b""), NOT_TORCH + r".*\(the file is empty\)"),
    _case("random-bytes", _write_bytes(bytes(range(7, 250)) * 4),
          NOT_TORCH + r".*it begins with bytes 07 08 09.*neither a zip archive nor a pickle\);"),
    _case("text-file", _write_bytes(b"epoch 3, loss 0.007\n"), NOT_TORCH + r".*begins with bytes 65 70 6f 63"),
    _case("json-sidecar-given", lambda tmp: shutil.copy(HEALTHY_CKPT.with_suffix(".json"), tmp / "c.json"),
          NOT_TORCH + r".*c\.json", ckpt="c.json"),
    _case("hdf5-given", lambda tmp: shutil.copy(TINY_DATA, tmp / "c.h5"), NOT_TORCH + r".*HDF5 file; spectra go to "
          r"--data", ckpt="c.h5"),
    _case("safetensors-given", _safetensors, NOT_TORCH + r".*safetensors file of bare weights; pass the diffusers "
          r"folder", ckpt="c.safetensors"),
    _case("unreadable", _unreadable, r"^error: (cannot read checkpoint .*PermissionError|not a PyTorch checkpoint)"),
    # torch files that are damaged
    _case("truncated-zip", _truncated, r"^error: cannot read checkpoint .*c\.pt: truncated or corrupt "
          r"\(RuntimeError: PytorchStreamReader failed"),
    _case("truncated-legacy", _truncated_legacy, r"^error: cannot read checkpoint .*c\.pt: truncated or corrupt"),
    _case("zip-not-from-torch", _foreign_zip, r"^error: cannot read checkpoint .*c\.pt: truncated or corrupt"),
    _case("corrupt-pickle", _write_bytes(b"\x80\x04\x95garbage that is no pickle"),
          r"^error: cannot read checkpoint .*c\.pt: truncated or corrupt pickle"),
    # torch files of no known format
    _case("bare-state-dict", _torch(lambda tmp: _healthy()["state_dict"]),
          r"^error: unknown checkpoint format in .*c\.pt: a bare state_dict of \d+ tensors; .*--pipeline"),
    _case("a-list", _torch(lambda tmp: [torch.zeros(2)]), r"^error: unknown checkpoint format in .*: a list; "),
    _case("ansi-in-keys", _torch(lambda tmp: {"\x1b[31mred\x1b[0m": torch.zeros(1), "b": 1}),
          r"^error: unknown checkpoint format .*a dict with keys \[b, red\]"),
    _case("trainer1d-damaged", _torch(_trainer1d_damaged), r"^error: the Trainer1D checkpoint's step or betas are "
          r"not numbers: it is damaged"),
    # diffcheck's own format, broken
    _case("own-missing-state-dict", _torch(_own(state_dict=None)), r"^error: checkpoint .*lacks required keys: "
          r"state_dict$"),
    _case("own-wrong-shapes", _torch(_own(state_dict={k: torch.zeros(3) for k in _healthy()["state_dict"]})),
          r"^error: checkpoint .*: state_dict does not match its model config \(.*size mismatch"),
    _case("own-state-dict-of-strings", _torch(_own(ema_state_dict={"w": "x"})),
          r"^error: checkpoint .*: ema_state_dict does not match its model config"),
    _case("own-unknown-config-key", _torch(_own(model={"class": "UNet1D", "config": {"wings": 2}})),
          r"^error: checkpoint .* has an invalid config: unknown UNetConfig key\(s\): wings$"),
    _case("own-section-not-a-dict", _torch(_own(data="spectra")), r"^error: checkpoint .*: data must be a dict"),
    _case("own-newer-version", _torch(_own(format_version=99)), r"version 99; this diffcheck reads up to 1: "
          r"upgrade diffcheck$"),
    _case("own-version-not-int", _torch(_own(format_version="1.0")), r"format_version is '1\.0', expected an "
          r"integer$"),
    # untrusted pickles on every route: refused, nothing ran
    _case("untrusted-zip", _torch(_evil), r"^error: refusing to load .*\(it names io\.open\).*" + TRUST),
    _case("untrusted-legacy", _torch(_evil, _use_new_zipfile_serialization=False), r"it names io\.open.*" + TRUST),
    _case("untrusted-plain-pickle", _pickle(_evil), r"a plain pickle, not a torch\.save file \(it names io\.open\)"
          r".*" + TRUST),
    _case("untrusted-own-format", _torch(lambda tmp: {**_healthy(), "note": _Opener(tmp / "MARKER")}), TRUST),
    _route("untrusted-preflight", _torch(_evil), TRUST,
           lambda tmp: ["preflight", tmp / "c.pt", "--device", "cpu", "--select", "FWD001", "--report-dir",
                        tmp / "rep"]),
    _route("untrusted-baseline", _torch(_evil), r"^error: --baseline .*c\.pt: refusing to load .*" + TRUST,
           lambda tmp: quick_run(tmp, "--baseline", tmp / "c.pt")),
    _route("untrusted-trainer1d-pipeline", _torch(_evil), TRUST + r"|diffcheck\[ddp\]",
           _with_pipeline("trainer1d_pipeline.py")),
    _route("untrusted-homemade-pipeline", _torch(_evil), TRUST, _with_pipeline("homemade_pipeline.py")),
    _route("untrusted-diffusers-bin", _diffusers(_pickled_bin), r"diffusion_pytorch_model\.bin: .*" + TRUST
           + r"|diffcheck\[diffusers\]", lambda tmp: quick_run(tmp, ckpt=tmp / "d")),
    # trusted, the file's own failure is still one plain line
    _case("trusted-but-raises", _pickle(lambda tmp: {"x": _Raiser()}), r"^error: cannot read checkpoint .* even "
          r"with --trust-checkpoint \(RuntimeError: red failure\)$",
          "--trust-checkpoint"),
    _case("trusted-then-unknown", _torch(_evil), r"^error: unknown checkpoint format in .*a dict with keys "
          r"\[weights, x\]", "--trust-checkpoint", after=_marker),
    # folders
    _case("empty-folder", lambda tmp: (tmp / "d").mkdir(), r"^error: .*d is a folder but not a saved diffusers "
          r"pipeline", ckpt="d"),
    _case("folder-of-checkpoints", lambda tmp: (tmp / "d").mkdir() or shutil.copy(HEALTHY_CKPT, tmp / "d"),
          r"is a folder but not a saved diffusers pipeline", ckpt="d"),
    _case("diffusers-broken-config", _diffusers(_unet_config('{"_class_name": "UNet1DModel",')),
          r"^error: cannot read .*config\.json: not valid JSON \(JSONDecodeError", ckpt="d"),
    _case("diffusers-binary-config", _diffusers(_unet_config(b"\xff\xfe\x00garbage")),
          r"^error: cannot read .*config\.json: not valid JSON \(UnicodeDecodeError", ckpt="d"),
    _case("diffusers-config-a-list", _diffusers(_unet_config("[1, 2]")), r"config\.json names no _class_name",
          ckpt="d"),
    _case("diffusers-foreign-class", _diffusers(_unet_class("os.system")), r"names 'os\.system', which is not a "
          r"diffusers class", ckpt="d"),
    _case("diffusers-bad-config-values", _diffusers(_unet_class("DDPMScheduler")), r"^error: cannot load the "
          r"diffusers folder .*d: ", ckpt="d"),
    _case("diffusers-no-weights", _diffusers(_no_weights), r"^error: cannot load the diffusers folder .*d: ",
          ckpt="d"),
]

"""A ``--baseline`` that cannot serve: found before the candidate run starts, one line naming it (exit 2)."""

from __future__ import annotations

import os
import pickle

import torch

from tests.catalogue import Case, quick_run
from tests.conftest import HEALTHY_CKPT, TINY_DATA


class _Custom:
    """A class a weights-only load refuses to unpickle."""


def _write(name: str, content: bytes):
    def setup(tmp):
        (tmp / name).write_bytes(content)
    return setup


def _untrusted(tmp):
    torch.save({"model": _Custom()}, tmp / "b.pt")


def _plain_pickle(tmp):
    (tmp / "b.pt").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def _shorter(length: int):
    """The healthy checkpoint declaring spectra of ``length`` pixels (the U-Net is convolutional)."""
    def setup(tmp):
        content = torch.load(HEALTHY_CKPT, weights_only=True)
        content["data"] = {**content["data"], "length": length}
        torch.save(content, tmp / "b.pt")
    return setup


def _wrong_folder(tmp):
    (tmp / "b").mkdir()
    (tmp / "b" / "notes.txt").write_text("not a checkpoint folder")


def _no_data(tmp):
    return ["run", HEALTHY_CKPT, "--device", "cpu", "--report-dir", tmp / "rep", "--select", "FWD001",
            "--baseline", tmp / "b.pt"]


def _base(id_, stderr, setup=None, target="b.pt", args=None):
    return Case(f"baseline-{id_}", "baseline", args or (lambda tmp: quick_run(tmp, "--baseline", tmp / target)),
                r"^error: " + stderr, setup=setup)


CASES = [
    _base("missing", r"baseline checkpoint not found: .*/b\.pt$"),
    _base("empty-file", r"--baseline .*/b\.pt: not a PyTorch checkpoint: .*\(the file is empty\)", setup=_write("b.pt", b"")),
    _base("random-bytes", r"--baseline .*/b\.pt: not a PyTorch checkpoint: .*neither a zip archive nor a pickle", setup=_write("b.pt", os.urandom(4096))),
    _base("text-file", r"--baseline .*/b\.pt: not a PyTorch checkpoint: .*begins with bytes 74 68 69 73", setup=_write("b.pt", b"this is a README, not a checkpoint\n")),
    _base("untrusted-pickle", r"--baseline .*/b\.pt: .*--trust-checkpoint", setup=_untrusted),
    _base("plain-pickle", r"--baseline .*/b\.pt: unknown checkpoint format in .*a dict with keys \[weights\]", setup=_plain_pickle),
    _base("folder-of-the-wrong-kind", r"--baseline .*/b: .*/b is a folder but not a saved diffusers pipeline", setup=_wrong_folder, target="b"),
    _base("fewer-pixels-than-the-data", r"--baseline .*/b\.pt: data spectra_tiny\.h5:flux has 512 pixels per "
          r"spectrum but the pipeline works on 256$", setup=_shorter(256)),
    _base("fewer-pixels-than-the-candidate", r"--baseline .*/b\.pt makes spectra of shape \(1, 256\) but the "
          r"candidate .*healthy_tiny\.pt makes \(1, 512\); compare checkpoints of one model$",
          setup=_shorter(256), args=_no_data),
]

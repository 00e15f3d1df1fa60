"""Shared fixtures: the committed reference checkpoints, the bug zoo and CLI helpers."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import diffcheck
from diffcheck.data import load_dataset
from diffcheck.loading import load_pipeline
from diffcheck.reference.ddpm import GaussianDiffusion
from diffcheck.reference.unet import UNet1D

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ZOO = tomllib.loads((FIXTURES / "zoo.toml").read_text())
HEALTHY_CKPT = FIXTURES / ZOO["healthy"]["checkpoint"]
TINY_DATA = FIXTURES / ZOO["healthy"]["data"]
SHARED_DATA = ROOT.parent / "shared" / "data"


def zoo_member(name: str) -> dict:
    for bug in (*ZOO["bug"], *ZOO.get("library", [])):
        if bug["name"] == name:
            return bug
    raise KeyError(name)


#: diffcheck extra -> the module it installs; zoo members with `requires = EXTRA` skip without it.
EXTRAS = {"ddp": "denoising_diffusion_pytorch", "diffusers": "diffusers"}


def require_extra(member: dict) -> None:
    extra = member.get("requires")
    if extra is not None and importlib.util.find_spec(EXTRAS[extra]) is None:
        pytest.skip(f"{member['name']} needs pip install 'diffcheck[{extra}]'")


def load_member(name: str) -> diffcheck.Pipeline:
    bug = zoo_member(name)
    require_extra(bug)
    spec = bug.get("pipeline")
    return load_pipeline(FIXTURES / bug["checkpoint"], device=diffcheck.resolve_device("cpu"),
                         pipeline=str(FIXTURES / spec) if spec else None)


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch):
    """Tests see only the built-in checks unless a test installs a plugin itself."""
    monkeypatch.setenv("DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture(scope="session")
def healthy() -> diffcheck.Pipeline:
    return load_pipeline(HEALTHY_CKPT, device=diffcheck.resolve_device("cpu"))


@pytest.fixture(scope="session")
def tiny_data(healthy) -> diffcheck.Dataset:
    return load_dataset(TINY_DATA, length=healthy.sample_shape[1], normaliser=healthy.normaliser)


_REPORTS: dict = {}


#: Zoo members draw one batch of 16 samples for DIST (a certain failure stops there anyway); the
#: healthy fixture draws the default count (tests/quality/test_dist_quality.py). Keeps CI near 20 min.
ZOO_SAMPLES = {"min_samples": 16, "max_samples": 16}


#: Families whose checks sample or train (DIST draws 16 samples through 1000 steps; TOY trains a
#: network): a zoo member's full run leaves such a family out when every check of it is one of the
#: member's declared knock-ons (may_fail), whose verdicts would all be accepted anyway.
COSTLY = ("DIST", "TOY")


@functools.cache
def _builtin_ids() -> tuple[str, ...]:
    from diffcheck.registry import load_registry

    return tuple(c.id for c in load_registry(plugins=False).checks)


def knock_on_families(member: dict) -> tuple[str, ...]:
    """The costly families all of whose checks ``member`` declares as may_fail."""
    may = set(member.get("may_fail", []))
    return tuple(fam for fam in COSTLY if {c for c in _builtin_ids() if c[:-3] == fam} <= may)


class _SampleMemo:
    """Exact memoisation of ``GaussianDiffusion.sample`` for the zoo reports (CI time).

    Several zoo members plant their bug after sampling (in ``to_flux``, or a blur of the sampled
    tensor) on the healthy checkpoint: their DIST checks ask the same sampler for the same draws
    at each seed. Only the unmodified GaussianDiffusion driving diffcheck's own UNet1D (plain torch
    modules, no hooks) is memoised, and a call is keyed on everything its output depends on: the
    network's mode, config, architecture and every weight and buffer, the diffusion config, the
    schedule, the shape, the device and the generator's state (a diffusion whose cached coefficient
    tables differ from its schedule's is not memoised). A hit returns a copy of the stored samples,
    replays every per-step callback of the original call (copies of its tensors) and leaves the
    generator where the original call left it, so the run continues exactly as if it had sampled.
    Calls without a generator are not memoised. The store keeps the last ``MAX_ENTRIES`` calls
    (each holds its steps' tensors: about 100 MB for 16 samples through 1000 steps).
    """

    _PLAIN = frozenset({"model", "config", "schedule", "_tensors"})
    MAX_ENTRIES = 12

    def __init__(self) -> None:
        self.store: dict = {}
        self.hits = 0

    @staticmethod
    def _plain_module(m: torch.nn.Module) -> bool:
        """A torch.nn or diffcheck UNet1D module without hooks or instance overrides: all its state is in
        its state_dict (and the UNet1D's config)."""
        return (type(m).__module__.startswith(("torch.nn.", "diffcheck.reference.unet"))
                and not (m._forward_hooks or m._forward_pre_hooks or "forward" in vars(m)))

    def key(self, diffusion, shape, generator, device):
        if (generator is None or type(diffusion) is not GaussianDiffusion
                or set(vars(diffusion)) != self._PLAIN):
            return None
        model = diffusion.model
        if type(model) is not UNet1D or not all(self._plain_module(m) for m in model.modules()):
            return None  # e.g. an oracle network put in place by network_replaced: its state is not its weights
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{model.training} {model.config!r} {model!r}".encode())
        for name, t in model.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        h.update(repr(diffusion.config).encode())
        for arr in (diffusion.schedule.betas, diffusion.schedule.alpha_bar):
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        for (name, _), t in diffusion._tensors.items():  # cached coefficient tables: as the schedule says?
            if not torch.equal(t, torch.as_tensor(diffusion._table(name), dtype=t.dtype, device=t.device)):
                return None
        h.update(generator.get_state().numpy().tobytes())
        return h.hexdigest(), tuple(shape), str(device)

    @contextlib.contextmanager
    def active(self):
        original = GaussianDiffusion.sample
        memo = self

        def copy(info: dict) -> dict:
            return {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in info.items()}

        def sample(diffusion, shape, *, generator=None, device="cpu", callback=None):
            key = memo.key(diffusion, shape, generator, device)
            if key is None:
                return original(diffusion, shape, generator=generator, device=device, callback=callback)
            if key in memo.store:
                x, state, calls = memo.store.pop(key)
                memo.store[key] = (x, state, calls)  # most recently used last
                if callback is not None:
                    for info in calls:
                        callback(copy(info))
                generator.set_state(state)
                memo.hits += 1
                return x.clone()
            calls: list[dict] = []

            def record(info: dict) -> None:
                calls.append(copy(info))
                if callback is not None:
                    callback(info)

            x = original(diffusion, shape, generator=generator, device=device, callback=record)
            memo.store[key] = (x.detach().clone(), generator.get_state(), calls)
            while len(memo.store) > memo.MAX_ENTRIES:
                memo.store.pop(next(iter(memo.store)))
            return x

        GaussianDiffusion.sample = sample
        try:
            yield self
        finally:
            GaussianDiffusion.sample = original


SAMPLE_MEMO = _SampleMemo()


def report_for(name: str, select: tuple[str, ...] = (), seed: int = 0) -> diffcheck.Report:
    """Run (once per session) the selected checks (default: all) on the healthy fixture or a zoo
    member; a member's full run leaves out its knock-on-only costly families (COSTLY)."""
    ignore = knock_on_families(zoo_member(name)) if name != "healthy" and not select else ()
    key = (name, select, seed, ignore)
    if key not in _REPORTS:
        pipe = load_pipeline(HEALTHY_CKPT, device=diffcheck.resolve_device("cpu")) if name == "healthy" \
            else load_member(name)
        data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
        with SAMPLE_MEMO.active():
            _REPORTS[key] = diffcheck.run_checks(pipe, data=data, select=list(select), ignore=list(ignore),
                                                 seed=seed, settings=None if name == "healthy" else ZOO_SAMPLES)
    return _REPORTS[key]

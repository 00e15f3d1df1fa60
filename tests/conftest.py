"""Shared fixtures: the committed reference checkpoints, the bug zoo and CLI helpers."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

import diffcheck
from diffcheck.data import load_dataset
from diffcheck.loading import load_pipeline

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


def knock_on_families(member: dict) -> tuple[str, ...]:
    """The costly families all of whose checks ``member`` declares as may_fail."""
    from diffcheck.registry import load_registry

    ids = [c.id for c in load_registry(plugins=False).checks]
    may = set(member.get("may_fail", []))
    return tuple(fam for fam in COSTLY if {c for c in ids if c[:-3] == fam} <= may)


def report_for(name: str, select: tuple[str, ...] = (), seed: int = 0) -> diffcheck.Report:
    """Run (once per session) the selected checks (default: all) on the healthy fixture or a zoo
    member; a member's full run leaves out its knock-on-only costly families (COSTLY)."""
    ignore = knock_on_families(zoo_member(name)) if name != "healthy" and not select else ()
    key = (name, select, seed, ignore)
    if key not in _REPORTS:
        pipe = load_pipeline(HEALTHY_CKPT, device=diffcheck.resolve_device("cpu")) if name == "healthy" \
            else load_member(name)
        data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
        _REPORTS[key] = diffcheck.run_checks(pipe, data=data, select=list(select), ignore=list(ignore), seed=seed,
                                             settings=None if name == "healthy" else ZOO_SAMPLES)
    return _REPORTS[key]

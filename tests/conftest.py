"""Shared fixtures: the committed reference checkpoints, the bug zoo and CLI helpers."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import inspect
import io
import os
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.data import load_dataset
from diffcheck.pipelines.loading import load_pipeline
from diffcheck.pipelines.pipeline import Step
from diffcheck.pipelines.reference.ddpm import GaussianDiffusion
from diffcheck.pipelines.reference.unet import UNet1D

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ZOO = tomllib.loads((FIXTURES / "zoo.toml").read_text())
HEALTHY_CKPT = FIXTURES / ZOO["healthy"]["checkpoint"]
TINY_DATA = FIXTURES / ZOO["healthy"]["data"]
SHARED_DATA = ROOT.parent / "shared" / "data"


#: The healthy pipelines besides the reference fixture: the library ones and the under-trained twins.
HEALTHY_MEMBERS = (*ZOO.get("library", []), *ZOO.get("undertrained", []))
#: The reference fixture as a member of the healthy set (its checkpoint stores no schedule tensors).
REFERENCE_MEMBER = {"name": "healthy", "skips": ["WGT005"]}
#: The healthy set whose run-level false-alarm rate benchmarks/bench_false_alarms.py measures: the
#: reference, its other objectives and the home-made pipeline ([[healthy_variant]]), the library
#: fixtures and the under-trained twins.
HEALTHY_SET = (REFERENCE_MEMBER, *ZOO.get("healthy_variant", []), *HEALTHY_MEMBERS)
#: Every named zoo entry: the bugs, the healthy pipelines, the bugs planted in user functions.
ZOO_MEMBERS = (*ZOO["bug"], *HEALTHY_MEMBERS, *ZOO.get("healthy_variant", []), *ZOO.get("function_bug", []))


def zoo_member(name: str) -> dict:
    for bug in ZOO_MEMBERS:
        if bug["name"] == name:
            return bug
    raise KeyError(name)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the README's test command runs ``-n auto``) the workers share the cores:
    each gets its share of torch threads, not all of them (2 workers x 2 threads on 2 cores is
    slower than 2 x 1)."""
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


#: Zoo members whose sampler is the healthy fixture's (their bug is downstream of it): their
#: samples come from SAMPLE_MEMO when the healthy run's are there, so they share its xdist worker.
_SAMPLES_LIKE_HEALTHY = "zoo/dist_bugs.py:"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One xdist worker per shared report: every test that reads a zoo member's (or a healthy
    fixture's) report through ``report_for`` is grouped by that pipeline, so the report is
    computed once, not once per worker (``--dist loadgroup``)."""
    groups = {m["name"]: ("healthy" if m.get("pipeline", "").startswith(_SAMPLES_LIKE_HEALTHY) else m["name"])
              for m in ZOO_MEMBERS}
    groups["healthy"] = "healthy"
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        group = next((groups[v] for v in params.values() if isinstance(v, str) and v in groups), None)
        if group is None and 'report_for("healthy")' in _source(item):
            group = "healthy"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def _source(item: pytest.Item) -> str:
    try:
        return inspect.getsource(item.function)
    except (AttributeError, OSError, TypeError):
        return ""


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


@pytest.fixture(scope="class")
def pipe(request) -> diffcheck.Pipeline:
    """The pipeline a ``PipelineContract`` subclass (tests/pipeline_contract.py) checks: its ``build()``."""
    return request.cls.build()


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
    from diffcheck.engine.registry import load_registry

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
        return (type(m).__module__.startswith(("torch.nn.", "diffcheck.pipelines.reference.unet"))
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

        def copy(info: Step) -> Step:
            return dataclasses.replace(info, **{f.name: getattr(info, f.name).detach().clone()
                                                for f in dataclasses.fields(info)
                                                if isinstance(getattr(info, f.name), torch.Tensor)})

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
            calls: list[Step] = []

            def record(info: Step) -> None:
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


def _is_healthy(name: str) -> bool:
    return any(m["name"] == name for m in HEALTHY_SET)


def healthy_alarms(results, member: dict) -> dict[str, str]:
    """What a healthy run must not show: a FAIL or ERROR, a WARN its entry does not declare
    (``may_warn``: true of an under-trained checkpoint), or a SKIP it does not declare (``skips``).
    A QUALITY finding is no alarm: a measured gap, not an accusation."""
    skips, may_warn = set(member.get("skips", [])), set(member.get("may_warn", []))
    return {r.id: f"{r.status.value}: {r.summary}" for r in results
            if r.status in (Status.FAIL, Status.ERROR) or (r.status is Status.WARN and r.id not in may_warn)
            or (r.status is Status.SKIP and r.id not in skips)}


def healthy_set_sha256() -> str:
    """A hash of the healthy set as parsed (benchmarks/bench_false_alarms.py's rows hold for it)."""
    return hashlib.sha256(json.dumps(HEALTHY_SET, sort_keys=True).encode()).hexdigest()


def report_for(name: str, select: tuple[str, ...] = (), seed: int = 0, *, every_family: bool = False,
               ignore: tuple[str, ...] = ()) -> diffcheck.Report:
    """Run (once per session) the selected checks (default: all) on the healthy fixture, a healthy
    library fixture or a zoo bug; a bug's full run leaves out its knock-on-only costly families
    (COSTLY) unless ``every_family``. Healthy pipelines sample at the defaults a user gets, bugs at
    ZOO_SAMPLES."""
    healthy = _is_healthy(name)
    if not ignore and not healthy and not select and not every_family:
        ignore = knock_on_families(zoo_member(name))
    key = (name, select, seed, ignore)
    if key not in _REPORTS:
        pipe = load_pipeline(HEALTHY_CKPT, device=diffcheck.resolve_device("cpu")) if name == "healthy" \
            else load_member(name)
        data = load_dataset(TINY_DATA, length=pipe.sample_shape[1], normaliser=pipe.normaliser)
        with SAMPLE_MEMO.active():
            _REPORTS[key] = diffcheck.run_checks(pipe, data=data, select=list(select), ignore=list(ignore),
                                                 seed=seed, settings=None if healthy else ZOO_SAMPLES)
    return _REPORTS[key]


#: The zoo's seeds: every member must be caught at each (benchmarks/bench_zoo.py runs them all).
ZOO_SEEDS = range(5)


def swept_zoo_sha256(zoo: dict) -> str:
    """A hash of what benchmarks/bench_zoo.py sweeps: the healthy fixture, the [[bug]], [[library]]
    and [[undertrained]] members as parsed (comments and other tables do not change it)."""
    swept = {key: zoo.get(key) for key in ("healthy", "bug", "library", "undertrained")}
    return hashlib.sha256(json.dumps(swept, sort_keys=True).encode()).hexdigest()


def zoo_selection(member: dict, seed: int) -> tuple[str, ...]:
    """What a member's run at ``seed`` selects: every check at seed 0, its must_fail/must_warn after."""
    return () if seed == 0 else tuple(sorted({*member.get("must_fail", []), *member.get("must_warn", [])}))


def zoo_problems(report: diffcheck.Report, member: dict, seed: int) -> list[str]:
    """What is wrong with a zoo member's report at ``seed`` (empty: caught, nothing else flagged, and
    the diagnosis leads with it). Shared by tests/quality/test_zoo_quality.py and the benchmark.

    - every ``must_fail`` check FAILs and every ``must_warn`` check WARNs (a WARN, not more);
    - nothing else FAILs, WARNs, finds a QUALITY gap or ERRORs except the declared knock-ons (``may_fail``);
    - line 1 of the terminal report is report.json's ``diagnosis.headline``, names every
      ``must_fail`` check, and its first root cause is one of the member's own checks;
    - every root cause is one of the member's own checks: each flagged knock-on is listed under
      one of them, not reported as a fault of its own.
    """
    from diffcheck.engine.diagnosis import expand_ids
    from diffcheck.formats.render import render_report

    must_fail, must_warn = set(member.get("must_fail", [])), set(member.get("must_warn", []))
    allowed = must_fail | must_warn | set(member.get("may_fail", []))
    flagged = {r.id: r.status.value for r in report.results
               if r.status in (Status.FAIL, Status.WARN, Status.QUALITY, Status.ERROR)}
    problems = [f"{c} is {flagged.get(c, 'not flagged')}, must FAIL" for c in sorted(must_fail) if flagged.get(c) != "FAIL"]
    problems += [f"{c} is {flagged.get(c, 'not flagged')}, must WARN" for c in sorted(must_warn) if flagged.get(c) != "WARN"]
    problems += [f"{c} is {v} but not declared (may_fail)" for c, v in sorted(flagged.items()) if c not in allowed]
    buf = io.StringIO()
    render_report(report, Console(file=buf, width=200, color_system=None))
    line1 = buf.getvalue().splitlines()[0]
    diagnosis = report.to_dict()["diagnosis"]
    if diagnosis["headline"] != line1:
        problems.append(f"line 1 {line1!r} is not the diagnosis headline {diagnosis['headline']!r}")
    named = expand_ids(line1)
    if not (must_fail <= named and (must_fail or must_warn) & named):
        problems.append(f"line 1 does not name {sorted(must_fail | must_warn)}: {line1!r}")
    roots = diagnosis["root_causes"]
    if not roots or roots[0]["id"] not in must_fail | must_warn:
        problems.append(f"the first root cause is {roots[0]['id'] if roots else None}, not the member's own check")
    # a declared knock-on is one only where the diagnosis says so: a flagged may_fail check reported
    # as a root cause of its own would send the user after the wrong fault
    problems += [f"{c['id']} is reported as a root cause of its own, not as a knock-on of {sorted(must_fail | must_warn)}"
                 for c in roots[1:] if c["id"] not in must_fail | must_warn]
    return problems

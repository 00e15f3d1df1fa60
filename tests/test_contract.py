"""Contract every registered check honours (like diffusers' SchedulerCommonTest)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.engine.check import check_fixture_names
from diffcheck.pipelines.reference.ddpm import GaussianDiffusion
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from diffcheck.engine.registry import load_registry

CHECKS = load_registry(plugins=False).checks


@pytest.fixture(scope="module")
def quick_sampler(healthy):
    """The healthy network behind a 10-step DDIM: the DIST checks' contract needs samples, not good ones."""
    cfg = dataclasses.replace(healthy.diffusion.config, sampler="ddim", sample_steps=10)
    return ReferencePipeline(healthy.unet_config, GaussianDiffusion(healthy.network, cfg), length=healthy.length,
                             normaliser=healthy.normaliser, meta=dict(healthy.meta))


@pytest.mark.parametrize("cls", CHECKS, ids=[c.id for c in CHECKS])
def test_check_contract(cls, healthy, quick_sampler, tiny_data):
    assert re.fullmatch(r"[A-Z]+\d{3}", cls.id)
    assert cls.title() and "\n" not in cls.title()
    few = {"min_samples": 4, "max_samples": 4}
    pipe = quick_sampler if "dist_samples" in check_fixture_names(cls) else healthy
    first = diffcheck.run_checks(pipe, data=tiny_data, select=[cls.id], seed=11, settings=few)[cls.id]
    again = diffcheck.run_checks(pipe, data=tiny_data, select=[cls.id], seed=11, settings=few)[cls.id]
    assert first.status in (Status.PASS, Status.QUALITY, Status.WARN, Status.FAIL, Status.SKIP), first.message()
    assert first.summary and "\n" not in first.summary
    assert (first.status, first.summary, first.observed) == (again.status, again.summary, again.observed)
    json.dumps(first.to_dict(), allow_nan=False)
    if first.status is not Status.SKIP:  # a check that SKIPs (e.g. WGT005 without stored buffers) judged nothing
        assert set(first.thresholds) == set(cls.thresholds)

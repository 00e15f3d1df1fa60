"""Contract every registered check honours (like diffusers' SchedulerCommonTest)."""

from __future__ import annotations

import json
import re

import pytest

import diffcheck
from diffcheck import Status
from diffcheck.registry import load_registry

CHECKS = load_registry(plugins=False).checks


@pytest.mark.parametrize("cls", CHECKS, ids=[c.id for c in CHECKS])
def test_check_contract(cls, healthy, tiny_data):
    assert re.fullmatch(r"[A-Z]+\d{3}", cls.id)
    assert cls.title() and "\n" not in cls.title()
    few = {"min_samples": 4, "max_samples": 4}  # DIST: the contract needs samples, not many of them
    first = diffcheck.run_checks(healthy, data=tiny_data, select=[cls.id], seed=11, settings=few)[cls.id]
    again = diffcheck.run_checks(healthy, data=tiny_data, select=[cls.id], seed=11, settings=few)[cls.id]
    assert first.status in (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP), first.message()
    assert first.summary and "\n" not in first.summary
    assert (first.status, first.summary, first.observed) == (again.status, again.summary, again.observed)
    json.dumps(first.to_dict(), allow_nan=False)
    if first.status is not Status.SKIP:  # a check that SKIPs (e.g. WGT005 without stored buffers) judged nothing
        assert set(first.thresholds) == set(cls.thresholds)

"""diffcheck.testing through its public functions only: healthy passes, every zoo member fails
with its intended check's failure text, misuse is a usage error (never an AssertionError)."""

from __future__ import annotations

import re

import pytest

import diffcheck
from diffcheck.testing import (DiffcheckUsageError, assert_consistent_parameterisation, assert_family,
                               assert_forward_process, assert_passes, assert_sampler_contract,
                               assert_samples_match, compute_check)
from tests.conftest import TINY_DATA, ZOO, load_member

FAMILY_ASSERTIONS = {"FWD": assert_forward_process, "PAR": assert_consistent_parameterisation,
                     "SMP": assert_sampler_contract}


def _family(check_id: str) -> str:
    return check_id.rstrip("0123456789")


def _members(families: set[str]) -> list[dict]:
    """Zoo members whose first intended catch is in ``families`` (library members need extras)."""
    return [bug for bug in ZOO["bug"] if bug.get("must_fail") and "requires" not in bug
            and _family(bug["must_fail"][0]) in families]


FAILING_MEMBERS = _members(set(FAMILY_ASSERTIONS))
_FIRST_LINE = re.compile(r"^(?P<id>[A-Z]+\d{3}) \S.*\(.*\d.*\)")


def _raised(assertion, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        assertion(*args, **kwargs)
    return str(info.value)


def _failing_ids(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([A-Z]+\d{3}) ", text, re.MULTILINE)}


@pytest.mark.parametrize("family", sorted(FAMILY_ASSERTIONS))
def test_family_assertion_passes_on_the_healthy_fixture(family, healthy):
    report = FAMILY_ASSERTIONS[family](healthy, TINY_DATA)
    assert {r.family for r in report.results} == {family} | ({"PAR"} if family == "SMP" else set())
    assert report.counts()["PASS"] == len(report.results)


@pytest.mark.parametrize("bug", FAILING_MEMBERS, ids=[b["name"] for b in FAILING_MEMBERS])
def test_family_assertion_fails_on_zoo_member_with_its_failure_text(bug):
    family = _family(bug["must_fail"][0])
    text = _raised(FAMILY_ASSERTIONS[family], load_member(bug["name"]), TINY_DATA)
    first = text.splitlines()[0]
    assert _FIRST_LINE.match(first), first          # "<ID> <what is wrong> (<numbers>)", standalone
    in_family = {c for c in bug["must_fail"] if _family(c) == family}  # other families' catches run elsewhere
    assert in_family <= _failing_ids(text) <= set(bug["must_fail"]) | set(bug.get("may_fail", []))
    assert "Likely causes:" in text and f"(diffcheck {family}: " in text.splitlines()[-1]


def test_assertion_text_is_the_checks_failure_message():
    member = load_member("eps_trained_x0_sampled")
    text = _raised(assert_consistent_parameterisation, member, TINY_DATA)
    assert re.match(r"PAR004 sampler decodes the output as x0 but the network predicts eps "
                    r"\(eps-fit R² 0\.9\d, x0-fit R² -\d+\.\d\d, v-fit R² -\d+\.\d\d\)$", text.splitlines()[0])
    assert "training: eps, sampler: x0, network: eps" in text


def test_warn_passes_unless_strict_and_ignore_shows_its_reason():
    leaky = load_member("leaky_terminal")
    report = assert_passes(leaky, select=["FWD004"])
    assert report["FWD004"].status is diffcheck.Status.WARN
    text = _raised(assert_passes, leaky, select=["FWD004"], strict=True)
    assert re.match(r"FWD004 data leaks into x_T: terminal SNR 0\.04\d+ .* vs <= 0\.001", text)
    report = assert_passes(leaky, select=["FWD003", "FWD004"], ignore={"FWD003": "x_T keeps signal by design"},
                           strict=True, thresholds={"FWD004": {"max_terminal_snr": 0.1}})
    assert report["FWD003"].summary == "ignored: x_T keeps signal by design"


def test_assertion_fails_when_every_selected_check_skipped(healthy):
    text = _raised(assert_passes, healthy, select=["FWD001"], ignore={"FWD001": "testing the skip rule"})
    assert text.startswith("nothing was verified: every selected check (FWD001) was skipped")


@pytest.mark.parametrize("call, message", [
    (lambda p: assert_forward_process("fixtures/checkpoints/healthy_tiny.pt"), r"expected a diffcheck\.Pipeline, got str"),
    (lambda p: assert_family("NOPE", p), r"no NOPE checks are registered \(families: .*FWD.*PAR"),
    (lambda p: assert_samples_match(p, None), r"needs data"),
    (lambda p: assert_passes(p, select=["NOPE"]), r"'NOPE' matches no check"),
    (lambda p: assert_passes(p, select=["FWD001"], thresholds={"FWD001": {"nope": 1.0}}), r"no threshold 'nope'"),
    (lambda p: assert_forward_process(p, data=3), r"data must be a diffcheck\.Dataset or an HDF5 path"),
    (lambda p: compute_check("XYZ001", pipeline=p), r"unknown check ID 'XYZ001'"),
    (lambda p: compute_check("FWD001", pipeline=p, forward_momnets={}), r"unknown fixture 'forward_momnets'"),
], ids=["not-a-pipeline", "family-absent", "no-data", "unknown-select", "unknown-threshold", "bad-data",
        "unknown-check", "fixture-typo"])
def test_misuse_is_a_usage_error_not_an_assertion(call, message, healthy):
    with pytest.raises(DiffcheckUsageError, match=message):
        call(healthy)
    assert issubclass(DiffcheckUsageError, diffcheck.InputError) and not issubclass(DiffcheckUsageError, AssertionError)


def test_compute_check_judges_fixtures_given_in_memory():
    """A check author's unit test: PAR001 on a hand-made oracle table, no pipeline needed."""
    losses = {"eps": 1e-14, "x0": 2.8, "v": 0.8}
    table = {"losses": losses, "time": {"eps": {"conventions": ["integer"]}}}
    passed = compute_check("PAR001", loss_oracles=table)
    assert passed.status is diffcheck.Status.PASS and passed.observed["identified"] == "eps"
    failed = compute_check("PAR001", loss_oracles={**table, "losses": {**losses, "eps": 0.5}})
    assert failed.status is diffcheck.Status.FAIL
    assert failed.summary.startswith("no parameterisation drives the training loss to zero (best eps: 0.5,")


def test_compute_check_runs_what_the_check_requires(healthy):
    result = compute_check("FWD004", pipeline=healthy, thresholds={"max_terminal_snr": 1e-9})
    assert result.status is diffcheck.Status.WARN and result.thresholds["max_terminal_snr"] == 1e-9
    assert compute_check("PAR004", pipeline=healthy).status is diffcheck.Status.PASS

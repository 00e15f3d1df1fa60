"""The healthy library fixtures (fixtures/zoo.toml [[library]]) pass every check through their adapter.

Every registered check runs; a SKIP is allowed only where the member declares it (`skips`) and it
carries its reason; any FAIL, WARN or ERROR fails the test, and so does a QUALITY finding: these
fixtures are trained to match the real spectra within the quality limit, which they did at 5 of 5 seeds. The library bug members are [[bug]]
entries of the same file and run in tests/quality/test_zoo_quality.py with the rest of the zoo.
"""

from __future__ import annotations

import pytest

from diffcheck import Status
from tests.conftest import ZOO, report_for

LIBRARY = {m["name"]: m for m in ZOO.get("library", [])}


@pytest.mark.parametrize("name", list(LIBRARY))
def test_healthy_library_fixture_passes_every_check(name):
    report = report_for(name)
    flagged = {r.id: f"{r.status.value}: {r.summary}" for r in report.results
               if r.status in (Status.FAIL, Status.WARN, Status.QUALITY, Status.ERROR)}
    assert flagged == {}, flagged
    skipped = {r.id: r.summary for r in report.results if r.status is Status.SKIP}
    assert set(skipped) <= set(LIBRARY[name].get("skips", [])), skipped
    assert all(reason.strip() for reason in skipped.values()), skipped


def test_diffusers_skips_the_training_target_oracle_but_probes_what_the_network_learned():
    report = report_for("diffusers_ddim50_leading")
    by_id = {r.id: r for r in report.results}
    assert by_id["PAR001"].status is Status.SKIP and "diffusers has no training loss" in by_id["PAR001"].summary
    assert by_id["PAR003"].status is Status.PASS and by_id["PAR004"].status is Status.PASS

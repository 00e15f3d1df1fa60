"""The runner: ordering, isolation of failures, selection, thresholds and plugin discovery."""

from __future__ import annotations

import re
import sys
import textwrap
from types import MappingProxyType

import pytest

import diffcheck
from diffcheck import Check, CheckDefinitionError, InputError, Status, Verdict
from diffcheck.engine.registry import load_registry
from diffcheck.engine.results import RESULT_SCHEMA_VERSION


class Boom(Check):
    """Raises while measuring"""

    id = "TST001"

    def measure(self, seed):
        raise ZeroDivisionError("planted failure")

    def judge(self, observed, thresholds):  # pragma: no cover - never reached
        return Verdict(Status.PASS, "unreachable")


class NeedsBoom(Check):
    """Depends on TST001"""

    id = "TST002"
    requires = frozenset({"TST001"})

    def measure(self, seed):
        return {"seed": seed}

    def judge(self, observed, thresholds):
        return Verdict(Status.PASS, "ran")


class Threshold(Check):
    """Compares the seed with a threshold"""

    id = "TST003"
    thresholds = MappingProxyType({"max_seed": 5.0})

    def measure(self, seed):
        return {"seed": seed}

    def judge(self, o, th):
        status = Status.PASS if o["seed"] <= th["max_seed"] else Status.FAIL
        return Verdict(status, f"seed {o['seed']} vs {th['max_seed']:g}")


class LeavesTrainMode(Check):
    """Puts the network in train mode and freezes a weight, as a careless probe would"""

    id = "TST004"

    def measure(self, pipeline):
        pipeline.network.train()
        next(pipeline.network.parameters()).requires_grad_(False)
        return {}

    def judge(self, observed, thresholds):
        return Verdict(Status.PASS, "changed the network's state")


class SeesMode(Check):
    """Records the network's state when it runs"""

    id = "TST005"
    uses = frozenset({"TST004"})  # runs after TST004

    def measure(self, pipeline):
        net = pipeline.network
        return {"training": any(m.training for m in net.modules()),
                "frozen": sum(not p.requires_grad for p in net.parameters())}

    def judge(self, observed, thresholds):
        return Verdict(Status.PASS, "recorded")


def checks():
    return [Boom, NeedsBoom, Threshold, LeavesTrainMode, SeesMode, *load_registry(plugins=False).checks]


def test_the_runner_restores_the_networks_state_after_each_check(healthy):
    """What a check sees does not depend on what ran before it (SMP005 judges the mode the sampler
    leaves the network in): train/eval mode and requires_grad come back after every check."""
    net = healthy.network
    before = ([m.training for m in net.modules()], [p.requires_grad for p in net.parameters()])
    report = diffcheck.run_checks(healthy, checks=checks(), select=["TST004", "TST005", "SMP005"])
    assert report["TST005"].observed == {"training": any(before[0]), "frozen": sum(not g for g in before[1])}
    assert report["SMP005"].status is Status.PASS
    assert ([m.training for m in net.modules()], [p.requires_grad for p in net.parameters()]) == before


def test_a_raising_check_is_an_error_and_the_run_goes_on(healthy):
    report = diffcheck.run_checks(healthy, checks=checks(), select=["TST", "FWD004"])
    assert report["TST001"].status is Status.ERROR
    assert report["TST001"].summary == "check raised ZeroDivisionError: planted failure"
    assert report["TST002"].status is Status.SKIP
    assert report["TST002"].summary == "requires TST001, which is ERROR"
    assert report["FWD004"].status is Status.PASS
    assert report.exit_code == diffcheck.ExitCode.CHECK_ERRORED


def test_thresholds_are_named_and_overridable(healthy):
    base = diffcheck.run_checks(healthy, checks=checks(), select=["TST003"], seed=7)
    assert base["TST003"].status is Status.FAIL and base.exit_code == 1
    relaxed = diffcheck.run_checks(healthy, checks=checks(), select=["TST003"], seed=7,
                                   thresholds={"TST003": {"max_seed": 10}})
    assert relaxed["TST003"].status is Status.PASS
    assert relaxed["TST003"].thresholds == {"max_seed": 10}


@pytest.mark.parametrize("overrides,message", [
    ({"XYZ001": {"a": 1}}, "threshold override for unknown check 'XYZ001'"),
    ({"TST003": {"nope": 1}}, "TST003 has no threshold 'nope'; its thresholds: max_seed"),
])
def test_bad_threshold_overrides_are_input_errors(healthy, overrides, message):
    with pytest.raises(InputError, match=re.escape(message)):
        diffcheck.run_checks(healthy, checks=checks(), thresholds=overrides)


def test_select_by_family_and_ignore_shows_the_ignored_as_skipped(healthy):
    report = diffcheck.run_checks(healthy, select=["FWD"], ignore=["FWD003"])
    assert [r.id for r in report.results] == ["FWD001", "FWD002", "FWD003", "FWD004", "FWD005"]
    assert report["FWD003"].status is Status.SKIP and "ignored" in report["FWD003"].summary


def test_selecting_a_check_runs_what_it_requires(healthy):
    report = diffcheck.run_checks(healthy, select=["PAR004"])  # requires PAR002, uses PAR001 and PAR003
    assert [r.id for r in report.results] == ["PAR001", "PAR002", "PAR003", "PAR004"]


def test_a_selector_that_matches_nothing_is_an_input_error(healthy):
    with pytest.raises(InputError, match=r"'PARX' matches no check; families: DIST, FWD, .*PAR, .*\(see `diffcheck list`\)"):
        diffcheck.run_checks(healthy, select=["PARX"])


@pytest.mark.parametrize("attrs,message", [
    ({"id": "fwd1"}, "is not a family prefix plus 3 digits"),
    ({"__doc__": None}, "docstring"),
    ({"measure": lambda self, nonsense: {}}, "unknown fixture 'nonsense'"),
])
def test_malformed_checks_are_rejected_naming_the_culprit(attrs, message):
    base = {"id": "TST009", "__doc__": "A title", "measure": lambda self, seed: {},
            "judge": lambda self, o, th: Verdict(Status.PASS, "")}
    cls = type("Bad", (Check,), {**base, **attrs})
    with pytest.raises(CheckDefinitionError, match=message):
        load_registry(plugins=False, extra=[cls])


def _install_plugin(tmp_path, monkeypatch, body: str, value: str, fixtures: str | None = None) -> None:
    """A real distribution on sys.path with a diffcheck.checks entry point (and a diffcheck.fixtures one)."""
    (tmp_path / "dcplug.py").write_text(textwrap.dedent(body))
    info = tmp_path / "dcplug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dcplug\nVersion: 1.0\n")
    groups = f"[diffcheck.checks]\nplug = {value}\n"
    if fixtures is not None:
        groups += f"[diffcheck.fixtures]\nplugfix = {fixtures}\n"
    (info / "entry_points.txt").write_text(groups)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD")
    sys.modules.pop("dcplug", None)


PLUGIN = """
    from diffcheck import Check, Status, Verdict

    class PLG001(Check):
        "A plugin check that works"
        id = "PLG001"
        def measure(self, seed):
            return {"seed": seed}
        def judge(self, o, th):
            return Verdict(Status.PASS, "plugin ran")

    def checks():
        return [PLG001]
"""


FIXTURE_PLUGIN = """
    import diffcheck
    from diffcheck import Check, Status, Verdict

    @diffcheck.fixture
    def doubled_seed(seed, x0_probe):
        return 2 * seed

    def not_marked(seed):
        return seed

    @diffcheck.fixture
    def asks_for_nothing_known(no_such_fixture):
        return 0

    FIXTURES = (doubled_seed,)
    UNMARKED = (not_marked,)
    UNKNOWN = (asks_for_nothing_known,)

    class PLG002(Check):
        "A plugin check on a plugin fixture"
        id = "PLG002"
        def measure(self, doubled_seed):
            return {"doubled": doubled_seed}
        def judge(self, o, th):
            return Verdict(Status.PASS, f"doubled seed {o['doubled']}")

    def checks():
        return [PLG002]
"""


def test_plugin_fixtures_come_from_their_entry_point_group_validated_as_they_register(tmp_path, monkeypatch, healthy):
    """Nothing registers by import: a plugin's fixture reaches its checks only through diffcheck.fixtures."""
    _install_plugin(tmp_path, monkeypatch, FIXTURE_PLUGIN, "dcplug:checks", fixtures="dcplug:FIXTURES")
    report = diffcheck.run_checks(healthy, select=["PLG002"], seed=4)
    assert (report["PLG002"].status, report["PLG002"].summary) == (Status.PASS, "doubled seed 8")


@pytest.mark.parametrize("value, error", [
    ("dcplug:UNMARKED", "is not a fixture (mark it with @diffcheck.fixture)"),
    ("dcplug:UNKNOWN", "fixture 'asks_for_nothing_known' asks for unknown fixture 'no_such_fixture'"),
], ids=["unmarked", "unknown-parameter"])
def test_a_fixture_plugin_that_does_not_validate_adds_nothing_and_is_reported(tmp_path, monkeypatch, healthy,
                                                                              value, error):
    _install_plugin(tmp_path, monkeypatch, FIXTURE_PLUGIN, "dcplug:checks", fixtures=value)
    from diffcheck.engine.context import load_fixtures

    assert "doubled_seed" not in load_fixtures().fixtures
    report = diffcheck.run_checks(healthy, select=["FWD004"])
    assert report["PLUGIN-PLUGFIX"].status is Status.SKIP and error in report["PLUGIN-PLUGFIX"].summary
    # the check plugin that needs the missing fixture is refused as a whole, the built-in checks still run
    assert report["FWD004"].status is Status.PASS


def test_plugin_checks_come_from_the_entry_point_group(tmp_path, monkeypatch, healthy):
    _install_plugin(tmp_path, monkeypatch, PLUGIN, "dcplug:checks")
    report = diffcheck.run_checks(healthy, select=["PLG"])
    assert report["PLG001"].status is Status.PASS


def test_plugin_autoload_can_be_disabled(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, PLUGIN, "dcplug:checks")
    monkeypatch.setenv("DIFFCHECK_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "PLG001" not in {c.id for c in load_registry().checks}


def test_a_plugin_that_fails_to_import_is_reported_without_changing_the_exit_code(tmp_path, monkeypatch, healthy):
    _install_plugin(tmp_path, monkeypatch, "raise ImportError('missing dependency xyz')\n", "dcplug:checks")
    report = diffcheck.run_checks(healthy, select=["FWD004"])
    assert report["PLUGIN-PLUG"].status is Status.SKIP
    assert report["PLUGIN-PLUG"].summary == ("plugin 'plug' failed to load (ImportError: missing dependency xyz); "
                                             "its checks did not run")
    assert report["FWD004"].status is Status.PASS
    assert report.exit_code == diffcheck.ExitCode.OK


def test_a_broken_plugin_selected_by_name_is_an_error(tmp_path, monkeypatch, healthy):
    _install_plugin(tmp_path, monkeypatch, "raise ImportError('missing dependency xyz')\n", "dcplug:checks")
    report = diffcheck.run_checks(healthy, select=["PLUGIN-plug"])
    assert [r.id for r in report.results] == ["PLUGIN-PLUG"]
    assert report["PLUGIN-PLUG"].status is Status.ERROR
    assert report.exit_code == diffcheck.ExitCode.CHECK_ERRORED


def test_a_broken_plugin_can_be_ignored_by_name(tmp_path, monkeypatch, healthy):
    _install_plugin(tmp_path, monkeypatch, "raise ImportError('missing dependency xyz')\n", "dcplug:checks")
    report = diffcheck.run_checks(healthy, select=["FWD004"], ignore=["PLUGIN-PLUG"])
    assert report["PLUGIN-PLUG"].status is Status.SKIP and report["PLUGIN-PLUG"].summary == "ignored (--ignore PLUGIN-PLUG)"
    assert "load_error" not in report["PLUGIN-PLUG"].observed


def test_selecting_checks_of_a_broken_plugin_names_it(tmp_path, monkeypatch, healthy):
    _install_plugin(tmp_path, monkeypatch, "raise ImportError('missing dependency xyz')\n", "dcplug:checks")
    with pytest.raises(InputError, match=r"^'PLG' matches no check; .*; plugin 'plug' failed to load \(ImportError: "
                                         r"missing dependency xyz\)$"):
        diffcheck.run_checks(healthy, select=["PLG"])


def test_a_plugin_with_one_bad_check_adds_none_of_its_checks(tmp_path, monkeypatch):
    body = PLUGIN.replace("return [PLG001]", "return [PLG001, type('Bad', (PLG001,), {'id': 'bad1'})]")
    _install_plugin(tmp_path, monkeypatch, body, "dcplug:checks")
    registry = load_registry()
    assert "PLG001" not in {c.id for c in registry.checks}
    assert [name for name, _ in registry.broken] == ["plug"]


def test_json_report_has_every_summary_number_as_a_field(healthy, tmp_path):
    report = diffcheck.run_checks(healthy, select=["FWD"])
    data = report.to_dict()
    assert data["schema_version"] == RESULT_SCHEMA_VERSION == 2 and data["exit_code"] == 0
    for r in data["results"]:
        fields = {f"{v:.3g}" for v in _numbers(r["observed"])} | {f"{v:.4f}" for v in _numbers(r["observed"])}
        fields |= {f"{v:g}" for v in _numbers(r["thresholds"])} | {f"{v:.2g}" for v in _numbers(r["observed"])}
        fields |= {f"{v:.3f}" for v in _numbers(r["observed"])} | {str(v) for v in _numbers(r["observed"])}
        for number in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", r["summary"]):
            if number in ("0", "1", "2"):  # N(0,1), (0, 1) and the like are names, not measurements
                continue
            assert number in fields, (r["id"], number, r["summary"])


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj

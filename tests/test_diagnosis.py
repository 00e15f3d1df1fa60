"""The diagnosis (diffcheck.engine.diagnosis): root causes before their knock-ons, on synthetic results,
and the declared knock-ons (Check.explains) against fixtures/zoo.toml."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from diffcheck import Check, Status
from diffcheck.engine.check import Stage, explains_id, validate_check
from diffcheck.engine.context import known_fixtures
from diffcheck.engine.diagnosis import compress_ids, diagnose, expand_ids
from diffcheck.errors import CheckDefinitionError
from diffcheck.engine.registry import load_registry
from diffcheck.formats.html import html_text
from diffcheck.formats.render import LogProgress, footer, render_report
from diffcheck.formats.report import Report
from diffcheck.engine.results import Result
from tests.conftest import ROOT, ZOO, report_for

CHECKS = load_registry(plugins=False).checks
BY_ID = {c.id: c for c in CHECKS}
F, W, P, E, Q = Status.FAIL, Status.WARN, Status.PASS, Status.ERROR, Status.QUALITY


def results(statuses: dict[str, Status], causes: dict[str, tuple[str, ...]] | None = None) -> list[Result]:
    """Every built-in check, PASS unless named in ``statuses``."""
    causes = causes or {}
    return [Result(id=c.id, title=c.title(), status=statuses.get(c.id, P), summary=f"{c.id} summary 0.5 vs 0.1",
                   causes=causes.get(c.id, ())) for c in CHECKS]


def test_a_root_cause_lists_what_it_explains_and_they_are_not_roots():
    d = diagnose(results({"PAR004": F, "TOY001": F, "LOSS001": F, "DIST001": F, "DIST002": F, "DIST003": F,
                          "DIST004": F}), CHECKS)
    assert d.kind == "root_cause"
    assert [c.id for c in d.causes] == ["PAR004"]
    assert d.causes[0].explains == ("TOY001", "LOSS001", "DIST001", "DIST002", "DIST003", "DIST004")
    assert d.headline == ("diagnosis: root cause PAR004 PAR004 summary 0.5 vs 0.1; explains TOY001, LOSS001, "
                          "DIST001-004")
    assert d.causes[0].next_step == BY_ID["PAR004"].next_step != ""


def test_knock_ons_reach_through_other_knock_ons():
    # WGT004 (EMA horizon) explains WGT003 (EMA worse), which explains LOSS001 and the samples
    d = diagnose(results({"WGT004": W, "WGT003": F, "LOSS001": F, "DIST001": F}), CHECKS)
    assert [(c.id, c.status, c.severity) for c in d.causes] == [("WGT004", W, F)]
    assert d.causes[0].explains == ("WGT003", "LOSS001", "DIST001")
    assert d.kind == "root_cause"


def test_independent_roots_are_ordered_by_stage_and_share_a_knock_on():
    d = diagnose(results({"SMP005": F, "FWD003": F, "DIST004": F}), CHECKS)
    assert [c.id for c in d.causes] == ["FWD003", "SMP005"]  # the forward process before the sampler
    assert all(c.explains == ("DIST004",) for c in d.causes)
    assert d.order == ("FWD003", "DIST004", "SMP005")
    assert d.headline.endswith("; 1 more root cause: SMP005 (explains DIST004)")


def test_roots_of_one_stage_tie_break_by_id():
    d = diagnose(results({"SMP005": F, "SMP003": F}), CHECKS)
    assert [c.id for c in d.causes] == ["SMP003", "SMP005"]


def test_a_warning_ranks_after_a_failure_even_upstream():
    d = diagnose(results({"FWD004": W, "SMP005": F}), CHECKS)
    assert [c.id for c in d.causes] == ["SMP005", "FWD004"]
    assert [c.severity for c in d.causes] == [F, W]


def test_a_warning_explaining_a_failure_that_a_failed_root_explains_ranks_lower():
    d = diagnose(results({"FWD004": W, "PAR004": F, "DIST001": F}), CHECKS)
    assert [(c.id, c.severity) for c in d.causes] == [("PAR004", F), ("FWD004", W)]
    assert d.causes[1].explains == ("DIST001",)


def test_warnings_only_say_nothing_failed():
    d = diagnose(results({"FWD004": W}), CHECKS)
    assert d.kind == "warnings_only"
    assert d.headline.startswith("diagnosis: no check failed; warning: FWD004 (WARN) FWD004 summary")


def test_a_quality_gap_alone_says_no_bug_and_gives_the_gap_and_what_to_do():
    d = diagnose(results({"DIST003": Q, "DIST002": Q}), CHECKS)
    assert d.kind == "quality_only"
    assert [(c.id, c.severity) for c in d.causes] == [("DIST002", Q)]  # DIST002 explains DIST003
    assert d.causes[0].explains == ("DIST003",)
    structural = sum(1 for c in CHECKS if c.pipeline_stage() < Stage.SAMPLES)
    assert d.headline == (f"diagnosis: no bug found ({structural} structural checks passed); the samples fall short "
                          "of real spectra: DIST002 (QUALITY) DIST002 summary 0.5 vs 0.1; explains DIST003")
    assert d.causes[0].next_step.startswith("a quality gap, not a bug: train longer")


def test_a_quality_gap_under_a_bug_is_its_knock_on_and_the_bug_leads():
    d = diagnose(results({"PAR004": F, "DIST001": F, "DIST002": Q, "DIST003": Q}), CHECKS)
    assert d.kind == "root_cause"
    assert [(c.id, c.severity) for c in d.causes] == [("PAR004", F)]
    assert d.causes[0].explains == ("DIST001", "DIST002", "DIST003")


def test_a_warning_ranks_before_a_quality_gap_and_a_quality_root_explaining_a_failure_ranks_as_one():
    d = diagnose(results({"DIST003": Q, "WGT004": W}), CHECKS)  # WGT004 explains only WGT003
    assert d.kind == "warnings_only"
    assert [(c.id, c.severity) for c in d.causes] == [("WGT004", W), ("DIST003", Q)]
    d = diagnose(results({"DIST003": Q, "FWD004": W}), CHECKS)  # FWD004 explains the samples
    assert [(c.id, c.severity, c.explains) for c in d.causes] == [("FWD004", W, ("DIST003",))]
    d = diagnose(results({"DIST002": Q, "DIST003": F}), CHECKS)  # DIST002 explains DIST003
    assert [(c.id, c.status, c.severity) for c in d.causes] == [("DIST002", Q, F)]
    assert d.kind == "samples_only"


def test_samples_only_says_no_structural_check_failed_and_ranks_candidates():
    causes = {"DIST002": ("the samples are not de-normalised: Pipeline.to_flux", "wrong constants",
                          "the model is undertrained or the sampler is broken (see DIST001, PAR, SMP)"),
              "DIST003": ("spectra on another wavelength grid", "wrong de-normalisation (see DIST002)")}
    d = diagnose(results({"DIST002": F, "DIST003": F}, causes), CHECKS)
    assert d.kind == "samples_only"
    structural = sum(1 for c in CHECKS if c.pipeline_stage() < Stage.SAMPLES)
    assert d.structural_ran == structural
    assert d.headline.startswith(f"diagnosis: no structural check failed ({structural} passed), but the samples "
                                 "do: DIST002 DIST002 summary 0.5 vs 0.1; explains DIST003; most likely: the "
                                 "samples are not de-normalised")
    # interleaved by rank; the cause citing only checks that passed (DIST001, PAR, SMP) goes last
    assert d.candidates == ("the samples are not de-normalised: Pipeline.to_flux", "spectra on another wavelength grid",
                            "wrong constants", "wrong de-normalisation (see DIST002)",
                            "the model is undertrained or the sampler is broken (see DIST001, PAR, SMP)")


def test_samples_only_without_structural_checks_says_none_ran():
    only = [r for r in results({"DIST001": F}) if BY_ID[r.id].pipeline_stage() is Stage.SAMPLES]
    d = diagnose(only, CHECKS)
    assert d.kind == "samples_only" and d.structural_ran == 0
    assert "no structural check ran" in d.headline


def test_failures_that_explain_each_other_keep_one_root():
    class ABC001(Check):
        """a"""
        id = "ABC001"
        stage = Stage.SAMPLER
        explains = frozenset({"ABC002"})

    class ABC002(Check):
        """b"""
        id = "ABC002"
        stage = Stage.FORWARD
        explains = frozenset({"ABC001"})

    rs = [Result(id=i, title=i, status=F, summary="s") for i in ("ABC001", "ABC002")]
    d = diagnose(rs, [ABC001, ABC002])
    assert [(c.id, c.explains) for c in d.causes] == [("ABC002", ("ABC001",))]  # the upstream one stands


def test_errors_and_passes():
    assert diagnose(results({}), CHECKS).headline == f"diagnosis: no check failed ({len(CHECKS)} passed, 0 skipped)"
    d = diagnose(results({"TEMB001": E}), CHECKS)
    assert d.kind == "errored" and d.errored == ("TEMB001",) and "1 check errored (TEMB001)" in d.headline
    d = diagnose(results({"TEMB001": E, "SMP005": F}), CHECKS)
    assert d.kind == "root_cause" and d.order == ("SMP005", "TEMB001")


def test_unknown_ids_get_their_family_stage():
    d = diagnose([Result(id="PLUGIN-x", title="", status=E, summary="s"),
                  Result(id="DIST009", title="", status=F, summary="s")], CHECKS)
    assert d.causes[0].stage is Stage.SAMPLES and d.errored == ("PLUGIN-x",)


def test_ids_compress_and_expand():
    ids = ["TOY001", "LOSS001", "DIST001", "DIST002", "DIST003", "DIST004", "TEMB002", "TEMB004"]
    text = compress_ids(ids)
    assert text == "TOY001, LOSS001, DIST001-004, TEMB002, TEMB004"
    assert expand_ids(text) == set(ids)
    assert compress_ids(["FWD001", "FWD002"]) == "FWD001, FWD002"


def test_the_declarations_are_valid():
    for c in CHECKS:
        assert c.next_step, c.id
        assert isinstance(c.pipeline_stage(), Stage)
        for sel in c.explains:
            assert any(explains_id(frozenset({sel}), o.id) for o in CHECKS), (c.id, sel)


@pytest.mark.parametrize("attrs, words", [({"explains": {"DIST"}}, "frozenset"), ({"stage": 3}, "Stage"),
                                          ({"explains": frozenset({"ABC"})}, "itself")])
def test_validate_check_names_a_bad_declaration(attrs, words):
    base = {"__doc__": "t", "id": "ABC001", "measure": lambda self: {}, "judge": lambda self, o, th: None}
    cls = type("ABC001", (Check,), {**base, **attrs})
    with pytest.raises(CheckDefinitionError, match=words):
        validate_check(cls, "test", known_fixtures())


BUGS = {b["name"]: b for b in ZOO["bug"]}
#: may_fail entries that none of the member's must_fail / must_warn checks explains, with the reason.
#: (None today: every declared knock-on is one its cause produces.)
UNEXPLAINED: dict[tuple[str, str], str] = {}


def _explained_by(start: set[str], within: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        node = todo.pop()
        for other in within - seen - {node}:
            if explains_id(BY_ID[node].explains, other):
                seen.add(other)
                todo.append(other)
    return seen


@pytest.mark.parametrize("name", list(BUGS))
def test_every_declared_knock_on_is_explained_by_the_members_cause(name):
    bug = BUGS[name]
    must = set(bug.get("must_fail", [])) | set(bug.get("must_warn", []))
    may = set(bug.get("may_fail", []))
    missing = may - must - _explained_by(must, must | may)
    assert missing == {c for (n, c) in UNEXPLAINED if n == name}, missing


@pytest.mark.parametrize("name", list(BUGS))
def test_when_every_declared_check_trips_the_diagnosis_leads_with_the_cause(name):
    bug = BUGS[name]
    warn = set(bug.get("must_warn", []))
    flagged = {i: (W if i in warn else F) for i in (*bug.get("must_fail", []), *warn, *bug.get("may_fail", []))}
    d = diagnose(results(flagged), CHECKS)
    assert {c.id for c in d.causes} <= set(bug.get("must_fail", [])) | warn
    assert set(bug.get("must_fail", [])) <= expand_ids(d.headline)
    assert set(d.order) == set(flagged)


def _report(statuses: dict[str, Status]) -> Report:
    return Report(results=tuple(results(statuses)), pipeline={"name": "toy", "T": 10}, device="cpu", seed=0,
                  duration_s=1.0)


def test_report_json_carries_the_diagnosis():
    report = _report({"PAR004": F, "TOY001": F})
    d = report.to_dict()["diagnosis"]
    assert d["kind"] == "root_cause" and d["root_causes"][0]["id"] == "PAR004"
    assert d["root_causes"][0]["explains"] == ["TOY001"] and d["order"] == ["PAR004", "TOY001"]
    assert d["headline"].startswith("diagnosis: root cause PAR004")


def test_the_terminal_report_leads_with_the_diagnosis_and_lists_failures_in_its_order():
    buf = io.StringIO()
    render_report(_report({"DIST001": F, "PAR004": F, "TOY001": F, "FWD004": W}),
                  Console(file=buf, width=200, color_system=None))
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("diagnosis: root cause PAR004 PAR004 summary 0.5 vs 0.1; explains TOY001, DIST001")
    details = [line.split()[1] for line in lines if re.match(r"(FAIL|WARN) [A-Z]", line)]
    assert details == ["PAR004", "TOY001", "DIST001", "FWD004"]


def test_log_progress_prints_each_check_and_status_at_most_every_10_s():
    buf, now = io.StringIO(), [0.0]
    log = LogProgress(Console(file=buf, width=200, color_system=None), clock=lambda: now[0])
    log.check("PAR002", 2, 32)
    for t in (1.0, 5.0, 10.5, 12.0, 21.0):
        now[0] = t
        log.status("running DIST001: sampling, step 25")
    assert buf.getvalue().splitlines() == ["diffcheck: [3/32] PAR002",
                                           "diffcheck:   running DIST001: sampling, step 25 (10 s)",
                                           "diffcheck:   running DIST001: sampling, step 25 (21 s)"]


def test_the_footer_names_report_html_and_the_figures(tmp_path):
    report = _report({})
    figs = (str(tmp_path / "fwd_coefficients.png"), str(tmp_path / "dist_power.png"))
    report = Report(results=tuple(replace(r, figures=figs[:1] if r.id == "FWD001" else figs[1:] if r.id == "DIST004"
                                          else ()) for r in report.results), pipeline={}, device="cpu", seed=0,
                    duration_s=0.0)
    assert footer(report, tmp_path) == (f"report: {tmp_path / 'report.json'}, {tmp_path / 'report.html'}; "
                                        "figures (2): fwd_coefficients.png, dist_power.png")


def test_report_html_opens_with_the_diagnosis(tmp_path):
    page = html_text(_report({"SMP005": F, "DIST004": F}), tmp_path)
    top = page.index('<section id="diagnosis">')
    assert top < page.index("<table>")
    assert "diagnosis: root cause SMP005 SMP005 summary 0.5 vs 0.1; explains DIST004" in page[top:page.index("<table>")]
    assert page.index('<section id="SMP005">') < page.index('<section id="DIST004">') < page.index('<section id="FWD001">')


# --- the README's sample report: a real run of the motivating experiment, read as the code reads it ---

_ROW = re.compile(r"^(PASS|QUALITY|WARN|FAIL|SKIP|ERROR)\s{2,}([A-Z]+[0-9]{3})\s")
_DETAIL = re.compile(r"^(FAIL|WARN|QUALITY|ERROR) ([A-Z]+[0-9]{3}) (.+)$")


def _readme_sample() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Sample report", 1)[1]
    return section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()


def test_the_readme_sample_report_opens_with_the_par004_diagnosis():
    line1 = _readme_sample()[0]
    assert line1.startswith("diagnosis: root cause PAR004 sampler decodes the output as x0 but the network "
                            "predicts eps (eps-fit R² 0.9"), line1
    assert expand_ids(line1.split("; explains ", 1)[1]) >= {"DIST001", "DIST002", "DIST003", "DIST004", "TOY001"}


def test_the_readme_sample_report_is_a_real_run_and_its_diagnosis_what_the_code_says():
    lines = _readme_sample()
    table = {m[2]: Status(m[1]) for m in map(_ROW.match, lines) if m}
    details = [(m[2], m[3]) for m in map(_DETAIL.match, lines) if m]
    assert set(table) == set(BY_ID)
    shown = [Result(id=i, title="", status=s, summary=dict(details).get(i, "")) for i, s in table.items()]
    d = diagnose(shown, CHECKS)
    assert lines[0] == d.headline  # line 1 and the grouping, as the diagnosis computes them today
    assert [i for i, _ in details] == list(d.order)  # failures in diagnosis order
    # a real run agrees where it is cheap: the zoo's cached report of the member (it leaves DIST out)
    real = report_for("eps_trained_x0_sampled")
    ran = {r.id: r.status for r in real.results if not r.summary.startswith("ignored")}
    assert {i: table[i] for i in ran} == ran
    assert dict(details)["PAR004"] == real["PAR004"].summary

"""The pytest plugin (entry point pytest11) through pytester: silent and import-free unless asked,
one item per check with --diffcheck, failure text without traceback, skips with their reason,
strict WARNs, -k selection, and the diffcheck_pipeline / diffcheck_data fixtures."""

from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, HEALTHY_CKPT, TINY_DATA, zoo_member

pytest_plugins = ["pytester"]

FWD = ["--diffcheck", "--diffcheck-checkpoint", str(HEALTHY_CKPT), "--diffcheck-data", str(TINY_DATA),
       "--diffcheck-device", "cpu", "--diffcheck-select", "FWD", "-p", "no:cacheprovider"]


def _member_args(name: str, select: str) -> list[str]:
    bug = zoo_member(name)
    args = ["--diffcheck", "--diffcheck-checkpoint", str(FIXTURES / bug["checkpoint"]), "--diffcheck-device", "cpu",
            "--diffcheck-select", select, "-p", "no:cacheprovider"]
    return args + (["--diffcheck-pipeline", str(FIXTURES / bug["pipeline"])] if "pipeline" in bug else [])


def test_a_session_that_does_not_ask_imports_nothing(pytester):
    pytester.makepyfile("""
        import sys

        def test_untouched():
            assert "diffcheck" not in sys.modules and "torch" not in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "diffcheck::" not in result.stdout.str()


def test_options_are_listed_in_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--diffcheck *Collect one test item per diffcheck check*",
                                 "*--diffcheck-checkpoint=PATH*"])


def test_collects_one_item_per_selected_check(pytester):
    result = pytester.runpytest(*FWD, "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"diffcheck::FWD00{i}" for i in range(1, 6)])
    assert "SMP" not in result.stdout.str()


def test_healthy_checks_pass_as_items_and_k_selects(pytester):
    pytester.runpytest(*FWD).assert_outcomes(passed=5)
    pytester.runpytest(*FWD, "-k", "FWD003").assert_outcomes(passed=1, deselected=4)


def test_a_failing_check_fails_its_item_with_the_failure_text(pytester):
    # --rootdir: the node id is "diffcheck::FWD005" whatever the paths of this machine (pytest would
    # otherwise take the checkpoint's folder as rootdir and prefix the id with a relative path, which
    # moves where the 80-column summary line is cut)
    result = pytester.runpytest(*_member_args("reversed_t", "FWD005"), "--rootdir", str(pytester.path))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*_ diffcheck FWD005: SNR decreases strictly with t*_", "FWD005 SNR of q_sample rises *",
                                 "Likely causes:*", "FAILED diffcheck::FWD005 - FWD005 SNR of q_sample rises*"])
    assert "Traceback" not in result.stdout.str() and "def runtest" not in result.stdout.str()
    # in pytest --ignore means paths: the hint names the ignore table and deselection instead
    result.stdout.fnmatch_lines(['To silence: FWD005 = "<why it does not apply>" under [[]tool.diffcheck.ignore[]] '
                                 'in pyproject.toml, or deselect the item: -k "not FWD005"'])
    assert "--ignore FWD005" not in result.stdout.str()


def test_warn_passes_with_a_warning_and_fails_under_strict(pytester):
    args = _member_args("leaky_terminal", "FWD004")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*DiffcheckWarning: FWD004 data leaks into x_T*"])
    strict = pytester.runpytest(*args, "--diffcheck-strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["WARN under strict: FWD004 data leaks into x_T*"])


def test_config_ignores_skip_with_their_reason(pytester):
    pytester.makefile(".toml", pyproject="""
        [tool.diffcheck]
        select = ["FWD003"]
        [tool.diffcheck.ignore]
        FWD003 = "x_T is checked by our own KS test"
    """)
    args = [a for a in FWD if a not in ("--diffcheck-select", "FWD")]
    result = pytester.runpytest(*args, "-rs", "--rootdir", str(pytester.path))  # the rootdir's pyproject.toml
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *ignored: x_T is checked by our own KS test"])


def test_fixtures_give_the_pipeline_and_data_to_user_tests(pytester):
    pytester.makepyfile("""
        from diffcheck.testing import assert_forward_process

        def test_my_model(diffcheck_pipeline, diffcheck_data):
            report = assert_forward_process(diffcheck_pipeline, diffcheck_data)
            assert report.data["spectra"] == len(diffcheck_data) > 0
    """)
    pytester.runpytest("--diffcheck-checkpoint", str(HEALTHY_CKPT), "--diffcheck-data", str(TINY_DATA),
                       "--diffcheck-device", "cpu", "-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("args, message", [
    ((), "diffcheck: name a pipeline with --diffcheck-checkpoint PATH or --diffcheck-pipeline file.py:function"),
    (("--diffcheck-checkpoint", "missing.pt"), "diffcheck: checkpoint not found*missing.pt*"),
], ids=["no-pipeline", "missing-checkpoint"])
def test_fixture_without_a_usable_pipeline_fails_in_one_line(pytester, args, message):
    pytester.makepyfile("def test_it(diffcheck_pipeline):\n    pass\n")
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_the_diagnosis_leads_the_summary_and_a_knock_on_names_its_root(pytester):
    result = pytester.runpytest(*_member_args("reversed_t", "FWD"), "--rootdir", str(pytester.path))
    result.stdout.fnmatch_lines(["FWD001 *", "Follows from FWD005, a root cause of this run*",
                                 "FWD005 SNR of q_sample rises *", "A root cause of this run. Next step: check the index*",
                                 "*diffcheck diagnosis*", "diagnosis: root cause FWD005 SNR of q_sample rises*; explains "
                                 "FWD001*", "*short test summary info*"])

"""Bad ``[tool.diffcheck]`` tables: one line naming the file and the key (exit 2)."""

from __future__ import annotations

from tests.catalogue import Case, quick_run


def _pyproject(body: str):
    def setup(tmp):
        (tmp / "pyproject.toml").write_text(body if body.startswith("[") else f"[tool.diffcheck]\n{body}\n")
    return setup


def _cfg(id_, body, stderr):
    return Case(f"config-{id_}", "config", lambda tmp: quick_run(tmp), r"^error: .*pyproject\.toml: (\[tool\.diffcheck\] )?" + stderr,
                setup=_pyproject(body))


CASES = [
    _cfg("not-toml", "seed = [", r"not valid TOML"),
    _cfg("unknown-key", "sead = 3", r"has unknown key 'sead'; known keys: "),
    _cfg("not-a-table", "[tool]\ndiffcheck = 3", r"must be a table$"),
    _cfg("negative-seed", "seed = -1", r"seed: expected an integer from 0 to 2\*\*63-1, got -1$"),
    _cfg("seed-float", "seed = 1.5", r"seed: expected an integer from 0"),
    _cfg("max-samples-zero", "max_samples = 0", r"max_samples: expected an integer >= 2 \(samples DIST draws\), got 0$"),
    _cfg("min-samples-string", "min_samples = '16'", r"min_samples: expected an integer >= 2"),
    _cfg("strict-string", "strict = 'yes'", r"strict: expected true or false, got 'yes'$"),
    _cfg("threshold-nan", "[tool.diffcheck.thresholds]\nFWD001.max_coef_error = nan",
         r"thresholds: FWD001\.max_coef_error must be a finite number, got nan$"),
    _cfg("threshold-string", "[tool.diffcheck.thresholds]\nFWD001.max_coef_error = 'tight'",
         r"thresholds: FWD001\.max_coef_error must be a finite number"),
    _cfg("threshold-without-name", "[tool.diffcheck.thresholds]\nFWD001 = 0.1", r"thresholds: 'FWD001' is not ID\.name"),
    _cfg("ignore-list", "ignore = ['SMP006']", r"ignore: must map each ignored check to its reason"),
    _cfg("ignore-empty-reason", "[tool.diffcheck.ignore]\nSMP006 = ''", r"ignore: SMP006 needs a reason"),
    _cfg("select-number", "select = 3", r"select: expected a list of check IDs or families"),
    _cfg("pipeline-without-function", "pipeline = 'build.py'", r"pipeline: expected path/to/file\.py:function"),
    _cfg("baseline-unknown-key", "[tool.diffcheck.baseline]\nrtl = 0.1", r"baseline: unknown key 'rtl'"),
    _cfg("baseline-negative-rtol", "[tool.diffcheck.baseline]\nrtol = -0.1", r"baseline: rtol must be >= 0, got -0\.1$"),
    _cfg("baseline-not-a-table", "baseline = 'p.pt'", r"baseline: must be a table with checkpoint, rtol, atol$"),
    _cfg("device-empty", "device = ''", r"device: expected a non-empty string"),
    # Values that parse but contradict each other or name nothing: refused before the checkpoint loads.
    Case("config-min-above-max", "config", lambda tmp: quick_run(tmp),
         r"^error: min_samples 40 is more than max_samples 20", setup=_pyproject("min_samples = 40\nmax_samples = 20")),
    Case("config-threshold-negative", "config", lambda tmp: quick_run(tmp),
         r"^error: threshold FWD001\.max_coef_error=-1\.0 is outside \[0, inf\]",
         setup=_pyproject("[tool.diffcheck.thresholds]\nFWD001.max_coef_error = -1")),
    Case("config-threshold-unknown-check", "config", lambda tmp: quick_run(tmp),
         r"^error: threshold override for unknown check 'NOPE001'",
         setup=_pyproject("[tool.diffcheck.thresholds]\nNOPE001.x = 1")),
    Case("config-select-unknown", "config", lambda tmp: ["run", "x.pt", "--report-dir", tmp / "rep"],
         r"^error: 'QQQ' matches no check", setup=_pyproject("select = ['QQQ']")),
    Case("config-data-missing", "config", lambda tmp: ["run", "x.pt", "--report-dir", tmp / "rep"],
         r"^error: --data .*missing\.h5: not found$", setup=_pyproject("data = 'missing.h5'")),
    Case("config-pipeline-file-missing", "config", lambda tmp: ["run", "x.pt", "--report-dir", tmp / "rep"],
         r"^error: --pipeline file not found: .*nope\.py", setup=_pyproject("pipeline = 'nope.py:build'")),
    Case("config-is-a-directory", "config", lambda tmp: quick_run(tmp, "--config", tmp),
         r"^error: config file not found: "),
]

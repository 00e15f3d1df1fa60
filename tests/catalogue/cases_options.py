"""Bad command-line options: refused when parsed, before anything loads or runs (exit 2)."""

from __future__ import annotations

from tests.catalogue import Case, quick_run

HELP = r"\(see diffcheck run --help\)"


def _opt(id_, stderr, *extra, ckpt=None):
    if ckpt is None:
        return Case(f"options-{id_}", "options", lambda tmp: quick_run(tmp, *extra), stderr)
    return Case(f"options-{id_}", "options", lambda tmp: quick_run(tmp, *extra, ckpt=ckpt), stderr)


CASES = [
    _opt("negative-seed", r"^error: --seed -1: expected an integer from 0 to 2\*\*63-1, got -1$", "--seed", "-1"),
    _opt("seed-not-a-number", r"^error: Invalid value for '--seed'.*" + HELP, "--seed", "abc"),
    _opt("seed-too-large", r"^error: --seed 18446744073709551616: expected an integer from 0", "--seed", str(2**64)),
    _opt("threshold-nan", r"^error: threshold FWD001\.max_coef_error=nan is outside \[0, inf\]; its default is 0\.01$",
         "--threshold", "FWD001.max_coef_error=nan"),
    _opt("threshold-inf", r"^error: threshold FWD001\.max_coef_error=inf is outside", "--threshold",
         "FWD001.max_coef_error=inf"),
    _opt("threshold-negative", r"^error: threshold FWD001\.max_coef_error=-0\.1 is outside \[0, inf\]",
         "--threshold", "FWD001.max_coef_error=-0.1"),
    _opt("threshold-quantile-above-1", r"^error: threshold DIST002\.null_quantile=1\.5 is outside \[0, 1\]",
         "--threshold", "DIST002.null_quantile=1.5"),
    _opt("threshold-share-above-1", r"^error: threshold TEMB004\.min_diagonal_share=2\.0 is outside \[0, 1\]",
         "--threshold", "TEMB004.min_diagonal_share=2"),
    _opt("threshold-malformed", r"^error: bad --threshold 'FWD001=3': expected ID\.name=number", "--threshold",
         "FWD001=3"),
    _opt("threshold-not-a-number", r"^error: bad --threshold 'FWD001\.max_coef_error=tight'", "--threshold",
         "FWD001.max_coef_error=tight"),
    _opt("threshold-unknown-check", r"^error: threshold override for unknown check 'XYZ001'", "--threshold",
         "XYZ001.a=1"),
    _opt("threshold-unknown-name", r"^error: FWD001 has no threshold 'nope'; its thresholds: max_coef_error",
         "--threshold", "FWD001.nope=1"),
    _opt("min-samples-1", r"^error: Invalid value for '--min-samples'.*" + HELP, "--min-samples", "1"),
    _opt("max-samples-0", r"^error: Invalid value for '--max-samples'.*" + HELP, "--max-samples", "0"),
    _opt("min-above-max", r"^error: min_samples 32 is more than max_samples 16", "--min-samples", "32",
         "--max-samples", "16"),
    _opt("unknown-selector", r"^error: 'NOPE' matches no check; families: ", "--select", "NOPE"),
    _opt("unknown-ignore", r"^error: 'ZZZ9' matches no check", "--ignore", "ZZZ9"),
    _opt("unknown-device", r"^error: --device must be auto, cpu or cuda\[:N\], got 'tpu'$", "--device", "tpu"),
    _opt("unknown-flag", r"^error: No such option: --bogus", "--bogus"),
    _opt("negative-rtol", r"^error: --baseline-rtol -1\.0: must be >= 0, got -1\.0$", "--baseline-rtol", "-1"),
    _opt("nan-atol", r"^error: --baseline-atol nan: a tolerance must be a finite number", "--baseline-atol", "nan"),
    _opt("empty-dataset-name", r"^error: --dataset '': expected a non-empty string", "--dataset", ""),
    _opt("config-missing", r"^error: config file not found: nope\.toml$", "--config", "nope.toml"),
    _opt("strict-with-value", r"^error: Option .--strict. does not take a value\. \(see diffcheck", "--strict=yes"),
    Case("options-missing-checkpoint", "options", lambda tmp: ["run"],
         r"^error: Missing argument 'checkpoint'\. " + HELP),
    Case("options-unknown-command", "options", lambda tmp: ["rnu"], r"^error: No such command 'rnu'"),
    Case("options-list-unknown-selector", "options", lambda tmp: ["list", "--select", "NOPE"],
         r"^error: 'NOPE' matches no check"),
    Case("options-preflight-without-pipeline", "options", lambda tmp: ["preflight", "--report-dir", tmp / "rep"],
         r"^error: no checkpoint given; a preflight without one needs --pipeline file\.py:function$"),
]

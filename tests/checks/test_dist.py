"""DIST checks on sample sets with known answers (no sampling), and the sequential sampler fixture.

A perfect model is played by real spectra from the training split; the failures by what the
bugs produce: Gaussian noise (the experiment), a wrong flux scale, blurred lines, NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffcheck
from diffcheck import Status
from diffcheck.pipelines.reference.pipeline import ReferencePipeline
from diffcheck.measure.samples import SampleSet, dist_reference, dist_samples, sample_settings
from diffcheck.testing import compute_check
from tests.conftest import HEALTHY_CKPT

DIST = ("DIST001", "DIST002", "DIST003", "DIST004")


@pytest.fixture(scope="module")
def reference(healthy, tiny_data):
    return dist_reference(healthy, tiny_data, 0)


def _set(pipe, x: np.ndarray) -> SampleSet:
    return SampleSet(x=x, flux=pipe.to_flux(x), finite=np.isfinite(x).all(axis=1), sampling_s=0.0,
                     stop_reason="given", settings=sample_settings(None))


def _judge(check_id: str, samples: SampleSet, reference, seed: int = 0):
    return compute_check(check_id, dist_samples=samples, dist_reference=reference, seed=seed)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    half = int(4 * sigma)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    padded = np.pad(x, ((0, 0), (half, half)), mode="edge")
    return np.stack([np.convolve(row, k / k.sum(), mode="valid") for row in padded])


@pytest.mark.parametrize("seed", range(3))
def test_real_spectra_as_samples_pass_every_dist_check(healthy, reference, seed):
    rows = np.random.default_rng(seed).choice(reference.pool_x.shape[0], 48, replace=False)
    samples = _set(healthy, reference.pool_x[rows])
    for cid in DIST:
        result = _judge(cid, samples, reference, seed)
        assert result.status is Status.PASS, result.message()


def test_gaussian_noise_is_called_gaussian_noise_on_the_first_line(healthy, reference):
    noise = np.random.default_rng(1).standard_normal((16, 512))
    result = _judge("DIST001", _set(healthy, noise), reference)
    assert result.status is Status.FAIL
    assert result.summary.startswith("samples are indistinguishable from Gaussian noise: structure score")
    assert abs(result.observed["structure"]) < 0.05 and result.observed["gaussian"] is True
    assert abs(result.observed["autocorr_gen"]) < 0.05
    assert result.observed["n_samples"] == 16


def test_clipped_noise_as_an_x0_decoding_sampler_makes_it_is_still_gaussian_noise(healthy, reference):
    noise = np.clip(np.random.default_rng(2).standard_normal((16, 512)), -1.0, 1.0)
    result = _judge("DIST001", _set(healthy, noise), reference)
    assert result.status is Status.FAIL and "Gaussian noise" in result.summary
    assert result.observed["clip_fraction"] == pytest.approx(0.317, abs=0.02)


def test_white_but_not_gaussian_noise_is_named_otherwise(healthy, reference):
    uniform = np.random.default_rng(3).uniform(-1, 1, (16, 512))
    result = _judge("DIST001", _set(healthy, uniform), reference)
    assert result.status is Status.FAIL
    assert result.summary.startswith("samples are indistinguishable from (non-Gaussian) noise: structure score")


def test_nan_samples_fail_dist001_and_the_rest_judge_the_finite_ones(healthy, reference):
    x = reference.pool_x[:20].copy()
    x[3, 100] = np.nan
    samples = _set(healthy, x)
    result = _judge("DIST001", samples, reference)
    assert result.status is Status.FAIL and result.summary == "1 of 20 samples contain NaN or Inf"
    assert _judge("DIST002", samples, reference).observed["n_samples"] == 19


def _scaled(healthy, reference, scale: float) -> SampleSet:
    x = reference.pool_x[100:148]
    return SampleSet(x=x, flux=healthy.to_flux(x) * scale, finite=np.ones(48, bool), sampling_s=0.0,
                     stop_reason="given", settings=sample_settings(None))


def _gap_line(result) -> None:
    """A quality finding's first line carries its factor, its 68 % interval and both limits, all in observed."""
    o, th = result.observed, result.thresholds
    assert f"{o['gap_factor']:.3g}x the real-vs-real" in result.summary
    assert f"(68 % interval {o['gap_low']:.3g}-{o['gap_high']:.3g}x;" in result.summary
    assert o["gap_low"] <= o["gap_factor"] * 1.05 and o["gap_high"] >= o["gap_factor"] * 0.95
    assert f"a bug beyond {th['fail_factor']:g}x" in result.summary


def test_a_flux_scale_off_by_28_percent_is_a_quality_gap_in_the_samples_alone(healthy, reference):
    # Samples alone cannot tell a wrong de-normalisation of 0.72 from a model that is far off:
    # 4.1x (DIST002) and 4.6x (DIST003) the real-vs-real q99, as far as healthy networks sampled with
    # DDIM eta=0 or stopped early reach. DIST005 proves the de-normalisation wrong (below).
    samples = _scaled(healthy, reference, 0.72)
    for cid in ("DIST002", "DIST003"):
        gap = _judge(cid, samples, reference)
        assert gap.status is Status.QUALITY, gap.message()
        assert gap.summary.startswith("sample quality, not a bug: ")
        assert 1.5 < gap.observed["gap_factor"] < gap.thresholds["fail_factor"]
        _gap_line(gap)
    assert _judge("DIST001", samples, reference).status is Status.PASS
    assert _judge("DIST004", samples, reference).status is Status.PASS


def test_flux_in_other_units_fails_as_a_bug(healthy, reference):
    samples = _scaled(healthy, reference, 1e3)  # e.g. samples in mJy against data in Jy
    for cid, words in (("DIST002", "pooled flux differs from the real spectra: Wasserstein-1"),
                       ("DIST003", "flux differs from the real spectra wavelength by wavelength: mean spectrum offset")):
        fail = _judge(cid, samples, reference)
        assert fail.status is Status.FAIL and fail.summary.startswith(words), fail.summary
        assert fail.observed["gap_factor"] > fail.thresholds["fail_factor"]
        _gap_line(fail)


def test_a_quality_gap_fails_where_the_user_lowered_the_bug_limit(healthy, reference):
    samples = _scaled(healthy, reference, 0.72)
    gated = compute_check("DIST002", dist_samples=samples, dist_reference=reference, seed=0,
                          thresholds={"fail_factor": 1.5})
    assert gated.status is Status.FAIL and gated.summary.startswith("pooled flux differs")


@pytest.mark.parametrize("n", [16, 32])
def test_spectra_written_in_reversed_wavelength_order_are_seen_only_by_dist003(healthy, reference, n):
    # a quality gap in the samples alone (2.3-4.4x); DIST005 proves the reversal where to_flux does it
    x = reference.pool_x[300:300 + n]
    samples = SampleSet(x=x, flux=healthy.to_flux(x)[:, ::-1].copy(), finite=np.ones(n, bool), sampling_s=0.0,
                        stop_reason="given", settings=sample_settings(None))
    fail = _judge("DIST003", samples, reference)
    assert fail.status is Status.QUALITY, fail.message()
    assert fail.summary.startswith("sample quality, not a bug: flux differs from the real spectra wavelength by "
                                   "wavelength")
    assert max(fail.observed["d_factor"], fail.observed["offset_factor"]) > 1.5
    _gap_line(fail)
    assert f"{fail.observed['percent_disagreeing']:.1f} % of wavelengths disagree" in fail.summary
    for cid in ("DIST002", "DIST004"):  # every value is a real one, and so is every spectrum's power
        assert _judge(cid, samples, reference).status is Status.PASS


def _power_line(result) -> None:
    o, th = result.observed, result.thresholds
    assert f"{o['worst_ratio']:.3g}x the real power (68 % interval {o['ratio_low']:.3g}-{o['ratio_high']:.3g}x)" \
        in result.summary
    assert f"{o['beyond_log10']:.2f} decades beyond, a bug beyond {th['fail_log10']:g}" in result.summary


def test_blurred_lines_are_a_dist004_quality_gap_smoother_than_real(healthy, reference):
    samples = _set(healthy, _blur(reference.pool_x[200:248], 2.0))
    result = _judge("DIST004", samples, reference)
    assert result.status is Status.QUALITY, result.message()
    assert result.summary.startswith("sample quality, not a bug: samples are smoother than the real spectra")
    assert result.observed["worst_ratio"] < result.observed["worst_low"]
    assert 0 < result.observed["beyond_log10"] < result.thresholds["fail_log10"]
    _power_line(result)
    assert _judge("DIST001", samples, reference).status is Status.PASS


def test_dist004_fails_only_where_the_user_made_its_gap_a_gate(healthy, reference):
    # by default DIST004 is a quality figure (its bug limit is off: band powers are bounded shares
    # of the variance, and a healthy DDIM eta=0 run lands farther out than noise does)
    samples = _set(healthy, _blur(reference.pool_x[200:248], 2.0))
    gated = compute_check("DIST004", dist_samples=samples, dist_reference=reference, seed=0,
                          thresholds={"fail_log10": 0.5})
    assert gated.status is Status.FAIL, gated.message()
    assert gated.summary.startswith("samples are smoother than the real spectra")
    assert gated.observed["beyond_log10"] > 0.5
    _power_line(gated)


def test_added_white_noise_is_a_dist004_quality_gap_noisier(healthy, reference):
    x = reference.pool_x[300:348] + 0.05 * np.random.default_rng(4).standard_normal((48, 512))
    result = _judge("DIST004", _set(healthy, x), reference)
    assert result.status is Status.QUALITY
    assert result.summary.startswith("sample quality, not a bug: samples are noisier than the real spectra")
    _power_line(result)


def test_dist_skips_without_data(healthy):
    report = diffcheck.run_checks(healthy, select=["DIST"], seed=0)
    assert {r.status for r in report.results} == {Status.SKIP}
    assert "no --data" in report["DIST001"].summary


class _Canned(ReferencePipeline):
    """The healthy pipeline whose sampler returns canned spectra (fast), calling back 3 steps."""

    rows: np.ndarray
    drawn = 0

    def sample(self, n, *, generator=None, callback=None):
        x = torch.as_tensor(self.rows[self.drawn:self.drawn + n], dtype=torch.float32)[:, None, :]
        for i in range(3):
            if callback is not None:
                callback({"i": i, "t": 999 - 400 * i, "x_t": x, "x0_hat": x})
        self.drawn += n
        return x


def _canned(rows: np.ndarray) -> _Canned:
    pipe = _Canned.from_checkpoint(HEALTHY_CKPT)
    pipe.rows, pipe.drawn = rows, 0
    return pipe


def _draw(pipe, data, settings):
    ref = dist_reference(pipe, data, 0)
    return dist_samples(pipe, ref, settings, torch.Generator().manual_seed(0), lambda *a: None)


def test_noise_stops_after_the_first_batch(tiny_data):
    pipe = _canned(np.random.default_rng(5).standard_normal((64, 512)))
    s = _draw(pipe, tiny_data, {"min_samples": 8, "max_samples": 64})
    assert s.n == 8 and s.stop_reason.startswith("stopped after 8 samples: white noise")
    assert s.snapshots[0][:2] == (0, 999.0) and np.isnan(s.snapshots[-1][1])  # first step ... the output


def test_healthy_samples_draw_the_maximum_in_batches(tiny_data):
    ref_rows = tiny_data.x[~tiny_data.heldout]
    pipe = _canned(ref_rows[:40])
    s = _draw(pipe, tiny_data, {"min_samples": 8, "max_samples": 20})
    assert s.n == 20 and pipe.drawn == 20 and s.stop_reason == "drew the maximum, 20 samples"
    np.testing.assert_allclose(s.flux, tiny_data.flux[~tiny_data.heldout][:20], rtol=1e-5, atol=1e-5)


def test_samples_far_from_the_real_flux_but_not_noise_draw_the_maximum(tiny_data):
    # a flux gap is a quality figure, measured the better the more samples: no reason to stop early
    ref_rows = tiny_data.x[~tiny_data.heldout]
    pipe = _canned(0.5 * ref_rows[:40] - 0.4)  # spectra, but far from the real flux (pooled KS D ~ 0.5)
    s = _draw(pipe, tiny_data, {"min_samples": 8, "max_samples": 20})
    assert s.n == 20 and s.stop_reason == "drew the maximum, 20 samples"


@pytest.mark.parametrize("bad", [{"min_samples": 1}, {"min_samples": 10, "max_samples": 5}])
def test_nonsense_sample_counts_are_an_input_error(bad):
    with pytest.raises(diffcheck.InputError, match="min_samples"):
        sample_settings(bad)


# --- DIST005: the de-normalisation inverts the training normalisation (structural, no samples) ---

def test_DIST005_passes_when_to_flux_inverts_the_training_normalisation(healthy, reference):
    result = compute_check("DIST005", pipeline=healthy, dist_reference=reference)
    assert result.status is Status.PASS, result.message()
    assert result.observed["max_error"] < 1e-9 and result.observed["n_spectra"] == reference.flux.shape[0]


@pytest.mark.parametrize("member, words", [
    ("not_denormalised", "Pipeline.to_flux returns its input unchanged: samples stay in the network's space"),
    ("robust_constants", "Pipeline.to_flux rescales the flux: it returns"),
    ("wavelength_reversed", "Pipeline.to_flux reverses the wavelength order"),
])
def test_DIST005_names_what_a_wrong_de_normalisation_does(member, words, tiny_data):
    from tests.conftest import load_member

    pipe = load_member(member)
    ref = dist_reference(pipe, tiny_data, 0)
    result = compute_check("DIST005", pipeline=pipe, dist_reference=ref)
    assert result.status is Status.FAIL, result.message()
    assert result.summary.startswith(words), result.summary
    o = result.observed
    assert o["max_error"] > result.thresholds["max_error"]
    assert f"off by up to {o['max_error']:.3g} of the flux range" in result.summary
    if member == "robust_constants":  # the scale the planted constants imply: (p99 - p1) / (max - min)
        n = pipe.normaliser
        cls = type(pipe)
        assert o["affine_slope"] == pytest.approx((cls.P99 - cls.P1) / (n.hi - n.lo), rel=1e-6)


def test_DIST005_catches_a_shift_of_the_grid(healthy, reference):
    class Shifted(type(healthy)):
        def to_flux(self, x):
            return np.roll(super().to_flux(x), 3, axis=-1)

    pipe = Shifted.__new__(Shifted)
    pipe.__dict__.update(healthy.__dict__)
    result = compute_check("DIST005", pipeline=pipe, dist_reference=reference)
    assert result.status is Status.FAIL and "shifts the spectra by 3 px" in result.summary, result.summary

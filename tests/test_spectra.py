"""Tests of diffcheck.measure.spectra: the synthetic generator's physics and the HDF5 I/O."""

from __future__ import annotations


import h5py
import numpy as np
import pytest

from diffcheck.errors import InputError
from diffcheck.measure.spectra import (CITATION, LINES, SpectraSet, export_real_subset, generate_spectra,
                               read_spectra_h5, wavelength_grid, write_spectra_h5)

from tests.conftest import SHARED_DATA

# ../shared/data beside the checkout, wherever the clone lies (not an absolute path of one machine)
STELIB, MASTAR = SHARED_DATA / "stelib_4096.h5", SHARED_DATA / "mastarhc_4096.h5"
needs_real = pytest.mark.skipif(not (STELIB.is_file() and MASTAR.is_file()), reason="real spectra not present")


def _star(teff: float, logg: float = 4.0, feh: float = 0.0, n: int = 8, seed: int = 1) -> SpectraSet:
    """n noisy realisations of one star (degenerate parameter ranges)."""
    return generate_spectra(n, seed=seed, teff_range=(teff, teff), logg_range=(logg, logg), feh_range=(feh, feh))


def _depth(s: SpectraSet, center: float, half: float = 3.0, side: tuple[float, float] = (25.0, 45.0)) -> float:
    """1 - (min flux within +-half of center) / (pseudo-continuum: 95th percentile in side bands)."""
    mean = s.flux.mean(axis=0)
    off = np.abs(s.wave - center)
    core = mean[off <= half].min()
    cont = np.percentile(mean[(off >= side[0]) & (off <= side[1])], 95)
    return float(1.0 - core / cont)


def _center(name: str) -> float:
    return next(line.center_aa for line in LINES if line.name == name)


# ---------------------------------------------------------------------------- generator
def test_wavelength_grid_is_linear_float64_and_inclusive():
    w = wavelength_grid()
    assert w.dtype == np.float64 and w.shape == (4096,)
    assert w[0] == 3800.0 and w[-1] == 9000.0
    np.testing.assert_allclose(np.diff(w), (9000.0 - 3800.0) / 4095)
    assert wavelength_grid(16, 4000.0, 5000.0).shape == (16,)


def test_same_seed_same_spectra_and_other_seed_differs():
    a, b, c = generate_spectra(20, seed=7), generate_spectra(20, seed=7), generate_spectra(20, seed=8)
    for key in ("flux", "teff", "logg", "feh", "heldout"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.allclose(a.flux, c.flux) and not np.allclose(a.teff, c.teff)
    assert a.source == "synthetic:seed=7"


def test_first_stars_do_not_depend_on_n():
    small, big = generate_spectra(3, seed=2), generate_spectra(10, seed=2)
    np.testing.assert_array_equal(small.flux, big.flux[:3])
    np.testing.assert_array_equal(small.heldout, big.heldout[:3])


def test_shapes_dtypes_and_parameter_ranges():
    s = generate_spectra(50, length=512, seed=3, teff_range=(4000.0, 8000.0), logg_range=(2.0, 3.0))
    assert len(s) == 50 and s.flux.shape == (50, 512) and s.wave.shape == (512,)
    assert s.flux.dtype == np.float32 and s.teff.dtype == np.float32 and s.heldout.dtype == bool
    assert 4000.0 <= s.teff.min() and s.teff.max() <= 8000.0
    assert 2.0 <= s.logg.min() and s.logg.max() <= 3.0


@pytest.mark.parametrize("teff,logg,feh", [(3500.0, 5.0, 0.5), (3500.0, 1.0, 0.5), (12000.0, 5.0, -2.0)])
def test_flux_positive_and_finite_even_at_extremes(teff, logg, feh):
    s = _star(teff, logg, feh, n=20)
    assert np.isfinite(s.flux).all() and (s.flux > 0).all()


def test_random_population_positive_finite_with_continuum_near_one():
    s = generate_spectra(300, seed=4)
    assert np.isfinite(s.flux).all() and (s.flux > 0).all()
    med = np.median(s.flux, axis=1)  # continuum median is 1; lines pull the flux median below
    assert (med > 0.3).all() and (med < 1.1).all() and np.median(med) > 0.9


def test_noise_is_present_at_about_snr_100():
    s = _star(9500.0, n=1)
    band = (s.wave > 6000.0) & (s.wave < 6400.0)  # line-free, flux ~ 1 in an A star
    flux = s.flux[0, band].astype(np.float64)
    rel = np.std(np.diff(flux) / np.sqrt(2.0)) / flux.mean()  # pixel-to-pixel scatter
    assert 0.005 < rel < 0.02


def test_halpha_and_ca_k_are_absorption_lines():
    assert _depth(_star(9500.0), _center("H-alpha"), side=(120.0, 160.0)) > 0.2
    assert _depth(_star(5000.0), _center("Ca II K"), side=(60.0, 90.0)) > 0.4


def test_balmer_peaks_in_a_stars_and_metals_in_cool_stars():
    hot, cool = _star(9500.0), _star(4000.0)
    for name in ("H-alpha", "H-beta"):  # bluer Balmer lines sit in the K-star line forest
        assert _depth(hot, _center(name), side=(120.0, 160.0)) > _depth(cool, _center(name), side=(120.0, 160.0)) + 0.2
    for name in ("Na I D2", "Mg I b1"):
        assert _depth(cool, _center(name)) > _depth(hot, _center(name)) + 0.15


def test_gravity_and_metallicity_trends():
    # Stark wings: Balmer line wider in a dwarf than in a supergiant (flux 25 A off H-delta)
    wing = {g: _star(9500.0, logg=g).flux.mean(0)[np.searchsorted(wavelength_grid(), 4101.73 + 25.0)]
            for g in (1.5, 5.0)}
    assert wing[5.0] < wing[1.5] - 0.05
    # Ca II triplet stronger in giants; Mg b stronger for higher [M/H]
    assert _depth(_star(4500.0, logg=1.0), 8542.09) > _depth(_star(4500.0, logg=5.0), 8542.09)
    assert _depth(_star(5000.0, feh=0.5), 5183.60) > _depth(_star(5000.0, feh=-2.0), 5183.60) + 0.1


def test_heldout_fraction_is_about_twenty_percent():
    s = generate_spectra(3000, length=64, seed=5)
    assert 0.17 < s.heldout.mean() < 0.23
    np.testing.assert_array_equal(s.heldout, generate_spectra(3000, length=64, seed=5).heldout)


def test_bad_generator_arguments_raise():
    with pytest.raises(ValueError):
        generate_spectra(2, teff_range=(9000.0, 4000.0))
    with pytest.raises(ValueError):
        generate_spectra(2, resolution_fwhm_aa=0.0)
    with pytest.raises(ValueError):
        wavelength_grid(1)


def test_subset_keeps_rows_and_grid():
    s = generate_spectra(10, length=64)
    sub = s.subset([1, 3])
    np.testing.assert_array_equal(sub.flux, s.flux[[1, 3]])
    assert len(s.subset(s.heldout)) == s.heldout.sum() and len(s.subset(slice(0, 4))) == 4
    assert sub.wave is s.wave and sub.teff[1] == s.teff[3]


# ---------------------------------------------------------------------------- HDF5 I/O
def test_write_read_round_trip(tmp_path):
    s = generate_spectra(12, length=256, seed=6)
    path = tmp_path / "s.h5"
    write_spectra_h5(path, s, attrs={"note": "test"})
    r = read_spectra_h5(path)
    for key in ("wave", "flux", "teff", "logg", "feh", "heldout"):
        np.testing.assert_array_equal(getattr(r, key), getattr(s, key))
    assert r.source == s.source and r.name is None
    with h5py.File(path) as f:
        assert f.attrs["units"] == "relative F_lambda" and f.attrs["note"] == "test"
        assert f["flux"].compression == "gzip" and f["flux"].shuffle and f["wave"].dtype == np.float64


def test_read_without_optional_datasets(tmp_path):
    path = tmp_path / "bare.h5"
    with h5py.File(path, "w") as f:
        f["spec"] = np.ones((3, 5))
    r = read_spectra_h5(path, dataset="spec")
    assert r.wave is None and r.flux.dtype == np.float32 and not r.heldout.any()
    assert np.isnan(r.teff).all() and np.isnan(r.feh).all()


def _one_line_error(path, **kw) -> str:
    with pytest.raises(InputError) as info:
        read_spectra_h5(path, **kw)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file_is_input_error(tmp_path):
    assert "not found" in _one_line_error(tmp_path / "nope.h5")


def test_truncated_and_non_hdf5_files_are_input_errors(tmp_path):
    path = tmp_path / "cut.h5"
    write_spectra_h5(path, generate_spectra(20, length=512))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "HDF5" in _one_line_error(path)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5 at all\n")
    assert "HDF5" in _one_line_error(text)


def test_missing_dataset_lists_what_is_there(tmp_path):
    path = tmp_path / "s.h5"
    write_spectra_h5(path, generate_spectra(2, length=32))
    message = _one_line_error(path, dataset="flux_norm")
    assert "flux_norm" in message and "flux" in message and "wave" in message and "teff" in message


def test_one_dimensional_flux_and_mismatched_wave_are_input_errors(tmp_path):
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as f:
        f["flux"] = np.ones(32, np.float32)
    assert "2-D" in _one_line_error(flat)
    bad = tmp_path / "bad_wave.h5"
    with h5py.File(bad, "w") as f:
        f["flux"], f["wave"] = np.ones((2, 32), np.float32), np.arange(31.0)
    assert "wave" in _one_line_error(bad)
    bad_teff = tmp_path / "bad_teff.h5"
    with h5py.File(bad_teff, "w") as f:
        f["flux"], f["teff"] = np.ones((2, 32), np.float32), np.ones(3, np.float32)
    assert "teff" in _one_line_error(bad_teff)


@needs_real
def test_read_real_stelib_and_mastar_files():
    s = read_spectra_h5(STELIB)
    assert s.flux.shape == (130, 4096) and s.wave[0] == pytest.approx(3800.0) and s.wave[-1] == pytest.approx(9000.0)
    assert np.isnan(s.teff).any() and np.isfinite(s.teff).sum() > 50 and 0.05 < s.heldout.mean() < 0.4
    assert s.name[0] == "Feige110"
    norm = read_spectra_h5(STELIB, dataset="flux_norm")
    assert norm.flux.min() >= -1.0 - 1e-6 and norm.flux.max() <= 1.0 + 1e-6 and "flux_norm" in norm.source
    m = read_spectra_h5(MASTAR)
    assert m.flux.shape == (60, 4096) and np.isnan(m.teff).all()


@needs_real
def test_export_real_subset_in_relative_units_with_citation(tmp_path):
    dst = tmp_path / "real.h5"
    out = export_real_subset([STELIB, MASTAR], dst, per_file=4, seed=1)
    r = read_spectra_h5(dst)
    assert len(r) == 8 and len(out) == 8
    np.testing.assert_allclose(np.median(r.flux, axis=1), 1.0, rtol=1e-3)
    assert r.name[0].startswith("stelib:") and r.name[-1].startswith("mastarhc:")
    with h5py.File(dst) as f:
        assert f.attrs["citation"] == CITATION and "Le Borgne" in f.attrs["citation"]
        assert "BSD-3-Clause" in f.attrs["licence"]
    again = export_real_subset([STELIB, MASTAR], tmp_path / "again.h5", per_file=4, seed=1)
    np.testing.assert_array_equal(again.name, out.name)

"""Synthetic stellar-like spectra and HDF5 I/O for spectra files.

The generator is a toy model, not a stellar atmosphere: a Planck continuum times
multiplicative absorption profiles at real air wavelengths, with strengths that follow
the textbook behaviour of the MK classification (Gray & Corbally 2009, *Stellar Spectral
Classification*): Balmer lines peak near A0 (Teff ~ 9500 K), metal lines and molecular
bands grow towards cool stars and with [M/H], pressure broadening grows with log g.
It is meant to give diffusion-model diagnostics spectra with realistic structure
(continuum shape, line depths and widths, line blanketing, noise), nothing more.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy.special import erf

from diffcheck.errors import InputError

_C2_AA_K = 1.438777e8  # second radiation constant hc/k in Angstrom * Kelvin
_HELDOUT_FRACTION = 0.2
_FOREST_SEED, _FOREST_LINES = 1_234_567, 5000  # fixed: weak lines at the same place in every star
CITATION = ("Le Borgne et al. 2003, A&A 402, 433 (STELIB); Yan et al. 2019, ApJ 883, 175 (MaStar); "
            "Westfall et al. 2019, AJ 158, 231 (MaNGA DAP, MaStarHC)")
LICENCE = ("Spectra extracted from the FITS templates in the PyPI wheel sdss-mangadap==4.5.0 "
           "(BSD-3-Clause, (c) SDSS), flux-conserving rebin; cite the references in `citation`.")


@dataclass(frozen=True)
class Line:
    """An absorption feature: air wavelength (Angstrom) and the ``kind`` that sets its physics.

    ``strength`` is the central optical depth at instrumental resolution for a star where
    the kind is at its strongest; ``width_aa`` is the Lorentzian (pressure) FWHM at log g = 4,
    or for molecular features the band width (G band) or the e-folding length redward of
    the band head (TiO).
    """

    name: str
    center_aa: float
    kind: str
    strength: float = 1.0
    width_aa: float = 0.3


def _lines(kind: str, strength: float, width: float, *pairs: tuple[str, float]) -> tuple[Line, ...]:
    return tuple(Line(name, center, kind, strength, width) for name, center in pairs)

LINES: tuple[Line, ...] = (
    Line("H-alpha", 6562.80, "balmer", 0.9, 7.0), Line("H-beta", 4861.32, "balmer", 1.4, 10.0),
    Line("H-gamma", 4340.46, "balmer", 1.9, 12.0), Line("H-delta", 4101.73, "balmer", 2.2, 13.0),
    Line("H-epsilon", 3970.07, "balmer", 2.4, 13.0), Line("H8", 3889.05, "balmer", 2.4, 13.0),
    Line("H9", 3835.38, "balmer", 2.2, 12.0), Line("H10", 3797.90, "balmer", 2.0, 11.0),
    Line("H11", 3770.63, "balmer", 1.8, 10.0), Line("H12", 3750.15, "balmer", 1.6, 9.0),
    *_lines("paschen", 0.45, 5.0, ("P17", 8467.25), ("P16", 8502.48), ("P15", 8545.38),
            ("P14", 8598.39), ("P13", 8665.02), ("P12", 8750.47), ("P11", 8862.78)),
    Line("Ca II K", 3933.66, "ca_hk", 6.0, 3.0), Line("Ca II H", 3968.47, "ca_hk", 4.5, 3.0),
    Line("Na I D2", 5889.95, "sodium", 1.0, 0.8), Line("Na I D1", 5895.92, "sodium", 0.8, 0.8),
    Line("Mg I b4", 5167.32, "magnesium", 0.6, 0.6), Line("Mg I b2", 5172.68, "magnesium", 0.9, 0.6),
    Line("Mg I b1", 5183.60, "magnesium", 1.1, 0.6),
    Line("Ca II 8498", 8498.02, "ca_triplet", 0.4, 1.0), Line("Ca II 8542", 8542.09, "ca_triplet", 0.8, 1.5),
    Line("Ca II 8662", 8662.14, "ca_triplet", 0.65, 1.3),
    *_lines("metal", 0.45, 0.3, ("Fe I 4045", 4045.81), ("Fe I 4383", 4383.55), ("Fe I 4404", 4404.75),
            ("Fe I 4957", 4957.60), ("Fe I 5269", 5269.54), ("Fe I 5328", 5328.04),
            ("Fe I 5371", 5371.49), ("Fe I 5405", 5405.77)),
    Line("Ca I 4226", 4226.73, "metal", 0.9, 0.6),
    Line("K I 7665", 7664.90, "metal", 0.35, 0.5), Line("K I 7699", 7698.96, "metal", 0.3, 0.5),
    Line("G band (CH)", 4300.0, "molecular", 0.35, 30.0),
)
"""Atomic lines and the G band; real air wavelengths (Angstrom)."""

TIO_BANDS: tuple[Line, ...] = tuple(
    Line(f"TiO {head:.0f}", head, "tio", depth, scale) for head, depth, scale in (
        (4761.0, 0.6, 60.0), (4954.0, 1.0, 120.0), (5167.0, 1.2, 150.0), (5448.0, 0.9, 150.0),
        (5847.0, 0.8, 150.0), (6159.0, 1.3, 180.0), (6651.0, 0.7, 150.0), (7054.0, 1.1, 250.0),
        (7589.0, 0.8, 200.0), (8432.0, 0.35, 150.0), (8859.0, 0.4, 150.0)))
"""TiO band heads (air, Angstrom): bands degrade to the red, sharp edge at the head."""


@dataclass(frozen=True)
class _KindRule:
    """How a kind responds to the star: tau0 = strength T(teff) 10^(metal_exp [M/H] + g_tau (log g - 4)),
    Lorentz FWHM = width 10^(g_width (log g - 4)) T(teff)^t_width (pressure broadening)."""

    dmax: float  # largest central depth: saturated cores keep residual flux at ~3 A resolution
    window_aa: float  # half-width of the region where the profile is evaluated
    t50: float | None  # midpoint of the logistic 'cool' factor T(teff); None: Balmer peak at 9500 K
    dt: float = 1.0
    metal_exp: float = 1.0
    g_tau: float = 0.0
    g_width: float = 0.3
    t_width: float = 0.0


_RULES: dict[str, _KindRule] = {
    "balmer": _KindRule(0.85, 250.0, None, metal_exp=0.0, g_width=0.3, t_width=0.5),
    "paschen": _KindRule(0.6, 40.0, None, metal_exp=0.0, g_width=0.3, t_width=0.5),
    "ca_hk": _KindRule(0.85, 150.0, 7800.0, 600.0, g_width=0.3),
    "ca_triplet": _KindRule(0.5, 40.0, 6800.0, 900.0, g_tau=-0.2, g_width=0.2),
    "sodium": _KindRule(0.6, 60.0, 5800.0, 600.0, g_tau=0.1, g_width=0.35),
    "magnesium": _KindRule(0.7, 40.0, 6300.0, 600.0, g_tau=0.1, g_width=0.3),
    "metal": _KindRule(0.6, 20.0, 6000.0, 700.0),
    "molecular": _KindRule(0.5, 50.0, 6200.0, 500.0),
    "tio": _KindRule(1.0, 0.0, 3750.0, 120.0, metal_exp=0.5),
}


@dataclass(frozen=True, eq=False)
class SpectraSet:
    """Spectra on a common wavelength grid with their stellar parameters.

    ``wave`` [L] float64 Angstrom (air) or None when a file has none; ``flux`` [N, L] float32;
    ``teff``, ``logg``, ``feh`` [N] float32 (NaN when unknown); ``heldout`` [N] bool;
    ``name`` [N] str or None.
    """

    wave: np.ndarray | None
    flux: np.ndarray
    teff: np.ndarray
    logg: np.ndarray
    feh: np.ndarray
    heldout: np.ndarray
    source: str
    name: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.flux.ndim != 2:
            raise ValueError(f"flux must be 2-D [N, L], got shape {self.flux.shape}")
        if self.wave is not None and self.wave.shape != self.flux.shape[1:]:
            raise ValueError(f"wave shape {self.wave.shape} does not match flux shape {self.flux.shape}")
        for field in ("teff", "logg", "feh", "heldout", "name"):
            value = getattr(self, field)
            if value is not None and value.shape != self.flux.shape[:1]:
                raise ValueError(f"{field} shape {value.shape} does not match {len(self.flux)} spectra")

    def __len__(self) -> int:
        return int(self.flux.shape[0])

    def subset(self, idx) -> SpectraSet:
        """Spectra selected by ``idx`` (indices, boolean mask or slice), same grid and source."""
        rows = np.atleast_1d(np.arange(len(self))[idx])
        return SpectraSet(self.wave, self.flux[rows], self.teff[rows], self.logg[rows], self.feh[rows],
                          self.heldout[rows], self.source, None if self.name is None else self.name[rows])


def wavelength_grid(length: int = 4096, start: float = 3800.0, stop: float = 9000.0) -> np.ndarray:
    """Linear air-wavelength grid in Angstrom, float64 [length], ``start`` and ``stop`` included."""
    if length < 2 or not start < stop:
        raise ValueError(f"need length >= 2 and start < stop, got {length}, {start}, {stop}")
    return np.linspace(start, stop, int(length), dtype=np.float64)


# --------------------------------------------------------------------------- generator physics
def _cool(teff: np.ndarray, t50: float, dt: float) -> np.ndarray:
    """Logistic factor -> 1 for teff << t50: metals stay neutral/unionised in cool atmospheres."""
    return 1.0 / (1.0 + np.exp(np.clip((teff - t50) / dt, -50.0, 50.0)))


def _balmer_factor(teff: np.ndarray) -> np.ndarray:
    """Balmer strength: n=2 population (Boltzmann) times neutral fraction (Saha) peaks near 9500 K."""
    d = np.log10(teff / 9500.0)
    return 0.05 + np.exp(-0.5 * (d / np.where(d < 0.0, 0.11, 0.3)) ** 2)


def _planck_continuum(wave: np.ndarray, teff: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """Planck B_lambda(T) ~ lambda^-5 / (exp(hc / lambda k T) - 1), times a flux-calibration
    tilt exp(a x + b x^2) over x in [-1, 1], scaled to median 1 per spectrum. [N, L].

    T is a colour temperature: Teff for FGK stars, up to ~1.9 Teff for A stars, whose optical
    F_lambda is steeper than a blackbody (H bound-free opacity grows with lambda), ~0.8 Teff
    for M stars (molecular blanketing pushes flux to the red); calibrated
    on the 4050/5550/8200 A flux ratios of STELIB stars.
    """
    x = np.linspace(-1.0, 1.0, wave.size)
    t_col = teff * (1.0 + 0.9 * (1.0 - _cool(teff, 7200.0, 700.0)) - 0.2 * _cool(teff, 3850.0, 150.0))
    log_b = -5.0 * np.log(wave / 5500.0) - np.log(np.expm1(_C2_AA_K / (wave * t_col[:, None])))
    cont = np.exp(log_b - log_b.max(axis=1, keepdims=True) + tilt[:, :1] * x + tilt[:, 1:] * x**2)
    return cont / np.median(cont, axis=1, keepdims=True)


def _pseudo_voigt(x: np.ndarray, fwhm_g: float, fwhm_l: np.ndarray) -> np.ndarray:
    """Peak-normalised pseudo-Voigt (Thompson, Cox & Hastings 1987): Gaussian instrument and
    Doppler core convolved with Lorentzian pressure wings. x [w], fwhm_l [N, 1] -> [N, w]."""
    fg, fl = fwhm_g, fwhm_l
    f = (fg**5 + 2.69269 * fg**4 * fl + 2.42843 * fg**3 * fl**2 + 4.47163 * fg**2 * fl**3
         + 0.07842 * fg * fl**4 + fl**5) ** 0.2
    r = fl / f
    eta = 1.36603 * r - 0.47719 * r**2 + 0.11116 * r**3
    lor, gau = eta * 0.63662, (1.0 - eta) * 0.93944  # peak heights of unit-area profiles x f
    u2 = (x / f) ** 2
    return (lor / (1.0 + 4.0 * u2) + gau * np.exp(-4.0 * np.log(2.0) * u2)) / (lor + gau)


def _shape(line: Line, x: np.ndarray, fwhm_g: float, fwhm_l: np.ndarray) -> np.ndarray:
    """Optical-depth profile of one feature (1 at its strongest), [N or 1, w]."""
    sigma = fwhm_g / 2.3548
    if line.kind == "molecular":  # top-hat of the G4300 band width, smoothed by the instrument
        half = line.width_aa / 2.0
        return 0.5 * (erf((x + half) / (np.sqrt(2) * sigma)) - erf((x - half) / (np.sqrt(2) * sigma)))[None]
    if line.kind == "tio":  # sharp head, exponential recovery to the red (band degraded to the red)
        step = 0.5 * (1.0 + erf(x / (np.sqrt(2) * sigma)))
        return (step * np.exp(-np.maximum(x, 0.0) / line.width_aa))[None]
    edge = _pseudo_voigt(np.array([_RULES[line.kind].window_aa]), fwhm_g, fwhm_l)
    return np.clip((_pseudo_voigt(x, fwhm_g, fwhm_l) - edge) / (1.0 - edge), 0.0, None)


def _strength(line: Line, teff: np.ndarray, logg: np.ndarray, feh: np.ndarray):
    """Central optical depth tau0 [N, 1] and Lorentzian FWHM [N, 1] of ``line`` for each star."""
    rule = _RULES[line.kind]
    tfac = _balmer_factor(teff) if rule.t50 is None else _cool(teff, rule.t50, rule.dt)
    tau0 = line.strength * tfac * 10.0 ** (rule.metal_exp * feh + rule.g_tau * (logg - 4.0))
    fwhm_l = line.width_aa * 10.0 ** (rule.g_width * (logg - 4.0)) * tfac**rule.t_width
    return tau0[:, None], fwhm_l[:, None]


def _window(line: Line, wave: np.ndarray) -> slice:
    rule = _RULES[line.kind]
    lo, hi = (line.center_aa - 10.0, line.center_aa + 5.0 * line.width_aa) if line.kind == "tio" \
        else (line.center_aa - rule.window_aa, line.center_aa + rule.window_aa)
    return slice(int(np.searchsorted(wave, lo)), int(np.searchsorted(wave, hi)))


def _forest_template(wave: np.ndarray, fwhm_g: float) -> np.ndarray:
    """Optical depth of 5000 weak lines at fixed pseudo-random wavelengths (line blanketing by the
    Fe-peak elements), at instrumental resolution: row 0 for warm stars, row 1 the extra, much
    bluer, blanketing of K/M stars. [2, L]."""
    rng = np.random.default_rng(_FOREST_SEED)
    centers = rng.uniform(9100.0**-2, 3700.0**-2, _FOREST_LINES) ** -0.5  # density ~ lambda^-3
    depths = 10.0 ** rng.uniform(-2.3, -1.0, _FOREST_LINES)
    tau = np.zeros((2, wave.size))
    for c, d in zip(centers, depths):
        sl = slice(np.searchsorted(wave, c - 3 * fwhm_g), np.searchsorted(wave, c + 3 * fwhm_g))
        tau[:, sl] += np.outer([d * (4500.0 / c) ** 2.5, d * (4500.0 / c) ** 6],
                               np.exp(-4.0 * np.log(2.0) * ((wave[sl] - c) / fwhm_g) ** 2))
    return tau


def _absorption(wave, teff, logg, feh, fwhm_g: float) -> np.ndarray:
    """Product of all line transmissions, 1 - dmax (1 - exp(-tau)) per feature, [N, L]."""
    scale = 10.0 ** (0.6 * feh[:, None]) * np.stack([_cool(teff, 6200.0, 700.0), 2.5 * _cool(teff, 4700.0, 400.0)], 1)
    tau = scale @ _forest_template(wave, fwhm_g)
    trans = np.exp(-tau / (1.0 + tau / 4.0))  # blends saturate: at least ~2 % flux left
    for line in LINES + TIO_BANDS:
        sl = _window(line, wave)
        if sl.stop <= sl.start:
            continue
        tau0, fwhm_l = _strength(line, teff, logg, feh)
        tau = tau0 * _shape(line, wave[sl] - line.center_aa, fwhm_g, fwhm_l)
        trans[:, sl] *= 1.0 - _RULES[line.kind].dmax * -np.expm1(-tau)
    return trans


def _draw_parameters(rng: np.random.Generator, n: int, teff_range, logg_range, feh_range):
    """Teff log-uniform, log g and [M/H] uniform; one row of draws per star (prefix-stable)."""
    lo, hi = np.array([teff_range, logg_range, feh_range], dtype=np.float64).T
    lo[0], hi[0] = np.log(lo[0]), np.log(hi[0])
    p = lo + (hi - lo) * rng.random((n, 3))
    return np.exp(p[:, 0]), p[:, 1], p[:, 2]


def _check_generate_args(n, teff_range, logg_range, feh_range, fwhm, snr) -> None:
    for label, (lo, hi) in (("teff_range", teff_range), ("logg_range", logg_range), ("feh_range", feh_range)):
        if not lo <= hi:
            raise ValueError(f"{label} must be (low, high) with low <= high, got {(lo, hi)}")
    if n < 0 or teff_range[0] <= 0 or fwhm <= 0 or snr <= 0:
        raise ValueError(f"need n >= 0, Teff > 0, resolution_fwhm_aa > 0, snr > 0; "
                         f"got n={n}, teff_range={teff_range}, fwhm={fwhm}, snr={snr}")


def generate_spectra(n: int, *, length: int = 4096, seed: int = 0,
                     teff_range: tuple[float, float] = (3500.0, 12000.0),
                     logg_range: tuple[float, float] = (1.0, 5.0),
                     feh_range: tuple[float, float] = (-2.0, 0.5),
                     resolution_fwhm_aa: float = 3.0, snr: float = 100.0) -> SpectraSet:
    """Synthetic stellar-like spectra on ``wavelength_grid(length)``, relative F_lambda.

    Flux = Planck continuum (median 1, a few % calibration tilt) x absorption lines (pseudo-Voigt
    at instrumental FWHM ``resolution_fwhm_aa``, strengths set by Teff, log g, [M/H]) x weak
    line forest x TiO bands (Teff < 4000 K), plus photon noise (S/N = ``snr`` at flux 1).
    Deterministic for a ``seed``; the first k stars do not depend on ``n``. About 20 % of the
    stars are flagged ``heldout``.
    """
    _check_generate_args(n, teff_range, logg_range, feh_range, resolution_fwhm_aa, snr)
    rng_par, rng_tilt, rng_noise, rng_split = np.random.default_rng(seed).spawn(4)
    wave = wavelength_grid(length)
    teff, logg, feh = _draw_parameters(rng_par, n, teff_range, logg_range, feh_range)
    tilt = rng_tilt.normal(0.0, [0.03, 0.015], size=(n, 2))
    fwhm_g = float(np.hypot(resolution_fwhm_aa, 0.68 * (wave[1] - wave[0])))  # + pixel box
    clean = _planck_continuum(wave, teff, tilt) * _absorption(wave, teff, logg, feh, fwhm_g)
    # photon noise sigma = sqrt(F)/snr, at most 20 % of F and draws within 4 sigma: flux stays > 0
    sigma = np.minimum(np.sqrt(clean) / snr, 0.2 * clean)
    flux = clean + sigma * np.clip(rng_noise.standard_normal(clean.shape), -4.0, 4.0)
    return SpectraSet(wave, flux.astype(np.float32), teff.astype(np.float32), logg.astype(np.float32),
                      feh.astype(np.float32), rng_split.random(n) < _HELDOUT_FRACTION, f"synthetic:seed={seed}")


# --------------------------------------------------------------------------- HDF5 I/O
def write_spectra_h5(path: str | os.PathLike, spectra: SpectraSet, *, attrs: dict | None = None) -> None:
    """Write ``spectra`` to HDF5 (datasets wave, flux, teff, logg, feh, heldout[, name]).

    ``flux`` is gzip-4 + shuffle compressed, one chunk row per spectrum. File attributes:
    ``source``, ``units`` = "relative F_lambda", then ``attrs`` (which may override them).
    The file is written to a temporary name and moved into place.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            _write_datasets(f, spectra)
            f.attrs.update({"source": spectra.source, "units": "relative F_lambda", **(attrs or {})})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_datasets(f: h5py.File, spectra: SpectraSet) -> None:
    n, length = spectra.flux.shape
    if spectra.wave is not None:
        f.create_dataset("wave", data=np.asarray(spectra.wave, np.float64))
    f.create_dataset("flux", data=np.asarray(spectra.flux, np.float32), compression="gzip",
                     compression_opts=4, shuffle=True, chunks=(1, length) if n and length else None)
    for key in ("teff", "logg", "feh"):
        f.create_dataset(key, data=np.asarray(getattr(spectra, key), np.float32))
    f.create_dataset("heldout", data=np.asarray(spectra.heldout, bool))
    if spectra.name is not None:
        f.create_dataset("name", data=np.char.encode(np.asarray(spectra.name, str), "utf-8"))


def _dataset_names(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda key, obj: names.append(key) if isinstance(obj, h5py.Dataset) else None)
    return names


def _read_optional(f: h5py.File, key: str, n: int, fill, dtype, where: str) -> np.ndarray:
    if key not in f:
        return np.full(n, fill, dtype)
    value = f[key][()]
    if np.shape(value) != (n,):
        raise InputError(f"{where}: dataset '{key}' has shape {np.shape(value)}, expected ({n},) like the flux")
    return np.asarray(value, dtype)


def _read_layout(f: h5py.File, dataset: str, where: str) -> SpectraSet:
    if not isinstance(f.get(dataset), h5py.Dataset):
        present = ", ".join(_dataset_names(f)) or "none"
        raise InputError(f"{where}: no dataset '{dataset}' (datasets present: {present})")
    flux = np.asarray(f[dataset][()])
    if flux.ndim != 2 or not np.issubdtype(flux.dtype, np.number):
        raise InputError(f"{where}: dataset '{dataset}' has shape {flux.shape} and dtype {flux.dtype}; "
                         f"expected a 2-D numeric array [n_spectra, n_pixels]")
    n, length = flux.shape
    wave = None if "wave" not in f else np.asarray(f["wave"][()], np.float64)
    if wave is not None and wave.shape != (length,):
        raise InputError(f"{where}: dataset 'wave' has shape {wave.shape}, but '{dataset}' has {length} pixels")
    name = _read_optional(f, "name", n, b"", object, where) if "name" in f else None
    params = [_read_optional(f, key, n, np.nan, np.float32, where) for key in ("teff", "logg", "feh")]
    source = str(f.attrs.get("source", Path(f.filename).name))
    return SpectraSet(wave, flux.astype(np.float32, copy=False), *params,
                      _read_optional(f, "heldout", n, False, bool, where),
                      source if dataset == "flux" else f"{source}[{dataset}]",
                      None if name is None else np.char.decode(name.astype("S"), "utf-8", "replace"))


def read_spectra_h5(path: str | os.PathLike, *, dataset: str = "flux") -> SpectraSet:
    """Read a spectra file written by :func:`write_spectra_h5` (or the STELIB/MaStarHC files).

    ``dataset`` names the flux dataset (e.g. ``flux_norm``). Optional datasets default to NaN
    parameters, no held-out spectra, ``wave=None``. Raises :class:`InputError` (one line) for a
    missing or unreadable file, a missing dataset, non-2-D flux or inconsistent shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"spectra file not found: {path}" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        with h5py.File(path, "r") as f:
            return _read_layout(f, dataset, str(path))
    except (OSError, KeyError, RuntimeError) as err:  # h5py: bad signature, truncated, corrupt
        reason = " ".join(str(err).split()).partition(" (")[2].split(",")[0].rstrip(")") or type(err).__name__
        raise InputError(f"{path}: not a readable HDF5 spectra file ({reason})") from None


def export_real_subset(src_paths, dst_path: str | os.PathLike, *, per_file: int, seed: int = 0) -> SpectraSet:
    """Copy ``per_file`` randomly chosen spectra from each real library file into ``dst_path``.

    Uses the native ``flux`` dataset divided by each spectrum's median (relative F_lambda, so
    STELIB's erg/s/cm2/A and MaStarHC's relative units agree). Names become ``<library>:<name>``,
    the library taken from the file name (``stelib_4096.h5`` -> ``stelib``). Attributes
    ``citation`` and ``licence`` carry the credits. Returns what was written.
    """
    if per_file < 1:
        raise ValueError(f"per_file must be >= 1, got {per_file}")
    rng = np.random.default_rng(seed)
    parts = [_median_scaled(_pick(read_spectra_h5(p), per_file, rng), Path(p).stem.split("_")[0]) for p in src_paths]
    if not parts:
        raise ValueError("export_real_subset needs at least one source file")
    wave = parts[0].wave
    if any(p.wave is None or wave is None or not np.allclose(p.wave, wave) for p in parts):
        raise InputError("export_real_subset: source files do not share one wavelength grid")
    keys = ("flux", "teff", "logg", "feh", "heldout", "name")
    stack = {k: np.concatenate([getattr(p, k) for p in parts]) for k in keys}
    subset = SpectraSet(wave=wave, source="real:" + "+".join(Path(p).name for p in src_paths), **stack)
    write_spectra_h5(dst_path, subset, attrs={"citation": CITATION, "licence": LICENCE, "selection_seed": seed,
                                              "units": "relative F_lambda (each spectrum / its median)"})
    return subset


def _pick(spectra: SpectraSet, per_file: int, rng: np.random.Generator) -> SpectraSet:
    rows = np.sort(rng.choice(len(spectra), size=min(per_file, len(spectra)), replace=False))
    return spectra.subset(rows)


def _median_scaled(spectra: SpectraSet, library: str) -> SpectraSet:
    median = np.nanmedian(spectra.flux.astype(np.float64), axis=1)
    if not np.all(median > 0):
        raise InputError(f"{spectra.source}: a selected spectrum has a non-positive median flux")
    names = spectra.name if spectra.name is not None else np.arange(len(spectra)).astype(str)
    return SpectraSet(spectra.wave, (spectra.flux / median[:, None]).astype(np.float32), spectra.teff,
                      spectra.logg, spectra.feh, spectra.heldout, spectra.source,
                      np.char.add(f"{library}:", names.astype(str)))

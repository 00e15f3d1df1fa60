"""Bad or degenerate ``--data``: an input error naming the file, never a verdict on the model (exit 2)."""

from __future__ import annotations

import h5py
import numpy as np

from tests.catalogue import Case, quick_run
from tests.conftest import TINY_DATA

L = 512  # pixels per spectrum of the healthy tiny fixture


def _real(n: int = 40) -> np.ndarray:
    with h5py.File(TINY_DATA) as f:
        return np.asarray(f["flux"][:n], np.float32)


def _h5(name: str, make, key: str = "flux", extra=None):
    def setup(tmp):
        with h5py.File(tmp / name, "w") as f:
            f[key] = make()
            for k, v in (extra or {}).items():
                f[k] = v
    return setup


def _data(id_, stderr, name="d.h5", make=None, key="flux", extra=None, setup=None):
    return Case(f"data-{id_}", "data", lambda tmp: quick_run(tmp, "--data", tmp / name), stderr,
                setup=setup or _h5(name, make, key, extra))


def _scaled(factor):
    return lambda: _real() * factor


def _one_constant_row():
    flux = _real()
    flux[5] = 1.0
    return flux


def _with(value):
    def make():
        flux = _real()
        flux[2, 7] = value
        return flux
    return make


CASES = [
    Case("data-missing", "data", lambda tmp: quick_run(tmp, "--data", tmp / "none.h5"),
         r"^error: --data .*none\.h5: not found$"),
    Case("data-is-a-directory", "data", lambda tmp: quick_run(tmp, "--data", tmp),
         r"^error: --data .*: a directory, not an HDF5 file$"),
    _data("random-bytes", r"^error: .*d\.h5: not a readable HDF5 spectra file",
          setup=lambda tmp: (tmp / "d.h5").write_bytes(np.random.default_rng(0).bytes(4096))),
    _data("empty-file", r"^error: .*d\.h5: not a readable HDF5 spectra file",
          setup=lambda tmp: (tmp / "d.h5").write_bytes(b"")),
    _data("truncated", r"^error: .*d\.h5: not a readable HDF5 spectra file",
          setup=lambda tmp: (tmp / "d.h5").write_bytes(TINY_DATA.read_bytes()[:5000])),
    _data("dataset-absent", r"^error: .*d\.h5.*'flux'.*fluxes", make=_real, key="fluxes"),
    _data("one-dimensional", r"^error: .*2-D", make=lambda: np.ones(L, np.float32)),
    _data("wrong-length", r"^error: data d\.h5:flux has 300 pixels per spectrum but the pipeline works on 512$",
          make=lambda: _real()[:, :300]),
    _data("no-spectra", r"^error: data d\.h5:flux holds no spectra$", make=lambda: np.ones((0, L), np.float32)),
    _data("nan", r"^error: data d\.h5:flux has non-finite flux \(NaN or Inf\) in 1 of 40 spectra \(first at row 2\)$",
          make=_with(np.nan)),
    _data("inf", r"^error: data d\.h5:flux has non-finite flux \(NaN or Inf\) in 1 of 40", make=_with(np.inf)),
    _data("one-spectrum", r"^error: data d\.h5:flux holds 1 spectrum; diffcheck needs at least 8 ",
          make=lambda: _real(1)),
    _data("seven-spectra", r"^error: data d\.h5:flux holds 7 spectra; diffcheck needs at least 8 ",
          make=lambda: _real(7)),
    _data("constant-flux", r"^error: data d\.h5:flux: 40 of 40 spectra are constant \(first at row 0, flux 1 at every",
          make=lambda: np.ones((40, L), np.float32)),
    _data("one-constant-row", r"^error: data d\.h5:flux: 1 of 40 spectra are constant \(first at row 5",
          make=_one_constant_row),
    _data("identical-spectra", r"^error: data d\.h5:flux: all 40 spectra are identical",
          make=lambda: np.repeat(_real(1), 40, axis=0)),
    _data("units-x1000", r"^error: data d\.h5:flux: after the pipeline's normaliser \(global_minmax, .* lie beyond \+-10 "
          r".*other units than the training data", make=_scaled(1000.0)),
    _data("units-negative", r"^error: data d\.h5:flux: after the pipeline's normaliser .* beyond \+-10",
          make=_scaled(-50.0)),
    _data("wave-mismatch", r"^error: .*wave", make=_real, extra={"wave": np.arange(L - 1.0)}),
    _data("heldout-mismatch", r"^error: .*heldout", make=_real, extra={"heldout": np.ones(3, bool)}),
    _data("strings", r"^error: .*d\.h5", make=lambda: np.array([b"a" * 8] * 40)),
    Case("data-wrong-dataset-flag", "data",
         lambda tmp: quick_run(tmp, "--data", tmp / "d.h5", "--dataset", "flux_norm"),
         r"^error: .*d\.h5.*flux_norm", setup=_h5("d.h5", _real)),
]

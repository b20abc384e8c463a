"""Every fit on awkward input: flagged, never a crash, a warning or silent garbage.

Each entry of ``FITS`` makes realistic data for a given spatial shape and fits it; the
tests feed constant, NaN, all-zero, negative and masked voxels through every fit and check
shapes, dtypes and the ``failed`` / ``status`` bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from models_synth import sphere_directions, wassr_model, z_model

from xnatpic.models import (
    FitStatus,
    b0_map,
    fit_adc,
    fit_dti,
    fit_t1_ir,
    fit_t1_vtr,
    fit_t2,
    fit_t2star,
    normalize_zspectrum,
)

pytestmark = pytest.mark.filterwarnings("error")

TE = 10.0 * np.arange(1, 13)
TR = np.array([100.0, 300.0, 800.0, 1500.0, 3000.0, 6000.0])
TI = np.array([50.0, 150.0, 400.0, 900.0, 2000.0, 5000.0])
BVALS = np.array([0.0] + [500.0] * 6 + [1000.0] * 6)
BVECS = np.vstack([np.zeros((1, 3)), sphere_directions(6), sphere_directions(6)[:, [1, 2, 0]]])
WASSR = np.arange(-1.0, 1.0 + 1e-9, 0.1)
CEST = np.concatenate([[-300.0], np.arange(-5.0, 5.0 + 1e-9, 0.5), [300.0]])


@dataclass(frozen=True)
class Case:
    fit: Callable[..., object]
    x: np.ndarray
    make: Callable[[np.ndarray], np.ndarray]  # one value per voxel (n,) -> signal (n, M)
    param: str
    constant_fails: bool = True


def _dwi(v: np.ndarray) -> np.ndarray:
    d = np.einsum("n,ij->nij", v, np.diag([1.7e-3, 0.5e-3, 0.4e-3]))
    return 1000.0 * np.exp(-BVALS * np.einsum("mi,nij,mj->nm", BVECS, d, BVECS))


FITS: dict[str, Case] = {
    "t2": Case(
        lambda s, **k: fit_t2(s, TE, **k),
        TE,
        lambda v: 1000.0 * np.exp(-TE / (40.0 + 40.0 * v[:, None])),
        "t2",
    ),
    "t2_offset": Case(
        lambda s, **k: fit_t2(s, TE, offset=True, **k),
        TE,
        lambda v: 20.0 + 1000.0 * np.exp(-TE / (40.0 + 40.0 * v[:, None])),
        "t2",
    ),
    "t2_loglinear": Case(
        lambda s, **k: fit_t2(s, TE, method="loglinear", **k),
        TE,
        lambda v: 1000.0 * np.exp(-TE / (40.0 + 40.0 * v[:, None])),
        "t2",
    ),
    "t2_arlo": Case(
        lambda s, **k: fit_t2(s, TE, method="arlo", **k),
        TE,
        lambda v: 1000.0 * np.exp(-TE / (40.0 + 40.0 * v[:, None])),
        "t2",
    ),
    "t2star": Case(
        lambda s, **k: fit_t2star(s, TE / 4, **k),
        TE,
        lambda v: 900.0 * np.exp(-TE / 4 / (10.0 + 10.0 * v[:, None])),
        "t2star",
    ),
    "t1_vtr": Case(
        lambda s, **k: fit_t1_vtr(s, TR, **k),
        TR,
        lambda v: 800.0 * (1 - np.exp(-TR / (800.0 + 800.0 * v[:, None]))),
        "t1",
    ),
    "t1_ir": Case(
        lambda s, **k: fit_t1_ir(s, TI, **k),
        TI,
        lambda v: np.abs(800.0 * (1 - 2 * np.exp(-TI / (800.0 + 800 * v[:, None])))),
        "t1",
    ),
    "adc": Case(
        lambda s, **k: fit_adc(s, BVALS, **k),
        BVALS,
        lambda v: 1000.0 * np.exp(-BVALS * (0.5e-3 + 1e-3 * v[:, None])),
        "adc",
    ),
    "adc_nlls": Case(
        lambda s, **k: fit_adc(s, BVALS, method="nlls", **k),
        BVALS,
        lambda v: 1000.0 * np.exp(-BVALS * (0.5e-3 + 1e-3 * v[:, None])),
        "adc",
    ),
    "dti": Case(
        lambda s, **k: fit_dti(s, BVALS, BVECS, **k), BVALS, lambda v: _dwi(0.5 + v), "fa"
    ),
    "b0_parabola": Case(
        lambda s, **k: b0_map(s, WASSR, **k),
        WASSR,
        lambda v: 1000.0 * wassr_model(WASSR, 0.4 * v - 0.2),
        "b0",
    ),
    "b0_lorentzian": Case(
        lambda s, **k: b0_map(s, WASSR, method="lorentzian", **k),
        WASSR,
        lambda v: 1000.0 * wassr_model(WASSR, 0.4 * v - 0.2),
        "b0",
    ),
    "zspectrum": Case(
        lambda s, **k: normalize_zspectrum(s, CEST, **k),
        CEST,
        lambda v: (
            1000.0
            * np.concatenate(
                [np.ones((v.size, 1)), z_model(CEST[1:-1], 0.2 * v), np.ones((v.size, 1))], 1
            )
        ),
        "m0",
        constant_fails=False,
    ),
}

NAMES = sorted(FITS)


def data(case: Case, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    n = int(np.prod(shape, dtype=int))
    values = np.random.default_rng(seed).uniform(0.0, 1.0, n)
    return case.make(values).reshape((*shape, case.x.size))


def flat(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).reshape(-1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(), (5,), (4, 3), (3, 2, 2)])
def test_shapes_and_success(name: str, shape: tuple[int, ...]) -> None:
    case = FITS[name]
    fit = case.fit(data(case, shape))
    param = getattr(fit, case.param)
    assert param.shape == shape
    assert fit.failed.shape == shape
    assert fit.status.shape == shape
    assert fit.status.dtype == np.uint8
    assert not np.any(fit.failed)
    assert np.all(np.isfinite(param))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int16, np.float64)],
)
def test_dtype(name: str, dtype: type, expected: type) -> None:
    case = FITS[name]
    signal = data(case, (6,))
    if np.dtype(dtype).kind == "i":
        signal = np.round(signal)
    fit = case.fit(signal.astype(dtype))
    assert getattr(fit, case.param).dtype == expected


@pytest.mark.parametrize("name", NAMES)
def test_bad_voxels_are_flagged(name: str) -> None:
    case = FITS[name]
    signal = data(case, (7,))
    signal[1] = signal[1, 0]  # constant
    signal[2, 3] = np.nan
    signal[3] = 0.0
    signal[4] = -np.abs(signal[4])
    signal[5, 2] = np.inf
    fit = case.fit(signal)
    failed = flat(fit.failed)
    status = flat(fit.status)
    param = flat(getattr(fit, case.param))
    invalid = np.uint8(FitStatus.INVALID_INPUT)
    assert failed[[2, 3, 4, 5]].all()
    assert np.all(status[[2, 3, 4, 5]] & invalid)
    assert failed[1] == case.constant_fails
    assert not failed[[0, 6]].any()
    assert np.all(np.isnan(param[failed]))
    assert np.all(np.isfinite(param[~failed]))
    for field in ("r_squared", "rmse"):
        if hasattr(fit, field):
            assert np.all(np.isnan(flat(getattr(fit, field))[failed]))


@pytest.mark.parametrize("name", NAMES)
def test_mask(name: str) -> None:
    case = FITS[name]
    signal = data(case, (4, 5))
    mask = np.zeros((4, 5), dtype=bool)
    mask[1:3, 1:4] = True
    full = case.fit(signal)
    part = case.fit(signal, mask=mask)
    got = getattr(part, case.param)
    # Same voxels, same answer up to float32 working precision (BLAS blocking differs).
    np.testing.assert_allclose(got[mask], getattr(full, case.param)[mask], rtol=1e-4)
    assert np.all(np.isnan(got[~mask]))
    assert not part.failed.any()
    assert np.all(part.status[~mask] == FitStatus.MASKED)
    assert np.all(part.status[mask] == FitStatus.OK)
    # Integer masks work too; an empty mask gives all-NaN maps and no failure.
    np.testing.assert_array_equal(
        getattr(case.fit(signal, mask=mask.astype(np.uint8)), case.param), got
    )
    empty = case.fit(signal, mask=np.zeros((4, 5), dtype=bool))
    assert np.all(np.isnan(getattr(empty, case.param)))
    assert not empty.failed.any()
    assert np.all(empty.status == FitStatus.MASKED)


@pytest.mark.parametrize("name", NAMES)
def test_empty_volume(name: str) -> None:
    case = FITS[name]
    fit = case.fit(np.zeros((0, 3, case.x.size)))
    assert getattr(fit, case.param).shape == (0, 3)


@pytest.mark.parametrize("method", ["loglinear", "nlls"])
def test_adc_beyond_its_bounds_is_long_or_short_not_failed(method: str) -> None:
    """A signal that grows with b (noise) has a negative log-linear ADC: LONG (no decay
    measured), value kept; one that vanishes at the first b > 0 is SHORT."""
    b = np.array([0.0, 500.0, 1000.0])
    signal = np.array([[100.0, 101.0, 102.0],
                       [1000.0, 0.5, 0.3],  # gone by b = 500: ADC ~ 0.015 mm²/s
                       [1000.0, 1000.0 * np.exp(-0.5), 1000.0 * np.exp(-1.0)]])
    fit = fit_adc(signal, b, method=method)
    assert fit.failed.tolist() == [False, False, False]
    assert fit.status.tolist() == [FitStatus.LONG, FitStatus.SHORT, FitStatus.OK]
    assert np.isfinite(fit.adc).all()
    assert fit.adc[0] <= 1e-6 and fit.adc[1] >= 1e-2
    assert fit.adc[2] == pytest.approx(1e-3, rel=1e-4)

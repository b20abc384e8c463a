"""The noise gate's float32 shortcuts give numpy's float64 results bit for bit.

Oracles: ``np.median`` of a float64 copy (what the background estimate took before) and
``np.nanmax(np.abs(data), axis=3)`` (the foreground peak image), on Rayleigh, Gaussian,
odd/even-sized, NaN-holding and real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from xnatpic.analysis.inputs import read_series
from xnatpic.analysis.mask import _peak, foreground_mask, otsu_threshold
from xnatpic.analysis.morphology import dilate_in_plane
from xnatpic.analysis.noise import _GAUSS_ABS_MEDIAN, _RAYLEIGH_MEDIAN, estimate_noise
from xnatpic.arrays import median

RNG = np.random.default_rng(20261205)


def _numpy_sigma(data: np.ndarray, anatomy: np.ndarray) -> tuple[float, str, int]:
    """The background estimate on a float64 copy with np.median."""
    background = np.asarray(data[~dilate_in_plane(anatomy, 4)], dtype=np.float64).ravel()
    background = background[np.isfinite(background) & (background != 0)]
    if np.count_nonzero(background < 0) > 0.05 * background.size:
        return (float(np.median(np.abs(background)) / _GAUSS_ABS_MEDIAN),
                "background (Gaussian)", background.size)
    return float(np.median(background) / _RAYLEIGH_MEDIAN), "background (Rayleigh)", \
        background.size


@pytest.mark.parametrize("n", [1, 2, 3, 1000, 1001, 65536, 65537])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_numpys_float64_median(n: int, dtype: type) -> None:
    values = RNG.rayleigh(3.0, n).astype(dtype)
    values[: n // 3] = values[n // 3 : 2 * (n // 3)]  # ties
    assert median(values, float64=True) == float(np.median(values.astype(np.float64)))


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("frames", [2, 3])
def test_background_sigma_bit_for_bit(gaussian: bool, dtype: type, frames: int) -> None:
    shape = (40, 33, 3, frames)
    if gaussian:
        data = RNG.normal(0.0, 7.0, shape)
    else:
        data = np.abs(RNG.normal(0, 7.0, shape) + 1j * RNG.normal(0, 7.0, shape))
    data[10:25, 8:20] += 200.0
    data = data.astype(dtype)
    if dtype is not np.int16:
        data[0, 0, 0, 0] = np.nan
        data[1, 0, 0, 0] = np.inf
    data[2, 0, 0] = 0
    if dtype is np.int16:
        data[3, 0, 0, 0] = np.iinfo(np.int16).min  # |x| overflows int16
    anatomy = np.zeros(shape[:3], dtype=bool)
    anatomy[10:25, 8:20] = True
    est = estimate_noise(data, anatomy)
    sigma, method, count = _numpy_sigma(data, anatomy)
    assert (est.sigma, est.method, est.n_samples) == (sigma, method, count)


def test_peak_is_nanmax_of_abs() -> None:
    data = RNG.normal(0, 5.0, (9, 7, 2, 4)).astype(np.float32)
    data[0, 0, 0, :2] = np.nan  # some frames NaN
    data[1, 1, 1, :] = np.nan  # all frames NaN: NaN
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmax(np.abs(data), axis=3)
    np.testing.assert_array_equal(_peak(data), expected)


def test_phantom_gate_bit_for_bit(phantom_dicom: dict[str, Path]) -> None:
    """On the phantom's DICOM series the gate figures equal the numpy oracle's."""
    checked = 0
    for folder in phantom_dicom.values():
        data = read_series(folder).data
        if data.ndim != 4 or data.shape[3] < 2:
            continue
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(_peak(data), np.nanmax(np.abs(data), axis=3))
        anatomy = foreground_mask(data)
        est = estimate_noise(data, anatomy)
        if est.method.startswith("background"):
            assert (est.sigma, est.method, est.n_samples) == _numpy_sigma(data, anatomy)
            checked += 1
    assert checked >= 3, checked


@pytest.mark.parametrize("shape", [(40, 33, 5, 2), (1, 9, 3, 2), (12, 1, 4, 3), (30, 30, 1, 2)])
def test_foreground_specks_removed_slice_by_slice(shape: tuple[int, ...]) -> None:
    """One labelling pass over the stacked slices removes what scipy.ndimage removes slice
    by slice (components never cross slices)."""
    data = RNG.random(shape).astype(np.float32)
    data[data < 0.55] = 0.0  # specks, runs and blobs of every size, up to the edges
    peak = np.nanmax(np.abs(data), axis=3)
    expected = peak > otsu_threshold(peak)
    for k in range(shape[2]):
        labels, n = ndimage.label(expected[:, :, k])
        sizes = ndimage.sum(expected[:, :, k], labels, index=np.arange(1, n + 1))
        expected[:, :, k][np.isin(labels, np.flatnonzero(sizes < 4) + 1)] = False
    np.testing.assert_array_equal(foreground_mask(data), expected)

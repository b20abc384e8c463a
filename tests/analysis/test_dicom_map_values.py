"""The stored values of a DICOM map: every finite value scaled, rounded and clipped on
its own to 16 bits, every other voxel padded (PixelPaddingValue -32768); against the
straightforward numpy expression over the finite voxels alone."""

from __future__ import annotations

import warnings

import numpy as np

from xnatpic.analysis.dicom_maps import stored_values


def _expected(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    finite = np.isfinite(values)
    if not finite.any():
        slope, intercept = 1.0, 0.0
    else:
        lo, hi = float(values[finite].min()), float(values[finite].max())
        if hi == lo:
            slope, intercept = max(abs(lo), 1.0) * 1e-4, lo
        else:
            slope = (hi - lo) / (32767 - (-32767))
            intercept = lo - slope * -32767
    stored = np.full(values.shape, -32768, dtype="<i2")
    stored[finite] = np.clip(np.round((values[finite] - intercept) / slope), -32767,
                             32767).astype(np.int16)
    return stored, slope, intercept


def test_stored_values_equal_the_finite_voxels_scaled_alone():
    rng = np.random.default_rng(0)
    for i in range(200):
        values = rng.normal(0, 10.0 ** rng.integers(-3, 6), (7, 5, 3))
        values[rng.random(values.shape) < 0.3] = np.nan
        values[rng.random(values.shape) < 0.05] = np.inf
        values[rng.random(values.shape) < 0.05] = -np.inf
        if i % 10 == 0:
            values[np.isfinite(values)] = 5.0  # constant map
        if i % 10 == 1:
            values[:] = np.nan  # nothing fitted
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning about the padded voxels
            stored, slope, intercept = stored_values(values)
        expected, expected_slope, expected_intercept = _expected(values)
        assert stored.dtype == np.dtype("<i2")
        assert (stored == expected).all() and (slope, intercept) == (expected_slope,
                                                                      expected_intercept)

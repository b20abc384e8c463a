"""The automatic ROI and the analysis mask use one Otsu routine (analysis/mask.py), checked
against a brute-force Otsu split of the raw values."""

from __future__ import annotations

import numpy as np
import pytest

from xnatpic.analysis.mask import otsu_threshold
from xnatpic.roi import otsu_threshold as roi_otsu_threshold
from xnatpic.roi.errors import RoiError


def _brute_force_split(values: np.ndarray) -> float:
    """The value below which Otsu's criterion puts the lower class (all sorted splits)."""
    v = np.sort(values)
    best, cut = -1.0, v[0]
    for k in range(1, v.size):
        low, high = v[:k], v[k:]
        between = low.size * high.size * (low.mean() - high.mean()) ** 2
        if between > best:
            best, cut = between, v[k - 1]
    return float(cut)


@pytest.mark.parametrize("seed", range(5))
def test_split_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(10, 1, 400), rng.normal(40 + 5 * seed, 2, 200)])
    threshold = otsu_threshold(values)
    cut = _brute_force_split(values)
    assert np.array_equal(values > threshold, values > cut)


def test_threshold_sits_mid_gap_between_separated_classes():
    values = np.r_[np.zeros(50), np.full(50, 10.0)]
    assert otsu_threshold(values) == pytest.approx(5.0, abs=10 / 256)


def test_roi_calls_the_same_routine():
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(5, 1, 300), rng.normal(30, 3, 300)])
    assert roi_otsu_threshold(values) == otsu_threshold(values)


def test_roi_refuses_a_flat_image():
    with pytest.raises(RoiError, match="fewer than two distinct finite values"):
        roi_otsu_threshold(np.full(10, 3.0))

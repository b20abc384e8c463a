"""The numpy image operations of the mask and noise gate give what scipy.ndimage gives.

scipy.ndimage is the oracle (installed with the package: other modules use it); masks are
random at several densities and shapes, plus the real foreground masks of the phantom's
scans, so that edge handling, specks and large blobs are all compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xnatpic.analysis.inputs import read_series
from xnatpic.analysis.morphology import box_mean, dilate_in_plane, remove_small_components

RNG = np.random.default_rng(20261204)
SHAPES_3D = [(7, 5, 1), (2, 3, 2), (64, 48, 3), (96, 64, 5), (3, 40, 7)]


def _scipy_remove(mask: np.ndarray, min_size: int) -> np.ndarray:
    labels, n = ndimage.label(mask)
    out = mask.copy()
    if n:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        out[np.isin(labels, np.flatnonzero(sizes < min_size) + 1)] = False
    return out


@pytest.mark.parametrize("shape", SHAPES_3D)
@pytest.mark.parametrize("size", [5, (5, 5, 1), (3, 5, 1)])
def test_box_mean_is_uniform_filter(shape, size):
    a = RNG.normal(10.0, 3.0, size=shape)
    assert np.allclose(box_mean(a, size), ndimage.uniform_filter(a, size=size),
                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES_3D)
@pytest.mark.parametrize("iterations", [1, 4])
def test_dilation_is_binary_dilation_with_the_in_plane_cross(shape, iterations):
    mask = RNG.random(shape) > 0.85
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    expected = ndimage.binary_dilation(mask, structure=structure, iterations=iterations)
    assert np.array_equal(dilate_in_plane(mask, iterations), expected)


@pytest.mark.parametrize("density", [0.1, 0.3, 0.45, 0.6, 0.9])
@pytest.mark.parametrize("shape", [(5, 5), (64, 48), (181, 203)])
def test_small_components_as_label_and_sizes(density, shape):
    mask = RNG.random(shape) < density
    assert np.array_equal(remove_small_components(mask, 4), _scipy_remove(mask, 4))


def test_serpentine_component_is_one():
    """Rows joined at alternate ends: one long winding component (the slowest case for
    label propagation), and a 3-pixel piece cut off its first row."""
    mask = np.zeros((40, 40), dtype=bool)
    mask[::2] = True
    mask[1::4, -1] = True
    mask[3::4, 0] = True
    mask[0, 3] = False  # (0, 0)-(0, 2) is now a speck of 3 pixels
    kept = remove_small_components(mask, 4)
    assert np.array_equal(kept, _scipy_remove(mask, 4))
    assert np.array_equal(mask & ~kept, np.isin(np.arange(1600), [0, 1, 2]).reshape(40, 40))


def test_real_foreground_masks(phantom_dicom):
    for scan in ("2", "6", "7"):
        data = read_series(phantom_dicom[scan]).data
        peak = np.max(np.abs(data), axis=3)
        for cut in np.percentile(peak, [20, 50, 80]):
            mask = peak > cut
            for k in range(mask.shape[2]):
                assert np.array_equal(remove_small_components(mask[:, :, k], 4),
                                      _scipy_remove(mask[:, :, k], 4))
            frame = peak.astype(np.float64)
            assert np.allclose(box_mean(frame * frame, (5, 5, 1)),
                               ndimage.uniform_filter(frame * frame, size=(5, 5, 1)),
                               rtol=1e-12)

"""Unit tests of the affine helpers: LPS → RAS, slice step, FSL bvec rule."""

from __future__ import annotations

import numpy as np
import pytest

from xnatpic.errors import ConversionError
from xnatpic.nifti.affine import affine_from_slices, fsl_bvec, image_space_direction, lps_to_ras

ORIENT = np.eye(3)


def test_lps_to_ras_negates_x_and_y_rows():
    lps = np.arange(16, dtype=float).reshape(4, 4)
    ras = lps_to_ras(lps)
    np.testing.assert_array_equal(ras[0], -lps[0])
    np.testing.assert_array_equal(ras[1], -lps[1])
    np.testing.assert_array_equal(ras[2:], lps[2:])


def test_single_slice_uses_thickness_along_normal():
    a = affine_from_slices([np.array([1.0, 2.0, 3.0])], ORIENT, (0.5, 0.25), 1.16)
    np.testing.assert_allclose(a[:3, :3], np.diag([0.25, 0.5, 1.16]))
    np.testing.assert_allclose(a[:3, 3], [1, 2, 3])


def test_single_slice_without_thickness_falls_back_to_one_mm():
    a = affine_from_slices([np.zeros(3)], ORIENT, (0.5, 0.25), float("nan"))
    assert a[2, 2] == 1.0


def test_slice_step_sign_comes_from_positions():
    positions = [np.array([0.0, 0.0, z]) for z in (4.0, 2.0, 0.0)]
    a = affine_from_slices(positions, ORIENT, (1.0, 1.0), 1.0)
    np.testing.assert_allclose(a[:3, 2], [0, 0, -2])
    np.testing.assert_allclose(a[:3, 3], [0, 0, 4])


def test_slices_sharing_one_position_are_refused():
    with pytest.raises(ConversionError, match="share one position"):
        affine_from_slices([np.zeros(3), np.zeros(3)], ORIENT, (1.0, 1.0), 1.0)


def test_image_space_direction_and_fsl_flip():
    affine = np.diag([-0.2, -0.3, 1.0, 1.0])  # det > 0
    d = image_space_direction(np.array([-1.0, 0.0, 0.0]), affine)
    np.testing.assert_allclose(d, [1, 0, 0])
    np.testing.assert_allclose(fsl_bvec(d, affine), [-1, 0, 0])
    radiological = np.diag([0.2, -0.3, 1.0, 1.0])  # det < 0
    np.testing.assert_allclose(fsl_bvec(np.array([1.0, 0, 0]), radiological), [1, 0, 0])
    np.testing.assert_array_equal(image_space_direction(None, affine), [0, 0, 0])

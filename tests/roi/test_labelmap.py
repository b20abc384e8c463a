"""NIfTI label map on another resolution and orientation than the map: analytic statistics."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

from tests.roi.helpers import world, write_map_resource
from xnatpic.roi import Grid, MaskSourceError, read_label_map, session_roi_stats
from xnatpic.roi.stats import FLAG_ALL_EXCLUDED

# Map grid: i along -y (1 mm), j along +x (1 mm), k along +z (2 mm). Voxel centres:
# x = -8 + j, y = 10 - i, z = -5 + 2k.
MAP_SHAPE = (20, 16, 6)
MAP_AFFINE = np.array([[0.0, 1.0, 0.0, -8.0],
                       [-1.0, 0.0, 0.0, 10.0],
                       [0.0, 0.0, 2.0, -5.0],
                       [0.0, 0.0, 0.0, 1.0]])
# Label grid: 0.5 mm isotropic, i along +x, j along +z, k along -y; covers the map.
LABEL_SHAPE = (41, 29, 49)
LABEL_AFFINE = np.array([[0.5, 0.0, 0.0, -10.0],
                         [0.0, 0.0, -0.5, 12.0],
                         [0.0, 0.5, 0.0, -7.0],
                         [0.0, 0.0, 0.0, 1.0]])
# Boxes in RAS mm, [low, high) per axis; their faces lie between map voxel centres.
BOXES = {1: ((-4.5, 2.5), (-3.5, 5.5), (-4.0, 2.0)),      # x 7 values, y 9, z 3
         2: ((3.5, 6.5), (-8.5, -5.5), (2.0, 6.0)),       # x {4,5,6}, y 3, z {3,5}
         3: ((5.5, 6.5), (0.5, 2.5), (-2.0, 0.0))}        # x {6}, y {1,2}, z {-1}
NAMES = {1: "tumour", 2: "muscle", 3: "necrosis"}


def t2_of(xyz: np.ndarray) -> np.ndarray:
    """The map: linear in world coordinates, NaN (failed fit) on the plane x = 6."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    t2 = 50.0 + 2.0 * x + 0.5 * y + z
    return np.where(np.isclose(x, 6.0), np.nan, t2)


def _label_volume() -> np.ndarray:
    xyz = world(LABEL_SHAPE, LABEL_AFFINE)
    labels = np.zeros(LABEL_SHAPE, np.int16)
    for label, box in BOXES.items():
        inside = np.ones(LABEL_SHAPE, bool)
        for axis, (lo, hi) in enumerate(box):
            inside &= (xyz[..., axis] >= lo) & (xyz[..., axis] < hi)
        labels[inside] = label
    return labels


def _uniform_stats(*axes: np.ndarray) -> tuple[float, float, int]:
    """Mean, sample SD and count of 50 + 2x + 0.5y + z over a full grid of the axes values."""
    coef = (2.0, 0.5, 1.0)
    n = math.prod(len(a) for a in axes)
    mean = 50.0 + sum(c * a.mean() for c, a in zip(coef, axes, strict=True))
    var_pop = sum(c * c * a.var() for c, a in zip(coef, axes, strict=True))
    return mean, math.sqrt(var_pop * n / (n - 1)), n


@pytest.fixture
def session(tmp_path):
    session = tmp_path / "s1"
    t2 = t2_of(world(MAP_SHAPE, MAP_AFFINE))
    write_map_resource(session, "T2MAP", {"T2": t2}, MAP_AFFINE)
    masks = session / "RESOURCES" / "MASKS"
    masks.mkdir(parents=True)
    nib.save(nib.Nifti1Image(_label_volume(), LABEL_AFFINE), masks / "labels.nii.gz")
    (masks / "labels_labels.json").write_text(json.dumps({str(k): v for k, v in
                                                          NAMES.items()}))
    return session


class TestLabelMap:
    def test_resampled_mask_is_the_box_on_the_map_grid(self, session):
        mask = read_label_map(session / "RESOURCES" / "MASKS" / "labels.nii.gz")
        assert mask.names == ["tumour", "muscle", "necrosis"]
        on_map = mask.on_grid(Grid(MAP_SHAPE, MAP_AFFINE))
        xyz = world(MAP_SHAPE, MAP_AFFINE)
        for label, box in BOXES.items():
            expected = np.ones(MAP_SHAPE, bool)
            for axis, (lo, hi) in enumerate(box):
                expected &= (xyz[..., axis] >= lo) & (xyz[..., axis] < hi)
            assert np.array_equal(on_map[NAMES[label]], expected), NAMES[label]

    def test_statistics_equal_the_analytic_values(self, session):
        result = session_roi_stats(session, session_label="s1", map_labels=None, mask="MASKS")
        rows = {r["roi"]: r for r in result.rows}
        assert set(rows) == set(NAMES.values())

        mean, sd, n = _uniform_stats(np.arange(-4, 3.0), np.arange(-3, 6.0),
                                     np.array([-3.0, -1.0, 1.0]))
        tumour = rows["tumour"]
        assert (tumour["n"], tumour["n_excluded"]) == (n, 0) == (189, 0)
        assert tumour["mean"] == pytest.approx(mean, abs=1e-4)
        assert tumour["median"] == pytest.approx(mean, abs=1e-4)  # symmetric distribution
        assert tumour["sd"] == pytest.approx(sd, rel=1e-5)
        assert tumour["units"] == "ms" and tumour["map"] == "T2" and tumour["flag"] == ""

        # muscle: x = 6 failed (NaN): 6 voxels excluded, the x in {4, 5} kept
        mean, sd, n = _uniform_stats(np.array([4.0, 5.0]), np.array([-8.0, -7.0, -6.0]),
                                     np.array([3.0, 5.0]))
        muscle = rows["muscle"]
        assert (muscle["n"], muscle["n_excluded"]) == (n, 6) == (12, 6)
        assert muscle["mean"] == pytest.approx(mean, abs=1e-4)
        assert muscle["sd"] == pytest.approx(sd, rel=1e-5)
        # quartiles of the 12 values, by numpy's linear interpolation on sorted values
        x, y, z = np.meshgrid([4.0, 5.0], [-8.0, -7.0, -6.0], [3.0, 5.0], indexing="ij")
        values = np.sort((50 + 2 * x + 0.5 * y + z).ravel())
        assert muscle["q1"] == pytest.approx(values[2] + 0.75 * (values[3] - values[2]))
        assert muscle["q3"] == pytest.approx(values[8] + 0.25 * (values[9] - values[8]))

    def test_all_nan_roi_is_flagged(self, session):
        result = session_roi_stats(session, session_label="s1", map_labels=["T2MAP"],
                                   mask="MASKS")
        necrosis = next(r for r in result.rows if r["roi"] == "necrosis")
        assert necrosis["flag"] == FLAG_ALL_EXCLUDED
        assert (necrosis["n"], necrosis["n_excluded"]) == (0, 2)
        assert math.isnan(necrosis["mean"])
        assert result.flagged == [necrosis]

    def test_same_grid_is_identity(self):
        labels = _label_volume()
        grid = Grid(LABEL_SHAPE, LABEL_AFFINE)
        from xnatpic.roi.grid import resample_masks

        out = resample_masks({"a": labels == 1}, grid, grid)
        assert np.array_equal(out["a"], labels == 1)

    def test_outside_the_label_grid_is_not_in_the_roi(self):
        small = Grid((2, 2, 2), np.diag([1.0, 1.0, 1.0, 1.0]))
        far = Grid((3, 3, 3), np.array([[1.0, 0, 0, 100], [0, 1, 0, 0], [0, 0, 1, 0],
                                         [0, 0, 0, 1]]))
        from xnatpic.roi.grid import resample_masks

        assert not resample_masks({"a": np.ones((2, 2, 2), bool)}, small, far)["a"].any()


class TestLabelMapErrors:
    def test_fractional_values_are_refused(self, tmp_path):
        path = tmp_path / "m.nii.gz"
        nib.save(nib.Nifti1Image(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), path)
        with pytest.raises(MaskSourceError, match=r"m\.nii\.gz: a label map must hold integer"):
            read_label_map(path)

    def test_empty_label_map_is_refused(self, tmp_path):
        path = tmp_path / "m.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4)), path)
        with pytest.raises(MaskSourceError, match="holds no label"):
            read_label_map(path)

    def test_bad_names_json(self, tmp_path):
        path = tmp_path / "m.nii.gz"
        nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.int16), np.eye(4)), path)
        (tmp_path / "m_labels.json").write_text("{not json")
        with pytest.raises(MaskSourceError, match=r"m_labels\.json: cannot read label names"):
            read_label_map(path)

    def test_not_nifti(self, tmp_path):
        path = tmp_path / "m.nii.gz"
        path.write_bytes(b"garbage")
        with pytest.raises(MaskSourceError, match=r"m\.nii\.gz: not a readable NIfTI"):
            read_label_map(path)

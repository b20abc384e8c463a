"""RTSTRUCT contours rasterised on the map grid; frames of reference checked."""

from __future__ import annotations

import numpy as np
import pytest

from tests.roi.helpers import circle, lps_geometry, rtstruct, world, write_map_resource
from xnatpic.nifti.affine import LPS_TO_RAS
from xnatpic.roi import (
    FrameOfReferenceError,
    Grid,
    MaskSourceError,
    RoiError,
    read_rtstruct,
    session_roi_stats,
)
from xnatpic.roi.rtstruct import rtstruct_from_dataset

FOR = "1.2.826.0.1.3680043.10.1000.1"
OTHER_FOR = "1.2.826.0.1.3680043.10.1000.2"
VOXEL = 0.5
POSITIONS = [(-16.0, -16.0, z) for z in (-1.0, 0.0, 1.0)]
CENTRE, RADIUS = (0.3, -1.2, 0.0), 8.0


def _map_grid() -> Grid:
    return Grid((64, 64, 3), lps_geometry(64, 64, (VOXEL, VOXEL), POSITIONS))


def _lps_centres(grid: Grid) -> np.ndarray:
    return world(grid.shape, LPS_TO_RAS @ grid.affine)  # LPS_TO_RAS is its own inverse


class TestDisc:
    def test_disc_within_one_voxel_ring(self, tmp_path):
        path = tmp_path / "rs.dcm"
        rtstruct({"tumour": [circle(CENTRE, RADIUS)]}, FOR).save_as(path, enforce_file_format=True)
        contours = read_rtstruct(path)
        assert contours.frame_of_reference_uid == FOR
        grid = _map_grid()
        mask = contours.on_grid(grid)["tumour"]
        lps = _lps_centres(grid)
        dist = np.hypot(lps[..., 0] - CENTRE[0], lps[..., 1] - CENTRE[1])
        on_slice = np.isclose(lps[..., 2], CENTRE[2])
        assert not mask[~on_slice].any()  # other slices are 1 mm away: no contour there
        assert mask[on_slice & (dist < RADIUS - VOXEL)].all()
        assert not mask[on_slice & (dist > RADIUS + VOXEL)].any()
        area = mask.sum() * VOXEL * VOXEL
        assert area == pytest.approx(np.pi * RADIUS**2, rel=0.03)

    def test_inner_contour_is_a_hole(self, tmp_path):
        ds = rtstruct({"rim": [circle(CENTRE, RADIUS), circle(CENTRE, 4.0)]}, FOR)
        mask = rtstruct_from_dataset(ds, "rs").on_grid(_map_grid())["rim"]
        lps = _lps_centres(_map_grid())
        dist = np.hypot(lps[..., 0] - CENTRE[0], lps[..., 1] - CENTRE[1])
        on_slice = np.isclose(lps[..., 2], 0.0)
        assert not mask[on_slice & (dist < 4.0 - VOXEL)].any()
        assert mask[on_slice & (dist > 4.0 + VOXEL) & (dist < RADIUS - VOXEL)].all()

    def test_map_in_another_orientation(self):
        # sagittal-ish map grid: i along z, j along y, k along x; a contour in a y-z plane
        affine = np.array([[0.0, 0.0, 1.0, -2.0], [0.0, 0.5, 0.0, -10.0],
                           [0.5, 0.0, 0.0, -10.0], [0, 0, 0, 1.0]])
        grid = Grid((40, 40, 5), affine)
        t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
        x_ras = 0.0  # k = 2
        ras = np.stack([np.full_like(t, x_ras), 6 * np.cos(t), 6 * np.sin(t)], -1)
        lps = (LPS_TO_RAS[:3, :3] @ ras.T).T
        mask = rtstruct_from_dataset(rtstruct({"c": [lps]}, FOR), "rs").on_grid(grid)["c"]
        assert mask[:, :, 2].sum() * 0.25 == pytest.approx(np.pi * 36, rel=0.05)
        assert not np.delete(mask, 2, axis=2).any()

    def test_oblique_disc(self):
        """A disc in a plane tilted by 30 degrees: a slab one map voxel thick."""
        grid = Grid((40, 40, 40), np.diag([0.5, 0.5, 0.5, 1.0]) + np.array(
            [[0, 0, 0, -10.0], [0, 0, 0, -10.0], [0, 0, 0, -10.0], [0, 0, 0, 0]]))
        a = np.deg2rad(30)
        normal = np.array([0.0, np.sin(a), np.cos(a)])       # RAS
        u = np.array([1.0, 0.0, 0.0])
        v = np.cross(normal, u)
        centre, radius = np.array([0.2, -0.4, 0.3]), 6.0
        t = np.linspace(0, 2 * np.pi, 240, endpoint=False)
        ras = centre + radius * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
        lps = (LPS_TO_RAS[:3, :3] @ ras.T).T
        mask = rtstruct_from_dataset(rtstruct({"d": [lps]}, FOR), "rs").on_grid(grid)["d"]
        xyz = world(grid.shape, grid.affine) - centre
        depth = xyz @ normal
        rho = np.linalg.norm(xyz - depth[..., None] * normal, axis=-1)
        assert mask[(np.abs(depth) < 0.2) & (rho < radius - 0.5)].all()
        assert not mask[np.abs(depth) > 0.3].any()
        assert not mask[rho > radius + 0.5].any()
        volume = mask.sum() * 0.5**3
        assert volume == pytest.approx(np.pi * radius**2 * 0.5, rel=0.05)

    def test_non_planar_contour_is_refused(self):
        t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
        poly = np.stack([5 * np.cos(t), 5 * np.sin(t), 3 * np.cos(2 * t)], -1)  # saddle
        contours = rtstruct_from_dataset(rtstruct({"saddle": [poly]}, FOR), "rs.dcm")
        with pytest.raises(RoiError, match=r"rs\.dcm: ROI 'saddle': contour 1 is not planar"):
            contours.on_grid(_map_grid())

    def test_not_an_rtstruct(self, tmp_path):
        ds = rtstruct({"a": [circle(CENTRE, 2)]}, FOR)
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        with pytest.raises(MaskSourceError, match="not an RT Structure Set"):
            rtstruct_from_dataset(ds, "x.dcm")

    def test_short_contour(self):
        ds = rtstruct({"a": [np.zeros((2, 3))]}, FOR)
        with pytest.raises(MaskSourceError, match=r"ROI 'a' contour 1 has 6 ContourData"):
            rtstruct_from_dataset(ds, "x.dcm")


def _session(tmp_path, mask_for: str):
    session = tmp_path / "s1"
    grid = _map_grid()
    t2 = np.full(grid.shape, 40.0)
    write_map_resource(session, "T2MAP", {"T2": t2}, grid.affine, frame_uid=FOR)
    (session / "RESOURCES" / "RTSTRUCT").mkdir(parents=True)
    rtstruct({"tumour": [circle(CENTRE, RADIUS)]}, mask_for).save_as(
        session / "RESOURCES" / "RTSTRUCT" / "rs.dcm", enforce_file_format=True)
    return session


class TestFrameOfReference:
    def test_same_frame_is_used(self, tmp_path):
        result = session_roi_stats(_session(tmp_path, FOR), session_label="s1",
                                   map_labels=None, mask="RTSTRUCT")
        (row,) = result.rows
        assert row["roi"] == "tumour" and row["mean"] == pytest.approx(40.0)
        assert row["n"] == pytest.approx(np.pi * RADIUS**2 / VOXEL**2, rel=0.03)

    def test_other_frame_is_refused(self, tmp_path):
        session = _session(tmp_path, OTHER_FOR)
        with pytest.raises(FrameOfReferenceError,
                           match=rf"rs\.dcm: FrameOfReferenceUID {OTHER_FOR} differs from "
                                 rf"that of map .*T2\.nii\.gz \({FOR}\)"):
            session_roi_stats(session, session_label="s1", map_labels=None, mask="RTSTRUCT")

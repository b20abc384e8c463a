"""Statistics, the automatic mask, mask folders and frame-of-reference fallbacks."""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest

from tests.roi.helpers import circle, mr_images, rtstruct, write_map_resource
from xnatpic.analysis.mask import foreground_mask as analysis_mask
from xnatpic.roi import (
    FrameOfReferenceError,
    MaskSourceError,
    RoiError,
    foreground_mask,
    otsu_threshold,
    read_mask_folder,
    roi_stats,
    session_roi_stats,
)
from xnatpic.roi.maps import load_maps
from xnatpic.roi.stats import FLAG_ALL_EXCLUDED, FLAG_EMPTY
from xnatpic.roi.summary import gather_project, session_metadata


class TestRoiStats:
    def test_known_values(self):
        values = np.array([1.0, 2.0, 3.0, 4.0, np.nan, np.inf, 100.0])
        mask = np.array([1, 1, 1, 1, 1, 1, 0], bool)
        s = roi_stats(values, mask)
        assert (s.n, s.n_excluded, s.flag) == (4, 2, "")
        assert (s.mean, s.median, s.q1, s.q3, s.iqr) == (2.5, 2.5, 1.75, 3.25, 1.5)
        assert s.sd == pytest.approx(math.sqrt(5 / 3))

    def test_empty_roi(self):
        s = roi_stats(np.ones(4), np.zeros(4, bool))
        assert (s.flag, s.n, s.n_excluded) == (FLAG_EMPTY, 0, 0) and math.isnan(s.mean)

    def test_all_nan(self):
        s = roi_stats(np.full(3, np.nan), np.ones(3, bool))
        assert (s.flag, s.n, s.n_excluded) == (FLAG_ALL_EXCLUDED, 0, 3)
        assert all(math.isnan(v) for v in (s.mean, s.sd, s.median, s.q1, s.q3))

    def test_one_voxel_has_no_sd(self):
        s = roi_stats(np.array([7.0]), np.ones(1, bool))
        assert s.mean == 7.0 and math.isnan(s.sd)

    def test_shape_mismatch(self):
        with pytest.raises(RoiError, match=r"values shape \(3,\) != mask shape \(4,\)"):
            roi_stats(np.ones(3), np.ones(4, bool))


class TestAutoMask:
    def test_otsu_separates_two_classes(self):
        rng = np.random.default_rng(1)
        img = np.concatenate([rng.normal(10, 1, 500), rng.normal(50, 2, 300)])
        t = otsu_threshold(img)
        assert 15 < t < 45

    def test_foreground_is_the_map_steps_anatomy_mask(self):
        """A bright disc on a dim background, a NaN and a 2-voxel speck outside: the ROI is
        the disc, as the map steps' own mask routine (analysis/mask.py) finds it."""
        img = np.full((20, 20, 1), 1.0)
        yy, xx = np.mgrid[:20, :20]
        disc = (yy - 10) ** 2 + (xx - 10) ** 2 < 36
        img[disc, 0] = 100.0
        img[0, 0, 0] = np.nan            # outside: background
        img[1, 17:19, 0] = 100.0         # a speck smaller than 4 voxels: removed
        mask = foreground_mask(img, np.eye(4), source="t").masks["foreground"]
        assert np.array_equal(mask[..., 0], disc)
        assert np.array_equal(mask, analysis_mask(img[..., None]))

    def test_constant_image(self):
        with pytest.raises(RoiError, match=r"m\.nii\.gz: automatic mask: the image has fewer"):
            foreground_mask(np.ones((3, 3, 3)), np.eye(4), source="m.nii.gz")


class TestMaskFolder:
    def test_images_beside_the_mask_are_skipped(self, tmp_path, caplog):
        mr_images(4, 4, (1, 1), [(0, 0, 0)], "1.2.3")[0].save_as(tmp_path / "img.dcm",
                                                                 enforce_file_format=True)
        rtstruct({"a": [circle((0, 0, 0), 2)]}, "1.2.3").save_as(tmp_path / "rs.dcm",
                                                                enforce_file_format=True)
        (masks,) = read_mask_folder(tmp_path)
        assert masks.names == ["a"]
        assert "img.dcm: DICOM of SOP class 1.2.840.10008.5.1.4.1.1.4 is not a mask" in caplog.text

    def test_empty_folder(self, tmp_path):
        with pytest.raises(MaskSourceError, match="no mask found"):
            read_mask_folder(tmp_path)

    def test_repeated_roi_names_across_files(self, tmp_path):
        session = tmp_path / "s"
        write_map_resource(session, "T1MAP", {"T1": np.ones((4, 4, 1))}, np.eye(4))
        masks = session / "RESOURCES" / "MASKS"
        masks.mkdir(parents=True)
        for name in ("a", "b"):
            nib.save(nib.Nifti1Image(np.ones((4, 4, 1), np.int16), np.eye(4)),
                     masks / f"{name}.nii.gz")
        result = session_roi_stats(session, session_label="s", map_labels=None, mask="MASKS")
        assert [r["roi"] for r in result.rows] == ["label_1@a", "label_1@b"]


class TestMapFrameOfReference:
    def test_session_dicom_frames_are_the_fallback(self, tmp_path):
        session = tmp_path / "s"
        write_map_resource(session, "T2MAP", {"T2": np.ones((40, 40, 1))}, np.eye(4))
        dicom = session / "SCANS" / "3" / "DICOM"
        dicom.mkdir(parents=True)
        mr_images(4, 4, (1, 1), [(0, 0, 0)], "1.2.3.4")[0].save_as(
            dicom / "1.dcm", enforce_file_format=True)
        masks = session / "RESOURCES" / "RT"
        masks.mkdir(parents=True)
        rtstruct({"a": [circle((-5, -5, 0), 3)]}, "1.2.3.5").save_as(
            masks / "rs.dcm", enforce_file_format=True)
        with pytest.raises(FrameOfReferenceError, match=r"1\.2\.3\.5 differs .*\(1\.2\.3\.4\)"):
            session_roi_stats(session, session_label="s", map_labels=None, mask="RT")

    def test_unknown_map_frame_warns(self, tmp_path, caplog):
        session = tmp_path / "s"
        write_map_resource(session, "T2MAP", {"T2": np.ones((40, 40, 1))}, np.eye(4))
        masks = session / "RESOURCES" / "RT"
        masks.mkdir(parents=True)
        rtstruct({"a": [circle((-5, -5, 0), 3)]}, "1.2.3.5").save_as(
            masks / "rs.dcm", enforce_file_format=True)
        result = session_roi_stats(session, session_label="s", map_labels=None, mask="RT")
        assert result.rows[0]["n"] > 0
        assert "FrameOfReferenceUID is unknown" in caplog.text

    def test_missing_map_resource(self, tmp_path):
        session = tmp_path / "s"
        write_map_resource(session, "T2MAP", {"T2": np.ones((4, 4, 1))}, np.eye(4))
        with pytest.raises(RoiError, match=r"no map resource \['ADCMAP'\] .*T2MAP"):
            session_roi_stats(session, session_label="s", map_labels=["ADCMAP"], mask="auto")


class TestMapResources:
    def test_maps_layout_and_4d_maps(self, tmp_path):
        session = tmp_path / "s"
        mtr = np.stack([np.full((4, 4, 1), 0.1), np.full((4, 4, 1), 0.2)], axis=-1)
        write_map_resource(session, "CESTMAP", {"MTR": mtr}, np.eye(4), layout="maps")
        maps = load_maps(session / "RESOURCES" / "CESTMAP", set())
        assert [(m.name, float(np.nanmean(m.data))) for m in maps] == [
            ("MTR_0", pytest.approx(0.1)), ("MTR_1", pytest.approx(0.2))]

    def test_fit_mask_is_not_a_map(self, tmp_path):
        session = tmp_path / "s"
        write_map_resource(session, "T2MAP", {"T2": np.ones((4, 4, 1))}, np.eye(4))
        assert (session / "RESOURCES" / "T2MAP" / "nifti" / "mask.nii.gz").is_file()
        assert [m.name for m in load_maps(session / "RESOURCES" / "T2MAP", set())] == ["T2"]


class TestSummaryInputs:
    @pytest.mark.parametrize("stats", [
        {"maps": {"T2": {"mean": 40, "std": 2, "count": 9}}},
        {"T2": {"mean": 40, "sd": 2, "n": 9}},
        [{"map": "T2", "mean": 40, "sd": 2, "n": 9}],
    ])
    def test_stats_json_shapes(self, tmp_path, stats):
        session = tmp_path / "P" / "arc001" / "s1"
        (session / "RESOURCES" / "T2MAP").mkdir(parents=True)
        (session / "RESOURCES" / "T2MAP" / "stats.json").write_text(json.dumps(stats))
        rows, empty = gather_project([session])
        assert empty == []
        (row,) = rows
        assert (row["map"], row["roi"], row["mean"], row["sd"], row["n"], row["project"]) == (
            "T2", "whole_map", 40.0, 2.0, 9.0, "P")

    def test_metadata_defaults(self, tmp_path):
        session = tmp_path / "P" / "arc001" / "s1"
        session.mkdir(parents=True)
        assert session_metadata(session) == {"project": "P", "subject": "", "session": "s1",
                                             "group": "", "timepoint": ""}

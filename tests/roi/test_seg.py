"""DICOM SEG round trip: masks written by highdicom (an independent writer) read back on
the map grid, for binary and fractional SEGs with sparse frames and several segments."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracles import require_module

hd = require_module("highdicom", "highdicom (test extra) writes the SEG oracle")
from pydicom.sr.codedict import codes  # noqa: E402

from tests.roi.helpers import lps_geometry, mr_images  # noqa: E402
from xnatpic.roi import Grid, MaskSourceError, read_mask_file, read_seg  # noqa: E402
from xnatpic.roi.seg import seg_from_dataset  # noqa: E402

FOR = "1.2.826.0.1.3680043.10.1000.7"
ROWS, COLS = 24, 20
SPACING = (0.4, 0.3)            # PixelSpacing: row spacing, column spacing
ROW_DIR, COL_DIR = (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)   # a coronal-like stack
POSITIONS = [(2.0 + 0.8 * k, -4.0, 5.0) for k in range(6)]   # slices along x


def _segments() -> np.ndarray:
    """(frames, rows, cols) label image: 1 a box on slices 1-2, 2 a block on slice 4."""
    arr = np.zeros((len(POSITIONS), ROWS, COLS), np.uint8)
    arr[1:3, 5:15, 3:9] = 1
    arr[4, 10:20, 12:18] = 2
    return arr


def _description(number: int, label: str) -> object:
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label,
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )


def _seg(pixel_array: np.ndarray, seg_type: str) -> object:
    images = mr_images(ROWS, COLS, SPACING, POSITIONS, FOR, row_dir=ROW_DIR, col_dir=COL_DIR)
    return hd.seg.Segmentation(
        source_images=images, pixel_array=pixel_array,
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, seg_type),
        segment_descriptions=[_description(1, "tumour"), _description(2, "kidney")],
        series_instance_uid=hd.UID(), series_number=10, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="test", manufacturer_model_name="test",
        software_versions="0", device_serial_number="0",
    )


def _map_grid() -> Grid:
    """The grid xnatpic's NIfTI writer gives the source images (i along a row)."""
    return Grid((COLS, ROWS, len(POSITIONS)),
                lps_geometry(ROWS, COLS, SPACING, POSITIONS, ROW_DIR, COL_DIR))


class TestSegRoundTrip:
    def test_binary(self, tmp_path):
        labels = _segments()
        path = tmp_path / "seg.dcm"
        _seg(labels, "BINARY").save_as(path)
        seg = read_seg(path)
        assert seg.names == ["tumour", "kidney"]
        assert seg.frame_of_reference_uid == FOR
        on_map = seg.on_grid(_map_grid())
        for number, name in ((1, "tumour"), (2, "kidney")):
            expected = (labels == number).transpose(2, 1, 0)   # (frames, rows, cols) -> i, j, k
            assert on_map[name].sum() == expected.sum() > 0
            assert np.array_equal(on_map[name], expected), name

    def test_fractional_is_thresholded_at_half(self, tmp_path):
        labels = _segments()
        fraction = np.zeros((*labels.shape, 2), np.float32)
        fraction[..., 0] = np.where(labels == 1, 0.8, 0.0)
        fraction[..., 1] = np.where(labels == 2, 0.6, 0.0)
        fraction[2, 0, 0, 0] = 0.3   # below half: not in the mask
        path = tmp_path / "frac.dcm"
        _seg(fraction, "FRACTIONAL").save_as(path)
        on_map = read_mask_file(path).on_grid(_map_grid())
        assert np.array_equal(on_map["tumour"], (labels == 1).transpose(2, 1, 0))
        assert np.array_equal(on_map["kidney"], (labels == 2).transpose(2, 1, 0))

    def test_seg_on_a_coarser_map(self, tmp_path):
        labels = _segments()
        path = tmp_path / "seg.dcm"
        _seg(labels, "BINARY").save_as(path)
        fine = _map_grid()
        coarse_affine = fine.affine.copy()
        coarse_affine[:3, :2] *= 2          # 2x2 in-plane binning, same slices
        coarse_affine[:3, 3] += (fine.affine[:3, 0] + fine.affine[:3, 1]) / 2
        coarse = Grid((COLS // 2, ROWS // 2, len(POSITIONS)), coarse_affine)
        on_map = read_seg(path).on_grid(coarse)
        # the coarse voxel centre sits at fine (2i + 0.5, 2j + 0.5): the upper fine voxel
        expected = (labels == 1).transpose(2, 1, 0)[1::2, 1::2, :]
        assert np.array_equal(on_map["tumour"], expected)


class TestSegErrors:
    def test_not_a_seg(self, tmp_path):
        ds = mr_images(4, 4, (1, 1), [(0, 0, 0)], FOR)[0]
        with pytest.raises(MaskSourceError, match=r"mr\.dcm: not a DICOM SEG"):
            seg_from_dataset(ds, "mr.dcm")

    def test_frame_without_segment(self, tmp_path):
        path = tmp_path / "seg.dcm"
        _seg(_segments(), "BINARY").save_as(path)
        import pydicom

        ds = pydicom.dcmread(path)
        del ds.PerFrameFunctionalGroupsSequence[0].SegmentIdentificationSequence
        with pytest.raises(MaskSourceError,
                           match=r"cannot read this SEG: .* lacks SegmentIdentificationSequence"):
            seg_from_dataset(ds, str(path))

    def test_not_dicom(self, tmp_path):
        path = tmp_path / "x.dcm"
        path.write_bytes(b"nope")
        with pytest.raises(MaskSourceError, match=r"x\.dcm: not a readable DICOM"):
            read_seg(path)


def test_sparse_frames_are_what_is_tested():
    """highdicom leaves out empty frames: the reader must place frames by position."""
    seg = _seg(_segments(), "BINARY")
    assert int(seg.NumberOfFrames) == 3 < 2 * len(POSITIONS)

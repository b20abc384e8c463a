"""Reading a DICOM series into an AnalysisSeries: classic and enhanced, geometry, attributes."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.helpers import run_dir
from xnatpic.analysis import BadSeriesError, read_series
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.phantom import read_truth_map
from xnatpic.phantom.protocols import jones6_directions


@pytest.fixture(scope="module")
def enhanced(phantom_study, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("enhanced")
    assert xnatpic_main(["convert", str(phantom_study), "-o", str(out), "--format", "enhanced",
                         "--scans", "2,6,7"]) == 0
    return {folder_key(p.name): next(p.glob("*.dcm")) for p in out.glob("*/*/*") if p.is_dir()}


class TestClassic:
    def test_t2_series(self, phantom_dicom, phantom_study):
        series = read_series(phantom_dicom["2"])
        assert series.data.shape == (96, 64, 5, 12) and series.data.dtype == np.float32
        assert series.te.tolist() == [10.0 * (i + 1) for i in range(12)]
        assert series.distinct("tr").tolist() == [3000.0]
        assert np.isnan(series.ti).all() and not series.is_m0.any()
        assert series.scanning_sequence == ("SE",)
        # x = columns, y = rows, z = slices: the truth labels (slice, row, column) line up
        labels = read_truth_map(phantom_study, "axial", "labels").transpose(2, 1, 0)
        first_echo = series.data[..., 0]
        assert first_echo[labels == 0].mean() < 0.1 * first_echo[labels == 1].mean()
        n_sops = {u for row in series.sop_instance_uids for u in row}
        assert len(n_sops) == 60 and series.frame_of_reference_uid.startswith("2.25.")

    def test_rescale_applied(self, phantom_dicom):
        series = read_series(phantom_dicom["2"])
        path = sorted(phantom_dicom["2"].glob("*.dcm"))[0]
        ds = pydicom.dcmread(path)
        assert float(ds.RescaleSlope) != 1.0
        expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + \
            float(ds.RescaleIntercept)
        k = [row[0] for row in series.sop_instance_uids].index(ds.SOPInstanceUID)
        assert np.allclose(series.data[:, :, k, 0].T, expected, rtol=1e-6)

    def test_affine_is_ras_of_the_dicom_geometry(self, phantom_dicom):
        series = read_series(phantom_dicom["6"])
        ds = pydicom.dcmread(sorted(phantom_dicom["6"].glob("*.dcm"))[0])
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        k = [row[0] for row in series.sop_instance_uids].index(ds.SOPInstanceUID)
        voxel = series.affine_lps @ np.array([0, 0, k, 1.0])
        assert np.allclose(voxel[:3], ipp, atol=1e-4)
        assert np.allclose(series.affine, np.diag([-1, -1, 1, 1]) @ series.affine_lps)

    def test_gradients_in_image_space(self, phantom_dicom):
        """The oblique DTI scan's gradients, rotated into image axes, are the Jones-6
        directions of the gradient (read, phase, slice) frame, up to sign."""
        series = read_series(phantom_dicom["6"])
        dw = series.gradient[series.b > 50]
        jones = jones6_directions()
        for g in dw:
            assert np.max(np.abs(jones @ g)) == pytest.approx(1.0, abs=1e-4)
        assert np.allclose(series.gradient[series.b <= 50], 0)

    def test_cest_offsets_and_m0(self, phantom_dicom):
        series = read_series(phantom_dicom["7"])
        assert series.is_m0.sum() == 1 and series.sat_ppm[series.is_m0][0] == -300.0
        assert series.distinct("sat_ppm").size == 50


class TestEnhanced:
    @pytest.mark.parametrize("scan", ["2", "6", "7"])
    def test_same_as_classic(self, phantom_dicom, enhanced, scan):
        classic = read_series(phantom_dicom[scan])
        multi = read_series(enhanced[scan])
        assert multi.sop_class_uid == "1.2.840.10008.5.1.4.1.1.4.1"
        assert np.allclose(multi.data, classic.data, rtol=1e-5, atol=1e-4)
        assert np.allclose(multi.affine, classic.affine, atol=1e-5)
        for name in ("te", "sat_ppm"):
            assert np.allclose(getattr(multi, name), getattr(classic, name), equal_nan=True)
        # enhanced files always carry a b-value (0 outside diffusion scans)
        assert np.allclose(multi.b, np.nan_to_num(classic.b))
        assert np.allclose(multi.gradient, classic.gradient, atol=1e-6)
        assert (multi.is_m0 == classic.is_m0).all()
        assert multi.frame_numbers[0][0] is not None


    def test_t2map_on_an_enhanced_scan(self, enhanced, phantom_study, tmp_path):
        from tests.analysis.conftest import launch_step, make_session

        folder = tmp_path / "enh"
        folder.mkdir()
        shutil.copy(enhanced["2"], folder / "scan2.dcm")
        session = make_session(tmp_path / "archive", {"2": folder})
        result = launch_step("t2map", session, tmp_path / "builds")
        assert result.ok, Path(result.stderr).read_text()[-2000:]
        run = run_dir(session / "RESOURCES" / "T2MAP")
        t2 = np.asarray(nib.load(run / "nifti" / "T2.nii.gz").dataobj)
        truth = read_truth_map(phantom_study, "axial", "T2").transpose(2, 1, 0)
        labels = read_truth_map(phantom_study, "axial", "labels").transpose(2, 1, 0)
        inside = labels > 0
        assert abs(np.nanmedian((t2[inside] - truth[inside]) / truth[inside])) <= 0.01
        ds = pydicom.dcmread(next((run / "dicom" / "T2")
                                  .glob("*.dcm")))
        assert ds.SourceImageSequence[0].ReferencedFrameNumber >= 1


class TestBadSeries:
    def test_no_dicom(self, tmp_path):
        (tmp_path / "x.txt").write_text("x")
        with pytest.raises(BadSeriesError, match="no DICOM file found"):
            read_series(tmp_path)

    def test_two_series_in_one_folder(self, phantom_dicom, tmp_path):
        for scan in ("2", "3"):
            shutil.copy(sorted(phantom_dicom[scan].glob("*.dcm"))[0], tmp_path / f"{scan}.dcm")
        with pytest.raises(BadSeriesError, match="holds several series"):
            read_series(tmp_path)

    def test_missing_frames(self, phantom_dicom, tmp_path):
        for path in sorted(phantom_dicom["2"].glob("*.dcm"))[:-1]:
            shutil.copy(path, tmp_path / path.name)
        with pytest.raises(BadSeriesError, match="slices hold different numbers of images"):
            read_series(tmp_path)

    def test_missing_geometry(self, phantom_dicom, tmp_path):
        path = sorted(phantom_dicom["2"].glob("*.dcm"))[0]
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(tmp_path / "a.dcm")
        with pytest.raises(BadSeriesError, match="no ImagePositionPatient"):
            read_series(tmp_path)


class TestPixelValues:
    """Pixel values read straight from native Pixel Data equal pydicom's decoding, and
    every other encoding still goes through pydicom."""

    @staticmethod
    def _pydicom_values(path: Path) -> np.ndarray:
        ds = pydicom.dcmread(path)
        slope = float(ds.get("RescaleSlope", 1.0))
        intercept = float(ds.get("RescaleIntercept", 0.0))
        return ds.pixel_array.astype(np.float64) * slope + intercept

    def test_classic_files_ours_and_dicomifiers(self, phantom_dicom, corpus_dir):
        from xnatpic.analysis.inputs import read_frames

        dicomifier = corpus_dir / "pv6-dicomifier" / "reference" / "dicomifier-dicom"
        folders = [phantom_dicom["2"], next(p.parent for p in dicomifier.rglob("IM000001"))]
        for folder in folders:
            frames = read_frames(folder)
            assert frames
            for frame in frames:
                assert np.allclose(frame.pixels, self._pydicom_values(frame.path),
                                   rtol=1e-6, atol=1e-3), frame.path

    def test_enhanced_frames(self, enhanced):
        from xnatpic.analysis.inputs import read_frames

        frames = read_frames(enhanced["7"])
        ds = pydicom.dcmread(enhanced["7"])
        stored = ds.pixel_array.astype(np.float64)
        for frame, plane in zip(frames, stored, strict=True):
            item = ds.PerFrameFunctionalGroupsSequence[frame.frame_number - 1]
            if "PixelValueTransformationSequence" not in item:
                item = ds.SharedFunctionalGroupsSequence[0]
            transform = item.PixelValueTransformationSequence[0]
            expected = plane * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
            assert np.allclose(frame.pixels, expected, rtol=1e-6, atol=1e-3)

    def test_bits_stored_below_allocated_and_big_endian_go_through_pydicom(
            self, phantom_dicom, tmp_path):
        from pydicom.uid import ExplicitVRBigEndian

        from xnatpic.analysis.inputs import read_frames

        source = sorted(phantom_dicom["2"].glob("*.dcm"))[0]
        ds = pydicom.dcmread(source)
        values = np.clip(ds.pixel_array // 32, 0, 2 ** 11 - 1).astype(np.int16)
        clean = tmp_path / "clean"
        clean.mkdir()
        ds.PixelData = values.astype("<i2").tobytes()
        ds.save_as(clean / "a.dcm")
        twelve = tmp_path / "twelve"
        twelve.mkdir()
        ds.BitsStored, ds.HighBit = 12, 11
        # bits above BitsStored are not part of the value: set them to garbage
        garbage = (values.astype(np.uint16) & 0x0FFF) | np.uint16(0xA000)
        ds.PixelData = garbage.astype("<u2").tobytes()
        ds.save_as(twelve / "a.dcm")
        (frame,) = read_frames(twelve)
        assert np.allclose(frame.pixels, self._pydicom_values(twelve / "a.dcm"))
        assert np.allclose(frame.pixels, self._pydicom_values(clean / "a.dcm"))

        big = tmp_path / "big"
        big.mkdir()
        ds = pydicom.dcmread(clean / "a.dcm")
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
        ds.PixelData = values.astype(">i2").tobytes()
        pydicom.dcmwrite(big / "b.dcm", ds, implicit_vr=False, little_endian=False,
                         force_encoding=True)
        (frame,) = read_frames(big)
        assert np.allclose(frame.pixels, self._pydicom_values(clean / "a.dcm"))


def move_private_block(ds: pydicom.Dataset) -> None:
    """Move the xnatpic private block of ``ds`` behind a third creator element (0x12),
    after two other vendors' creators."""
    from xnatpic.dicom.private import CREATOR, GROUP

    moved = pydicom.Dataset()
    for elem in ds:
        if elem.tag.group == GROUP and elem.tag.element >= 0x1000:
            moved.add_new((GROUP << 16) | 0x1200 | (elem.tag.element & 0xFF), elem.VR,
                          elem.value)
    for tag in [elem.tag for elem in ds if elem.tag.group == GROUP]:
        del ds[tag]
    ds.add_new((GROUP << 16) | 0x10, "LO", "OTHER VENDOR")
    ds.add_new((GROUP << 16) | 0x11, "LO", "SOMEONE ELSE")
    ds.add_new((GROUP << 16) | 0x12, "LO", CREATOR)
    ds.update(moved)


def test_private_block_found_at_another_creator_element(phantom_dicom, tmp_path):
    """Another writer may place the xnatpic block behind its own private creator: the
    values are found wherever the creator element is, as pydicom's private_block finds
    them."""
    from xnatpic.analysis.inputs import read_frames
    from xnatpic.dicom.private import CREATOR, GROUP

    source = sorted(phantom_dicom["7"].glob("*.dcm"))[3]
    ds = pydicom.dcmread(source)
    expected = ds.private_block(GROUP, CREATOR)[0x21].value  # saturation offset (ppm)
    move_private_block(ds)
    folder = tmp_path / "moved"
    folder.mkdir()
    ds.save_as(folder / "a.dcm")
    assert pydicom.dcmread(folder / "a.dcm").private_block(GROUP, CREATOR)[0x21].value == \
        expected
    (frame,) = read_frames(folder)
    assert frame.sat_ppm == float(expected)

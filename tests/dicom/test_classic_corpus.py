"""Classic MR output on the real corpus: dciodvfy, geometry, dcm2niix, values, parameters."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import CORPUS_STUDIES, image_recos, sample
from xnatpic.dicom import write_dicom_series
from xnatpic.dicom.private import private_tag

#: Warnings dciodvfy may give on our files, each for a documented reason.
ALLOWED_WARNINGS = (
    r"Unrecognized tag",  # our private block: dciodvfy has no dictionary for it
    r"Non-identity Modality LUT",  # per-image rescale, needed for ParaVision's slopes
    r"Attribute is not present in standard DICOM IOD - \(0x0028,0x105[234]\)",  # rescale
    r"Attribute is not present in standard DICOM IOD - \(0x0018,0x9073\)",  # duration
    r"Attribute is not present in standard DICOM IOD - \(0x0018,0x90(75|87|89)\)",  # DWI
    r"this is a Standard Extended SOP Class",
)

ACIDOCEST = "pv6-acidocest/study"
DICOMIFIER = "pv6-dicomifier/study"


class TestDciodvfy:
    @pytest.mark.parametrize("study", CORPUS_STUDIES)
    def test_every_series_validates(self, corpus, dciodvfy, tmp_path, study):
        written_series = 0
        for series in image_recos(corpus, study):
            out = tmp_path / series.reco.label
            out.mkdir()
            for written in write_dicom_series(series, out):
                written_series += 1
                for path in sample(written.files):
                    errors, warnings = dciodvfy(path)
                    assert errors == [], f"{series.reco.label} {path.name}: {errors}"
                    unexpected = [w for w in warnings
                                  if not any(re.search(p, w) for p in ALLOWED_WARNINGS)]
                    assert unexpected == [], f"{series.reco.label} {path.name}"
        assert written_series > 0


def _read(paths: list[Path]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in paths]


def _frame_index(ds: pydicom.Dataset) -> int:
    return int(ds[private_tag(0x10)].value)


class TestGeometry:
    @pytest.mark.parametrize("scan", ["1", "3", "4"])
    def test_matches_paravision_export(self, corpus, convert, scan):
        export = corpus / ACIDOCEST / scan / "pdata" / "1" / "dicom"
        reference = {int(d.InstanceNumber): d for d in _read(sorted(export.glob("*.dcm")))}
        _, written = convert(ACIDOCEST, scan)
        compared = 0
        for ds in _read([p for w in written for p in w.files]):
            ref = reference[_frame_index(ds) + 1]
            for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
                            "SliceThickness", "SpacingBetweenSlices"):
                assert (keyword in ds) == (keyword in ref), keyword
                if keyword in ref:
                    np.testing.assert_allclose(np.atleast_1d(np.asarray(ds[keyword].value,
                                                                        float)),
                                               np.atleast_1d(np.asarray(ref[keyword].value,
                                                                        float)),
                                               atol=1e-3, err_msg=keyword)
            assert ds.InPlanePhaseEncodingDirection == ref.InPlanePhaseEncodingDirection
            assert ds.PatientPosition == ref.PatientPosition
            compared += 1
        assert compared == len(reference)

    def test_non_square_pixel_spacing_is_row_first(self, convert):
        _, written = convert(DICOMIFIER, "9")
        ds = pydicom.dcmread(written[0].files[0])
        assert (ds.Rows, ds.Columns) == (160, 192)
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [35 / 160, 40 / 192])

    def test_localizer_gives_one_series_per_plane(self, convert):
        _, written = convert(DICOMIFIER, "1")
        assert len(written) == 3
        first = [pydicom.dcmread(w.files[0]) for w in written]
        orientations = {tuple(np.round(np.asarray(d.ImageOrientationPatient, float), 3))
                        for d in first}
        assert len(orientations) == 3
        assert len({d.SeriesInstanceUID for d in first}) == 3
        assert len({d.FrameOfReferenceUID for d in first}) == 1
        assert sum(w.frame_count for w in written) == 9

    def test_spacing_between_slices(self, convert):
        _, written = convert(DICOMIFIER, "9")
        ds = _read(written[0].files)
        positions = sorted({round(float(d.SliceLocation), 4) for d in ds})
        np.testing.assert_allclose(np.diff(positions), float(ds[0].SpacingBetweenSlices))
        assert float(ds[0].SpacingBetweenSlices) == pytest.approx(1.0)

    def test_3d_reco_is_split_into_slices(self, convert):
        series, written = convert(DICOMIFIER, "4")
        ds = _read(written[0].files)
        assert len(ds) == series.geometry.slices_per_frame == 20
        assert ds[0].MRAcquisitionType == "3D"
        heights = sorted(float(d.SliceLocation) for d in ds)
        np.testing.assert_allclose(np.diff(heights), series.slice_thickness, atol=1e-4)


def _corners(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """World coordinates of the 8 corner voxel centres, sorted."""
    idx = np.array([[i, j, k, 1] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                    for k in (0, shape[2] - 1)], float)
    points = (affine @ idx.T).T[:, :3]
    return points[np.lexsort(points.T[::-1])]


def _dicom_affine_ras(ds: list[pydicom.Dataset]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """RAS affine (column, row, slice voxel axes) implied by IPP/IOP/PixelSpacing."""
    first = min(ds, key=lambda d: float(d.SliceLocation))
    iop = np.asarray(first.ImageOrientationPatient, float)
    row_dir, col_dir = iop[:3], iop[3:]
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    normal = np.cross(row_dir, col_dir)
    step = float(first.get("SpacingBetweenSlices", first.SliceThickness))
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing
    lps[:3, 1] = col_dir * row_spacing
    lps[:3, 2] = normal * step
    lps[:3, 3] = np.asarray(first.ImagePositionPatient, float)
    return np.diag([-1, -1, 1, 1]) @ lps, (int(first.Columns), int(first.Rows), len(ds))


class TestDcm2niix:
    @pytest.mark.parametrize(("study", "scan"), [(DICOMIFIER, "9"), (DICOMIFIER, "2"),
                                                 (ACIDOCEST, "3")])
    def test_nifti_affine_matches_dicom_geometry(self, convert, dcm2niix, tmp_path, study,
                                                 scan):
        _, written = convert(study, scan)
        folder = written[0].files[0].parent
        subprocess.run([dcm2niix, "-z", "n", "-f", "%s_%e", "-o", str(tmp_path), str(folder)],
                       check=True, capture_output=True)
        niftis = sorted(tmp_path.glob("*.nii"))
        assert niftis, "dcm2niix wrote nothing"
        ds = _read(written[0].files)
        by_echo: dict[int, list[pydicom.Dataset]] = {}
        for d in ds:
            by_echo.setdefault(int(d.EchoNumbers), []).append(d)
        expected, shape = _dicom_affine_ras(by_echo[min(by_echo)])
        assert len(niftis) == len(by_echo)  # echoes are separate volumes
        for path in niftis:
            image = nib.load(path)
            assert image.shape[:3] == shape
            np.testing.assert_allclose(_corners(image.affine, shape), _corners(expected, shape),
                                       atol=1e-3)
            np.testing.assert_allclose(np.linalg.norm(image.affine[:3, :3], axis=0),
                                       np.linalg.norm(expected[:3, :3], axis=0), atol=1e-4)


class TestValues:
    @pytest.mark.parametrize(("reco", "word", "exact"), [
        ("1", "int16", True), ("2", "uint8", True), ("3", "float32", False),
        ("4", "int32", False), ("5", "int32", True),
    ])
    def test_real_values_survive(self, convert, reco, word, exact):
        series, written = convert(DICOMIFIER, "2", reco)
        assert series.stack.dtype.name == word
        by_index = {im.index: im for im in series.images}
        for path, index in zip(written[0].files, written[0].image_indices, strict=True):
            ds = pydicom.dcmread(path)
            real = series.real(by_index[index])
            slope = float(ds.get("RescaleSlope", 1.0))
            intercept = float(ds.get("RescaleIntercept", 0.0))
            mine = ds.pixel_array.astype(np.float64) * slope + intercept
            if exact:
                np.testing.assert_allclose(mine, real, rtol=1e-9, atol=1e-9)
            else:
                peak = np.max(np.abs(real))
                assert np.max(np.abs(mine - real)) <= 1e-4 * peak
                assert np.max(np.abs(mine - real)) <= 1.6e-5 * peak
            assert ds.BitsAllocated == 16
            assert ds.PixelRepresentation == (0 if word == "uint8" else 1)

    def test_per_frame_slopes_on_real_cest(self, convert):
        series, written = convert(ACIDOCEST, "4")
        by_index = {im.index: im for im in series.images}
        for path in sample(written[0].files):
            ds = pydicom.dcmread(path)
            image = by_index[written[0].image_indices[written[0].files.index(path)]]
            assert float(ds.RescaleSlope) == pytest.approx(image.slope, rel=1e-10)
            mine = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            np.testing.assert_allclose(mine, series.real(image), rtol=1e-9)

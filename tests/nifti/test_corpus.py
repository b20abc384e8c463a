"""NIfTI export on real ParaVision data: geometry, values, vendor export, brkraw witness."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.nifti.corpus_helpers import (
    RAS,
    expected_frame,
    float32_bound,
    load_written,
    raw_geometry,
    scale_factors,
    stored_dtype,
    volume_index,
)
from tests.oracles import require_executable, require_module
from xnatpic.nifti import write_nifti_series
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import classify_reco, load_series

STUDIES = [
    "pv6-dicomifier/study",
    "pv6-acidocest/study",
    "pv360-csi/study",
    "pv5-misc/brukerMRI-tripilot",
    "pv5-misc/brukerMRI-msme",
    "pv5-misc/pvconv-epi/BadBanana_01",
]


def _image_recos(root: Path):
    study = open_dataset(root)
    recos = [r for s in study.scans for r in s.recos if classify_reco(r) is None]
    assert recos, f"{root}: no image reco"
    return recos


@pytest.mark.parametrize("study", STUDIES)
def test_affine_and_values_follow_every_image(corpus, tmp_path, study):
    """Each image's first voxel lands on its VisuCorePosition; values are 2dseq × slope.

    Every real reco has one slope and one offset: the file holds the 2dseq's own type
    with scl_slope/scl_inter = them (float32 of them, NIfTI-1's type).
    """
    for reco in _image_recos(corpus / study):
        slopes, offsets = scale_factors(reco.path)
        assert np.unique(slopes).size == 1 and np.unique(offsets).size == 1, reco.label
        series = load_series(reco)
        out = tmp_path / reco.label
        out.mkdir()
        written = load_written(write_nifti_series(series, out))
        assert len(written) == series.package_count
        geom = raw_geometry(reco.path)
        column_spacing = geom["extent"][0] / geom["size"][0]
        row_spacing = geom["extent"][1] / geom["size"][1]
        for package, (image, meta) in enumerate(written):
            header = image.header
            assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 1
            np.testing.assert_allclose(image.get_qform(), image.get_sform(), atol=1e-4)
            affine = image.get_sform()
            assert image.get_data_dtype() == stored_dtype(reco.path).newbyteorder("<")
            assert image.dataobj.slope == np.float32(slopes[0])  # the header read from the file
            assert image.dataobj.inter == np.float32(offsets[0])
            data = image.get_fdata()
            data = data.reshape((*data.shape[:3], -1))
            assert data.shape[:2] == (geom["size"][0], geom["size"][1])  # x = columns
            inverse = np.linalg.inv(affine)
            seen = set()
            for im in series.package_images(package):
                np.testing.assert_allclose(affine[:3, 0], RAS @ im.orientation[0] * column_spacing,
                                           atol=1e-6)
                np.testing.assert_allclose(affine[:3, 1], RAS @ im.orientation[1] * row_spacing,
                                           atol=1e-6)
                ijk = (inverse @ np.append(RAS @ im.position, 1.0))[:3]
                k = round(float(ijk[2]))
                np.testing.assert_allclose(ijk, [0, 0, k], atol=1e-4)
                t = volume_index(meta, im.axes)
                assert (k, t) not in seen
                seen.add((k, t))
                expected = expected_frame(reco.path, im.frame, im.slice_in_frame)
                bound = float32_bound(reco.path, im.frame, im.slice_in_frame)
                error = np.abs(data[:, :, k, t] - expected.T)
                assert np.all(error <= bound.T), f"{reco.label} image {im.index}"
            assert len(seen) == data.shape[2] * data.shape[3]


@pytest.mark.parametrize("scan", ["1", "3", "4"])
def test_matches_paravision_own_dicom_export(corpus, tmp_path, scan):
    """The affine implied by ParaVision's DICOM export (IPP, IOP, PixelSpacing) is ours."""
    root = corpus / "pv6-acidocest" / "study"
    reco = open_dataset(root).scan(scan).recos[0]
    written = load_written(write_nifti_series(load_series(reco), tmp_path))
    files = sorted((reco.path / "dicom").iterdir())
    assert files, "vendor export missing"
    by_slice: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for path in files:
        ds = pydicom.dcmread(path)
        ipp = np.array(ds.ImagePositionPatient, dtype=float)
        iop = np.array(ds.ImageOrientationPatient, dtype=float).reshape(2, 3)
        row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
        matches = [
            n for n, (image, _) in enumerate(written)
            if np.allclose(image.affine[:3, 0], RAS @ iop[0] * column_spacing, atol=1e-5)
            and np.allclose(image.affine[:3, 1], RAS @ iop[1] * row_spacing, atol=1e-5)
        ]
        assert len(matches) == 1, f"{path.name}: no NIfTI with IOP {iop.ravel()}"
        image = written[matches[0]][0]
        ijk = (np.linalg.inv(image.affine) @ np.append(RAS @ ipp, 1.0))[:3]
        k = round(float(ijk[2]))
        np.testing.assert_allclose(ijk, [0, 0, k], atol=1e-4)
        pixels = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(
            ds.get("RescaleIntercept", 0))
        by_slice.setdefault((matches[0], k), []).append((int(ds.InstanceNumber), pixels))
    for (n, k), items in by_slice.items():
        data = np.asanyarray(written[n][0].dataobj)
        data = data.reshape((*data.shape[:3], -1))
        assert len(items) == data.shape[3]
        for t, (_, pixels) in enumerate(sorted(items, key=lambda item: item[0])):
            np.testing.assert_allclose(data[:, :, k, t], pixels.T, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="session")
def brkraw_study(corpus, tmp_path_factory):
    """brkraw 0.5.7 loader of pv6-dicomifier (test-only witness)."""
    os.environ.setdefault("BRKRAW_CONFIG_HOME", str(tmp_path_factory.mktemp("brkraw")))
    brkraw = require_module("brkraw", "brkraw (test extra) is the reference reader")
    return brkraw.load(str(corpus / "pv6-dicomifier" / "study"))


def test_voxel_data_equals_brkraw(corpus, tmp_path, brkraw_study):
    """brkraw reads the 2dseq on its own (Fortran order): same voxels, same order."""
    for reco in _image_recos(corpus / "pv6-dicomifier" / "study"):
        out = tmp_path / reco.label
        out.mkdir()
        ours = load_written(write_nifti_series(load_series(reco), out))
        theirs = brkraw_study.get_scan(int(reco.scan.id)).convert(int(reco.number))
        theirs = theirs if isinstance(theirs, tuple) else (theirs,)
        assert len(theirs) == len(ours)
        for n, ((image, _), other) in enumerate(zip(ours, theirs, strict=True)):
            # saved and re-read as `brkraw convert` does: the header slope then applies
            saved = out / f"brkraw-{n}.nii.gz"
            other.to_filename(saved)
            a = np.asanyarray(image.dataobj)
            b = np.asarray(nib.load(saved).get_fdata())
            b = b.reshape(a.shape, order="F")
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * np.abs(b).max())


@pytest.mark.parametrize("scan", ["1", "3", "4"])
def test_dcm2niix_of_paravision_export_agrees(corpus, tmp_path, scan):
    """dcm2niix on ParaVision's own DICOM export writes what we write from the 2dseq: the
    same stored int16 with the same scl_slope/scl_inter, the same voxels on the same grid
    (compared after reorienting both to the closest canonical axes)."""
    dcm2niix = require_executable("dcm2niix", "apt-get install dcm2niix (make tools)")
    reco = open_dataset(corpus / "pv6-acidocest" / "study").scan(scan).recos[0]
    theirs_dir = tmp_path / "dcm2niix"
    theirs_dir.mkdir()
    subprocess.run([dcm2niix, "-z", "n", "-f", "export", "-o", str(theirs_dir),
                    str(reco.path / "dicom")], check=True, capture_output=True)
    theirs = [nib.load(p) for p in sorted(theirs_dir.glob("*.nii"))]
    ours_dir = tmp_path / "ours"
    ours_dir.mkdir()
    ours = [image for image, _ in load_written(write_nifti_series(load_series(reco), ours_dir))]
    assert len(ours) == len(theirs) >= 1
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.get_data_dtype() == other.get_data_dtype() == np.dtype("<i2")
        assert mine.dataobj.slope == other.dataobj.slope
        assert mine.dataobj.inter == other.dataobj.inter
        a, b = nib.as_closest_canonical(mine), nib.as_closest_canonical(other)
        assert a.shape == b.shape
        np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)
        np.testing.assert_array_equal(a.get_fdata(), b.get_fdata())

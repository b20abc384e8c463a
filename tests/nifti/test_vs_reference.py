"""Pin the facts docs/geometry-vs-other-converters.md states, on the real data.

If one of these fails, the document is out of date: re-run
``python -m benchmarks.compare_converters`` and update the document with it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from benchmarks.compare_converters import load_grid, match_grids
from tests.nifti.corpus_helpers import raw_geometry
from tests.oracles import require_module
from xnatpic.nifti import write_nifti_series
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.jcamp import read_jcamp
from xnatpic.paravision.series import load_series

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
DOC = Path(__file__).resolve().parents[2] / "docs" / "geometry-vs-other-converters.md"


@pytest.fixture(scope="module")
def dicomifier(corpus) -> Path:
    return corpus / "pv6-dicomifier"


def _reco(root: Path, scan: str, reco: str = "1"):
    return next(r for r in open_dataset(root).scan(scan).recos if r.number == reco)


def _ours(reco, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [p for p in write_nifti_series(load_series(reco), folder)
            if p.name.endswith(".nii.gz")]


def test_document_exists():
    assert DOC.is_file()
    text = DOC.read_text()
    for fact in ("VisuCorePosition", "PixelSpacing", "column-first", "OtherAnimal",
                 "PVM_SPackArrSliceGap", "compare_converters"):
        assert fact in text, fact


def test_paravision_export_copies_visu_core_position(corpus):
    """ParaVision's own DICOM: IPP = VisuCorePosition, IOP = VisuCoreOrientation[:6]."""
    for scan in ("1", "3", "4"):
        reco_dir = corpus / "pv6-acidocest" / "study" / scan / "pdata" / "1"
        geom = raw_geometry(reco_dir)
        files = sorted((reco_dir / "dicom").iterdir())
        for path in files:
            ds = pydicom.dcmread(path)
            row = (int(ds.InstanceNumber) - 1) % len(geom["position"])
            np.testing.assert_allclose(np.array(ds.ImagePositionPatient, dtype=float),
                                       geom["position"][row], atol=1e-5)
            np.testing.assert_allclose(np.array(ds.ImageOrientationPatient, dtype=float),
                                       geom["orientation"][row][:6], atol=1e-6)


def test_our_positions_are_visu_core_position(dicomifier):
    """Our ImagePositionPatient of every 2D image is a VisuCorePosition row, unchanged."""
    study = dicomifier / "study"
    for scan in open_dataset(study).scans:
        for reco in scan.recos:
            series = load_series(reco)
            geom = raw_geometry(reco.path)
            first = series.images[0]
            np.testing.assert_allclose(first.position, geom["position"][0], atol=1e-9)
            np.testing.assert_allclose(first.orientation.ravel(), geom["orientation"][0],
                                       atol=1e-9)
            if series.geometry.dim == 2:
                ours = {tuple(np.round(im.position, 6)) for im in series.images}
                assert ours == {tuple(np.round(p, 6)) for p in geom["position"]}


def test_dicomifier_pixel_spacing_is_column_first_on_non_square(dicomifier):
    """Scan 9 (192 columns x 160 rows): dicomifier's PixelSpacing is ours swapped."""
    reco = _reco(dicomifier / "study", "9")
    series = load_series(reco)
    geom = raw_geometry(reco.path)
    ours = series.pixel_spacing
    assert ours == pytest.approx((geom["extent"][1] / geom["size"][1],
                                  geom["extent"][0] / geom["size"][0]))
    assert ours[0] != pytest.approx(ours[1])
    folder = dicomifier / "reference" / "dicomifier-dicom" / "FANTOME_" / "7_PLATEF" / "9" / "1"
    files = sorted(folder.iterdir())
    assert len(files) == len(series.images)
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert (int(ds.Rows), int(ds.Columns)) == (series.rows, series.columns)
        theirs = tuple(float(v) for v in ds.PixelSpacing)
        assert theirs == pytest.approx(ours[::-1])
    # the far corner of each image then lands more than one voxel away from where it is
    shift = np.hypot((series.columns - 1) * (theirs[1] - ours[1]),
                     (series.rows - 1) * (theirs[0] - ours[0]))
    assert shift > max(ours)


def test_dicomifier_square_images_agree(dicomifier):
    """On square images (scan 1, 32) dicomifier's DICOM geometry is ours."""
    for scan in ("1", "32"):
        series = load_series(_reco(dicomifier / "study", scan))
        folder = (dicomifier / "reference" / "dicomifier-dicom" / "FANTOME_" / "7_PLATEF"
                  / scan / "1")
        positions = {tuple(np.round(im.position, 4)) for im in series.images}
        for path in sorted(folder.iterdir()):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert tuple(float(v) for v in ds.PixelSpacing) == pytest.approx(series.pixel_spacing)
            assert tuple(np.round(np.array(ds.ImagePositionPatient, dtype=float), 4)) in positions


def _dicomifier_nifti(dicomifier: Path, scan: str) -> list[Path]:
    root = dicomifier / "reference" / "dicomifier-nifti"
    folders = [p for p in root.glob("*/*/*") if re.match(rf"^{scan}_1_", p.name)]
    return sorted(f for d in folders for f in d.glob("*.nii"))


def test_dicomifier_nifti_agrees_with_ours(dicomifier, tmp_path):
    """dicomifier's NIfTI places every voxel where ours does (to 1 µm); only the slice
    order of the localizer's third package differs (theirs sorted along the normal)."""
    study = dicomifier / "study"
    reversed_k = []
    compared = 0
    for scan in open_dataset(study).scans:
        files = _dicomifier_nifti(dicomifier, scan.id)
        if not files:
            continue
        ours = [load_grid(p) for p in _ours(scan.recos[0], tmp_path / scan.id)]
        for f in files:
            theirs = load_grid(f)
            match = max((match_grids(o, theirs) for o in ours), key=lambda m: m.correlation)
            assert match.correlation > 0.9999, f
            assert match.world_error < 1e-3, (f, match.world_error)
            assert match.scale == pytest.approx(1.0, rel=1e-5)
            if match.describe() != "same":
                reversed_k.append((scan.id, f.name, match.describe()))
            compared += 1
    assert compared >= 10
    assert reversed_k == [("1", "3.nii", "k reversed")]


def test_dicomifier_nifti_spacing_is_right_where_its_dicom_is_not(dicomifier, tmp_path):
    """Scan 11 has the same 192x160 grid as scan 9: dicomifier's NIfTI pixdim is ours."""
    (f,) = _dicomifier_nifti(dicomifier, "11")
    theirs = nib.load(f).header.get_zooms()[:2]
    series = load_series(_reco(dicomifier / "study", "11"))
    assert theirs == pytest.approx(series.pixel_spacing[::-1])  # (i = column, j = row)


@pytest.fixture(scope="module")
def brkraw_loader(dicomifier, tmp_path_factory):
    os.environ.setdefault("BRKRAW_CONFIG_HOME", str(tmp_path_factory.mktemp("brkraw")))
    brkraw = require_module("brkraw", "brkraw (test extra) is the reference converter")
    return brkraw.load(str(dicomifier / "study"))


def test_brkraw_writes_lps_numbers_as_ras_for_other_animal(dicomifier, brkraw_loader, tmp_path):
    """Subject type OtherAnimal: brkraw's default affine is the LPS affine, unflipped."""
    for scan in open_dataset(dicomifier / "study").scans:
        reco = scan.recos[0]
        assert str(reco.visu_pars["VisuSubjectType"]) == "OtherAnimal"
        ours = [nib.load(p).affine for p in _ours(reco, tmp_path / scan.id)]
        loaded = brkraw_loader.get_scan(int(scan.id))
        default = loaded.get_affine(1)
        raw = loaded.get_affine(1, space="raw")
        default = default if isinstance(default, tuple) else (default,)
        raw = raw if isinstance(raw, tuple) else (raw,)
        for d, r in zip(default, raw, strict=True):
            np.testing.assert_allclose(d, r, atol=1e-6)
        if len(ours) == 1:
            np.testing.assert_allclose(default[0], LPS_TO_RAS @ ours[0], atol=1e-5)


def test_brkraw_localizer_slice_step_counts_the_gap_twice(dicomifier, brkraw_loader, tmp_path):
    """Localizer: positions are 2 mm apart (= PVM_SPackArrSliceDistance, which already
    includes the gap); brkraw steps PVM_SPackArrSliceDistance + PVM_SPackArrSliceGap."""
    reco = _reco(dicomifier / "study", "1")
    method = read_jcamp(reco.scan.path / "method")
    distance = np.asarray(method["PVM_SPackArrSliceDistance"], dtype=float)
    gap = np.asarray(method["PVM_SPackArrSliceGap"], dtype=float)
    ours = [nib.load(p) for p in _ours(reco, tmp_path)]
    theirs = brkraw_loader.get_scan(1).get_affine(1)
    assert len(theirs) == len(ours) == 3
    for k, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        step_ours = float(np.linalg.norm(mine.affine[:3, 2]))
        step_theirs = float(np.linalg.norm(other[:3, 2]))
        assert step_ours == pytest.approx(distance[k])
        assert step_theirs == pytest.approx(distance[k] + gap[k])
        assert step_theirs != pytest.approx(step_ours)


def _section(text: str, name: str) -> str:
    begin = f"<!-- compare_converters:{name}:begin -->"
    end = f"<!-- compare_converters:{name}:end -->"
    assert begin in text and end in text, name
    return text.split(begin, 1)[1].split(end, 1)[0].strip()


def test_document_tables_are_current(dicomifier, tmp_path):
    """The doc's tables are exactly what benchmarks/compare_converters.py measures now."""
    require_module("brkraw", "brkraw (test extra) is the reference converter")
    os.environ.setdefault("BRKRAW_CONFIG_HOME", str(tmp_path / "brkraw-config"))
    from benchmarks.compare_converters import dicom_rows, markdown, nifti_rows

    text = DOC.read_text()
    reference = dicomifier / "reference"
    nifti = markdown(nifti_rows(dicomifier / "study", reference / "dicomifier-nifti",
                                tmp_path / "n")).strip()
    dicom = markdown(dicom_rows(dicomifier / "study", reference / "dicomifier-dicom",
                                tmp_path / "d")).strip()
    assert _section(text, "nifti") == nifti
    assert _section(text, "dicom") == dicom

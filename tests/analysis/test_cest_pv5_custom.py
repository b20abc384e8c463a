"""A PV5 custom CEST method (cESTFISP_SSprep_gate) from raw study to CEST maps.

No such study is in the corpus: :mod:`tests.paravision.cest_pv5` writes one with the
project's JCAMP-DX writer, keeping the offsets in ``CestArray``, in
``VisuFGElemComment`` (``VCEST= x Hz``) or in ``ACQ_movie_descr``. The expected values
are the builder's inputs and the analytic two-pool Z-spectrum, never our output.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.helpers import run_dir
from tests.paravision.cest_pv5 import (
    F0_MHZ,
    OFFSETS_PPM,
    POOL_PPM,
    write_pv5_cest_study,
    z_model,
)
from xnatpic.analysis.runner import main as run_step
from xnatpic.conversion import convert_study
from xnatpic.dicom.private import private_tag
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import load_series

SOURCES = ("CestArray", "VisuFGElemComment", "ACQ_movie_descr")


@pytest.mark.parametrize("where", SOURCES)
@pytest.mark.parametrize("repetitions", [1, 2])
def test_reader_finds_the_offsets(tmp_path, where, repetitions):
    study = write_pv5_cest_study(tmp_path / "study", where=where, repetitions=repetitions)
    series = load_series(open_dataset(study.path).scan(study.scan).recos[0])
    hz = [im.saturation_offset_hz for im in series.images]
    assert hz == pytest.approx(np.tile(study.offsets_hz, repetitions).tolist())
    ppm = [im.saturation_offset_ppm for im in series.images]
    assert ppm == pytest.approx((np.tile(study.offsets_hz, repetitions) / F0_MHZ).tolist())


def test_without_any_source_there_is_no_offset(tmp_path):
    study = write_pv5_cest_study(tmp_path / "study", where="CestArray")
    method = study.path / study.scan / "method"
    method.write_text(method.read_text().replace("CestArray", "SomethingElse"))
    series = load_series(open_dataset(study.path).scan(study.scan).recos[0])
    assert all(im.saturation_offset_hz is None for im in series.images)


@pytest.mark.parametrize("where", SOURCES)
def test_dicom_and_sidecar_carry_the_offsets(tmp_path, where):
    study = write_pv5_cest_study(tmp_path / "study", where=where)
    report = convert_study(study.path, tmp_path / "dicom")
    assert [r.status for r in report.results] == ["converted"]
    files = sorted((tmp_path / "dicom").rglob("*.dcm"))
    assert len(files) == study.offsets_hz.size
    got = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        got[int(ds[private_tag(0x10)].value)] = (float(ds[private_tag(0x20)].value),
                                                 float(ds[private_tag(0x21)].value),
                                                 str(ds[private_tag(0x22)].value))
    for frame, hz in enumerate(study.offsets_hz):
        assert got[frame][0] == pytest.approx(hz)
        assert got[frame][1] == pytest.approx(hz / F0_MHZ)
        assert got[frame][2] == ("YES" if abs(hz / F0_MHZ) >= 20 else "NO")
    convert_study(study.path, tmp_path / "nifti", fmt="nifti")
    (sidecar,) = [p for p in (tmp_path / "nifti").rglob("*.json")
                  if "saturation" in p.read_text().lower()]
    text = json.loads(sidecar.read_text())
    values = next(v for k, v in text.items() if "ppm" in k.lower() and isinstance(v, list))
    assert values == pytest.approx((study.offsets_hz / F0_MHZ).tolist())


@pytest.mark.parametrize("where", SOURCES)
def test_cest_step_recovers_b0_and_mtrasym(tmp_path, where):
    study = write_pv5_cest_study(tmp_path / "study", where=where, repetitions=2,
                                 noise=0.002, seed=3)
    convert_study(study.path, tmp_path / "dicom")
    (folder,) = {p.parent for p in (tmp_path / "dicom").rglob("*.dcm")}
    scan = tmp_path / "session" / "SCANS" / study.scan / "DICOM"
    scan.parent.mkdir(parents=True)
    scan.symlink_to(folder)
    out = tmp_path / "out"
    assert run_step("cest", ["--input", str(tmp_path / "session"), "--output", str(out),
                             "--mtr-ppm", f"{POOL_PPM}", "--threshold", "0.05"]) == 0
    nifti = run_dir(out / "maps") / "nifti"
    b0 = np.asarray(nib.load(nifti / "B0.nii.gz").dataobj)[..., 0]
    mtr = np.asarray(nib.load(nifti / f"MTRasym_{POOL_PPM:g}ppm.nii.gz").dataobj)[..., 0]
    status = np.asarray(nib.load(nifti / "B0_status.nii.gz").dataobj)[..., 0]
    assert (status == 1).mean() > 0.95
    # our grid is (x, y) = (column, row) of the frames: b0 varies along x
    truth_b0 = study.b0_ppm  # (cols, rows)
    assert b0.shape == truth_b0.shape
    np.testing.assert_allclose(b0, truth_b0, atol=0.02)
    x = OFFSETS_PPM[1:]
    # B0-corrected: the measured spectrum read at ±Δω + b0
    truth_mtr = np.vectorize(lambda b: float(
        z_model(np.array([-POOL_PPM + b]), np.array(b))[0]
        - z_model(np.array([POOL_PPM + b]), np.array(b))[0]))(truth_b0)
    assert x.min() < -POOL_PPM - 0.3 and x.max() > POOL_PPM + 0.3
    np.testing.assert_allclose(mtr, truth_mtr, atol=0.01)
    stats = json.loads((run_dir(out / "maps") / "stats.json").read_text())
    description = stats["maps"]["B0"]["description"]
    assert "test-retest, 2 repetitions" in description
    precision = np.asarray(nib.load(nifti / "B0_precision.nii.gz").dataobj)[..., 0]
    assert np.nanmedian(precision) < 0.02


@pytest.mark.parametrize(("switch", "found"), [("On", True), ("Off", False)])
def test_saturation_module_frequency_list(tmp_path, switch, found):
    """PVM_SatTransFL (the CEST module's list in Hz) when PVM_SatTransFreqValues is
    absent, only with the module switched on."""
    study = write_pv5_cest_study(tmp_path / "study", where="CestArray")
    method = study.path / study.scan / "method"
    text = method.read_text().replace("##$CestArray=", "##$PVM_SatTransFL=")
    method.write_text(text.replace("##END=", f"##$PVM_SatTransOnOff={switch}\n##END="))
    series = load_series(open_dataset(study.path).scan(study.scan).recos[0])
    hz = [im.saturation_offset_hz for im in series.images]
    if found:
        assert hz == pytest.approx(study.offsets_hz.tolist())
    else:
        assert all(v is None for v in hz)


def test_enhanced_dicom_carries_the_offsets_per_frame(tmp_path):
    from xnatpic.analysis.inputs import read_series

    study = write_pv5_cest_study(tmp_path / "study", where="VisuFGElemComment",
                                 repetitions=2)
    convert_study(study.path, tmp_path / "dicom", fmt="enhanced")
    (path,) = list((tmp_path / "dicom").rglob("*.dcm"))
    series = read_series(path.parent)
    np.testing.assert_allclose(series.sat_ppm, np.tile(study.offsets_hz, 2) / F0_MHZ,
                               rtol=1e-9)
    assert series.is_m0.sum() == 2

"""IVIS → DICOM: validity (dciodvfy), series layout, calibrated unit, deterministic UIDs,
de-identification, and the physics read back from the DICOM alone."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.optical.conftest import FLUX, default_click
from xnatpic.cli.main import main
from xnatpic.conversion import SALT_VARIABLE
from xnatpic.dicom.deidentify import DeidentifyProfile, derive_key
from xnatpic.optical import open_ivis
from xnatpic.optical.dicom import (
    PRIVATE_CREATOR,
    frame_of_reference_uid,
    ivis_study_uid,
    write_ivis_dicom,
)
from xnatpic.optical.synthetic import write_click

SALT = "0123456789abcdef-test-salt"


def dciodvfy_errors(path: Path) -> list[str]:
    """Error lines of dciodvfy (a missing dciodvfy fails the test: it is the oracle)."""
    exe = shutil.which("dciodvfy")
    assert exe, "dciodvfy (dicom3tools) is required for this test; run `make tools`"
    result = subprocess.run([exe, str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("Error")]


@pytest.fixture
def written(click_folder: Path, tmp_path: Path):
    return write_ivis_dicom(open_ivis(click_folder), tmp_path / "dicom")


class TestValidity:
    @pytest.mark.parametrize("deidentify", [False, True])
    def test_no_dciodvfy_errors(self, click_folder: Path, tmp_path: Path, deidentify: bool):
        profile = DeidentifyProfile(salt=SALT) if deidentify else None
        series = write_ivis_dicom(open_ivis(click_folder), tmp_path / "d", deidentify=profile)
        assert len(series) == 2
        for s in series:
            assert dciodvfy_errors(s.files[0]) == [], s.files[0]


class TestLayout:
    def test_photograph_and_signal_series_in_one_study(self, written):
        photo, signal = (pydicom.dcmread(s.files[0]) for s in written)
        assert photo.StudyInstanceUID == signal.StudyInstanceUID
        assert photo.SeriesInstanceUID != signal.SeriesInstanceUID
        assert (photo.SeriesNumber, signal.SeriesNumber) == (1, 2)
        assert photo.SOPClassUID == signal.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert photo.Modality == "OT"  # → xnat:otherDicomSessionData (see docs/optical.md)
        click = default_click()
        # pixel spacing from the field of view: both cover 12.5 cm
        assert float(signal.PixelSpacing[0]) * signal.Rows == pytest.approx(click.fov_cm * 10)
        assert float(photo.PixelSpacing[1]) * photo.Columns == pytest.approx(click.fov_cm * 10)
        assert photo.Rows == click.binning * signal.Rows
        assert signal.ExposureTimeInms == click.exposure_s * 1000
        assert [int(b) for b in signal.DetectorBinning] == [click.binning] * 2
        assert (signal.PatientID, signal.PatientSex) == ("M1", "F")
        assert signal.PatientBreedDescription == "BALB/c"
        block = signal.private_block(0x0029, PRIVATE_CREATOR)
        assert block[0x0E].value == "control" and block[0x0F].value == "day 1"

    def test_unit_in_dicom_and_sidecar(self, written):
        signal = pydicom.dcmread(written[1].files[0])
        assert signal.RescaleType == "{photons}/s/cm2/sr"
        unit = signal.RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0]
        assert (unit.LongCodeValue, unit.CodingSchemeDesignator) == ("{photons}/s/cm2/sr",
                                                                      "UCUM")
        sidecar = json.loads((written[1].folder / "sidecar.json").read_text())
        assert sidecar["unit"] == "p/s/cm²/sr" and sidecar["xnat_session_type"] == \
            "xnat:otherDicomSessionData"

    def test_total_flux_from_the_dicom_alone(self, written):
        """Rescaled pixels × pixel area (from PixelSpacing) × 4π give the source's flux."""
        ds = pydicom.dcmread(written[1].files[0])
        radiance = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        area_cm2 = float(ds.PixelSpacing[0]) * float(ds.PixelSpacing[1]) / 100.0
        total = radiance.sum() * area_cm2 * 4 * math.pi
        assert total == pytest.approx(FLUX, rel=5e-3)

    def test_stored_pixels_are_the_dark_subtracted_counts(self, click_folder, written):
        acq = open_ivis(click_folder).first
        ds = pydicom.dcmread(written[1].files[0])
        back = ds.pixel_array + float(ds.RescaleIntercept) / float(ds.RescaleSlope)
        assert np.abs(back - acq.counts()).max() <= 0.5


class TestUids:
    def test_same_input_same_uids(self, click_folder: Path, tmp_path: Path):
        first = write_ivis_dicom(open_ivis(click_folder), tmp_path / "a")
        second = write_ivis_dicom(open_ivis(click_folder), tmp_path / "b")
        assert [(s.study_instance_uid, s.series_instance_uid) for s in first] == \
            [(s.study_instance_uid, s.series_instance_uid) for s in second]
        sop = [pydicom.dcmread(s.files[0]).SOPInstanceUID for s in first + second]
        assert sop[:2] == sop[2:] and sop[0] != sop[1]

    def test_other_click_other_uids(self, tmp_path: Path):
        a = write_click(tmp_path / "a", default_click(click_number="A_001"))
        b = write_click(tmp_path / "b", default_click(click_number="B_001"))
        ua = write_ivis_dicom(open_ivis(a), tmp_path / "oa")[0].study_instance_uid
        ub = write_ivis_dicom(open_ivis(b), tmp_path / "ob")[0].study_instance_uid
        assert ua != ub


class TestDeidentify:
    def test_profile_applied(self, click_folder: Path, tmp_path: Path, written):
        anon = write_ivis_dicom(open_ivis(click_folder), tmp_path / "anon",
                                deidentify=DeidentifyProfile(salt=SALT))
        ds = pydicom.dcmread(anon[1].files[0])
        assert ds.PatientID.startswith("ANON-") and "M1" not in str(ds.PatientName)
        assert ds.PatientIdentityRemoved == "YES"
        assert "OperatorsName" not in ds and "StationName" not in ds
        assert ds.StudyInstanceUID != written[1].study_instance_uid
        assert ds.StudyDate != "20260101"  # shifted
        assert ds.PatientBreedDescription == "BALB/c"  # kept: science, not identity
        block = ds.private_block(0x0029, PRIVATE_CREATOR)
        assert block.get_tag(0x01) not in ds  # click number: user initials and date
        sidecar = json.loads((anon[1].folder / "sidecar.json").read_text())
        assert "User" not in sidecar["labels"] and "Animal Number" not in sidecar["labels"]
        assert "click_number" not in sidecar and "camera" not in sidecar

    def test_uids_keyed_by_the_uid_key_not_the_raw_salt(self, click_folder: Path,
                                                        tmp_path: Path):
        # As for MRI (xnatpic.dicom.uids): the salt enters UIDs only through its HKDF
        # "uid" key, so UIDs reveal nothing usable about the salt or the other keys.
        study = open_ivis(click_folder)
        profile = DeidentifyProfile(salt=SALT)
        anon = write_ivis_dicom(study, tmp_path / "anon", deidentify=profile)
        key = derive_key(SALT, "uid").hex()
        assert key not in (SALT, "") and profile.uid_key() == key
        for series in anon:
            ds = pydicom.dcmread(series.files[0])
            assert ds.StudyInstanceUID == ivis_study_uid(study, key)
            assert ds.StudyInstanceUID != ivis_study_uid(study, SALT)
            assert ds.FrameOfReferenceUID == frame_of_reference_uid(
                ds.StudyInstanceUID, series.click, key)
            assert ds.FrameOfReferenceUID != frame_of_reference_uid(
                ds.StudyInstanceUID, series.click, SALT)


class TestCli:
    def test_convert_and_info(self, click_folder: Path, tmp_path: Path, capsys,
                              monkeypatch):
        out = tmp_path / "out"
        assert main(["convert", str(click_folder), "-o", str(out)]) == 0
        files = sorted(out.rglob("*.dcm"))
        assert [f.parent.name for f in files] == ["01-photograph", "02-luminescent"]
        assert files[0].parents[2].name == "M1"
        report = json.loads((out / "conversion-report.json").read_text())
        assert report["summary"] == {"converted": 2, "skipped": 0, "failed": 0}
        assert main(["info", str(click_folder), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["clicks"][0]["images"]["luminescent"]["binning"] == 4
        monkeypatch.setenv(SALT_VARIABLE, SALT)
        assert main(["convert", str(click_folder), "-o", str(tmp_path / "anon"),
                     "--deidentify"]) == 0
        assert not list((tmp_path / "anon").glob("M1"))

    def test_broken_folder_fails_with_the_file_named(self, click_folder: Path, tmp_path,
                                                     capsys):
        (click_folder / "luminescent.TIF").write_bytes(b"II*\x00" + b"\x00" * 8)
        code = main(["convert", str(click_folder), "-o", str(tmp_path / "o")])
        assert code != 0
        assert "luminescent.TIF" in capsys.readouterr().err


def test_private_block_documented():
    from xnatpic.optical.dicom import PRIVATE_ELEMENTS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "private-tags.md").read_text()
    assert PRIVATE_CREATOR in doc
    for offset, (vr, name, _identifying) in PRIVATE_ELEMENTS.items():
        tag = f"(0029,20{offset:02X})"
        line = next((ln for ln in doc.splitlines() if ln.startswith(f"| {tag} |")), None)
        assert line is not None and name in line and f"| {vr} |" in line, tag


def test_sequence_is_one_study_with_two_series_per_click(tmp_path: Path):
    import datetime as dt

    from xnatpic.optical.synthetic import write_sequence

    clicks = [default_click(click_number=f"S_{i}", acquired=dt.datetime(2026, 1, 1, 12, i))
              for i in (1, 2)]
    study = open_ivis(write_sequence(tmp_path / "SEQ", clicks))
    series = write_ivis_dicom(study, tmp_path / "out")
    assert [(s.click, s.kind, s.series_number) for s in series] == [
        ("S_1", "photograph", 1), ("S_1", "luminescent", 2),
        ("S_2", "photograph", 3), ("S_2", "luminescent", 4)]
    assert len({s.study_instance_uid for s in series}) == 1
    assert len({s.series_instance_uid for s in series}) == 4


def test_fluorescence_unit_and_wavelengths(tmp_path: Path):
    click = default_click(kind="fluorescent", calibration="Radiant Efficiency",
                          excitation_filter="465", emission_filter="520")
    acq = open_ivis(write_click(tmp_path / "f", click)).first
    assert acq.signal.info.kind == "fluorescent"
    assert (acq.signal.info.excitation_nm, acq.signal.info.emission_nm) == (465.0, 520.0)
    (_photo, signal) = write_ivis_dicom(open_ivis(tmp_path / "f"), tmp_path / "out")
    ds = pydicom.dcmread(signal.files[0])
    assert dciodvfy_errors(signal.files[0]) == []
    assert ds.IlluminationWaveLength == 465.0
    assert ds.RescaleType == "{photons}/s/cm2/sr/(uW/cm2)"
    block = ds.private_block(0x0029, PRIVATE_CREATOR)
    assert float(block[0x07].value) == 520.0
    sidecar = json.loads((signal.folder / "sidecar.json").read_text())
    assert sidecar["quantity"] == "radiant efficiency"


def test_float_photograph_is_stored_as_grey_levels(click_folder: Path, tmp_path: Path):
    from PIL import Image

    ramp = np.linspace(-1.0, 3.0, 1024 * 1024, dtype=np.float32).reshape(1024, 1024)
    Image.fromarray(ramp, mode="F").save(click_folder / "photograph.TIF")
    photo = write_ivis_dicom(open_ivis(click_folder), tmp_path / "d")[0]
    ds = pydicom.dcmread(photo.files[0])
    assert ds.BitsAllocated == 16
    pixels = ds.pixel_array.astype(float)
    assert (pixels.min(), pixels.max()) == (0, 65535)
    # linear: grey levels follow the ramp
    assert np.allclose(pixels.ravel(), (ramp.ravel() + 1.0) / 4.0 * 65535, atol=1.0)

"""De-identification profile: what goes, what stays, what is shifted, UIDs, sidecar."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import load_reco
from tests.dicom.synthetic import load, write_study
from xnatpic.dicom import DeidentifyProfile, write_dicom_series
from xnatpic.dicom.deidentify import ACTIONS, PARAMETER_DROP, SUBJECT_KEEP
from xnatpic.dicom.private import private_tag

ACIDOCEST = "pv6-acidocest/study"
PROFILE = DeidentifyProfile(salt="test-secret")
#: Identifying strings of the acidocest study (names, people, place, dates, UIDs).
IDENTIFYING = (b"Renee", b"PagelLab", b"MD Anderson", b"20220316", b"2022-03-16",
               b"20210823", b"B16F10", b"2.16.756.5.5.100.8323328", b"spect")


def _days(a: str, b: str) -> int:
    def parse(v: str) -> date:
        return date(int(v[:4]), int(v[4:6]), int(v[6:8]))
    return (parse(a) - parse(b)).days


@pytest.fixture(scope="module")
def converted(convert):
    return {
        (scan, enhanced): convert(ACIDOCEST, scan, enhanced=enhanced, deidentify=PROFILE)
        for scan in ("3", "4") for enhanced in (False, True)
    }


class TestDicom:
    def test_no_identifying_bytes_in_any_file(self, converted):
        for (_, _), (_, written) in converted.items():
            for w in written:
                for path in [*w.files[:3], w.sidecar]:
                    data = path.read_bytes()
                    for needle in IDENTIFYING:
                        assert needle not in data, f"{needle!r} in {path.name}"

    def test_removed_blanked_and_pseudonymised(self, convert, converted):
        original = pydicom.dcmread(convert(ACIDOCEST, "3")[1][0].files[0])
        ds = pydicom.dcmread(converted[("3", False)][1][0].files[0])
        for keyword, action in ACTIONS.items():
            if keyword not in original:
                continue
            if action in ("remove",):
                assert keyword not in ds, keyword
            elif action == "blank":
                assert ds[keyword].value in ("", None), keyword
            elif action in ("pseudonym", "study_pseudonym", "dummy", "shift"):
                assert ds[keyword].value != original[keyword].value, keyword
        assert str(ds.PatientID).startswith("ANON-")
        assert str(ds.PatientName) == f"{ds.PatientID}^"
        assert ds.PatientIdentityRemoved == "YES"
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert {"113100", "113107", "113108"} <= codes
        assert private_tag(0x03) not in ds  # ParaVision's own reco UID

    def test_animal_characteristics_stay(self, convert, converted):
        original = pydicom.dcmread(convert(ACIDOCEST, "3")[1][0].files[0])
        ds = pydicom.dcmread(converted[("3", False)][1][0].files[0])
        for keyword in ("PatientSex", "PatientWeight", "PatientSpeciesDescription",
                        "AnatomicalOrientationType", "PatientPosition", "SeriesDescription",
                        "EchoTime", "StudyTime", "AcquisitionTime", "ImagePositionPatient"):
            assert ds[keyword].value == original[keyword].value, keyword

    def test_dates_move_by_one_offset(self, convert, converted):
        original = pydicom.dcmread(convert(ACIDOCEST, "4")[1][0].files[0])
        offsets = set()
        for scan in ("3", "4"):
            ds = pydicom.dcmread(converted[(scan, False)][1][0].files[0])
            for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate",
                            "PatientBirthDate"):
                offsets.add(_days(ds[keyword].value, original[keyword].value)
                            if scan == "4" else _days(ds.StudyDate, original.StudyDate))
        assert len(offsets) == 1
        days = offsets.pop()
        assert -3650 <= days <= -365
        enhanced = pydicom.dcmread(converted[("4", True)][1][0].files[0])
        frame = enhanced.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
        assert _days(frame.FrameAcquisitionDateTime[:8], original.AcquisitionDate) == days
        assert _days(enhanced.AcquisitionDateTime[:8], original.AcquisitionDate) == days

    def test_uids_change_with_the_salt_and_are_stable(self, corpus, convert, converted,
                                                      tmp_path):
        plain = convert(ACIDOCEST, "3")[1][0]
        salted = converted[("3", False)][1][0]
        assert salted.study_instance_uid != plain.study_instance_uid
        assert salted.series_instance_uid != plain.series_instance_uid
        series = load_reco(corpus, ACIDOCEST, "3")
        for name, salt in (("same", "test-secret"), ("other", "other-secret")):
            (tmp_path / name).mkdir()
            again = write_dicom_series(series, tmp_path / name,
                                       deidentify=DeidentifyProfile(salt=salt))[0]
            same = again.series_instance_uid == salted.series_instance_uid
            assert same == (salt == "test-secret")
        assert converted[("4", False)][1][0].study_instance_uid == salted.study_instance_uid

    def test_validates(self, converted, dciodvfy):
        for (_, _), (_, written) in converted.items():
            errors, _ = dciodvfy(written[0].files[0])
            assert errors == []


class TestSidecar:
    def test_subject_keeps_only_animal_characteristics(self, converted):
        document = json.loads(converted[("3", False)][1][0].sidecar.read_text())
        assert document["deidentified"] is True
        subject = document["parameters"]["subject"]["parameters"]
        assert set(subject) <= SUBJECT_KEEP and "SUBJECT_weight" in subject
        visu = document["parameters"]["visu_pars"]["parameters"]
        assert not (set(visu) & PARAMETER_DROP)
        assert "VisuCoreSize" in visu and "OWNER" not in document["parameters"][
            "visu_pars"]["headers"]


class TestOptions:
    def test_fixed_offset_and_descriptions_removed(self, tmp_path):
        stored = np.zeros((2, 4, 4), dtype="i2")
        series = load(write_study(tmp_path / "study", stored,
                                  visu={"VisuFGElemComment": "( 2, 65 )\n<first> <second>"}))
        (tmp_path / "out").mkdir()
        profile = DeidentifyProfile(date_offset_days=-10, keep_descriptions=False)
        written = write_dicom_series(series, tmp_path / "out", deidentify=profile)
        ds = pydicom.dcmread(written[0].files[0])
        assert ds.StudyDate == "20210424"  # 2021-05-04 − 10 days
        assert ds.PatientBirthDate == "20201222"
        for keyword in ("SeriesDescription", "ProtocolName", "ImageComments",
                        "InstitutionName", "OperatorsName", "StationName"):
            assert keyword not in ds, keyword
        assert ds.PatientBreedDescription == "C57BL/6" and ds.PatientSex == "F"
        assert written[0].series_description is None
        document = json.loads(written[0].sidecar.read_text())
        assert "ACQ_scan_name" not in document["parameters"]["acqp"]["parameters"]
        assert "SUBJECT_id" not in document["parameters"]["subject"]["parameters"]
        assert "SUBJECT_strain" in document["parameters"]["subject"]["parameters"]

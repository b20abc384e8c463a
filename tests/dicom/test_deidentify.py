"""De-identification profile: what goes, what stays, what is shifted, UIDs, sidecar."""

from __future__ import annotations

import json
from datetime import date, datetime

import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import load_reco
from tests.dicom.synthetic import load, write_study
from xnatpic.dicom import DeidentifyProfile, write_dicom_series
from xnatpic.dicom.deidentify import ACTIONS, SUBJECT_KEEP
from xnatpic.dicom.derived import age_string
from xnatpic.dicom.private import private_tag
from xnatpic.dicom.sidecar_allowlist import DESCRIPTION_PARAMETERS, SIDECAR_ALLOW

ACIDOCEST = "pv6-acidocest/study"
PROFILE = DeidentifyProfile(salt="test-secret")
#: Identifying strings of the acidocest study (names, people, place, dates, UIDs).
IDENTIFYING = (b"Renee", b"PagelLab", b"MD Anderson", b"20220316", b"2022-03-16",
               b"20210823", b"B16F10", b"2.16.756.5.5.100.8323328", b"spect")


def _seconds(ds, date_keyword: str, time_keyword: str) -> datetime:
    return datetime.strptime(ds[date_keyword].value + ds[time_keyword].value[:6],
                             "%Y%m%d%H%M%S")


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
                        "AnatomicalOrientationType", "PatientPosition", "EchoTime",
                        "ImagePositionPatient"):
            assert ds[keyword].value == original[keyword].value, keyword

    def test_descriptions_cleaned_and_clean_descriptors_claimed(self, convert, converted):
        ds = pydicom.dcmread(converted[("3", False)][1][0].files[0])
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert "113105" in codes
        # the acidocest protocol names carry the tumour line (B16F10), which the study's
        # own subject and study names hold too
        for keyword in ("SeriesDescription", "ProtocolName"):
            if keyword in ds:
                assert "B16F10" not in str(ds[keyword].value), keyword
        assert not str(ds.PatientBirthDate or "")

    def test_dates_and_times_move_by_one_offset(self, convert, converted):
        offsets = set()
        for scan in ("3", "4"):
            original = pydicom.dcmread(convert(ACIDOCEST, scan)[1][0].files[0])
            ds = pydicom.dcmread(converted[(scan, False)][1][0].files[0])
            for prefix in ("Study", "Series", "Acquisition", "Content"):
                shifted = _seconds(ds, prefix + "Date", prefix + "Time")
                offsets.add(shifted - _seconds(original, prefix + "Date", prefix + "Time"))
        assert len(offsets) == 1
        offset = offsets.pop()
        assert -3651 * 86400 <= offset.total_seconds() <= -365 * 86400
        assert offset.total_seconds() % 86400 != 0  # the time of day moves too
        original = pydicom.dcmread(convert(ACIDOCEST, "4")[1][0].files[0])
        start = _seconds(original, "AcquisitionDate", "AcquisitionTime")
        enhanced = pydicom.dcmread(converted[("4", True)][1][0].files[0])
        frame = enhanced.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
        for value in (frame.FrameAcquisitionDateTime, enhanced.AcquisitionDateTime):
            moved = datetime.strptime(value[:14], "%Y%m%d%H%M%S")
            assert abs((moved - start - offset).total_seconds()) < 86400
            assert "+" not in value and "-" not in value[8:]  # no UTC offset suffix

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
        # The Patient module wants ResponsiblePerson or ResponsibleOrganization (Type 2C)
        # for an animal: both stay zero length (docs/deidentification.md).
        for (_, _), (_, written) in converted.items():
            errors, _ = dciodvfy(written[0].files[0])
            assert errors == [], written[0].files[0]
            ds = pydicom.dcmread(written[0].files[0])
            assert ds.ResponsibleOrganization in ("", None)
            assert ds.ResponsiblePerson in ("", None)


class TestSidecar:
    def test_subject_keeps_only_animal_characteristics(self, converted):
        document = json.loads(converted[("3", False)][1][0].sidecar.read_text())
        assert document["deidentified"] is True
        subject = document["parameters"]["subject"]["parameters"]
        assert set(subject) <= SUBJECT_KEEP and "SUBJECT_weight" in subject
        visu = document["parameters"]["visu_pars"]["parameters"]
        assert set(visu) <= SIDECAR_ALLOW["visu"] | DESCRIPTION_PARAMETERS
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
        assert not ds.PatientBirthDate  # Z: no claimed option retains it
        for keyword in ("SeriesDescription", "ProtocolName", "ImageComments",
                        "InstitutionName", "OperatorsName", "StationName"):
            assert keyword not in ds, keyword
        assert ds.PatientBreedDescription == "C57BL/6" and ds.PatientSex == "F"
        assert written[0].series_description is None
        document = json.loads(written[0].sidecar.read_text())
        assert "ACQ_scan_name" not in document["parameters"]["acqp"]["parameters"]
        assert "SUBJECT_id" not in document["parameters"]["subject"]["parameters"]
        assert "SUBJECT_strain" in document["parameters"]["subject"]["parameters"]


class TestLongitudinal:
    def test_two_studies_of_one_animal_keep_their_order_and_interval(self, tmp_path):
        """One animal scanned twice, 30 days apart (different study UIDs): the shift is
        keyed by the animal, so the de-identified studies stay 30 days apart, in order."""
        stored = np.zeros((2, 4, 4), dtype="i2")
        profile = DeidentifyProfile(salt="longitudinal-salt-Xq81")
        dates = {}
        for name, uid, when in (("first", "2.25.1001", "2021-05-04T09:00:00"),
                                ("second", "2.25.1002", "2021-06-03T14:30:00")):
            series = load(write_study(tmp_path / name, stored, visu={
                "VisuStudyUid": f"<{uid}>", "VisuStudyDate": f"<{when},000+0200>",
                "VisuAcqDate": f"<{when},000+0200>"}))
            (tmp_path / f"{name}-out").mkdir()
            ds = pydicom.dcmread(write_dicom_series(series, tmp_path / f"{name}-out",
                                                    deidentify=profile)[0].files[0])
            dates[name] = _seconds(ds, "StudyDate", "StudyTime")
            dates[name + "-id"] = ds.PatientID
        assert dates["first-id"] == dates["second-id"]
        interval = dates["second"] - dates["first"]
        assert interval.total_seconds() == 30 * 86400 + 5.5 * 3600


class TestKeys:
    def test_hkdf_matches_rfc5869_test_case_1(self):
        from xnatpic.dicom.deidentify import hkdf_sha256
        okm = hkdf_sha256(bytes([0x0b] * 22), bytes(range(13)), bytes(range(0xf0, 0xfa)), 42)
        assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                             "34007208d5b887185865")

    def test_purposes_give_unrelated_keys(self):
        from xnatpic.dicom.deidentify import derive_key
        keys = {derive_key("a-secret-salt-Q7x", p) for p in ("pseudonym", "uid", "date")}
        assert len(keys) == 3 and b"a-secret-salt-Q7x" not in b"".join(keys)


class TestPatientAge:
    """PatientAge: K under Retain Patient Characteristics (113108, claimed), so it stays
    while the birth date is emptied; computed before any date moves."""

    def test_table_keeps_age_under_the_claimed_option(self):
        from tests.dicom.test_confidentiality_profile import CLAIMED, ROWS, action
        row = ROWS[0x00101010]
        assert row["name"] == "Patient's Age"
        assert action(row, CLAIMED) == "K"
        assert action(ROWS[0x00100030], CLAIMED) == "Z"  # the birth date is not kept

    def test_age_from_birth_and_study_dates_stays_when_deidentified(self, tmp_path):
        # synthetic study: born 2021-01-01, studied 2021-05-04
        expected = (date(2021, 5, 4) - date(2021, 1, 1)).days
        series = load(write_study(tmp_path / "study", np.zeros((2, 4, 4), dtype="i2")))
        for name, profile in (("plain", None), ("deid", DeidentifyProfile(salt="age-salt"))):
            (tmp_path / name).mkdir()
            for enhanced in (False, True):
                out = tmp_path / name / str(enhanced)
                out.mkdir()
                written = write_dicom_series(series, out, enhanced=enhanced,
                                             deidentify=profile)
                ds = pydicom.dcmread(written[0].files[0])
                assert ds.PatientAge == f"{expected:03d}D", (name, enhanced)
                if profile is not None:
                    assert not ds.PatientBirthDate

    def test_age_on_the_corpus_matches_its_dates(self, corpus, convert):
        ds = pydicom.dcmread(convert(ACIDOCEST, "3")[1][0].files[0])
        deid = pydicom.dcmread(convert(ACIDOCEST, "3", deidentify=PROFILE)[1][0].files[0])
        days = _days(ds.StudyDate, ds.PatientBirthDate)
        assert days > 0 and ds.PatientAge == age_string(days)
        assert deid.PatientAge == ds.PatientAge and not deid.PatientBirthDate

    @pytest.mark.parametrize(("days", "text"), [
        (0, "000D"), (84, "084D"), (999, "999D"), (1000, "142W"), (6999, "999W"),
        (7000, "229M"), (30500, "083Y"), (-1, None)])
    def test_age_string(self, days, text):
        assert age_string(days) == text

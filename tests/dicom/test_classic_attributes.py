"""Classic MR attributes on the real corpus: per-frame acquisition, subject, study, UIDs."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import load_reco
from xnatpic.dicom import write_dicom_series
from xnatpic.dicom.engine import _MAX_LENGTH
from xnatpic.dicom.private import private_tag
from xnatpic.dicom.uids import is_valid_uid

ACIDOCEST = "pv6-acidocest/study"
DICOMIFIER = "pv6-dicomifier/study"
PV360 = "pv360-csi/study"


def _datasets(written) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for w in written for p in w.files]


def _images(series, written):
    by_index = {im.index: im for im in series.images}
    return [by_index[i] for w in written for i in w.image_indices]


class TestPerFrameAcquisition:
    def test_msme_echo_times_and_numbers(self, convert):
        series, written = convert(DICOMIFIER, "9")
        echo_times = np.asarray(series.visu["VisuAcqEchoTime"], float)
        for ds, image in zip(_datasets(written), _images(series, written), strict=True):
            assert int(ds.EchoNumbers) == image.axes["echo"] + 1
            assert float(ds.EchoTime) == pytest.approx(echo_times[image.axes["echo"]])
            assert float(ds.RepetitionTime) == pytest.approx(1500)
        assert {int(d.EchoNumbers) for d in _datasets(written)} == set(range(1, 8))

    def test_variable_repetition_times(self, convert):
        series, written = convert(DICOMIFIER, "11")
        tr = np.asarray(series.reco.scan.method["MultiRepTime"], float)
        for ds, image in zip(_datasets(written), _images(series, written), strict=True):
            assert float(ds.RepetitionTime) == pytest.approx(tr[image.axes["movie"]])
            assert int(ds.TemporalPositionIdentifier) == image.repetition + 1
            assert int(ds.AcquisitionNumber) == image.repetition + 1
        assert int(_datasets(written)[0].NumberOfTemporalPositions) == 3

    def test_inversion_times(self, convert):
        series, written = convert(DICOMIFIER, "13")
        ti = np.asarray(series.visu["VisuAcqInversionTime"], float)
        datasets = _datasets(written)
        for ds, image in zip(datasets, _images(series, written), strict=True):
            # InversionTime is the slice's effective TI: the protocol TI plus the slice's
            # delay after the inversion (tests/dicom/test_ir_timing.py checks the delay)
            delay = float(ds.private_block(0x0029, "XNATPIC 1.0")[0x35].value)
            assert float(ds.InversionTime) == pytest.approx(ti[image.axes["movie"]] + delay)
        assert "IR" in datasets[0].ScanningSequence
        assert "MP" in datasets[0].SequenceVariant

    def test_diffusion(self, convert):
        series, written = convert(DICOMIFIER, "21")
        bvals = np.asarray(series.reco.scan.method["PVM_DwEffBval"], float)
        for ds, image in zip(_datasets(written), _images(series, written), strict=True):
            k = image.axes["diffusion"]
            assert float(ds.DiffusionBValue) == pytest.approx(bvals[k])
            direction = series.diffusion_direction_patient(image)
            if direction is None:
                assert ds.DiffusionDirectionality == "NONE"
                assert "DiffusionGradientOrientation" not in ds
            else:
                assert ds.DiffusionDirectionality == "DIRECTIONAL"
                vector = np.asarray(ds.DiffusionGradientOrientation, float)
                np.testing.assert_allclose(vector, direction, atol=1e-9)
                assert np.linalg.norm(vector) == pytest.approx(1.0)
            matrix = np.asarray(ds[private_tag(0x33)].value, float)
            expected = np.asarray(series.visu["VisuAcqDiffusionBMatrix"], float)[k]
            np.testing.assert_allclose(matrix, expected[[0, 1, 2, 4, 5, 8]])

    def test_cest_offsets_and_saturation_pulse(self, convert):
        series, written = convert(ACIDOCEST, "4")
        method = series.reco.scan.method
        offsets = np.asarray(method["PVM_ppgFreqList1"], float)
        f0 = series.imaging_frequency
        datasets = _datasets(written)
        for ds, image in zip(datasets, _images(series, written), strict=True):
            hz = float(ds[private_tag(0x20)].value)
            assert hz == pytest.approx(offsets[image.repetition % offsets.size])
            assert float(ds[private_tag(0x21)].value) == pytest.approx(hz / f0)
            assert ds[private_tag(0x22)].value == ("YES" if abs(hz / f0) >= 20 else "NO")
        first = datasets[0]
        assert first[private_tag(0x23)].value == "PVM_MagTrans"
        assert float(first[private_tag(0x24)].value) == pytest.approx(method["PVM_MagTransPower"])
        assert int(first[private_tag(0x25)].value) == method["PVM_MagTransPulsNumb"]
        assert float(first[private_tag(0x27)].value) == pytest.approx(
            method["PVM_MagTransModuleTime"])
        assert first[private_tag(0x28)].value == method["PVM_MagTransPulse1Enum"]
        assert float(first[private_tag(0x29)].value) == pytest.approx(
            method["PVM_MagTransPulse1"][0])
        assert "MTC" in first.SequenceVariant
        assert first[0x00290010].value == "XNATPIC 1.0"

    def test_no_saturation_elements_without_saturation(self, convert):
        _, written = convert(DICOMIFIER, "9")
        ds = _datasets(written)[0]
        assert private_tag(0x20) not in ds and private_tag(0x24) not in ds


class TestSubjectAndStudy:
    def test_pv6_animal(self, convert):
        series, written = convert(ACIDOCEST, "3")
        ds = _datasets(written)[0]
        assert ds.PatientSex == "O"  # UNKNOWN
        assert ds.PatientSpeciesDescription == "ANIMAL"
        assert ds.AnatomicalOrientationType == "QUADRUPED"  # OtherAnimal
        assert ds.PatientPosition == "HFP"  # Head_Prone
        assert float(ds.PatientWeight) == pytest.approx(0.001)
        assert (ds.StudyDate, ds.StudyTime) == ("20220316", "115135.534")
        assert (ds.AcquisitionDate, ds.AcquisitionTime) == ("20220316", "120048.205")
        assert ds.TimezoneOffsetFromUTC == "-0500"
        assert ds.SeriesDescription == "RARE_1slice (E3)"
        assert ds.ProtocolName == "RARE_final_hisres_20200731"
        assert ds.SequenceName == "Bruker:RARE"
        assert ds.Manufacturer == "Bruker BioSpin MRI GmbH"
        assert ds.InstitutionName == "MD Anderson"
        assert ds.ResponsibleOrganization == "MD Anderson"
        assert ds.OperatorsName == "PagelLab^"
        assert ds.SoftwareVersions[0] == "ParaVision 6.0.1"
        assert float(ds.MagneticFieldStrength) == pytest.approx(
            series.imaging_frequency / 42.577478518, abs=1e-3)
        assert float(ds.AcquisitionDuration) == pytest.approx(80.0)  # 80000 ms
        assert ds.SeriesNumber == 30001
        assert ds.StudyInstanceUID == series.visu["VisuStudyUid"]

    def test_pv360_quadruped_and_field_strength(self, convert):
        series, written = convert(PV360, "T2")
        ds = _datasets(written)[0]
        assert ds.AnatomicalOrientationType == "QUADRUPED"
        assert ds.PatientPosition == "HFS"
        assert float(ds.PatientWeight) == pytest.approx(0.022)
        assert float(ds.MagneticFieldStrength) == pytest.approx(
            series.visu["VisuMagneticFieldStrength"], abs=1e-6)
        assert ds.StationName == "Remote Instrumen"  # SH: "Remote Instrument" truncated
        assert "FS" in ds.ScanOptions  # VisuAcqSpectralSuppression FatSuppression

    def test_pv5_dates_and_sex(self, convert):
        _, written = convert("pv5-misc/brukerMRI-msme", "56")
        ds = _datasets(written)[0]
        assert (ds.StudyDate, ds.StudyTime) == ("20171211", "111618")
        assert ds.PatientSex == "F"
        assert ds.PatientPosition == "HFS"
        assert ds.AnatomicalOrientationType == "QUADRUPED"  # no VisuSubjectType in PV 5

    def test_values_within_vr_lengths(self, convert):
        for study, scan in ((ACIDOCEST, "4"), (PV360, "T2"), (DICOMIFIER, "21")):
            _, written = convert(study, scan)
            for ds in _datasets(written)[:2]:
                for elem in ds.iterall():
                    if elem.VR in _MAX_LENGTH and elem.VR not in ("PN", "UT", "UC"):
                        for value in (elem.value if elem.VM > 1 else [elem.value]):
                            assert len(str(value)) <= _MAX_LENGTH[elem.VR], elem.keyword


class TestUids:
    def test_converting_twice_gives_the_same_uids(self, corpus, tmp_path):
        uids = []
        for name in ("a", "b"):
            series = load_reco(corpus, DICOMIFIER, "1")
            (tmp_path / name).mkdir()
            written = write_dicom_series(series, tmp_path / name)
            uids.append([(d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID,
                          d.FrameOfReferenceUID) for d in _datasets(written)])
        assert uids[0] == uids[1]

    def test_uids_are_valid_distinct_and_shared_where_they_should(self, convert):
        datasets = []
        for scan in ("1", "9", "21"):
            datasets += _datasets(convert(DICOMIFIER, scan)[1])
        study = {d.StudyInstanceUID for d in datasets}
        frame = {d.FrameOfReferenceUID for d in datasets}
        series = {d.SeriesInstanceUID for d in datasets}
        instances = [d.SOPInstanceUID for d in datasets]
        assert len(study) == 1 and len(frame) == 1
        assert len(series) == 3 + 1 + 1  # localizer: 3 packages
        assert len(set(instances)) == len(instances)
        assert not (set(instances) & (study | frame | series))
        assert not (study & frame) and not (series & frame) and not (series & study)
        for uid in [*study, *frame, *series, *instances]:
            assert is_valid_uid(uid)
        for ds in datasets[:3]:
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


class TestSidecar:
    def test_holds_every_parameter(self, convert):
        series, written = convert(DICOMIFIER, "21")
        document = json.loads(written[0].sidecar.read_text())
        reco, scan = series.reco, series.reco.scan
        sets = {"visu_pars": reco.visu_pars, "reco": reco.reco, "method": scan.method,
                "acqp": scan.acqp, "subject": scan.study.subject}
        for key, params in sets.items():
            stored = document["parameters"][key]["parameters"]
            assert list(stored) == list(params), key
        bmat = document["parameters"]["visu_pars"]["parameters"]["VisuAcqDiffusionBMatrix"]
        np.testing.assert_allclose(bmat, series.visu["VisuAcqDiffusionBMatrix"])
        assert document["series_instance_uid"] == written[0].series_instance_uid
        assert document["files"] == [p.name for p in written[0].files]
        assert [f["image_index"] for f in document["frames"]] == written[0].image_indices
        assert document["parameters"]["visu_pars"]["file"] == "21/pdata/1/visu_pars"

    def test_one_sidecar_per_package(self, convert):
        _, written = convert(DICOMIFIER, "1")
        sidecars = {w.sidecar for w in written}
        assert len(sidecars) == 3
        for w in written:
            assert json.loads(w.sidecar.read_text())["package"] == w.package

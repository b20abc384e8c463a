"""The mri2dicom step on its own: finding the study, the XNAT import upload, failures."""

from __future__ import annotations

import argparse
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.double import PASSWORD, USER, XnatDouble


def _args(step_module, tmp_path, *extra: str) -> argparse.Namespace:
    return step_module.parse_args(["--input", str(tmp_path / "in"), "--output",
                                   str(tmp_path / "out"), *extra])


def _study(folder: Path) -> Path:
    (folder / "3").mkdir(parents=True)
    (folder / "3" / "acqp").write_text("##TITLE=x\n")
    (folder / "subject").write_text("##TITLE=x\n")
    return folder


class TestFindSources:
    def test_resource_is_the_study(self, step_module, tmp_path):
        res = _study(tmp_path / "RESOURCES" / "PARAVISION")
        assert step_module.find_sources(tmp_path, "PARAVISION") == [res]

    def test_study_folders_and_zips_inside(self, step_module, tmp_path):
        res = tmp_path / "RESOURCES" / "PV"
        a = _study(res / "a" / "20200101_study")
        b = _study(res / "b")
        res.joinpath("c.zip").write_bytes(b"PK")
        found = step_module.find_sources(tmp_path, "PV")
        assert found == [res / "c.zip", a, b]

    def test_missing_resource_lists_the_others(self, step_module, tmp_path):
        (tmp_path / "RESOURCES" / "NIFTI").mkdir(parents=True)
        with pytest.raises(step_module.StepError,
                           match=r"no resource 'PARAVISION' .*\(resources: NIFTI\)"):
            step_module.find_sources(tmp_path, "PARAVISION")

    def test_no_study(self, step_module, tmp_path):
        (tmp_path / "RESOURCES" / "PARAVISION" / "junk").mkdir(parents=True)
        with pytest.raises(step_module.StepError, match="no ParaVision study"):
            step_module.find_sources(tmp_path, "PARAVISION")

    def test_run_exits_1_with_reason_on_stderr(self, step_module, tmp_path, capsys):
        (tmp_path / "in").mkdir()
        code = step_module.run(["--input", str(tmp_path / "in"), "--output",
                                str(tmp_path / "out")])
        assert code == 1
        assert "no resource 'PARAVISION'" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def xnat(monkeypatch):
    """The suite's XNAT double, with project PRECLIN; XNAT_HOST/USER/PASS point at it."""
    double = XnatDouble(("PRECLIN",)).start()
    for key, value in {"XNAT_HOST": double.url, "XNAT_USER": USER,
                       "XNAT_PASS": PASSWORD}.items():
        monkeypatch.setenv(key, value)
    yield double
    double.stop()


class TestImport:
    def _dicom(self, tmp_path) -> tuple[Path, set[str]]:
        """Two series of one study as the step writes them (subject/study/scan-reco)."""
        dicom = tmp_path / "out" / "dicom"
        study, uids = generate_uid(), set()
        for number, scan in ((3, "3-1"), (4, "4-1")):
            folder = dicom / "mouse1" / "acido" / scan
            folder.mkdir(parents=True)
            ds = pydicom.Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
            ds.SeriesNumber, ds.InstanceNumber, ds.Modality = number, 1, "MR"
            ds.PatientID = ds.PatientName = "mouse1"
            pydicom.dcmwrite(folder / "0001.dcm", ds, enforce_file_format=True)
            uids.add(str(ds.SOPInstanceUID))
        return dicom, uids

    def test_upload_through_import_service(self, step_module, tmp_path, xnat):
        dicom, uids = self._dicom(tmp_path)
        args = _args(step_module, tmp_path, "--import", "--project", "PRECLIN",
                     "--subject", "mouse1", "--session-label", "acido_d0")
        answer = step_module.import_into_session(dicom, args)
        assert answer.endswith("/subjects/mouse1/experiments/acido_d0")
        # one XNAT session for the import, ended when the step is done
        assert xnat.log == ["PUT /data/services/auth", "POST /data/services/import",
                            "DELETE /data/JSESSION"]
        session = xnat.session("PRECLIN", "acido_d0")
        assert sorted(session.scans) == ["3", "4"]
        assert {uid for files in session.scans.values() for uid in files} == uids

    def test_upload_failure_is_an_error_without_secret(self, step_module, tmp_path, xnat):
        dicom, _ = self._dicom(tmp_path)
        xnat.add_fault(r"POST /data/services/import", "500")
        args = _args(step_module, tmp_path, "--import", "--project", "PRECLIN", "--subject",
                     "S", "--session-label", "L")
        with pytest.raises(step_module.XnatpicError, match=r"HTTP 500") as info:
            step_module.import_into_session(dicom, args)
        assert PASSWORD not in str(info.value)

    def test_no_credentials_skips_import(self, step_module, tmp_path, monkeypatch, caplog):
        for key in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("XNAT_HOST", "")
        args = _args(step_module, tmp_path, "--import", "--project", "P")
        assert step_module.import_into_session(self._dicom(tmp_path)[0], args) is None
        assert "not imported" in caplog.text

    def test_no_import_asked(self, step_module, tmp_path, monkeypatch):
        monkeypatch.setenv("XNAT_HOST", "http://127.0.0.1:9")  # would fail if used
        args = _args(step_module, tmp_path, "--no-import")
        assert step_module.import_into_session(self._dicom(tmp_path)[0], args) is None

    def test_import_needs_session_identity(self, step_module, tmp_path, xnat):
        args = _args(step_module, tmp_path, "--import", "--project", "P")
        with pytest.raises(step_module.StepError, match="--subject, --session-label"):
            step_module.import_into_session(self._dicom(tmp_path)[0], args)
        assert xnat.log == []

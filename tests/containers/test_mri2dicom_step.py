"""The mri2dicom step on its own: finding the study, the XNAT import upload, failures."""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import pytest

from tests.xnat.fake_xnat import AUTH, PASSWORD, FakeXnat


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


class TestImport:
    def _dicom(self, tmp_path) -> Path:
        dicom = tmp_path / "out" / "dicom"
        for scan in ("3-1", "4-1"):
            (dicom / "mouse1" / "acido" / scan).mkdir(parents=True)
            (dicom / "mouse1" / "acido" / scan / "0001.dcm").write_bytes(scan.encode())
        return dicom

    def test_upload_through_import_service(self, step_module, tmp_path, monkeypatch):
        dicom = self._dicom(tmp_path)
        with FakeXnat() as xnat:
            for key, value in xnat.env().items():
                monkeypatch.setenv(key, value)
            xnat.routes[("POST", "/data/services/import")] = lambda r: (
                200, "/data/archive/projects/PRECLIN/subjects/XNAT_S00001/experiments/E1")
            args = _args(step_module, tmp_path, "--import", "--project", "PRECLIN",
                         "--subject", "XNAT_S00001", "--session-label", "acido_d0")
            answer = step_module.import_into_session(dicom, args)
        assert answer.endswith("/experiments/E1")
        (rec,) = xnat.requests
        assert rec.method == "POST" and rec.path == "/data/services/import"
        assert rec.query == {"import-handler": ["DICOM-zip"], "PROJECT_ID": ["PRECLIN"],
                             "SUBJECT_ID": ["XNAT_S00001"], "EXPT_LABEL": ["acido_d0"],
                             "overwrite": ["append"], "inbody": ["true"]}
        assert rec.headers["Authorization"] == AUTH
        assert rec.headers["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(rec.body)) as zf:
            assert sorted(zf.namelist()) == ["mouse1/acido/3-1/0001.dcm",
                                             "mouse1/acido/4-1/0001.dcm"]
            assert zf.read("mouse1/acido/4-1/0001.dcm") == b"4-1"

    def test_upload_failure_is_an_error_without_secret(self, step_module, tmp_path,
                                                       monkeypatch):
        dicom = self._dicom(tmp_path)
        with FakeXnat() as xnat:
            for key, value in xnat.env().items():
                monkeypatch.setenv(key, value)
            xnat.routes[("POST", "/data/services/import")] = lambda r: (500, "disk full")
            args = _args(step_module, tmp_path, "--import", "--project", "P", "--subject",
                         "S", "--session-label", "L")
            with pytest.raises(step_module.XnatpicError, match=r"HTTP 500.*disk full") as info:
                step_module.import_into_session(dicom, args)
        assert PASSWORD not in str(info.value)

    def test_no_credentials_skips_import(self, step_module, tmp_path, monkeypatch, caplog):
        for key in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("XNAT_HOST", "")
        args = _args(step_module, tmp_path, "--import", "--project", "P")
        assert step_module.import_into_session(self._dicom(tmp_path), args) is None
        assert "not imported" in caplog.text

    def test_no_import_asked(self, step_module, tmp_path, monkeypatch):
        monkeypatch.setenv("XNAT_HOST", "http://127.0.0.1:9")  # would fail if used
        args = _args(step_module, tmp_path, "--no-import")
        assert step_module.import_into_session(self._dicom(tmp_path), args) is None

    def test_import_needs_session_identity(self, step_module, tmp_path, monkeypatch):
        with FakeXnat() as xnat:
            for key, value in xnat.env().items():
                monkeypatch.setenv(key, value)
            args = _args(step_module, tmp_path, "--import", "--project", "P")
            with pytest.raises(step_module.StepError, match="--subject, --session-label"):
                step_module.import_into_session(self._dicom(tmp_path), args)
            assert xnat.requests == []

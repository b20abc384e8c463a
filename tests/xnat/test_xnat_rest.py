"""The XNAT client and ``xnatpic xnat`` against a local server that checks each request."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.xnat.fake_xnat import AUTH, PASSWORD, FakeXnat
from xnatpic.cli.main import main
from xnatpic.xnat import schema
from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.rest import XnatClient, load_credentials

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MRI2DICOM = PROJECT_ROOT / "commands" / "mri2dicom.json"
WRAPPER = "xnatpic-mri2dicom-session"

COMMANDS_ON_XNAT = [
    {"id": 16, "name": "other", "version": "1", "xnat": [
        {"id": 40, "name": "other-wrapper", "external-inputs": [{"name": "session"}]}]},
    {"id": 17, "name": "xnatpic-mri2dicom", "version": "0.1.0", "xnat": [
        {"id": 42, "name": WRAPPER, "external-inputs": [{"name": "session"}]}]},
]


@pytest.fixture
def xnat(monkeypatch):
    with FakeXnat() as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        fake.routes[("GET", "/xapi/commands")] = lambda r: (200, COMMANDS_ON_XNAT)
        yield fake


def _no_secret(capsys) -> str:
    out = capsys.readouterr()
    text = out.out + out.err
    assert PASSWORD not in text
    return text


class TestCredentials:
    def test_from_environment(self):
        creds = load_credentials(env={"XNAT_HOST": "xnat.example.org/", "XNAT_USER": "u",
                                      "XNAT_PASS": "pw-xyz"})
        assert creds.host == "https://xnat.example.org" and creds.user == "u"
        assert "pw-xyz" not in repr(creds) and creds.password == "pw-xyz"

    def test_from_netrc(self, tmp_path):
        rc = tmp_path / "netrc"
        rc.write_text("machine xnat.example.org login bob password hunter2\n")
        rc.chmod(0o600)
        creds = load_credentials(env={"XNAT_HOST": "https://xnat.example.org"},
                                 netrc_file=rc)
        assert (creds.user, creds.password) == ("bob", "hunter2")

    def test_missing_host(self):
        with pytest.raises(XnatRequestError, match="set XNAT_HOST"):
            load_credentials(env={})

    def test_missing_user(self, tmp_path):
        with pytest.raises(XnatRequestError, match=r"no credentials for xnat\.example\.org"):
            load_credentials(env={"XNAT_HOST": "https://xnat.example.org"},
                             netrc_file=tmp_path / "none")

    def test_wrong_password_message_has_no_secret(self, xnat):
        client = XnatClient(load_credentials(env={**xnat.env(), "XNAT_PASS": "wrong"}))
        with pytest.raises(XnatRequestError, match=r"HTTP 401.*check XNAT_USER") as info:
            client.commands()
        assert "wrong" not in str(info.value)


class TestRegister:
    def test_register_json_enables_site_and_project(self, xnat, capsys):
        added = []

        def add(rec):
            assert rec.headers["Content-Type"] == "application/json"
            added.append(rec.json())
            return 201, "17"

        xnat.routes[("POST", "/xapi/commands")] = add
        site = f"/xapi/commands/17/wrappers/{WRAPPER}/enabled"
        proj = f"/xapi/projects/PRECLIN/commands/17/wrappers/{WRAPPER}/enabled"
        xnat.routes[("PUT", site)] = lambda r: (200, "")
        xnat.routes[("PUT", proj)] = lambda r: (200, "")
        assert main(["xnat", "register", str(MRI2DICOM), "--project", "PRECLIN"]) == 0
        assert added == [json.loads(MRI2DICOM.read_text())]
        assert [(r.method, r.path) for r in xnat.requests] == [
            ("POST", "/xapi/commands"), ("PUT", site), ("PUT", proj)]
        assert all(r.headers["Authorization"] == AUTH for r in xnat.requests)
        assert "added xnatpic-mri2dicom 0.1.1 as command 17" in _no_secret(capsys)

    def test_register_image_reads_label(self, xnat, monkeypatch):
        label = json.dumps([json.loads(MRI2DICOM.read_text())])
        seen = []
        monkeypatch.setattr(schema, "read_image_label",
                            lambda image, cli=None: seen.append(image) or label)
        xnat.routes[("POST", "/xapi/commands")] = lambda r: (201, "5")
        xnat.routes[("PUT", f"/xapi/commands/5/wrappers/{WRAPPER}/enabled")] = (
            lambda r: (200, ""))
        assert main(["xnat", "register", "xnatpic-mri2dicom:0.1.1"]) == 0
        assert seen == ["xnatpic-mri2dicom:0.1.1"]
        assert len(xnat.requests) == 2

    def test_register_existing_version_fails_clearly(self, xnat, capsys):
        xnat.routes[("POST", "/xapi/commands")] = lambda r: (
            400, "command xnatpic-mri2dicom 0.1.0 already exists")
        assert main(["xnat", "register", str(MRI2DICOM)]) == 1
        err = _no_secret(capsys)
        assert "POST" in err and "HTTP 400" in err and "already exists" in err

    def test_register_refuses_lint_errors(self, xnat, tmp_path, capsys):
        bad = json.loads(MRI2DICOM.read_text())
        bad["image"] = "untagged"
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        assert main(["xnat", "register", str(path)]) == 1
        assert "E103" in capsys.readouterr().err
        assert xnat.requests == []


class TestLaunch:
    def test_launch_and_wait(self, xnat, capsys):
        statuses = iter(["In Progress", "Complete"])
        launch_path = "/xapi/projects/PRECLIN/wrappers/42/root/session/launch"

        def launch(rec):
            assert rec.json() == {"session": "/archive/experiments/XNAT_E00001",
                                  "format": "enhanced"}
            return 200, {"status": "success", "workflow-id": "901", "params": rec.json()}

        xnat.routes[("POST", launch_path)] = launch
        xnat.routes[("GET", "/xapi/workflows/901")] = lambda r: (
            200, {"id": 901, "status": next(statuses)})
        code = main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", "XNAT_E00001", "--param", "format=enhanced", "--wait",
                     "--poll", "0"])
        assert code == 0
        assert [(r.method, r.path) for r in xnat.requests] == [
            ("GET", "/xapi/commands"), ("POST", launch_path),
            ("GET", "/xapi/workflows/901"), ("GET", "/xapi/workflows/901")]
        assert "XNAT_E00001: Complete" in _no_secret(capsys)

    def test_launch_failure_reported(self, xnat, capsys):
        path = "/xapi/projects/PRECLIN/wrappers/42/root/session/launch"
        xnat.routes[("POST", path)] = lambda r: (
            200, {"status": "failure", "message": "matches 2 scans"})
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", "42",
                     "--session", "XNAT_E00001"]) == 1
        assert "matches 2 scans" in capsys.readouterr().err

    def test_unknown_wrapper(self, xnat, capsys):
        assert main(["xnat", "launch", "--project", "P", "--wrapper", "nope",
                     "--session", "E"]) == 1
        assert "XNAT has no wrapper 'nope'" in capsys.readouterr().err


class TestBulkLaunch:
    def _archive(self, xnat):
        sessions = [
            {"ID": "XNAT_E00001", "label": "m1", "xsiType": "xnat:mrSessionData"},
            {"ID": "XNAT_E00002", "label": "m2", "xsiType": "xnat:mrSessionData"},
            {"ID": "XNAT_E00003", "label": "m3", "xsiType": "xnat:mrSessionData"},
            {"ID": "XNAT_E00009", "label": "qc", "xsiType": "xnat:qcAssessmentData"},
        ]
        scans = {"XNAT_E00001": ["MSME", "FLASH"], "XNAT_E00002": ["FLASH"],
                 "XNAT_E00003": ["MSME"]}

        def listing(rec):
            assert rec.query == {"format": ["json"], "columns": ["ID,label,xsiType,date"]}
            return 200, {"ResultSet": {"Result": sessions}}

        xnat.routes[("GET", "/data/projects/PRECLIN/experiments")] = listing
        for sid, types in scans.items():
            xnat.routes[("GET", f"/data/experiments/{sid}/scans")] = (
                lambda r, t=types: (200, {"ResultSet": {"Result": [
                    {"ID": str(i), "type": x} for i, x in enumerate(t)]}}))

    def test_bulk_where_scan_type(self, xnat, tmp_path, capsys):
        self._archive(xnat)
        bulk_path = "/xapi/projects/PRECLIN/wrappers/42/root/session/bulklaunch"
        bodies = []

        def bulk(rec):
            bodies.append(rec.json())
            return 200, {
                "successes": [{"params": {"session": "/archive/experiments/XNAT_E00001"},
                               "workflow-id": "7"}],
                "failures": [{"params": {"session": "XNAT_E00003"},
                              "message": "no DICOM"}],
            }

        xnat.routes[("POST", bulk_path)] = bulk
        xnat.routes[("GET", "/xapi/workflows/7")] = lambda r: (200, {"status": "Complete"})
        report = tmp_path / "r.json"
        code = main(["xnat", "bulk-launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--where", "scan-type=MSME", "--param", "format=dicom", "--poll", "0",
                     "--report", str(report)])
        assert code == 1  # one session failed to launch
        # the session list is a JSON array inside a string: XNAT's bulklaunch quirk
        assert bodies == [{"format": "dicom",
                           "session": '["XNAT_E00001","XNAT_E00003"]'}]
        assert isinstance(bodies[0]["session"], str)
        data = json.loads(report.read_text())
        assert [(r["session"], r["status"]) for r in data["results"]] == [
            ("XNAT_E00001", "Complete"), ("XNAT_E00003", "Failed (launch)")]
        text = _no_secret(capsys)
        assert "no DICOM" in text

    def test_bulk_all_complete(self, xnat):
        self._archive(xnat)
        path = "/xapi/projects/PRECLIN/wrappers/42/root/session/bulklaunch"
        xnat.routes[("POST", path)] = lambda r: (200, {"successes": [
            {"params": {"session": s}, "workflow-id": str(i)}
            for i, s in enumerate(json.loads(r.json()["session"]))], "failures": []})
        for i in range(3):
            xnat.routes[("GET", f"/xapi/workflows/{i}")] = lambda r: (200, {"status":
                                                                           "Complete"})
        assert main(["xnat", "bulk-launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--poll", "0"]) == 0
        posted = next(r for r in xnat.requests if r.method == "POST")
        assert json.loads(posted.json()["session"]) == [
            "XNAT_E00001", "XNAT_E00002", "XNAT_E00003"]

    def test_bulk_nothing_left(self, xnat, capsys):
        self._archive(xnat)
        assert main(["xnat", "bulk-launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--where", "scan-type=DTI*"]) == 1
        assert "no session of project PRECLIN is left" in capsys.readouterr().err


class TestImportService:
    def test_import_dicom_zip(self, xnat, tmp_path):
        archive = tmp_path / "dicom.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("3/a.dcm", b"DICM")
        got = []

        def importer(rec):
            got.append(rec)
            return 200, "/data/prearchive/projects/PRECLIN/20260101_000000/m1"

        xnat.routes[("POST", "/data/services/import")] = importer
        client = XnatClient(load_credentials())
        answer = client.import_dicom_zip(archive, project="PRECLIN", subject="XNAT_S00001",
                                         session_label="m1")
        assert answer.endswith("/m1")
        rec = got[0]
        assert rec.query == {"import-handler": ["DICOM-zip"], "PROJECT_ID": ["PRECLIN"],
                             "SUBJECT_ID": ["XNAT_S00001"], "EXPT_LABEL": ["m1"],
                             "overwrite": ["append"], "inbody": ["true"]}
        assert rec.headers["Content-Type"] == "application/zip"
        assert rec.body == archive.read_bytes()
        assert rec.headers["Authorization"] == AUTH


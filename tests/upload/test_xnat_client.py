"""``xnatpic upload --server`` on the XNAT double's XNAT behaviours: what the uploader does
when XNAT answers as its source says (see test_xnat_double.py for the double itself)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import pydicom
import pytest
import requests

from tests.double.server import BASIC_AUTH, PASSWORD, XnatDouble
from tests.upload.checks import assert_server_holds
from tests.upload.conftest import write_dicom_studies
from xnatpic.cli.main import main
from xnatpic.upload import discover_sources
from xnatpic.upload.errors import MetadataError
from xnatpic.upload.planning import plan_sources
from xnatpic.upload.server import ServerTarget

LABEL = "study1_20240101"


def _upload(fake: XnatDouble, src: Path, tmp_path: Path, *extra: str,
            project: str = "PRECLIN") -> tuple[int, dict]:
    report = tmp_path / "report.json"
    rc = main(["upload", str(src), "--project", project, "--server", fake.url, "--report",
               str(report), "--retries", "4", *extra])
    return rc, json.loads(report.read_text()) if report.exists() else {}


def _row(report: dict, label: str = LABEL) -> dict:
    return next(s for s in report["sessions"] if s["session"] == label)


def _preload(fake: XnatDouble, files: list[Path], *, label: str = LABEL,
             subject: str = "mouse1", again: bool = False) -> requests.Response:
    """Import some files ourselves (as another client would); ``again``: a second copy of
    files already delivered, not counted."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for f in files:
            zf.write(f, f.name)
    resp = requests.post(f"{fake.url}/data/services/import", headers={
        "Authorization": BASIC_AUTH, "Content-Type": "application/zip"}, params={
        "import-handler": "DICOM-zip", "PROJECT_ID": "PRECLIN", "SUBJECT_ID": subject,
        "EXPT_LABEL": label, "overwrite": "append", "dest": "/archive"},
        data=buffer.getvalue(), timeout=30)
    for f in files if again else []:
        fake.deliveries[str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)] -= 1
    return resp


def _files(src: Path, series: str = "series0") -> list[Path]:
    return sorted((src / "mouse1" / "study1" / series).glob("*.dcm"))


class TestStatuses:
    def test_accepted_404_with_an_html_body_is_no_error(self, fake, dicom_studies):
        target = ServerTarget(fake.url)
        try:
            from xnatpic.upload.discover import discover_sources
            from xnatpic.upload.planning import build_plans
            plan = build_plans(discover_sources([dicom_studies[0] / "mouse1"]), "PRECLIN")[0]
            assert target.manifest(plan) is None  # XNAT's 404 is an HTML page
            assert target.study_uid(plan) is None
        finally:
            target.close()


class TestCredentialsStaySecret:
    """Issue 16: no password, Basic token or session id in output, logs or the report."""

    @staticmethod
    def _secrets(password: str) -> list[str]:
        import base64

        return [password, base64.b64encode(f"admin:{password}".encode()).decode()]

    def test_wrong_password(self, fake, dicom_studies, tmp_path, monkeypatch, capsys,
                            caplog):
        src, _ = dicom_studies
        wrong = "Wr0ng-upload-secret-7731"
        monkeypatch.setenv("XNAT_PASS", wrong)
        caplog.set_level("DEBUG")
        rc, report = _upload(fake, src, tmp_path)
        out = capsys.readouterr()
        assert rc == 1
        assert "HTTP 401" in out.out + out.err + json.dumps(report)
        for text in (out.out, out.err, caplog.text, json.dumps(report)):
            for secret in self._secrets(wrong):
                assert secret not in text

    def test_server_failures_and_session_ids(self, fake, dicom_studies, tmp_path, capsys,
                                             caplog):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "500")
        fake.add_fault(r"GET /data/projects/PRECLIN/experiments", "drop")
        caplog.set_level("DEBUG")
        rc, report = _upload(fake, src, tmp_path)
        out = capsys.readouterr()
        assert rc == 0, report
        assert fake.tokens  # a session was opened: its id must not show either
        texts = (out.out, out.err, caplog.text, json.dumps(report))
        for text in texts:
            for secret in [*self._secrets(PASSWORD), *fake.tokens]:
                assert secret not in text
        assert_server_holds(fake, "PRECLIN", expected)


class TestResume:
    def test_partly_stored_scan_gets_only_its_missing_files(self, fake, dicom_studies,
                                                            tmp_path):
        src, expected = dicom_studies
        assert _preload(fake, _files(src)[:2]).status_code == 200
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        assert (_row(report)["scans_present"], _row(report)["scans_sent"]) == (0, 2)
        assert any(line.endswith(f"/experiments/{LABEL}/scans/3/resources/DICOM/files")
                   for line in fake.log)  # which instances it holds
        assert_server_holds(fake, "PRECLIN", expected)

    def test_partly_stored_converted_scan_gets_only_its_missing_files(self, fake,
                                                                      phantom_study,
                                                                      tmp_path):
        # a converted series is indexed from one header; the instances of a scan XNAT holds
        # in part are read from the files only then, and only the missing ones are sent
        rc, report = _upload(fake, phantom_study, tmp_path)
        assert rc == 0, report
        (label,) = [s["session"] for s in report["sessions"]]
        session = fake.session("PRECLIN", label)
        scan = sorted(session.scans)[1]
        held = session.scans[scan]
        lost = sorted(held)[:3]
        for sop in lost:  # XNAT holds the scan in part and the session is not complete
            del held[sop]
        del session.resources["CONVERSION"]["xnatpic-upload.json"]
        rc, report = _upload(fake, phantom_study, tmp_path)
        assert rc == 0, report
        row = _row(report, label)
        assert (row["scans_present"], row["scans_sent"]) == (len(session.scans) - 1, 1)
        assert {sop: fake.deliveries[sop] for sop in lost} == dict.fromkeys(lost, 2)
        assert all(fake.deliveries[sop] == 1 for s, sops in session.scans.items()
                   for sop in sops if sop not in lost)

    def test_refused_copy_in_the_prearchive_is_resolved(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        files = _files(src)
        assert _preload(fake, files).status_code == 200
        # a second import of the same files: refused, its copy kept in the prearchive
        assert _preload(fake, files, again=True).status_code == 400
        assert [p.status for p in fake.prearc] == ["CONFLICT"]
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        # archived through the archive service (409 Duplicate...), then deleted
        assert "POST /data/services/archive" in fake.log
        assert any(line.startswith("DELETE /data/prearchive/projects/PRECLIN/")
                   for line in fake.log)
        assert_server_holds(fake, "PRECLIN", expected)

    def test_cut_off_entries_are_archived_not_resent(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "drop")
        rc, report = _upload(fake, src, tmp_path, "--batch-mb", "0")
        assert rc == 0, report
        assert fake.log.count("POST /data/services/archive") == 1  # what the cut left
        assert_server_holds(fake, "PRECLIN", expected)  # each instance delivered once

    def test_timed_out_import_is_followed_not_resent(self, fake, dicom_studies, tmp_path,
                                                     caplog):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "slow-archive", delay=2.5)
        rc, report = _upload(fake, src, tmp_path, "--timeout", "1", "--jobs", "1")
        assert rc == 0, report
        assert fake.log.count("POST /data/services/import") == 3  # one per session
        assert "following XNAT's work on it instead of sending it again" in caplog.text
        assert_server_holds(fake, "PRECLIN", expected)

    def test_open_workflows_are_waited_for(self, fake, dicom_studies, tmp_path, caplog):
        src, expected = dicom_studies
        assert _preload(fake, _files(src)).status_code == 200
        session = fake.session("PRECLIN", LABEL)
        session.workflows.append("mri2dicom")
        threading.Timer(1.5, session.workflows.clear).start()
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        assert "waiting for it to end" in caplog.text
        assert_server_holds(fake, "PRECLIN", expected)


class TestLocks:
    def test_423_is_a_wait_with_a_clear_message(self, fake, dicom_studies):
        from xnatpic.upload.discover import discover_sources
        from xnatpic.upload.errors import ServerBusyError
        from xnatpic.upload.planning import build_plans

        src, _ = dicom_studies
        fake.prearchive = True  # the import stays in the prearchive
        assert _preload(fake, _files(src), again=True).status_code == 200
        (prearc,) = fake.prearc
        prearc.status = "ARCHIVING"  # another request is archiving it
        target = ServerTarget(fake.url)
        try:
            plan = build_plans(discover_sources([src / "mouse1"]), "PRECLIN")[0]
            with pytest.raises(ServerBusyError, match=r"XNAT is still archiving this session "
                               r"\(HTTP 423 Duplicate archive attempt"):
                target._archive(plan, prearc.url, "archive")
        finally:
            target.close()

    def test_import_meeting_an_archiving_copy_waits_for_it(self, fake, dicom_studies,
                                                             tmp_path, caplog):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "slow-archive", delay=4.0)
        other = threading.Thread(target=_preload, args=(fake, _files(src)),
                                 kwargs={"again": True})
        other.start()
        deadline = time.monotonic() + 10
        while not any(p.status == "ARCHIVING" for p in fake.prearc):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rc, report = _upload(fake, src / "mouse1", tmp_path)
        other.join()
        assert rc == 0, report
        assert "XNAT is still archiving" in caplog.text
        assert_server_holds(fake, "PRECLIN", {LABEL: expected[LABEL]})


class TestSessions:
    def test_session_type_follows_the_modality(self, fake, tmp_path):
        src = tmp_path / "ct"
        expected = write_dicom_studies(src, (("mouse1", "study1"),), modality="CT")
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        assert fake.session("PRECLIN", LABEL).xsi == "xnat:ctSessionData"
        assert_server_holds(fake, "PRECLIN", expected)

    def test_scan_ids_as_xnat_gives_them(self, fake, tmp_path):
        src = tmp_path / "twice"
        expected = write_dicom_studies(src, (("mouse1", "study1"),), series=("03", "03", 5))
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        assert set(expected[LABEL]) == {"03", "03-MR1", "5"}
        assert_server_holds(fake, "PRECLIN", expected)
        manifest = json.loads(fake.session("PRECLIN", LABEL).resources["CONVERSION"][
            "xnatpic-upload.json"])
        assert set(manifest["scans"]) == {"03", "03-MR1", "5"}
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0 and _row(report)["status"] == "complete"

    def test_session_under_another_subject_is_reported_not_moved(self, fake, dicom_studies,
                                                                  tmp_path):
        src, _ = dicom_studies
        requests.put(f"{fake.url}/data/projects/PRECLIN/subjects/other/experiments/{LABEL}",
                     headers={"Authorization": BASIC_AUTH},
                     params={"xsiType": "xnat:mrSessionData"}, timeout=10)
        rc, report = _upload(fake, src / "mouse1", tmp_path)
        assert rc == 1
        assert "belongs to another subject" in _row(report)["error"]
        assert fake.session("PRECLIN", LABEL).subject == "other"
        assert "POST /data/services/import" not in fake.log

    def test_same_study_under_another_label_is_not_stored_twice(self, fake, dicom_studies,
                                                                 tmp_path):
        src, _ = dicom_studies
        assert _upload(fake, src / "mouse1", tmp_path)[0] == 0
        imports = fake.log.count("POST /data/services/import")
        rc, report = _upload(fake, src / "mouse1", tmp_path, "--session-template",
                             "again_{study_name}")
        assert rc == 1
        (row,) = report["sessions"]
        assert f"as session {LABEL!r}" in row["error"]
        assert fake.log.count("POST /data/services/import") == imports
        assert ("PRECLIN", row["session"]) not in fake.sessions

    def test_files_xnat_filters_out_are_a_warning_not_a_failure(self, fake, tmp_path):
        src = tmp_path / "filtered"
        expected = write_dicom_studies(src, (("mouse1", "study1"),))
        fake.series_filter = r"_5$"  # the project's series import filter drops series 5
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        (warning,) = _row(report)["warnings"]
        assert "scan 5: XNAT kept 0 of 4 files" in warning
        assert set(fake.session("PRECLIN", LABEL).scans) == {"3"}
        imports = fake.log.count("POST /data/services/import")
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0 and _row(report)["status"] == "complete"
        assert fake.log.count("POST /data/services/import") == imports
        assert set(expected[LABEL]) == {"3", "5"}

    def test_gender_codes_sent_in_xnat_vocabulary(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        meta = tmp_path / "meta.csv"
        meta.write_text("key,sex\nmouse1,F\nmouse2,M\n")
        rc, report = _upload(fake, src, tmp_path, "--metadata", str(meta))
        assert rc == 0, report
        assert_server_holds(fake, "PRECLIN", expected)
        gender = "demographics[@xsi:type=xnat:demographicData]/gender"
        assert fake.subjects[("PRECLIN", "mouse1")][gender] == "female"
        assert fake.subjects[("PRECLIN", "mouse2")][gender] == "male"


    def test_every_demographic_sent_to_its_xnat_element(self, fake, dicom_studies, tmp_path):
        """Each demographic column lands on its xnat:demographicData element (xnat.xsd
        element names), in a value the schema accepts (the double refuses any other)."""
        src, _ = dicom_studies
        meta = tmp_path / "meta.csv"
        meta.write_text("key,sex,age,weight,height,handedness,strain,group\n"
                        "mouse1,o,12,24.5,9.1,Right,C57BL/6,ctl\n"
                        "mouse2,U,,,,,,\n")
        rc, report = _upload(fake, src, tmp_path, "--metadata", str(meta))
        assert rc == 0, report
        demo = "demographics[@xsi:type=xnat:demographicData]/"
        assert fake.subjects[("PRECLIN", "mouse1")] == {
            demo + "gender": "other", demo + "age": "12", demo + "weight": "24.5",
            demo + "height": "9.1", demo + "handedness": "right", "group": "ctl",
            "strain": "C57BL/6"}
        assert fake.subjects[("PRECLIN", "mouse2")] == {demo + "gender": "unknown"}

    def test_year_of_birth_sent_as_yob(self, fake, dicom_studies, tmp_path):
        src, _ = dicom_studies
        meta = tmp_path / "meta.csv"
        meta.write_text("key,yob\nmouse1,2021\n")
        rc, report = _upload(fake, src, tmp_path, "--metadata", str(meta))
        assert rc == 0, report
        subject = fake.subjects[("PRECLIN", "mouse1")]
        assert subject["demographics[@xsi:type=xnat:demographicData]/yob"] == "2021"

    def test_a_plan_value_xnat_refuses_is_not_sent(self, fake, dicom_studies, tmp_path):
        """Subject values that do not come from a metadata file (a plan built by other
        code) pass the same mapping before the PUT: refused with the session's name."""
        src, _ = dicom_studies
        plan = plan_sources(discover_sources([src]), "PRECLIN").plans[0]
        plan.subject_fields = {"sex": "femme", "dob": "2023-01-02", "age": "3"}
        target = ServerTarget(fake.url)
        try:
            with pytest.raises(MetadataError) as exc:
                target.set_fields(plan)
        finally:
            target.close()
        message = str(exc.value)
        assert plan.key in message and "sex='femme'" in message
        assert "give one of dob, yob and age" in message
        assert not any(line.startswith("PUT /data/projects/PRECLIN/subjects")
                       for line in fake.log)

class TestProjects:
    def test_name_in_use_is_explained(self, fake, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        fake.projects["OLD"] = {"name": "NEWP", "secondary_ID": "OLD"}
        rc, _ = _upload(fake, src, tmp_path, project="NEWP")
        assert rc == 1
        assert "another project already uses that name or secondary ID (HTTP 409" in \
            capsys.readouterr().err

    def test_deleted_id_is_explained(self, fake, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        fake.deleted_projects.add("GONE")
        rc, _ = _upload(fake, src, tmp_path, project="GONE")
        assert rc == 1
        err = capsys.readouterr().err
        assert "HTTP 403" in err and "deleted project" in err
        assert not fake.sessions

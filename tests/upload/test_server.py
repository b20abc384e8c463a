"""``xnatpic upload --server``: the uploader's XNAT client against the XNAT double, with faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.double.server import PASSWORD, USER, XnatDouble
from tests.upload.checks import assert_server_holds
from xnatpic.cli.main import main


def _upload(fake: XnatDouble, src: Path, tmp_path: Path, *extra: str,
            project: str = "PRECLIN", verbose: bool = False) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    rc = main([*(["-vv"] if verbose else []), "upload", str(src), "--project", project,
               "--server", fake.url, "--report", str(report), "--retries", "4", *extra])
    return rc, json.loads(report.read_text()) if report.exists() else {}


class TestCleanUpload:
    def test_every_session_every_file_once(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        rc, report = _upload(fake, src, tmp_path, "--jobs", "3")
        assert rc == 0
        assert report["summary"] == {"uploaded": 3, "complete": 0, "skipped": 0, "failed": 0}
        assert_server_holds(fake, "PRECLIN", expected)
        session = fake.session("PRECLIN", "study2_20240101")
        assert session.subject == "mouse2"
        assert ("PRECLIN", "mouse2") in fake.subjects

    def test_rerun_sends_nothing(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        assert _upload(fake, src, tmp_path)[0] == 0
        imports = fake.log.count("POST /data/services/import")
        rc, report = _upload(fake, src, tmp_path, "--jobs", "2")
        assert rc == 0
        assert report["summary"]["complete"] == 3
        assert fake.log.count("POST /data/services/import") == imports
        assert_server_holds(fake, "PRECLIN", expected)

    def test_metadata_sets_subject_and_session_fields(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        meta = tmp_path / "meta.csv"
        meta.write_text("key,species,strain,sex,group,timepoint,dose_mg\n"
                        "mouse1,Mus musculus,C57BL/6,F,control,d0,0\n"
                        "study2_20240101,Mus musculus,BALB/c,M,treated,d7,5\n")
        assert _upload(fake, src, tmp_path, "--metadata", str(meta))[0] == 0
        assert fake.subjects[("PRECLIN", "mouse1")] == {
            "species": "Mus musculus", "strain": "C57BL/6", "group": "control",
            "demographics[@xsi:type=xnat:demographicData]/gender": "female"}
        fields = fake.session("PRECLIN", "study2_20240101").fields
        assert fields["timepoint"] == "d7" and fields["dose_mg"] == "5"
        assert fake.subjects[("PRECLIN", "mouse3")] == {}
        assert_server_holds(fake, "PRECLIN", expected)

    def test_prearchive_project_is_archived_and_waited_for(self, fake, dicom_studies,
                                                           tmp_path):
        fake.prearchive = True
        src, expected = dicom_studies
        rc, _ = _upload(fake, src, tmp_path, "--jobs", "2", project="PREARC")
        assert rc == 0
        assert fake.log.count("POST /data/services/archive") == 3  # one zip per session
        assert_server_holds(fake, "PREARC", expected)

    def test_credentials_never_in_output_or_report(self, fake, dicom_studies, tmp_path,
                                                   capsys, caplog):
        src, _ = dicom_studies
        fake.add_fault(r"POST /data/services/import", "500", times=1)
        _upload(fake, src, tmp_path, verbose=True)
        out = capsys.readouterr()
        text = out.out + out.err + caplog.text + (tmp_path / "report.json").read_text()
        assert PASSWORD not in text


class TestFaults:
    @pytest.mark.parametrize("kind", ["500", "500-after", "drop"])
    def test_import_faults_are_retried_without_duplicates(self, fake, dicom_studies, tmp_path,
                                                          kind):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", kind, times=2, skip=1)
        rc, report = _upload(fake, src, tmp_path, "--jobs", "2", "--batch-mb", "0")
        assert rc == 0, report
        assert_server_holds(fake, "PRECLIN", expected)

    def test_dropped_resource_upload_and_500_on_listing(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        fake.add_fault(r"PUT .*/resources/CONVERSION/files", "drop", times=2)
        fake.add_fault(r"GET .*/scans$", "500", times=3)
        rc, _ = _upload(fake, src, tmp_path)
        assert rc == 0
        assert_server_holds(fake, "PRECLIN", expected)

    def test_slow_answers_time_out_and_are_retried(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        fake.add_fault(r"GET .*/scans$", "slow", times=2, delay=2.5)
        fake.add_fault(r"POST /data/services/import", "slow", times=2, delay=0.3)
        rc, _ = _upload(fake, src, tmp_path, "--timeout", "1")
        assert rc == 0
        assert_server_holds(fake, "PRECLIN", expected)

    def test_crash_between_sessions_then_rerun(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        # the first session's two scans go through, then XNAT dies
        fake.add_fault(r"POST /data/services/import", "crash", skip=2)
        rc, report = _upload(fake, src, tmp_path, "--retries", "2", "--batch-mb", "0")
        assert rc == 1
        assert report["summary"] == {"uploaded": 1, "complete": 0, "skipped": 0, "failed": 2}
        fake.recover()
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0
        assert report["summary"] == {"uploaded": 2, "complete": 1, "skipped": 0, "failed": 0}
        assert_server_holds(fake, "PRECLIN", expected)

    def test_crash_mid_session_finishes_the_partial_session(self, fake, dicom_studies,
                                                            tmp_path):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "crash", skip=1)
        assert _upload(fake, src, tmp_path, "--retries", "2", "--batch-mb", "0")[0] == 1
        fake.recover()
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0
        partial = next(s for s in report["sessions"] if s["session"] == "study1_20240101")
        assert (partial["scans_present"], partial["scans_sent"]) == (1, 1)
        assert_server_holds(fake, "PRECLIN", expected)

    def test_a_failing_session_does_not_stop_the_others(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        # every import after the first session's two scans fails, however often retried
        fake.add_fault(r"POST /data/services/import", "500", times=100, skip=2)
        rc, report = _upload(fake, src, tmp_path, "--retries", "2", "--batch-mb", "0")
        assert rc == 1
        failed = [s for s in report["sessions"] if s["status"] == "failed"]
        assert failed and all("failed 2 times" in s["error"] for s in failed)
        assert report["sessions"][0]["status"] == "uploaded"
        first = fake.session("PRECLIN", "study1_20240101")
        assert {k: set(v) for k, v in first.scans.items()} == expected["study1_20240101"]
        fake.faults.clear()
        rc, report = _upload(fake, src, tmp_path)
        assert rc == 0, report
        assert_server_holds(fake, "PRECLIN", expected)

    def test_batch_stored_before_a_500_is_not_resent(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "500-after", times=1)
        rc, _ = _upload(fake, src, tmp_path)
        assert rc == 0
        assert fake.log.count("POST /data/services/import") == 3  # one per session, no resend
        assert_server_holds(fake, "PRECLIN", expected)

    def test_parallel_uploads_while_server_is_flaky(self, fake, dicom_studies, tmp_path):
        src, expected = dicom_studies
        fake.add_fault(r"POST /data/services/import", "drop", times=1, skip=0)
        fake.add_fault(r"POST /data/services/import", "500-after", times=1, skip=2)
        fake.add_fault(r"PUT .*/experiments/[^/]+$", "500", times=2)
        rc, _ = _upload(fake, src, tmp_path, "--jobs", "3")
        assert rc == 0
        assert_server_holds(fake, "PRECLIN", expected)


class TestDryRunAgainstServer:
    def test_actions(self, fake, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        assert _upload(fake, src / "mouse1", tmp_path)[0] == 0
        capsys.readouterr()
        rc = main(["upload", str(src), "--project", "PRECLIN", "--server", fake.url,
                   "--dry-run", "--json"])
        assert rc == 0
        plan = json.loads(capsys.readouterr().out)
        actions = {s["session"]: s["action"] for s in plan["sessions"]}
        assert actions == {"study1_20240101": "skip (complete)",
                           "study2_20240101": "upload (new)",
                           "study3_20240101": "upload (new)"}
        assert fake.log.count("POST /data/services/import") == 1


class TestCredentials:
    def test_netrc(self, fake, dicom_studies, tmp_path, monkeypatch):
        src, expected = dicom_studies
        netrc = tmp_path / "netrc"
        host = fake.url.split("://", 1)[1]
        netrc.write_text(f"machine {host} login {USER} password {PASSWORD}\n")
        netrc.chmod(0o600)
        monkeypatch.delenv("XNAT_USER")
        monkeypatch.delenv("XNAT_PASS")
        monkeypatch.setenv("NETRC", str(netrc))
        assert _upload(fake, src, tmp_path)[0] == 0
        assert_server_holds(fake, "PRECLIN", expected)

    def test_user_without_password_is_refused_not_prompted(self, fake, dicom_studies,
                                                           tmp_path, monkeypatch, capsys):
        src, _ = dicom_studies
        monkeypatch.delenv("XNAT_PASS")
        assert _upload(fake, src, tmp_path)[0] == 1
        assert "XNAT_USER is set but XNAT_PASS is not" in capsys.readouterr().err
        assert not fake.sessions


class TestProjects:
    def test_missing_project_is_created(self, fake, dicom_studies, tmp_path):
        src, _ = dicom_studies
        rc, _ = _upload(fake, src, tmp_path, project="NEWPROJ")
        assert rc == 0
        assert [p["id"] for p in fake.created_projects] == ["NEWPROJ"]
        assert fake.created_projects[0]["xsiType"] == "xnat:projectData"
        assert fake.created_projects[0]["accessibility"] == "private"
        assert {project for project, _ in fake.sessions} == {"NEWPROJ"}

    def test_existing_project_is_not_created(self, fake, dicom_studies, tmp_path):
        src, _ = dicom_studies
        assert _upload(fake, src, tmp_path)[0] == 0
        assert fake.created_projects == []

    def test_creation_refused_by_xnat(self, fake, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        fake.can_create_projects = False
        rc, _ = _upload(fake, src, tmp_path, project="NOPE")
        assert rc == 1
        err = capsys.readouterr().err
        assert "refused to create it (HTTP 403: you may not create projects)" in err
        assert not fake.sessions


class TestRefusals:
    def test_missing_project(self, fake, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        rc, _ = _upload(fake, src, tmp_path, "--no-create-project", project="NOPE")
        assert rc == 1
        assert "project 'NOPE' does not exist" in capsys.readouterr().err
        assert not fake.sessions and fake.created_projects == []

    def test_wrong_password(self, fake, dicom_studies, tmp_path, monkeypatch, capsys):
        src, _ = dicom_studies
        monkeypatch.setenv("XNAT_PASS", "wrong")
        rc, _ = _upload(fake, src, tmp_path, "--retries", "1")
        assert rc == 1
        err = capsys.readouterr().err
        assert "XNAT_USER/XNAT_PASS" in err and "wrong" not in err.replace("wrong password",
                                                                            "")

    def test_label_holding_another_study_is_not_merged(self, fake, dicom_studies, tmp_path):
        src, _ = dicom_studies
        assert _upload(fake, src / "mouse1", tmp_path)[0] == 0
        other = fake.session("PRECLIN", "study1_20240101")
        other.fields["xnatpic_study_uid"] = "1.2.3.4"
        other.resources.pop("CONVERSION")
        rc, report = _upload(fake, src / "mouse1", tmp_path)
        assert rc == 1
        assert "already holds study 1.2.3.4" in report["sessions"][0]["error"]



class TestDryRunOnServer:
    def test_dry_run_does_not_create_the_project(self, fake, dicom_studies, capsys):
        src, _ = dicom_studies
        rc = main(["upload", str(src), "--project", "NEWPROJ", "--server", fake.url,
                   "--dry-run", "--json"])
        assert rc == 0
        assert fake.created_projects == [] and not fake.sessions
        assert "upload (new project)" in capsys.readouterr().out

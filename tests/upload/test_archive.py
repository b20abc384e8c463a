"""``xnatpic upload --archive``: the same scenarios against a local archive."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.upload.checks import assert_archive_holds
from xnatpic.cli.main import main
from xnatpic.upload.archive_target import ArchiveTarget
from xnatpic.xnat.archive import find_sessions, load_session
from xnatpic.xnat.metadata import read_project


def _upload(src: Path, archive: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    rc = main(["upload", str(src), "--project", "PRECLIN", "--archive", str(archive),
               "--report", str(report), "--retries", "3", *extra])
    return rc, json.loads(report.read_text()) if report.exists() else {}


def _crash_on_call(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Make the n-th scan copy die like a killed process (KeyboardInterrupt)."""
    original = ArchiveTarget.send_scans
    calls = [0]

    def send_scans(self, plan, scans, zip_path):  # type: ignore[no-untyped-def]
        for scan in scans:
            calls[0] += 1
            if calls[0] == n:
                raise KeyboardInterrupt
            original(self, plan, [scan], zip_path)

    monkeypatch.setattr(ArchiveTarget, "send_scans", send_scans)


class TestArchive:
    def test_layout_read_back_by_the_launcher(self, dicom_studies, tmp_path):
        src, expected = dicom_studies
        archive = tmp_path / "archive"
        rc, report = _upload(src, archive, tmp_path, "--jobs", "3")
        assert rc == 0 and report["summary"]["uploaded"] == 3
        assert_archive_holds(archive, "PRECLIN", expected)
        assert len(find_sessions(archive / "PRECLIN")) == 3
        row = read_project(archive, "PRECLIN").experiment("study1_20240101")
        assert row["subject"] == "mouse1" and row["date"] == "2024-01-01"
        assert sorted(row["scans"]) == ["3", "5"]
        assert not list(archive.rglob("session.json"))  # nothing but files in a session
        # the bytes reported are the DICOM files stored (a DICOM source: no raw resource)
        for row in report["sessions"]:
            scans = archive / "PRECLIN" / "arc001" / row["session"] / "SCANS"
            assert row["bytes_sent"] == sum(p.stat().st_size for p in scans.rglob("*.dcm"))

    def test_converted_files_are_the_archives_own(self, phantom_study, tmp_path):
        # converted DICOM goes into the archive whole (linked on the same disk, the work
        # folder then removed); a work folder kept with --work shares no file with it
        work = tmp_path / "work"
        kept = tmp_path / "kept"
        assert _upload(phantom_study, kept, tmp_path, "--work", str(work))[0] == 0
        assert _upload(phantom_study, tmp_path / "archive", tmp_path)[0] == 0
        converted = sorted(work.rglob("dicom/**/*.dcm"))
        assert converted and {p.stat().st_nlink for p in converted} == {1}
        for archive in (kept, tmp_path / "archive"):
            stored = sorted(archive.rglob("SCANS/*/DICOM/*.dcm"))
            assert {p.name for p in stored} == {p.name for p in converted}
            assert {p.stat().st_nlink for p in stored} == {1}

    def test_rerun_copies_nothing(self, dicom_studies, tmp_path):
        src, expected = dicom_studies
        archive = tmp_path / "archive"
        assert _upload(src, archive, tmp_path)[0] == 0
        stamp = {p: p.stat().st_mtime_ns for p in archive.rglob("*.dcm")}
        rc, report = _upload(src, archive, tmp_path)
        assert rc == 0 and report["summary"]["complete"] == 3
        assert {p: p.stat().st_mtime_ns for p in archive.rglob("*.dcm")} == stamp
        assert_archive_holds(archive, "PRECLIN", expected)

    def test_metadata_fields_in_project_rows(self, dicom_studies, tmp_path):
        src, _ = dicom_studies
        meta = tmp_path / "meta.json"
        meta.write_text(json.dumps({"mouse1": {"species": "Mus musculus", "timepoint": "d0",
                                               "group": "control", "dose_mg": "2.5",
                                               "sex": "F"}}))
        archive = tmp_path / "archive"
        assert _upload(src, archive, tmp_path, "--metadata", str(meta))[0] == 0
        rows = read_project(archive, "PRECLIN")
        subject = rows.subject("mouse1")
        assert subject["group"] == "control"
        # subject fields as XNAT keeps them: gender in its vocabulary (xnat:demographicData)
        assert subject["fields"] == {"species": "Mus musculus", "sex": "female"}
        fields = rows.experiment("study1_20240101")["fields"]
        assert fields["timepoint"] == "d0" and fields["dose_mg"] == "2.5"
        assert fields["xnatpic_study_uid"].startswith("1.2.")
        assert "timepoint" not in rows.experiment("study2_20240101")["fields"]
        assert not rows.subject("mouse2").get("group")
        # what a Container Service matcher sees
        session = load_session(archive / "PRECLIN/arc001/study1_20240101")
        assert session.children["Subject"][0].data["group"] == "control"
        # a re-run finds the sessions complete and keeps the fields
        rc, report = _upload(src, archive, tmp_path, "--metadata", str(meta))
        assert rc == 0 and report["summary"]["complete"] == 3
        assert read_project(archive, "PRECLIN").experiment("study1_20240101")["fields"] \
            == fields

    @pytest.mark.parametrize("crash_at", [2, 3])  # mid-session, between sessions
    def test_crash_then_rerun(self, dicom_studies, tmp_path, monkeypatch, crash_at):
        src, expected = dicom_studies
        archive = tmp_path / "archive"
        with monkeypatch.context() as patch:
            _crash_on_call(patch, crash_at)
            assert _upload(src, archive, tmp_path)[0] == 130
        rc, report = _upload(src, archive, tmp_path)
        assert rc == 0
        assert report["summary"]["failed"] == 0
        assert_archive_holds(archive, "PRECLIN", expected)

    def test_transient_disk_errors_are_retried(self, dicom_studies, tmp_path, monkeypatch):
        src, expected = dicom_studies
        original = shutil.copyfile
        calls = [0]

        def flaky(a, b, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls[0] += 1
            if calls[0] % 7 == 0:
                raise OSError(5, "Input/output error")
            return original(a, b, *args, **kwargs)

        monkeypatch.setattr(shutil, "copyfile", flaky)
        rc, _ = _upload(src, tmp_path / "archive", tmp_path)
        assert rc == 0
        assert_archive_holds(tmp_path / "archive", "PRECLIN", expected)

    def test_partial_scan_is_finished(self, dicom_studies, tmp_path):
        src, expected = dicom_studies
        archive = tmp_path / "archive"
        assert _upload(src, archive, tmp_path)[0] == 0
        session = archive / "PRECLIN/arc001/study2_20240101"
        (session / "RESOURCES/CONVERSION/xnatpic-upload.json").unlink()
        victim = sorted((session / "SCANS/5/DICOM").iterdir())[0]
        victim.unlink()
        rc, report = _upload(src, archive, tmp_path)
        assert rc == 0
        row = next(s for s in report["sessions"] if s["session"] == "study2_20240101")
        assert (row["scans_present"], row["scans_sent"]) == (1, 1)
        assert_archive_holds(archive, "PRECLIN", expected)

    def test_archive_path_is_a_file(self, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        (tmp_path / "file").write_text("x")
        assert _upload(src, tmp_path / "file", tmp_path)[0] == 1
        assert "not a folder" in capsys.readouterr().err

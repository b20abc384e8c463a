"""Folder uploads: every study found is a row of the table, the JSON report and the dry-run
plan (uploaded, complete, skipped with the reason, failed with the error); one study that
cannot be read fails alone while the others are uploaded."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest

from tests.upload.conftest import write_dicom_studies
from xnatpic.cli.main import main
from xnatpic.upload.discover import discover
from xnatpic.upload.errors import SourceError


def _corrupt_zip(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 this is not a zip archive at all" * 10)
    return path


def _unsafe_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("study/subject", "##TITLE=x\n##END=\n")
        zf.writestr("../../escaped.txt", "outside")
    return path


def _notes_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes.txt", "hello")
    return path


@pytest.fixture
def messy_folder(tmp_path: Path) -> tuple[Path, dict[str, dict[str, set[str]]]]:
    """Two DICOM studies, a corrupt zip, an unsafe zip and a zip of notes."""
    root = tmp_path / "incoming"
    expected = write_dicom_studies(root, (("m1", "s1"), ("m2", "s2")))
    _corrupt_zip(root / "broken.zip")
    _unsafe_zip(root / "evil.zip")
    _notes_zip(root / "notes.zip")
    return root, expected


def _run(*argv: str, report: Path) -> tuple[int, dict]:
    rc = main(["upload", *argv, "--report", str(report), "--retries", "2"])
    return rc, json.loads(report.read_text()) if report.exists() else {}


def _by_source(report: dict) -> dict[str, dict]:
    return {Path(s["source"]).name: s for s in report["sessions"]}


def test_every_zip_in_a_folder_is_a_row(messy_folder, tmp_path):
    root, expected = messy_folder
    rc, report = _run(str(root), "--project", "PRECLIN", "--archive", str(tmp_path / "a"),
                      report=tmp_path / "r.json")
    assert rc == 1
    rows = _by_source(report)
    assert report["summary"] == {"uploaded": 2, "complete": 0, "skipped": 1, "failed": 2}
    assert rows["broken.zip"]["status"] == "failed"
    assert "not a readable zip archive" in rows["broken.zip"]["error"]
    assert rows["evil.zip"]["status"] == "failed"
    assert "outside the extraction folder" in rows["evil.zip"]["error"]
    assert rows["notes.zip"]["status"] == "skipped"
    assert "no ParaVision study" in rows["notes.zip"]["error"]
    assert sorted(s["session"] for s in report["sessions"] if s["status"] == "uploaded") \
        == sorted(expected)


def test_the_same_error_when_named_directly(messy_folder, tmp_path, capsys):
    root, _ = messy_folder
    _, report = _run(str(root), "--project", "PRECLIN", "--archive", str(tmp_path / "a"),
                     report=tmp_path / "r.json")
    in_folder = _by_source(report)["broken.zip"]["error"]
    with pytest.raises(SourceError) as named:
        discover([root / "broken.zip"])
    assert str(named.value) == in_folder
    assert main(["upload", str(root / "broken.zip"), "--project", "P",
                 "--archive", str(tmp_path / "b")]) == 1
    assert in_folder in capsys.readouterr().err


def test_rerun_reports_complete_and_the_same_failures(messy_folder, tmp_path):
    root, _ = messy_folder
    archive = tmp_path / "a"
    _run(str(root), "--project", "PRECLIN", "--archive", str(archive),
         report=tmp_path / "r1.json")
    rc, report = _run(str(root), "--project", "PRECLIN", "--archive", str(archive),
                      report=tmp_path / "r2.json")
    assert rc == 1
    assert report["summary"] == {"uploaded": 0, "complete": 2, "skipped": 1, "failed": 2}


def test_dry_run_json_lists_every_study(messy_folder, tmp_path, capsys):
    root, expected = messy_folder
    rc = main(["upload", str(root), "--project", "PRECLIN", "--dry-run", "--json",
               "--archive", str(tmp_path / "a")])
    assert rc == 1  # a study would fail
    rows = {Path(s["source"]).name: s for s in json.loads(capsys.readouterr().out)["sessions"]}
    assert rows["broken.zip"]["action"] == "failed"
    assert "not a readable zip archive" in rows["broken.zip"]["reason"]
    assert rows["evil.zip"]["action"] == "failed"
    assert rows["notes.zip"]["action"] == "skipped"
    planned = [r for r in rows.values() if r["action"] == "upload (new)"]
    assert sorted(r["session"] for r in planned) == sorted(expected)
    assert not (tmp_path / "a").exists()


def test_dry_run_table_lists_every_study(messy_folder, tmp_path, capsys, monkeypatch):
    root, _ = messy_folder
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["upload", str(root), "--project", "PRECLIN", "--dry-run",
                 "--archive", str(tmp_path / "a")]) == 1
    out = capsys.readouterr().out
    for name in ("broken.zip", "evil.zip", "notes.zip"):
        assert name in out
    assert "2 session(s) in project PRECLIN, 1 skipped, 2 failed" in out


def test_only_skipped_things_is_nothing_to_upload(tmp_path, capsys):
    _notes_zip(tmp_path / "notes.zip")
    (tmp_path / "readme.txt").write_text("x")
    assert main(["upload", str(tmp_path), "--project", "P",
                 "--archive", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "nothing to upload" in err and "notes.zip" in err


@pytest.fixture
def studies_one_unreadable(phantom_study: Path, tmp_path: Path) -> Path:
    """A folder: two DICOM studies, the phantom, and a copy whose subject file is corrupt."""
    root = tmp_path / "incoming"
    write_dicom_studies(root / "dicom", (("m1", "s1"), ("m2", "s2")))
    shutil.copytree(phantom_study, root / "good")
    shutil.copytree(phantom_study, root / "bad")
    (root / "bad" / "subject").write_bytes(b"##$SUBJECT_id=( 64 )\n<never closed\n")
    return root


def test_one_unreadable_subject_fails_alone(studies_one_unreadable, tmp_path):
    rc, report = _run(str(studies_one_unreadable), "--project", "PRECLIN",
                      "--archive", str(tmp_path / "a"), report=tmp_path / "r.json")
    assert rc == 1
    rows = _by_source(report)
    assert rows["bad"]["status"] == "failed"
    assert "bad/subject" in rows["bad"]["error"]
    assert rows["good"]["status"] == "uploaded"
    assert report["summary"] == {"uploaded": 3, "complete": 0, "skipped": 0, "failed": 1}


def test_dicom_file_without_study_is_a_failed_row(tmp_path):
    root = tmp_path / "incoming"
    write_dicom_studies(root, (("m1", "s1"),))
    victim = sorted(root.rglob("*.dcm"))[0]
    ds = pydicom.dcmread(victim)
    del ds.StudyInstanceUID
    ds.save_as(victim)
    rc, report = _run(str(root), "--project", "PRECLIN", "--archive", str(tmp_path / "a"),
                      report=tmp_path / "r.json")
    assert rc == 1
    failed = [s for s in report["sessions"] if s["status"] == "failed"]
    assert [Path(s["source"]) for s in failed] == [victim]
    assert "without StudyInstanceUID" in failed[0]["error"]
    assert report["summary"]["uploaded"] == 1


def test_truncated_dicom_file_is_a_failed_row(tmp_path):
    root = tmp_path / "incoming"
    write_dicom_studies(root, (("m1", "s1"),))
    victim = sorted(root.rglob("*.dcm"))[0]
    victim.write_bytes(victim.read_bytes()[:140])  # preamble, DICM and a cut element
    found = discover([root])
    assert [(p.path, p.status) for p in found.problems] == [(victim, "failed")]


def test_dicomdir_is_skipped(tmp_path):
    root = tmp_path / "incoming"
    write_dicom_studies(root, (("m1", "s1"),))
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    index = pydicom.Dataset()
    index.file_meta = meta
    index.FileSetID = "EXPORT"
    index.save_as(root / "DICOMDIR", enforce_file_format=True)
    found = discover([root])
    assert [(p.path.name, p.status) for p in found.problems] == [("DICOMDIR", "skipped")]
    assert len(found.sources) == 1


def test_unsearchable_folder_is_a_failed_row(tmp_path, monkeypatch):
    root = tmp_path / "incoming"
    write_dicom_studies(root / "open", (("m1", "s1"),))
    locked = root / "locked"
    write_dicom_studies(locked, (("m2", "s2"),))
    real_scandir = os.scandir

    def scandir(path="."):  # type: ignore[no-untyped-def]
        # what a folder without read permission gives a non-root user (root reads all)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover([root])
    assert [s.fields["animal_id"] for s in found.sources] == ["m1"]
    assert [(p.path, p.status) for p in found.problems] == [(locked, "failed")]
    assert "Permission denied" in found.problems[0].reason


def test_label_collision_fails_both_studies_only(tmp_path):
    write_dicom_studies(tmp_path / "a", (("m1", "day"),))
    write_dicom_studies(tmp_path / "b", (("m2", "day"),))
    write_dicom_studies(tmp_path / "c", (("m3", "other"),))
    rc, report = _run(str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "c"),
                      "--project", "PRECLIN", "--archive", str(tmp_path / "arc"),
                      report=tmp_path / "r.json")
    assert rc == 1
    assert report["summary"] == {"uploaded": 1, "complete": 0, "skipped": 0, "failed": 2}
    failed = [s for s in report["sessions"] if s["status"] == "failed"]
    assert all("both become session 'day_20240101'" in s["error"] for s in failed)


def test_template_field_missing_in_one_study_fails_it_alone(tmp_path):
    root = tmp_path / "incoming"
    write_dicom_studies(root, (("m1", "s1"), ("m2", "s2")))
    for path in (root / "m1").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.StudyID = "E42"
        ds.save_as(path)
    rc, report = _run(str(root), "--project", "PRECLIN", "--archive", str(tmp_path / "a"),
                      "--session-template", "{StudyID}", report=tmp_path / "r.json")
    assert rc == 1
    rows = {Path(s["source"]).parent.name: s for s in report["sessions"]}
    assert rows["m1"]["status"] == "uploaded" and rows["m1"]["session"] == "E42"
    assert rows["m2"]["status"] == "failed" and "needs ['StudyID']" in rows["m2"]["error"]

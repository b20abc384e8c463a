"""``xnatpic upload --archive``: a new session that fails leaves nothing that looks like a
session (no folder in ``arc001``, no metadata row, not listed by ``find_sessions``, no
staging folder); a partly complete session already in the archive is resumed, never
removed."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.upload.checks import assert_archive_holds
from xnatpic.cli.main import main
from xnatpic.upload.archive_target import STAGING
from xnatpic.xnat.archive import find_sessions
from xnatpic.xnat.errors import ArchiveError
from xnatpic.xnat.metadata import read_project

VICTIM = "study2_20240101"


def _upload(src: Path, archive: Path, tmp_path: Path) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    report.unlink(missing_ok=True)
    rc = main(["upload", str(src), "--project", "PRECLIN", "--archive", str(archive),
               "--report", str(report), "--retries", "3"])
    return rc, json.loads(report.read_text())


def _fail_copies(monkeypatch: pytest.MonkeyPatch, label: str, scan: str) -> list[str]:
    """Disk full (not retried) for every copy into scan ``scan`` of session ``label``,
    wherever the session is being written; returns the destinations refused."""
    original, refused = shutil.copyfile, []

    def copyfile(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        if f"/{label}/SCANS/{scan}/" in str(dst):
            refused.append(str(dst))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return original(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    return refused


def _row(report: dict, label: str) -> dict:
    return next(s for s in report["sessions"] if s["session"] == label)


def _no_trace_of(archive: Path, label: str) -> None:
    project = archive / "PRECLIN"
    assert not (project / "arc001" / label).exists()
    assert read_project(archive, "PRECLIN").experiment(label) is None
    assert label not in {p.name for p in find_sessions(project)}
    assert not (project / STAGING).exists()
    assert not [p for p in archive.rglob("*") if p.name.endswith(".partial")]


def test_new_session_failing_mid_way_leaves_no_session(dicom_studies, tmp_path,
                                                       monkeypatch):
    src, expected = dicom_studies
    second_scan = sorted(expected[VICTIM])[1]  # its first scan is written, then disk full
    archive = tmp_path / "archive"
    with monkeypatch.context() as patch:
        refused = _fail_copies(patch, VICTIM, second_scan)
        rc, report = _upload(src, archive, tmp_path)
    assert rc == 1 and refused
    row = _row(report, VICTIM)
    assert row["status"] == "failed" and "No space left on device" in row["error"]
    _no_trace_of(archive, VICTIM)
    others = {k: v for k, v in expected.items() if k != VICTIM}
    assert {p.name for p in find_sessions(archive / "PRECLIN")} == set(others)
    # the next run uploads it from scratch
    rc, report = _upload(src, archive, tmp_path)
    assert rc == 0 and _row(report, VICTIM)["status"] == "uploaded"
    assert_archive_holds(archive, "PRECLIN", expected)
    assert not (archive / "PRECLIN" / STAGING).exists()


def test_failure_moving_a_complete_session_in_removes_its_rows(dicom_studies, tmp_path,
                                                               monkeypatch):
    """The last step of a new session (rows written, folder moved into arc001) fails:
    the rows go as well."""
    src, expected = dicom_studies
    archive = tmp_path / "archive"
    original = Path.rename

    def rename(self, target):  # type: ignore[no-untyped-def]
        if Path(target).name == VICTIM and Path(target).parent.name == "arc001":
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(target))
        return original(self, target)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rename", rename)
        rc, report = _upload(src, archive, tmp_path)
    assert rc == 1 and "Permission denied" in _row(report, VICTIM)["error"]
    _no_trace_of(archive, VICTIM)
    assert _upload(src, archive, tmp_path)[0] == 0
    assert_archive_holds(archive, "PRECLIN", expected)


def test_existing_partial_session_failing_again_is_kept(dicom_studies, tmp_path,
                                                        monkeypatch):
    src, expected = dicom_studies
    archive = tmp_path / "archive"
    assert _upload(src, archive, tmp_path)[0] == 0
    session = archive / "PRECLIN" / "arc001" / VICTIM
    first, second = sorted(expected[VICTIM])
    (session / "RESOURCES" / "CONVERSION" / "xnatpic-upload.json").unlink()
    shutil.rmtree(session / "SCANS" / second)  # a partly complete session
    with monkeypatch.context() as patch:
        refused = _fail_copies(patch, VICTIM, second)
        rc, report = _upload(src, archive, tmp_path)
    assert rc == 1 and refused and _row(report, VICTIM)["status"] == "failed"
    kept = {f.name for f in (session / "SCANS" / first / "DICOM").iterdir()}
    assert len(kept) == len(expected[VICTIM][first])
    assert read_project(archive, "PRECLIN").experiment(VICTIM) is not None
    assert VICTIM in {p.name for p in find_sessions(archive / "PRECLIN")}
    rc, report = _upload(src, archive, tmp_path)
    assert rc == 0
    assert (_row(report, VICTIM)["scans_present"], _row(report, VICTIM)["scans_sent"]) \
        == (1, 1)
    assert_archive_holds(archive, "PRECLIN", expected)


def test_staging_left_by_a_killed_upload_is_replaced(dicom_studies, tmp_path):
    """A process killed outright leaves its staging folder (outside arc001: no session);
    the next upload of the session starts it afresh."""
    src, expected = dicom_studies
    archive = tmp_path / "archive"
    stale = archive / "PRECLIN" / STAGING / VICTIM / "SCANS" / "99" / "DICOM"
    stale.mkdir(parents=True)
    (stale / "IM0001.dcm").write_bytes(b"half a file")
    (archive / "PRECLIN" / "arc001").mkdir()
    with pytest.raises(ArchiveError, match="no session found"):
        find_sessions(archive / "PRECLIN")
    rc, _ = _upload(src, archive, tmp_path)
    assert rc == 0
    assert_archive_holds(archive, "PRECLIN", expected)  # no scan 99
    assert not (archive / "PRECLIN" / STAGING).exists()

"""Errors a retry cannot fix (disk full, read-only or forbidden folder) fail the session at
once, are not retried, and leave nothing that looks complete: no ``.partial`` file, no
upload manifest; the sessions that fit are complete.

As root (CI containers, this machine) the disk is really full: a 96 KiB tmpfs is mounted as
the archive; the read-only folder is a tmpfs mounted read-only (root ignores permission
bits, not a read-only mount). Otherwise the folder is chmod 555 and the full disk is the
OSError(ENOSPC) the kernel would give, raised by the copy.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from xnatpic.cli.main import main
from xnatpic.upload.errors import TransientError, UploadError
from xnatpic.upload.retry import RetryPolicy, is_transient_os_error, os_error, with_retry

ROOT = os.geteuid() == 0


@contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@contextmanager
def full_disk(where: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on a file system with room for a few DICOM files only."""
    if ROOT:
        with _tmpfs(where, "size=96k") as mounted:
            yield mounted
        return
    where.mkdir(parents=True)
    original, copied = shutil.copyfile, [0]

    def copyfile(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        copied[0] += 1
        if copied[0] > 12:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return original(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    yield where


@contextmanager
def read_only(where: Path) -> Iterator[Path]:
    """A folder nothing can be written into."""
    if ROOT:
        with _tmpfs(where, "ro,size=64k") as mounted:
            yield mounted
        return
    where.mkdir(parents=True)
    where.chmod(0o555)
    try:
        yield where
    finally:
        where.chmod(0o755)


def _upload(src: Path, archive: Path, report: Path) -> tuple[int, dict]:
    rc = main(["upload", str(src), "--project", "PRECLIN", "--archive", str(archive),
               "--report", str(report), "--retries", "4"])
    return rc, json.loads(report.read_text())


def _leftovers(archive: Path) -> list[Path]:
    return [p for p in archive.rglob("*") if p.name.endswith(".partial")]


def test_disk_full_is_not_retried_and_leaves_nothing_complete(dicom_studies, tmp_path,
                                                              monkeypatch, caplog):
    src, expected = dicom_studies
    archive = tmp_path / "archive"
    with full_disk(archive, monkeypatch):
        rc, report = _upload(src, archive, tmp_path / "report.json")
        assert rc == 1
        failed = [s for s in report["sessions"] if s["status"] == "failed"]
        assert failed, report["summary"]
        for row in failed:
            assert "No space left on device (not retried)" in row["error"]
            assert "free space" in row["error"]
            assert "failed 4 times" not in row["error"]
        assert "retry 1/" not in caplog.text  # never retried
        assert _leftovers(archive) == []
        for row in failed:
            manifest = (archive / "PRECLIN/arc001" / row["session"] / "RESOURCES/CONVERSION"
                        / "xnatpic-upload.json")
            assert not manifest.exists(), row["session"]
        complete = {s["session"] for s in report["sessions"] if s["status"] == "uploaded"}
        for label in complete:
            assert (archive / "PRECLIN/arc001" / label / "RESOURCES/CONVERSION"
                    / "xnatpic-upload.json").is_file()
        assert complete | {s["session"] for s in failed} == set(expected)


def test_read_only_destination_fails_at_once(dicom_studies, tmp_path, caplog, capsys):
    src, _ = dicom_studies
    with read_only(tmp_path / "archive") as archive:
        rc = main(["upload", str(src), "--project", "PRECLIN", "--archive", str(archive),
                   "--report", str(tmp_path / "report.json"), "--retries", "4"])
        assert rc == 1
        assert "retry 1/" not in caplog.text
        assert _leftovers(archive) == []
    err = capsys.readouterr().err
    assert "(not retried)" in err
    assert "Read-only file system" in err or "Permission denied" in err


def test_a_later_run_on_a_freed_disk_finishes(dicom_studies, tmp_path, monkeypatch):
    src, expected = dicom_studies
    archive = tmp_path / "archive"
    with full_disk(archive, monkeypatch):
        assert _upload(src, archive, tmp_path / "r1.json")[0] == 1
        survivors = tmp_path / "kept"
        shutil.copytree(archive, survivors)
    monkeypatch.undo()
    rc, report = _upload(src, survivors, tmp_path / "r2.json")
    assert rc == 0, report
    assert {s["session"] for s in report["sessions"]} == set(expected)


@pytest.mark.parametrize(("code", "transient"), [
    (errno.EIO, True), (errno.ETIMEDOUT, True), (errno.ESTALE, True),
    (errno.ENOSPC, False), (errno.EDQUOT, False), (errno.EACCES, False),
    (errno.EPERM, False), (errno.EROFS, False), (errno.ENAMETOOLONG, False),
    (errno.EINVAL, False),
])
def test_os_errors_classified(code, transient):
    exc = OSError(code, os.strerror(code))
    assert is_transient_os_error(exc) is transient
    error = os_error("/dest/f.dcm", exc)
    assert isinstance(error, TransientError) is transient
    assert isinstance(error, UploadError)
    assert str(error).startswith(f"/dest/f.dcm: {os.strerror(code)}")


def test_with_retry_stops_at_a_permanent_error():
    calls = [0]

    def step() -> None:
        calls[0] += 1
        raise os_error("/dest", OSError(errno.ENOSPC, "No space left on device"))

    with pytest.raises(UploadError, match="not retried"):
        with_retry(step, what="copy", policy=RetryPolicy(attempts=5), sleep=lambda _: None)
    assert calls[0] == 1

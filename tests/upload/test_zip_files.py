"""Zips the uploader writes (import batches, raw PARAVISION zip): complete under their
name, or absent. A zip that fails half-way (full disk, interrupted) leaves nothing in the
folder, which ``--work`` keeps.

As root the disk is really full (a 64 KiB tmpfs); otherwise the write raises the
OSError(ENOSPC) the kernel would give.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from xnatpic.cli.main import main
from xnatpic.upload.errors import TransientError, UploadError
from xnatpic.upload.prepare import zip_files

ROOT = os.geteuid() == 0


def _files(tmp_path: Path, count: int, size: int) -> list[Path]:
    folder = tmp_path / "src" / "series"
    folder.mkdir(parents=True)
    out = []
    for i in range(count):
        path = folder / f"IM{i:04d}.dcm"
        path.write_bytes(os.urandom(size))  # incompressible, and ZIP_STORED anyway
        out.append(path)
    return out


def _fail_on_write(monkeypatch: pytest.MonkeyPatch, n: int, error: BaseException,
                   only: str = "") -> None:
    """The n-th entry written into a zip (whose name contains ``only``) raises ``error``."""
    original, calls = zipfile.ZipFile.write, [0]

    def write(self, filename, *args, **kwargs):  # type: ignore[no-untyped-def]
        if only in str(self.filename):
            calls[0] += 1
            if calls[0] == n:
                raise error
        return original(self, filename, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", write)


@contextmanager
def _small_disk(where: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder with room for about 64 KiB."""
    where.mkdir(parents=True)
    if ROOT:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                       check=True)
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True)
        return
    _fail_on_write(monkeypatch, 3, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    yield where


def test_complete_zip_has_every_file_and_no_partial(tmp_path):
    files = _files(tmp_path, 3, 1000)
    out = zip_files(files, tmp_path / "src", tmp_path / "zips" / "batch-0.zip")
    assert out == tmp_path / "zips" / "batch-0.zip"
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == [f"series/{f.name}" for f in files]
        for f in files:
            assert zf.read(f"series/{f.name}") == f.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["batch-0.zip"]


def test_disk_full_mid_zip_leaves_nothing(tmp_path, monkeypatch):
    files = _files(tmp_path, 8, 16 * 1024)  # 128 KiB: does not fit in 64 KiB
    with _small_disk(tmp_path / "zips", monkeypatch) as folder:
        with pytest.raises(UploadError) as exc:
            zip_files(files, tmp_path / "src", folder / "batch-0.zip")
        assert not isinstance(exc.value, TransientError)  # a full disk is not retried
        assert "No space left on device (not retried)" in str(exc.value)
        assert list(folder.iterdir()) == []


def test_interrupted_zip_leaves_nothing(tmp_path, monkeypatch):
    files = _files(tmp_path, 4, 1000)
    _fail_on_write(monkeypatch, 2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        zip_files(files, tmp_path / "src", tmp_path / "zips" / "batch-0.zip")
    assert list((tmp_path / "zips").iterdir()) == []


def test_transient_error_is_retried_by_the_upload(tmp_path, monkeypatch):
    files = _files(tmp_path, 2, 1000)
    _fail_on_write(monkeypatch, 1, OSError(errno.EIO, os.strerror(errno.EIO)))
    with pytest.raises(TransientError, match="Input/output error"):
        zip_files(files, tmp_path / "src", tmp_path / "zips" / "batch-0.zip")
    assert list((tmp_path / "zips").iterdir()) == []


def test_work_folder_keeps_no_half_written_zip(dicom_studies, fake, tmp_path, monkeypatch):
    """``upload --work DIR``: a batch zip that fails (disk full) fails its session and
    leaves no zip, complete-looking or partial, in DIR (the zip XNAT's import service
    gets; a local archive takes the files themselves)."""
    src, expected = dicom_studies
    work = tmp_path / "work"
    _fail_on_write(monkeypatch, 2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                   only="batch-")
    report = tmp_path / "report.json"
    rc = main(["upload", str(src), "--project", "PRECLIN", "--server", fake.url,
               "--work", str(work), "--report", str(report), "--retries", "3"])
    assert rc == 1
    rows = json.loads(report.read_text())["sessions"]
    (failed,) = [r for r in rows if r["status"] == "failed"]
    assert "No space left on device (not retried)" in failed["error"]
    assert {r["status"] for r in rows if r is not failed} == {"uploaded"}
    assert len(rows) == len(expected)
    assert work.is_dir()
    assert [p for p in work.rglob("*") if p.suffix in (".zip", ".partial")] == []

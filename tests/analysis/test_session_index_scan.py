"""The per-session scan index: headers read once, the stored index reused, changes noticed.

The truth is the classification read from the headers of the converted phantom (scan 2
is the multi-echo spin-echo, 3 the VTR, ... as ``test_selection.KINDS``); a stored or
in-memory index must give the same answers without reading the headers again, and must
read again exactly the scans whose files changed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pydicom
import pytest

from tests.analysis.test_selection import KINDS
from xnatpic.analysis import NoScanError, scan_index, selection
from xnatpic.analysis.runner import main as run_main
from xnatpic.analysis.scan_index import stored_index_path
from xnatpic.analysis.selection import describe_scan, select_scan, session_index, session_scans


@pytest.fixture
def counted_reads(monkeypatch) -> list[str]:
    """Every scan whose headers are read (``read_scan_entry`` calls), in order."""
    calls: list[str] = []
    real = selection.read_scan_entry

    def counting(session: Path, scan_id: str, signature: str) -> scan_index.IndexEntry:
        calls.append(scan_id)
        return real(session, scan_id, signature)

    monkeypatch.setattr(selection, "read_scan_entry", counting)
    return calls


def _forget(session: Path) -> None:
    """Drop this process's index of ``session`` (as a new step process starts)."""
    scan_index._MEMORY.pop(session.resolve(), None)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_headers_are_read_once_per_process(session_factory, counted_reads):
    session = session_factory(["2", "3", "7", "8"])
    assert {s.scan_id: s.kind for s in session_scans(session)} == {
        k: KINDS[k] for k in ("2", "3", "7", "8")}
    assert sorted(counted_reads) == ["2", "3", "7", "8"]
    # the cest step selects twice (CEST scan, then WASSR scan): no header is read again
    assert select_scan(session, "cest").scan_id == "7"
    assert [s.scan_id for s in session_scans(session) if s.kind == "wassr"] == ["8"]
    assert describe_scan(session, "3").kind == "vtr"
    assert sorted(counted_reads) == ["2", "3", "7", "8"]


def test_stored_index_is_used_without_reading_headers(session_factory, counted_reads,
                                                      monkeypatch):
    session = session_factory(["2", "3", "5"])
    truth = {s.scan_id: (s.kind, s.detail, s.n_frames, s.folder) for s in
             session_scans(session)}
    session_index(session).write(stored_index_path(session))
    _forget(session)
    counted_reads.clear()

    def no_header_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a header was read although the stored index is valid")

    monkeypatch.setattr(selection, "read_frames", no_header_reads)
    index = session_index(session)
    assert counted_reads == [] and index.reused == ["2", "3", "5"] and index.read == []
    assert {s.scan_id: (s.kind, s.detail, s.n_frames, s.folder) for s in
            session_scans(session)} == truth


def test_a_changed_scan_is_read_again_and_only_it(session_factory, counted_reads):
    session = session_factory(["2", "3"])
    session_index(session).write(stored_index_path(session))
    _forget(session)
    for path in (session / "SCANS" / "2" / "DICOM").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.ScanningSequence = "GR"  # the multi-echo series becomes gradient echo
        ds.save_as(path)
    counted_reads.clear()
    index = session_index(session)
    assert index.read == ["2"] and index.reused == ["3"] and counted_reads == ["2"]
    assert describe_scan(session, "2").kind == "t2star"


def test_touched_file_added_and_removed_scans(session_factory, phantom_dicom, counted_reads):
    import shutil

    session = session_factory(["2", "3", "6"])
    session_index(session)
    one = next((session / "SCANS" / "3" / "DICOM").glob("*.dcm"))
    st = one.stat()
    os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # mtime only
    shutil.rmtree(session / "SCANS" / "6")
    target = session / "SCANS" / "5" / "DICOM"
    target.mkdir(parents=True)
    for path in phantom_dicom["5"].glob("*.dcm"):
        shutil.copy2(path, target / path.name)
    counted_reads.clear()
    index = session_index(session)
    assert sorted(index.read) == ["3", "5"] and index.reused == ["2"]
    assert list(index.entries) == ["2", "3", "5"]  # scan 6 is gone from the index
    assert {s.scan_id: s.kind for s in session_scans(session)} == {
        "2": "t2", "3": "vtr", "5": "t2star"}


def test_catalogs_and_hidden_files_do_not_change_the_signature(session_factory):
    session = session_factory(["2"])
    folder = session / "SCANS" / "2"
    before = scan_index.scan_signature(folder)
    (folder / "DICOM" / "scan_catalog.xml").write_text("<cat/>")
    (folder / "DICOM" / ".hidden").write_text("x")
    assert scan_index.scan_signature(folder) == before
    (folder / "DICOM" / "extra.dcm").write_bytes(b"not yet dicom")
    assert scan_index.scan_signature(folder) != before


def test_unreadable_scan_keeps_its_error(session_factory, counted_reads):
    session = session_factory(["2"])
    (session / "SCANS" / "9" / "DICOM").mkdir(parents=True)
    (session / "SCANS" / "9" / "DICOM" / "notes.txt").write_text("no images")
    with pytest.raises(NoScanError, match=r"scan 9 has no DICOM files") as fresh:
        describe_scan(session, "9")
    session_index(session).write(stored_index_path(session))
    _forget(session)
    counted_reads.clear()
    with pytest.raises(NoScanError) as stored:
        describe_scan(session, "9")
    assert str(stored.value) == str(fresh.value) and counted_reads == []
    assert [s.scan_id for s in session_scans(session)] == ["2"]


def test_corrupt_stored_index_is_rebuilt_with_a_warning(session_factory, caplog):
    session = session_factory(["2"])
    path = stored_index_path(session)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with caplog.at_level("WARNING"):
        index = session_index(session)
    assert index.read == ["2"] and describe_scan(session, "2").kind == "t2"
    assert f"{path}: unreadable scan index" in caplog.text


def test_stored_index_of_another_format_is_ignored(session_factory):
    session = session_factory(["2"])
    index = session_index(session)
    data = index.as_dict()
    data["format"] = 99
    data["scans"]["2"]["kind"] = "cest"  # would mislead if it were trusted
    path = stored_index_path(session)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    _forget(session)
    assert session_index(session).read == ["2"] and describe_scan(session, "2").kind == "t2"


def test_a_step_never_writes_into_its_input(session_factory, tmp_path, capsys):
    """/input is read-only in a container: the index is built in memory, not stored."""
    session = session_factory(["2"])
    before = _files(session)
    _forget(session)
    code = run_main("t2map", ["--input", str(session), "--output", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err[-2000:]
    assert _files(session) == before

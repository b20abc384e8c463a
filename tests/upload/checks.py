"""Assertions shared by the upload tests: every file once, fields set, raw data complete."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom

from tests.double.server import XnatDouble
from xnatpic.xnat.archive import load_session
from xnatpic.xnat.metadata import metadata_path


def assert_server_holds(fake: XnatDouble, project: str,
                        expected: dict[str, dict[str, set[str]]]) -> None:
    """Each session holds exactly the expected SOP instances, each delivered once."""
    labels = {label for (p, label) in fake.sessions if p == project}
    assert labels == set(expected)
    for label, scans in expected.items():
        session = fake.session(project, label)
        assert {s: set(f) for s, f in session.scans.items()} == scans, label
        for sops in scans.values():
            for sop in sops:
                assert fake.deliveries[sop] == 1, f"{label}: {sop} delivered " \
                    f"{fake.deliveries[sop]} times"
        assert "xnatpic-upload.json" in session.resources.get("CONVERSION", {}), label
    left = [p.url for p in fake.prearc if p.project == project]
    assert not left, f"left in the prearchive: {left}"


def assert_archive_holds(root: Path, project: str,
                         expected: dict[str, dict[str, set[str]]]) -> None:
    """Each archived session holds exactly the expected SOP instances, once each."""
    arc = root / project / "arc001"
    assert {p.name for p in arc.iterdir() if p.is_dir()} == set(expected)
    for label, scans in expected.items():
        session = load_session(arc / label)
        held: dict[str, list[str]] = {}
        for scan in session.children["Scan"]:
            files = [f for r in scan.children["Resource"] if r.data["label"] == "DICOM"
                     for f in r.children["File"]]
            held[scan.data["id"]] = [str(pydicom.dcmread(f.directory, stop_before_pixels=True)
                                         .SOPInstanceUID) for f in files]
        assert {s: set(v) for s, v in held.items()} == scans, label
        for sid, sops in held.items():
            assert len(sops) == len(set(sops)), f"{label} scan {sid}: a file twice"
        assert (arc / label / "RESOURCES" / "CONVERSION" / "xnatpic-upload.json").is_file()
    assert metadata_path(root, project).is_file()


def assert_raw_complete(zip_bytes: bytes, study: Path) -> None:
    """The PARAVISION zip holds every file of the study, byte for byte."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        names = {n for n in zf.namelist() if not n.endswith("/")}
        local = {p.relative_to(study.parent).as_posix(): p for p in study.rglob("*")
                 if p.is_file()}
        assert names == set(local)
        for name, path in local.items():
            assert zf.read(name) == path.read_bytes(), name

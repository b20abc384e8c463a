"""``xnatpic upload`` finds IVIS folders beside ParaVision studies and archives each as a
session of its animal, with the DICOM, the raw folder (resource IVIS) and the labels."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest

from tests.optical.conftest import default_click
from xnatpic.cli.main import main
from xnatpic.optical.synthetic import write_click, write_sequence
from xnatpic.upload.discover import discover
from xnatpic.xnat.metadata import read_project


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom ParaVision study (``xnatpic phantom OUT --snr 50``)."""
    from xnatpic.phantom import write_phantom

    out = tmp_path_factory.mktemp("phantom") / "phantom"
    write_phantom(out, snr=50.0, seed=0)
    return out


def _tree(tmp_path: Path, phantom: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(phantom, root / "mri" / "phantom")
    write_click(root / "ivis" / "day1" / "C1", default_click(
        click_number="C1", labels={"Animal Number": "M7", "Group": "treated", "Sex": "F",
                                   "Animal Strain": "BALB/c", "Time Point": "day 1"}))
    clicks = [default_click(click_number=f"K{i}", acquired=dt.datetime(2026, 1, 8, 9, i),
                            labels={"Animal Number": "M8", "Group": "control"})
              for i in (1, 2)]
    write_sequence(root / "ivis" / "day8" / "SEQ8", clicks)
    return root


def test_discovery_beside_paravision(tmp_path: Path, phantom_study: Path):
    found = discover([_tree(tmp_path, phantom_study)])
    kinds = sorted((s.kind, s.name) for s in found.sources)
    assert kinds == [("ivis", "C1"), ("ivis", "SEQ8"), ("paravision", "phantom")]
    click = next(s for s in found.sources if s.name == "C1")
    assert click.fields["animal_id"] == "M7" and click.fields["group"] == "treated"
    assert click.subject_defaults == {"group": "treated", "sex": "female", "strain": "BALB/c"}
    assert click.session_defaults == {"timepoint": "day 1"}
    assert found.problems == []


def test_upload_to_archive(tmp_path: Path, phantom_study: Path):
    root = _tree(tmp_path, phantom_study)
    archive, report = tmp_path / "archive", tmp_path / "report.json"
    rc = main(["upload", str(root), "--project", "BLI", "--archive", str(archive),
               "--report", str(report)])
    assert rc == 0, report.read_text()
    summary = json.loads(report.read_text())["summary"]
    assert summary["uploaded"] == 3
    project = read_project(archive, "BLI")
    # default templates: subject {animal_id}, session {study_name}_{date}
    session = project.experiment("C1_20260101")
    assert session["subject"] == "M7"
    assert sorted(session["scans"]) == ["1", "2"]
    assert project.experiment("SEQ8_20260108")["subject"] == "M8"
    assert sorted(project.experiment("SEQ8_20260108")["scans"]) == ["1", "2", "3", "4"]
    folder = archive / "BLI" / "arc001" / "C1_20260101"
    raw = list((folder / "RESOURCES" / "IVIS").glob("*.zip"))
    assert len(raw) == 1
    with zipfile.ZipFile(raw[0]) as zf:
        assert any(n.endswith("AnalyzedClickInfo.txt") for n in zf.namelist())
    dcm = next(folder.rglob("*.dcm"))
    comments = pydicom.dcmread(dcm, stop_before_pixels=True).PatientComments
    assert "Project: BLI Subject: M7 Session: C1_20260101" in comments
    subject = project.subject("M7")  # subject fields from the Living Image user labels
    assert subject["group"] == "treated"
    assert subject["fields"] == {"sex": "female", "strain": "BALB/c"}
    assert session["fields"]["timepoint"] == "day 1"


def test_deidentified_upload_names_nothing(tmp_path: Path, monkeypatch):
    from xnatpic.conversion import SALT_VARIABLE

    root = tmp_path / "data"
    write_click(root / "C1", default_click(click_number="JD20260101120000_001"))
    monkeypatch.setenv(SALT_VARIABLE, "0123456789abcdef-test-salt")
    archive, report = tmp_path / "archive", tmp_path / "report.json"
    assert main(["upload", str(root), "--project", "BLI", "--archive", str(archive),
                 "--report", str(report), "--deidentify"]) == 0
    sessions = list((archive / "BLI" / "arc001").iterdir())
    assert len(sessions) == 1 and "JD2026" not in sessions[0].name
    assert not (sessions[0] / "RESOURCES" / "IVIS").exists()  # no raw data
    ds = pydicom.dcmread(next(sessions[0].rglob("*.dcm")), stop_before_pixels=True)
    assert ds.PatientID.startswith("ANON-") and ds.PatientIdentityRemoved == "YES"
    text = "".join(p.read_text(errors="ignore") for p in archive.rglob("*.json"))
    assert "M1" not in json.dumps(text) and "JD2026" not in text


def test_upload_to_xnat_double(tmp_path: Path, monkeypatch):
    """Against the XNAT double: the session type XNAT gives SC/OT studies, the scans, the
    raw resource and the fields from the user labels."""
    from tests.double.server import XnatDouble
    from tests.upload.conftest import PASSWORD, USER

    server = XnatDouble(("BLI",)).start()
    try:
        monkeypatch.setenv("XNAT_USER", USER)
        monkeypatch.setenv("XNAT_PASS", PASSWORD)
        monkeypatch.delenv("XNAT_HOST", raising=False)
        monkeypatch.setenv("NETRC", "/nonexistent-netrc")
        root = tmp_path / "data"
        write_click(root / "C1", default_click(
            click_number="C1", labels={"Animal Number": "M7", "Group": "treated",
                                       "Time Point": "day 1"}))
        report = tmp_path / "report.json"
        assert main(["upload", str(root), "--project", "BLI", "--server", server.url,
                     "--report", str(report), "--retries", "2"]) == 0, report.read_text()
        session = server.session("BLI", "C1_20260101")
        assert session.subject == "M7"
        assert session.xsi == "xnat:otherDicomSessionData"
        assert sorted(session.scans) == ["1", "2"]
        assert "IVIS" in session.resources and session.fields["timepoint"] == "day 1"
        assert server.subjects[("BLI", "M7")]["group"] == "treated"
    finally:
        server.stop()


@pytest.mark.parametrize(("options", "raw"), [([], "yes (IVIS)"), (["--no-raw"], "no")])
def test_dry_run_table_counts_the_ivis_raw_resource(tmp_path: Path, capsys, monkeypatch,
                                                    options, raw):
    """The plan's raw column says an IVIS click's folder is uploaded (resource IVIS), as
    for a ParaVision study."""
    write_click(tmp_path / "data" / "C1", default_click(click_number="C1"))
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["upload", str(tmp_path / "data"), "--project", "BLI", "--dry-run",
                 *options]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "C1_" in line)
    cells = [cell.strip() for cell in row.split("│")]
    assert raw in cells, row


def test_archive_records_xnat_types_by_modality(tmp_path: Path, phantom_study: Path):
    """An IVIS click (Secondary Capture, Modality OT) is recorded as XNAT's DICOM import
    types it, an otherDicomSessionData with scScanData scans; the MR study beside it as an
    mrSessionData with mrScanData scans (xnatpic.upload.xnat_types, as the server client)."""
    root = _tree(tmp_path, phantom_study)
    archive, report = tmp_path / "archive", tmp_path / "report.json"
    assert main(["upload", str(root), "--project", "BLI", "--archive", str(archive),
                 "--report", str(report)]) == 0, report.read_text()
    experiments = read_project(archive, "BLI").data["experiments"]
    click = experiments["C1_20260101"]
    assert click["xsiType"] == "xnat:otherDicomSessionData"
    assert {s["xsiType"] for s in click["scans"].values()} == {"xnat:scScanData"}
    mr = [row for label, row in experiments.items() if not label.startswith(("C1", "SEQ8"))]
    assert len(mr) == 1 and mr[0]["xsiType"] == "xnat:mrSessionData"
    assert {s["xsiType"] for s in mr[0]["scans"].values()} == {"xnat:mrScanData"}
    assert {s["modality"] for s in mr[0]["scans"].values()} == {"MR"}

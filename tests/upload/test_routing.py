"""XNAT's default DICOM routing lands each converted study in its project, subject and
session, also with ``--deidentify`` (pseudonymised labels).

The oracle below re-implements what XNAT reads, from its source (not from our writer):

* ``ContainedAssignmentExtractor`` (dicom-xnat-util ``org.nrg.dcm``): the whole element
  must match ``(?:\\A|(?:.*[\\s,;]))NAME\\s*:\\s*([\\w\\-]*)(?:(?:[\\s,;].*\\Z)|\\Z)``,
  case-insensitively, ``.`` not crossing line breaks;
* ``XnatDefaultDicomObjectIdentifier`` / ``Xnat15DicomProjectIdentifier`` (xnat-web
  ``org.nrg.dcm.id``): project from PatientComments, StudyComments,
  AdditionalPatientHistory (``Project:``), then StudyDescription, AccessionNumber as they
  are, the first naming an existing project winning (``DbBackedProjectIdentifier.apply``);
  subject from the same three comments (``Subject:``), else PatientName; session
  (``Session:``), else PatientID.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pydicom
import pytest

from xnatpic.cli.main import main
from xnatpic.conversion import convert_study
from xnatpic.dicom.routing import XnatRouting, apply_routing
from xnatpic.errors import XnatpicError

SALT = "routing-test-salt-0123456789"
_COMMENTS = ("PatientComments", "StudyComments", "AdditionalPatientHistory")


def _assignment(text: str, name: str) -> str | None:
    pattern = re.compile(r"(?:\A|(?:.*[\s,;]))" + name + r"\s*:\s*([\w\-]*)"
                         r"(?:(?:[\s,;].*\Z)|\Z)", re.IGNORECASE | re.ASCII)
    match = pattern.fullmatch(text)
    return match.group(1) if match else None


def xnat_default_route(ds: pydicom.Dataset, projects: set[str]) -> tuple[str | None, str, str]:
    """(project, subject, session) as XNAT's default identifier would assign them."""
    def text(keyword: str) -> str:
        return str(ds.get(keyword, "") or "")

    project = None
    for keyword in (*_COMMENTS, "StudyDescription", "AccessionNumber"):
        value = (_assignment(text(keyword), "Project") if keyword in _COMMENTS
                 else text(keyword))
        if value and value in projects:
            project = value
            break

    def first(name: str, fallback: str) -> str:
        for keyword in _COMMENTS:
            value = _assignment(text(keyword), name)
            if value:
                return value
        return text(fallback)

    return project, first("Subject", "PatientName"), first("Session", "PatientID")


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.dcm"))


class TestRoutingText:
    def test_xnat_reads_our_text(self):
        ds = pydicom.Dataset()
        apply_routing(ds, XnatRouting("PRECLIN", "mouse_1", "m1-d0"))
        assert xnat_default_route(ds, {"PRECLIN"}) == ("PRECLIN", "mouse_1", "m1-d0")

    def test_a_scanner_comment_is_kept_and_ours_wins(self):
        ds = pydicom.Dataset()
        ds.PatientComments = "isoflurane 2%\nProject: WRONG Subject: nobody\r\nfasted"
        apply_routing(ds, XnatRouting("PRECLIN", "m1", "s1"))
        assert ds.PatientComments.startswith("isoflurane 2% Project: WRONG")
        assert "\n" not in ds.PatientComments
        assert xnat_default_route(ds, {"PRECLIN", "WRONG"}) == ("PRECLIN", "m1", "s1")

    def test_study_description_naming_another_project_loses(self):
        ds = pydicom.Dataset()
        ds.StudyDescription, ds.PatientName, ds.PatientID = "OTHER", "Rat^One", "r1"
        assert xnat_default_route(ds, {"PRECLIN", "OTHER"})[0] == "OTHER"  # before
        apply_routing(ds, XnatRouting("PRECLIN", "rat1", "rat1_d0"))
        assert xnat_default_route(ds, {"PRECLIN", "OTHER"}) == ("PRECLIN", "rat1", "rat1_d0")

    @pytest.mark.parametrize("label", ["with space", "dot.ted", "é", ""])
    def test_labels_xnat_cannot_read_are_refused(self, label):
        with pytest.raises(XnatpicError, match="only letters, digits"):
            XnatRouting("P", label, "s")


@pytest.mark.parametrize("fmt", ["dicom", "enhanced"])
def test_converted_files_route_to_the_plan(phantom_study, tmp_path, fmt):
    routing = XnatRouting("PRECLIN", "mouse1", "mouse1_20240115")
    convert_study(phantom_study, tmp_path / "out", fmt=fmt, routing=routing)
    files = _dicom_files(tmp_path / "out")
    assert files
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert xnat_default_route(ds, {"PRECLIN"}) == ("PRECLIN", "mouse1", "mouse1_20240115")


def test_deidentified_files_route_with_pseudonyms(phantom_study, tmp_path, monkeypatch):
    monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
    convert_study(phantom_study, tmp_path / "out", fmt="dicom", deidentify=True,
                  routing=XnatRouting("PRECLIN", "ANON-0123456789AB", "ANON-0123456789AB_2010"))
    for path in _dicom_files(tmp_path / "out"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientComments == ("Project: PRECLIN Subject: ANON-0123456789AB "
                                      "Session: ANON-0123456789AB_2010")


def _upload(src: Path, archive: Path, tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / "report.json"
    rc = main(["upload", str(src), "--project", "PRECLIN", "--archive", str(archive),
               "--report", str(report), *extra])
    data = json.loads(report.read_text())
    assert rc == 0, data
    return data


@pytest.mark.parametrize("deidentify", [False, True])
def test_uploaded_study_routes_to_its_session(phantom_study, tmp_path, monkeypatch,
                                              deidentify):
    monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
    src = tmp_path / "incoming" / "s1"
    shutil.copytree(phantom_study, src)
    archive = tmp_path / "archive"
    report = _upload(src, archive, tmp_path, *(["--deidentify"] if deidentify else []))
    (row,) = report["sessions"]
    files = _dicom_files(archive / "PRECLIN" / "arc001" / row["session"] / "SCANS")
    assert files
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        route = xnat_default_route(ds, {"PRECLIN"})
        assert route == ("PRECLIN", row["subject"], row["session"]), path
        if deidentify:
            # the label XNAT routes to is the pseudonym the DICOM carries
            assert row["subject"] == str(ds.PatientID)

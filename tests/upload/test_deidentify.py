"""``--deidentify``: labels, fields, date, resources and report carry no original
identifier or date; the same salt gives the same labels (and resume) on a re-run."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pydicom
import pytest

from tests.double.server import XnatDouble
from xnatpic.cli.main import main
from xnatpic.upload import build_plans, discover_sources
from xnatpic.upload.errors import SourceError
from xnatpic.xnat.archive import load_session

#: What the phantom's parameter files name the animal and study; replaced below by
#: distinctive strings so that any leak is found.
_PHANTOM_ID = "xnatpic^phantom"
ANIMAL = "K9Z7Q-mouse"
DATE_STRINGS = ("20240115", "2024-01-15", "15 Jan 2024", "2024_01_15")
SALT = "test-salt-1-0123456789"


@pytest.fixture
def identified_study(phantom_study: Path, tmp_path: Path) -> Path:
    """The phantom, its animal and study named ``ANIMAL``, in a folder named neutrally."""
    study = tmp_path / "incoming" / "s1"
    shutil.copytree(phantom_study, study)
    for path in study.rglob("*"):
        if path.is_file() and path.name in ("subject", "visu_pars", "acqp", "method", "reco"):
            path.write_bytes(path.read_bytes().replace(_PHANTOM_ID.encode(), ANIMAL.encode()))
    return study


def _originals(study: Path) -> list[str]:
    (source,) = discover_sources([study])
    assert source.fields["animal_id"] == ANIMAL and source.fields["date"] == "20240115"
    uid = source.fields["study_uid"]
    assert uid
    return [ANIMAL, "K9Z7Q", *DATE_STRINGS, uid]


def _upload(study: Path, tmp_path: Path, *dest: str) -> dict:
    report = tmp_path / "report.json"
    rc = main(["upload", str(study), "--project", "PRECLIN", *dest, "--deidentify",
               "--report", str(report)])
    data = json.loads(report.read_text())
    assert rc == 0, data
    return data


def _report_without_source(data: dict) -> str:
    """The report but the local source paths (the operator's own folders)."""
    sessions = [{k: v for k, v in s.items() if k != "source"} for s in data["sessions"]]
    return json.dumps({**data, "sessions": sessions})


def _assert_clean(text: str, originals: list[str], what: str) -> None:
    for original in originals:
        assert original not in text, f"{original!r} found in {what}"


def test_server_holds_no_original_identifier(fake: XnatDouble, identified_study: Path,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
    originals = _originals(identified_study)
    data = _upload(identified_study, tmp_path, "--server", fake.url)
    (session,) = fake.sessions.values()
    # what the DICOM writer wrote: labels must be its pseudonym and shifted date
    dcm = next(f for files in session.scans.values() for f in files.values())
    ds = pydicom.dcmread(io.BytesIO(dcm), stop_before_pixels=True)
    assert session.subject == ds.PatientID
    assert session.label == f"{ds.PatientID}_{ds.StudyDate}"
    assert session.fields["date"] == \
        f"{ds.StudyDate[:4]}-{ds.StudyDate[4:6]}-{ds.StudyDate[6:]}"
    sent = [session.subject, session.label, json.dumps(session.fields),
            repr(fake.subjects),
            "\n".join(fake.log), _report_without_source(data)]
    for label, files in session.resources.items():
        sent.append(label)
        for name, body in files.items():
            sent.append(name)
            sent.append(body.decode("utf-8", "replace"))
    assert "PARAVISION" not in session.resources
    assert "conversion-report.json" in session.resources["CONVERSION"]
    _assert_clean("\n".join(sent), originals, "what the server received")


def test_archive_same_salt_same_labels_and_resume(identified_study: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
    originals = _originals(identified_study)
    archive = tmp_path / "archive"
    first = _upload(identified_study, tmp_path, "--archive", str(archive))
    (row,) = first["sessions"]
    assert row["status"] == "uploaded" and row["subject"].startswith("ANON-")
    texts = []
    for path in archive.rglob("*"):
        texts.append(path.relative_to(archive).as_posix())
        if path.is_file() and path.suffix == ".json":
            texts.append(path.read_text())
    texts.append(_report_without_source(first))
    _assert_clean("\n".join(texts), originals, "the archive")
    session = load_session(archive / "PRECLIN" / "arc001" / row["session"])
    assert session.children["Subject"][0].data["label"] == row["subject"]
    again = _upload(identified_study, tmp_path, "--archive", str(archive))
    assert [(s["subject"], s["session"], s["status"]) for s in again["sessions"]] == \
        [(row["subject"], row["session"], "complete")]
    monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", "another-salt-0123456789")
    (other,) = build_plans(discover_sources([identified_study]), "PRECLIN",
                           deidentify=True, salt="another-salt")
    assert other.subject != row["subject"] and other.session != row["session"]


@pytest.mark.parametrize("template", ["{animal_id}", "{pseudonym}_{date}", "{study_name}",
                                      "{folder}", "{SUBJECT_id}", "{study_name_date}"])
def test_identifying_template_refused(identified_study: Path, template: str) -> None:
    sources = discover_sources([identified_study])
    with pytest.raises(SourceError, match="--deidentify"):
        build_plans(sources, "P", session_template=template, deidentify=True, salt=SALT)
    with pytest.raises(SourceError, match="--subject-template"):
        build_plans(sources, "P", subject_template=template, deidentify=True, salt=SALT)


def test_identifying_template_exits_non_zero(identified_study: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
    rc = main(["upload", str(identified_study), "--project", "P", "--deidentify",
               "--archive", str(tmp_path / "a"), "--session-template", "{animal_id}_{date}"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "animal_id" in err and "{pseudonym}" in err
    assert not (tmp_path / "a").exists()


def test_deidentified_equivalents_allowed(identified_study: Path) -> None:
    (plan,) = build_plans(discover_sources([identified_study]), "P", deidentify=True,
                          salt=SALT, session_template="{study_pseudonym}_{shifted_date}_{time}")
    # the time of day moves with the date (PS3.15 113107: times are modified too)
    assert plan.session.startswith("S") and not plan.session.endswith("_093000")
    assert re.fullmatch(r"S[0-9A-F]{12}_\d{8}_\d{6}", plan.session)
    assert "20240115" not in plan.session and plan.date != "20240115" and len(plan.date) == 8
    assert not plan.raw

"""ParaVision studies converted on the fly: the phantom and the real corpus, to the fake
XNAT and to an archive; raw data and conversion report alongside the DICOM."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pydicom
import pytest

from tests.double.server import XnatDouble
from tests.oracles import missing_oracle
from tests.upload.checks import assert_archive_holds, assert_raw_complete, assert_server_holds
from xnatpic.cli.main import main
from xnatpic.conversion import convert_study

CORPUS_STUDIES = ("pv6-dicomifier/study", "pv6-acidocest/study", "pv360-csi/study")


def _expected(studies: list[Path], tmp_path: Path) -> dict[str, dict[str, set[str]]]:
    """What each study's session must hold, from an independent conversion."""
    from xnatpic.upload import build_plans, discover_sources

    labels = {str(p.source.path): p.session for p in
              build_plans(discover_sources(studies), "PRECLIN")}
    expected: dict[str, dict[str, set[str]]] = {}
    for i, study in enumerate(studies):
        out = tmp_path / f"expected{i}"
        convert_study(study, out)
        scans: dict[str, set[str]] = {}
        for path in out.rglob("*.dcm"):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            scans.setdefault(str(int(ds.SeriesNumber)), set()).add(str(ds.SOPInstanceUID))
        expected[labels[str(study)]] = scans
    return expected


def _server(fake: XnatDouble, studies: list[Path], tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / "report.json"
    rc = main(["upload", *map(str, studies), "--project", "PRECLIN", "--server", fake.url,
               "--report", str(report), *extra])
    data = json.loads(report.read_text())
    assert rc == 0, data
    return data


def _archive(archive: Path, studies: list[Path], tmp_path: Path, *extra: str) -> dict:
    report = tmp_path / "report.json"
    rc = main(["upload", *map(str, studies), "--project", "PRECLIN", "--archive",
               str(archive), "--report", str(report), *extra])
    data = json.loads(report.read_text())
    assert rc == 0, data
    return data


class TestPhantom:
    def test_to_server(self, fake, phantom_study, tmp_path):
        expected = _expected([phantom_study], tmp_path)
        _server(fake, [phantom_study], tmp_path)
        assert_server_holds(fake, "PRECLIN", expected)
        (label,) = expected
        session = fake.session("PRECLIN", label)
        (name,) = session.resources["PARAVISION"]
        assert_raw_complete(session.resources["PARAVISION"][name], phantom_study)
        report = json.loads(session.resources["CONVERSION"]["conversion-report.json"])
        assert report["summary"]["failed"] == 0 and report["summary"]["converted"] == 8

    def test_to_archive_then_rerun(self, phantom_study, tmp_path):
        expected = _expected([phantom_study], tmp_path)
        archive = tmp_path / "archive"
        _archive(archive, [phantom_study], tmp_path)
        assert_archive_holds(archive, "PRECLIN", expected)
        (label,) = expected
        raw = archive / "PRECLIN/arc001" / label / "RESOURCES/PARAVISION" / "phantom.zip"
        assert_raw_complete(raw.read_bytes(), phantom_study)
        again = _archive(archive, [phantom_study], tmp_path)
        assert again["summary"]["complete"] == 1

    def test_zipped_study(self, fake, phantom_study, tmp_path):
        zipped = tmp_path / "drop" / "phantom.zip"
        zipped.parent.mkdir()
        with zipfile.ZipFile(zipped, "w") as zf:
            for p in sorted(phantom_study.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(phantom_study.parent).as_posix())
        expected = _expected([phantom_study], tmp_path)
        _server(fake, [zipped.parent], tmp_path)
        assert_server_holds(fake, "PRECLIN", expected)
        (label,) = expected
        assert fake.session("PRECLIN", label).resources["PARAVISION"]["phantom.zip"] == \
            zipped.read_bytes()

    def test_deidentify_withholds_raw_data(self, fake, phantom_study, tmp_path, monkeypatch):
        monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", "paravision-test-salt-0123")
        _server(fake, [phantom_study], tmp_path, "--deidentify")
        (session,) = fake.sessions.values()
        assert "PARAVISION" not in session.resources
        assert sum(len(f) for f in session.scans.values()) > 0


@pytest.fixture
def corpus_studies(corpus: Path) -> list[Path]:
    studies = [corpus / s for s in CORPUS_STUDIES]
    missing = [s for s in studies if not s.is_dir()]
    if missing:
        missing_oracle(f"corpus studies missing: {missing}")
    return studies


class TestCorpus:
    def test_to_server_in_parallel(self, fake, corpus_studies, tmp_path):
        expected = _expected(corpus_studies, tmp_path)
        report = _server(fake, corpus_studies, tmp_path, "--jobs", "3")
        assert report["summary"] == {"uploaded": 3, "complete": 0, "skipped": 0, "failed": 0}
        assert_server_holds(fake, "PRECLIN", expected)
        for study in corpus_studies:
            label = next(s["session"] for s in report["sessions"] if s["source"] == str(study))
            raw = fake.session("PRECLIN", label).resources["PARAVISION"]
            assert_raw_complete(next(iter(raw.values())), study)

    def test_to_archive(self, corpus_studies, tmp_path):
        expected = _expected(corpus_studies, tmp_path)
        archive = tmp_path / "archive"
        _archive(archive, corpus_studies, tmp_path, "--jobs", "2")
        assert_archive_holds(archive, "PRECLIN", expected)

    def test_whole_corpus_dry_run_skips_paravision_own_dicom_export(self, corpus, capsys):
        rc = main(["upload", str(corpus), "--project", "PRECLIN", "--dry-run", "--json"])
        assert rc == 0
        plan = json.loads(capsys.readouterr().out)
        rows = {Path(s["source"]).relative_to(corpus).as_posix(): s for s in plan["sessions"]}
        kinds = {k: r["kind"] for k, r in rows.items() if r.get("action") != "skipped"}
        assert {k: kinds[k] for k in CORPUS_STUDIES} == dict.fromkeys(CORPUS_STUDIES,
                                                                      "paravision")
        # ParaVision's own DICOM export of a study is a row, skipped, not a second session
        assert not any("reference" in k for k in kinds)
        assert any("reference" in k for k in rows)
        sessions = [r["session"] for k, r in rows.items() if k in kinds]
        assert len(sessions) == len(set(sessions))

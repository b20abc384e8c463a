"""``xnatpic upload --converted DIR``: the user's ``xnatpic convert`` sent instead of a second
conversion, only when it is the conversion the upload would make.

Truths: the upload's own conversion (what every destination got before ``--converted``),
compared byte for byte; XNAT's routing as its source reads it (tests.upload.test_routing's
oracle); the study and the conversion as written on disk, altered by the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pydicom
import pytest

from tests.double.server import XnatDouble
from tests.upload.test_routing import xnat_default_route
from xnatpic import __version__
from xnatpic.cli.main import main
from xnatpic.upload.reroute import write_with_routing
from xnatpic.upload.reuse import REPORT_NAME
from xnatpic.upload.target import MANIFEST_NAME

SALT = "reuse-test-salt-0123456789"


def _convert(study: Path, out: Path, *extra: str) -> Path:
    assert main(["convert", str(study), "-o", str(out), *extra]) == 0
    return out


def _archive_upload(study: Path, archive: Path, report: Path, *extra: str) -> int:
    return main(["upload", str(study), "--project", "PRECLIN", "--archive", str(archive),
                 "--report", str(report), *extra])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _session(archive: Path) -> Path:
    (session,) = (archive / "PRECLIN" / "arc001").iterdir()
    return session


def _later(path: Path) -> None:
    """Make ``path`` newer than anything written so far (coarse file-system clocks too)."""
    stamp = max(path.stat().st_mtime_ns, time.time_ns()) + 5_000_000_000
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture(scope="module")
def study_and_conversion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A phantom study and its ``xnatpic convert`` (report in the output folder)."""
    from xnatpic.phantom import write_phantom

    root = tmp_path_factory.mktemp("reuse")
    study = root / "phantom"
    write_phantom(study, snr=50.0, seed=0)
    return study, _convert(study, root / "dicom")


@pytest.fixture
def conversion_copy(study_and_conversion, tmp_path) -> Path:
    """A copy of the conversion (file times kept) that a test may alter."""
    copy = tmp_path / "dicom"
    shutil.copytree(study_and_conversion[1], copy)  # copy2: times kept
    return copy


class TestSameFilesEitherWay:
    def test_archive_gets_the_same_scans_and_bytes(self, study_and_conversion, tmp_path):
        study, converted = study_and_conversion
        assert _archive_upload(study, tmp_path / "a", tmp_path / "a.json") == 0
        assert _archive_upload(study, tmp_path / "b", tmp_path / "b.json",
                               "--converted", str(converted)) == 0
        own, reused = _session(tmp_path / "a"), _session(tmp_path / "b")
        assert own.name == reused.name
        scans = _tree(own / "SCANS")
        assert len([n for n in scans if n.endswith(".dcm")]) > 100
        assert _tree(reused / "SCANS") == scans
        raw = "RESOURCES/PARAVISION"
        assert _tree(reused / raw) == _tree(own / raw)
        manifest = f"RESOURCES/CONVERSION/{MANIFEST_NAME}"
        assert json.loads((reused / manifest).read_text()) == json.loads(
            (own / manifest).read_text())
        rows = [json.loads((tmp_path / f"{k}.json").read_text())["sessions"][0]
                for k in "ab"]
        assert rows[0]["conversion"] == "converted"
        report = (converted / REPORT_NAME).absolute()
        assert rows[1]["conversion"] == f"reused: {report} (output {converted.absolute()})"
        stored = json.loads((reused / "RESOURCES" / "CONVERSION" / REPORT_NAME).read_text())
        assert stored["reused_from"] == {"report": str(report),
                                         "output": str(converted.absolute())}

    def test_reused_files_route_to_the_session(self, study_and_conversion, tmp_path):
        study, converted = study_and_conversion
        assert _archive_upload(study, tmp_path / "a", tmp_path / "a.json",
                               "--converted", str(converted)) == 0
        row = json.loads((tmp_path / "a.json").read_text())["sessions"][0]
        files = sorted((_session(tmp_path / "a") / "SCANS").rglob("*.dcm"))
        for path in files[::37]:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert xnat_default_route(ds, {"PRECLIN"}) == (
                "PRECLIN", row["subject"], row["session"]), path

    def test_rest_import_gets_the_same_files(self, study_and_conversion, tmp_path, fake):
        study, converted = study_and_conversion
        other = XnatDouble(("PRECLIN",)).start()
        try:
            for server, extra in ((fake, ()), (other, ("--converted", str(converted)))):
                assert main(["upload", str(study), "--project", "PRECLIN", "--server",
                             server.url, "--report", str(tmp_path / "r.json"),
                             *extra]) == 0
            label = json.loads((tmp_path / "r.json").read_text())["sessions"][0]["session"]
            own, reused = fake.session("PRECLIN", label), other.session("PRECLIN", label)
            assert own.scans and reused.scans == own.scans
            assert reused.series == own.series and reused.study_uid == own.study_uid
        finally:
            other.stop()


    def test_dicom_node_gets_files_xnat_routes(self, study_and_conversion, tmp_path,
                                               storescp):
        # a C-STORE names no project: XNAT routes by the PatientComments text alone
        study, converted = study_and_conversion
        node, out = storescp
        assert main(["upload", str(study), "--project", "PRECLIN", "--dicom-node", node,
                     "--report", str(tmp_path / "r.json"), "--converted", str(converted)]) == 0
        row = json.loads((tmp_path / "r.json").read_text())["sessions"][0]
        received = sorted(out.iterdir())
        assert len(received) == len(list(converted.rglob("*.dcm")))
        for path in received:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert xnat_default_route(ds, {"PRECLIN"}) == (
                "PRECLIN", row["subject"], row["session"]), path


class TestRoutingSplice:
    def test_a_scanner_comment_is_kept_as_the_converter_keeps_it(self, tmp_path):
        from tests.upload.conftest import dicom_instance
        from xnatpic.dicom.routing import XnatRouting, apply_routing

        ds = dicom_instance("1.2.3", "1.2.3.4", 1, 1)
        ds.PatientComments = "fasted\r\novernight"
        source, spliced = tmp_path / "in.dcm", tmp_path / "out.dcm"
        ds.save_as(source, enforce_file_format=True)
        routing = XnatRouting("P1", "s1", "x1")
        write_with_routing(source, spliced, routing)
        apply_routing(ds, routing)
        ds.save_as(tmp_path / "expected.dcm", enforce_file_format=True)
        assert spliced.read_bytes() == (tmp_path / "expected.dcm").read_bytes()
        assert pydicom.dcmread(spliced).PatientComments == (
            "fasted overnight; Project: P1 Subject: s1 Session: x1")


    @pytest.mark.parametrize("case", ["implicit VR", "non-ASCII comment"])
    def test_other_files_are_rewritten_by_pydicom(self, tmp_path, case):
        from pydicom.uid import ImplicitVRLittleEndian

        from tests.upload.conftest import dicom_instance
        from xnatpic.dicom.routing import XnatRouting

        ds = dicom_instance("1.2.3", "1.2.3.4", 1, 3)
        if case == "implicit VR":
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        else:
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.PatientComments = "nüchtern"
        source, spliced = tmp_path / "in.dcm", tmp_path / "out.dcm"
        ds.save_as(source, enforce_file_format=True)
        write_with_routing(source, spliced, XnatRouting("P1", "s1", "x1"))
        back = pydicom.dcmread(spliced)
        assert xnat_default_route(back, {"P1"}) == ("P1", "s1", "x1")
        assert back.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
        assert back.PixelData == ds.PixelData and back.SOPInstanceUID == ds.SOPInstanceUID
        if case != "implicit VR":
            assert back.PatientComments.startswith("nüchtern; ")


def _refused(study: Path, tmp_path: Path, *extra: str) -> str:
    """Upload with ``extra`` into a fresh archive: it must fail and store nothing; return
    the session's error."""
    archive, report = tmp_path / "archive", tmp_path / "upload.json"
    assert _archive_upload(study, archive, report, *extra) == 1
    assert not (archive / "PRECLIN" / "arc001").exists() or not any(
        (archive / "PRECLIN" / "arc001").iterdir())
    (row,) = json.loads(report.read_text())["sessions"]
    assert row["status"] == "failed"
    return row["error"]


class TestRefused:
    def test_a_file_missing(self, study_and_conversion, conversion_copy, tmp_path):
        victim = sorted(conversion_copy.rglob("*.dcm"))[3]
        victim.unlink()
        error = _refused(study_and_conversion[0], tmp_path, "--converted", str(conversion_copy))
        assert str(victim.parent) in error and "records" in error

    def test_a_file_altered(self, study_and_conversion, conversion_copy, tmp_path):
        victim = sorted(conversion_copy.rglob("*.dcm"))[5]
        victim.write_bytes(victim.read_bytes()[:-2] + b"\0\0")
        _later(victim)
        error = _refused(study_and_conversion[0], tmp_path, "--converted", str(conversion_copy))
        assert str(victim) in error and "changed after the conversion report" in error

    def test_the_study_changed_since(self, study_and_conversion, tmp_path):
        study = tmp_path / "study"
        shutil.copytree(study_and_conversion[0], study)
        converted = _convert(study, tmp_path / "dicom")
        victim = study / "3" / "method"
        _later(victim)
        error = _refused(study, tmp_path, "--converted", str(converted))
        assert str(victim) in error and "changed after the conversion" in error

    def test_another_study(self, study_and_conversion, tmp_path):
        from xnatpic.phantom import write_phantom

        other = tmp_path / "other"
        write_phantom(other, snr=50.0, seed=1)
        converted = _convert(other, tmp_path / "dicom")
        study = study_and_conversion[0]
        error = _refused(study, tmp_path / "1", "--converted", str(converted))
        assert f"a conversion of {other}, not of {study}" in error
        shutil.rmtree(other)  # the source path gone: the StudyInstanceUID still tells
        error = _refused(study, tmp_path / "2", "--converted", str(converted))
        assert "a conversion of another study" in error and "not this study's" in error

    def test_a_selection_of_scans(self, study_and_conversion, tmp_path):
        study = study_and_conversion[0]
        converted = _convert(study, tmp_path / "dicom", "--scans", "1,2")
        error = _refused(study, tmp_path, "--converted", str(converted))
        assert str(converted / REPORT_NAME) in error and "lacks 3/1" in error

    @pytest.mark.parametrize("fmt", ["enhanced", "nifti"])
    def test_another_format(self, study_and_conversion, tmp_path, fmt):
        study = study_and_conversion[0]
        converted = _convert(study, tmp_path / "out", "--format", fmt, "--scans", "1")
        error = _refused(study, tmp_path, "--converted", str(converted))
        assert f"converted with --format {fmt}" in error

    def test_a_deidentified_conversion(self, study_and_conversion, tmp_path, monkeypatch):
        monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
        study = study_and_conversion[0]
        converted = _convert(study, tmp_path / "dicom", "--deidentify", "--scans", "1")
        error = _refused(study, tmp_path, "--converted", str(converted))
        assert "a de-identified conversion" in error

    def test_deidentify_with_converted_is_a_usage_error(self, study_and_conversion, tmp_path,
                                                        monkeypatch, capsys):
        monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", SALT)
        study, converted = study_and_conversion
        assert _archive_upload(study, tmp_path / "a", tmp_path / "r.json", "--deidentify",
                               "--converted", str(converted)) == 2
        assert "--converted with --deidentify" in capsys.readouterr().err
        assert not (tmp_path / "a").exists()

    def test_another_version(self, study_and_conversion, conversion_copy, tmp_path):
        report = conversion_copy / REPORT_NAME
        data = json.loads(report.read_text())
        data["xnatpic_version"] = "0.0.1"
        report.write_text(json.dumps(data))
        error = _refused(study_and_conversion[0], tmp_path, "--converted", str(conversion_copy))
        assert str(report) in error and f"made by xnatpic 0.0.1, this is {__version__}" in error

    def test_no_report(self, study_and_conversion, conversion_copy, tmp_path):
        (conversion_copy / REPORT_NAME).unlink()
        error = _refused(study_and_conversion[0], tmp_path, "--converted", str(conversion_copy))
        assert str(conversion_copy / REPORT_NAME) in error and "no conversion report" in error

    def test_a_report_elsewhere_is_found_with_conversion_report(
            self, study_and_conversion, conversion_copy, tmp_path):
        moved = tmp_path / "report.json"
        (conversion_copy / REPORT_NAME).rename(moved)
        assert _archive_upload(study_and_conversion[0], tmp_path / "a", tmp_path / "r.json",
                               "--converted", str(conversion_copy),
                               "--conversion-report", str(moved)) == 0
        row = json.loads((tmp_path / "r.json").read_text())["sessions"][0]
        assert row["conversion"].startswith(f"reused: {moved}")

    def test_several_studies(self, study_and_conversion, tmp_path, capsys):
        study, converted = study_and_conversion
        both = tmp_path / "both"
        shutil.copytree(study, both / "a")
        shutil.copytree(study, both / "b")
        assert _archive_upload(both, tmp_path / "a", tmp_path / "r.json", "--session-template",
                               "{folder}", "--converted", str(converted)) == 1
        assert "one conversion is of one ParaVision study" in capsys.readouterr().err

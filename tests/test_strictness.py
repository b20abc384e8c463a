"""--strict {ignore,warn,raise}: a date ParaVision wrote that xnatpic cannot read is never
silently dropped; truncation is logged at DEBUG with lengths only, never the value."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pydicom
import pytest

from xnatpic.cli.main import main
from xnatpic.dicom import engine
from xnatpic.phantom import write_phantom
from xnatpic.strictness import (
    ParameterProblemError,
    collect_problems,
    parameter_problem,
    strictness,
)

#: What the broken date parameters hold: text no date reader understands (and that must
#: not reach logs or reports: it stands for identifying text).
SECRET = "Mouse-7 of Dr Someone"
DATE_PARAMETERS = ("VisuAcqDate", "VisuStudyDate", "VisuSeriesDate", "VisuCreationDate")


@pytest.fixture(scope="module")
def broken_dates(tmp_path_factory) -> Path:
    """The phantom with every acquisition/study/series date of scan 1 unreadable."""
    study = tmp_path_factory.mktemp("dates") / "study"
    write_phantom(study, snr=50.0, seed=0)
    visu = study / "1" / "pdata" / "1" / "visu_pars"
    text = visu.read_text()
    for name in DATE_PARAMETERS:
        text, count = re.subn(r"(##\$" + name + r"=)<[^>]*>", rf"\g<1><{SECRET}>", text)
        assert count == 1, name
    visu.write_text(text)
    subject = study / "subject"
    subject.write_text(re.sub(r"(##\$SUBJECT_date=)<[^>]*>", rf"\g<1><{SECRET}>",
                              subject.read_text()))
    return study


def _convert(study: Path, out: Path, level: str) -> tuple[int, dict]:
    report = out.parent / f"report-{level}.json"
    status = main(["convert", str(study), "-o", str(out), "--scans", "1", "--strict", level,
                   "--report", str(report)])
    (reco,) = json.loads(report.read_text())["recos"]
    return status, reco


def test_warn_reports_the_unreadable_dates_without_their_value(broken_dates, tmp_path,
                                                               caplog):
    caplog.set_level(logging.DEBUG)
    status, reco = _convert(broken_dates, tmp_path / "warn", "warn")
    assert status == 0 and reco["status"] == "converted"
    joined = "\n".join(reco["warnings"])
    assert "VisuAcqDate" in joined and "VisuStudyDate" in joined
    assert "not a date or time xnatpic can read" in joined
    assert f"({len(SECRET)} characters)" in joined
    assert SECRET not in joined and SECRET not in caplog.text
    assert any(r.levelno == logging.WARNING and "VisuAcqDate" in r.getMessage()
               for r in caplog.records)
    first = pydicom.dcmread(next((tmp_path / "warn").rglob("*.dcm")))
    assert first.get("AcquisitionDate", "") == "" and first.get("StudyDate", "") == ""


def test_raise_fails_the_reco_naming_the_parameter(broken_dates, tmp_path):
    status, reco = _convert(broken_dates, tmp_path / "raise", "raise")
    assert status == 1 and reco["status"] == "failed"
    assert "not a date or time xnatpic can read" in reco["reason"]
    assert "--strict raise" in reco["reason"] and SECRET not in reco["reason"]


def test_ignore_converts_quietly(broken_dates, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    status, reco = _convert(broken_dates, tmp_path / "ignore", "ignore")
    assert status == 0 and reco["status"] == "converted" and reco["warnings"] == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_readable_dates_give_no_warning(tmp_path):
    study = tmp_path / "study"
    write_phantom(study, snr=50.0, seed=0)
    status, reco = _convert(study, tmp_path / "ok", "raise")
    assert status == 0 and reco["warnings"] == []


def test_parallel_workers_follow_the_switch(broken_dates, tmp_path):
    report = tmp_path / "report.json"
    assert main(["convert", str(broken_dates), "-o", str(tmp_path / "out"), "--scans", "1,2",
                 "--jobs", "2", "--strict", "raise", "--report", str(report)]) == 1
    recos = {r["scan"]: r for r in json.loads(report.read_text())["recos"]}
    assert recos["1"]["status"] == "failed" and "--strict raise" in recos["1"]["reason"]
    assert recos["2"]["status"] == "converted"


@pytest.mark.parametrize("command", ["convert", "info", "upload"])
def test_every_reading_command_has_the_switch(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--strict {ignore,warn,raise}" in capsys.readouterr().out


def test_bad_level_is_a_usage_error(broken_dates, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(broken_dates), "-o", str(tmp_path), "--strict", "loud"])
    assert exit_info.value.code == 2


class TestSwitch:
    def test_levels(self, caplog):
        caplog.set_level(logging.DEBUG, logger="xnatpic")
        with strictness("ignore"), collect_problems() as problems:
            parameter_problem("p1: odd")
        assert problems == [] and caplog.records[-1].levelno == logging.DEBUG
        with strictness("warn"), collect_problems() as problems:
            parameter_problem("p2: odd")
        assert problems == ["p2: odd"] and caplog.records[-1].levelno == logging.WARNING
        with strictness("raise"), pytest.raises(ParameterProblemError, match="p3: odd"):
            parameter_problem("p3: odd")

    def test_default_is_warn_and_levels_nest(self):
        with collect_problems() as problems:
            parameter_problem("outer")
            with strictness("ignore"):
                parameter_problem("inner")
            parameter_problem("after")
        assert problems == ["outer", "after"]


class TestTruncation:
    def test_logged_at_debug_with_lengths_only(self, caplog):
        caplog.set_level(logging.DEBUG, logger="xnatpic")
        value = SECRET * 10  # 210 characters, LO holds 64
        assert engine._coerce_text("SeriesDescription", "LO", value) == value[:64].rstrip()
        (record,) = [r for r in caplog.records if "SeriesDescription" in r.getMessage()]
        assert record.levelno == logging.DEBUG
        assert "210 characters, truncated to 64" in record.getMessage()
        assert SECRET not in caplog.text

    def test_person_name_truncation_hides_the_name(self, caplog):
        caplog.set_level(logging.DEBUG, logger="xnatpic")
        engine._coerce_text("PatientName", "PN", "A" * 70 + SECRET)
        assert SECRET not in caplog.text and "A" * 64 not in caplog.text
        assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_upload_converts_under_the_switch(broken_dates, tmp_path):
    """upload --strict raise: the reco with unreadable dates fails, so the session does."""
    report = tmp_path / "upload.json"
    status = main(["upload", str(broken_dates), "--project", "PRECLIN", "--archive",
                   str(tmp_path / "archive"), "--report", str(report), "--strict", "raise"])
    (session,) = json.loads(report.read_text())["sessions"]
    assert status == 1 and "failed to convert" in session["error"]
    assert "not a date or time xnatpic can read" in session["error"]
    assert SECRET not in session["error"]
    ok = tmp_path / "ok.json"
    assert main(["upload", str(broken_dates), "--project", "PRECLIN", "--archive",
                 str(tmp_path / "archive2"), "--report", str(ok), "--strict", "warn"]) == 0

"""A programming error inside one scan (convert) or one session (upload) stays one line in
the table, and its traceback is kept: on stderr with --debug, in $XNATPIC_LOG_FILE always.

The CLI runs in a subprocess (logging configured as a user gets it) with one function
replaced by a bug: a programming error, not bad data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xnatpic.cli.main import LOG_FILE_ENV
from xnatpic.phantom import write_phantom

BUGGY_CLI = """
import sys
from xnatpic import conversion
from xnatpic.upload import runner
from xnatpic.cli.main import main

def _bug_in_the_writer(*args, **kwargs):
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

def _bug_in_preparation(*args, **kwargs):
    raise KeyError("VisuCoreSize")

conversion._write = _bug_in_the_writer
runner.prepare_session = _bug_in_preparation
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "study"
    write_phantom(out, snr=50.0, seed=0)
    return out


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != LOG_FILE_ENV}
    return subprocess.run([sys.executable, "-c", BUGGY_CLI, *argv], capture_output=True,
                          text=True, env={**base, **(env or {})}, check=False)


def _convert(study: Path, out: Path, *extra: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _cli(*extra, "convert", str(study), "-o", str(out), "--scans", "1",
                "--report", str(out.parent / "report.json"), env=env)


def test_convert_without_debug_one_line_and_the_table_message(study, tmp_path):
    proc = _convert(study, tmp_path / "out")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "TypeError: unsupported operand" in proc.stderr
    assert "(traceback: --debug)" in proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    (failed,) = [r for r in report["recos"] if r["status"] == "failed"]
    assert failed["reason"].endswith("TypeError: unsupported operand type(s) for +: 'int' "
                                     "and 'str'")
    assert "\n" not in failed["reason"]


def test_convert_with_debug_shows_the_traceback(study, tmp_path):
    proc = _convert(study, tmp_path / "out", "--debug")
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "in _bug_in_the_writer" in proc.stderr


def test_log_file_keeps_the_traceback_without_debug(study, tmp_path):
    log = tmp_path / "xnatpic.log"
    proc = _convert(study, tmp_path / "out", env={LOG_FILE_ENV: str(log)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in _bug_in_the_writer" in text


def test_upload_session_traceback_kept(study, tmp_path):
    log = tmp_path / "xnatpic.log"
    report = tmp_path / "upload.json"
    proc = _cli("upload", str(study), "--project", "PRECLIN", "--archive",
                str(tmp_path / "archive"), "--report", str(report),
                env={LOG_FILE_ENV: str(log)})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "KeyError: 'VisuCoreSize'" in proc.stderr
    (session,) = json.loads(report.read_text())["sessions"]
    assert session["error"].endswith("KeyError: 'VisuCoreSize'")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in _bug_in_preparation" in text

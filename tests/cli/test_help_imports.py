"""``xnatpic --help`` lists every subcommand without importing any of them; a named
subcommand imports only its own module. Each runs in a fresh interpreter, where
``sys.modules`` shows what was imported."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import subprocess
import sys

import pytest

from xnatpic.cli.summaries import SUMMARIES

_PROBE = (
    "import sys\n"
    "from xnatpic.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('MODULES', sorted(m for m in sys.modules if m.startswith('xnatpic.cli.')))\n"
)


def _run(*argv: str) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                          text=True, check=True)
    head, _, modules = proc.stdout.rpartition("MODULES ")
    return head, ast.literal_eval(modules)


def test_top_level_help_imports_no_subcommand():
    text, modules = _run("--help")
    assert modules == ["xnatpic.cli.errors", "xnatpic.cli.main", "xnatpic.cli.summaries"]
    for name in SUMMARIES:
        assert f"    {name} " in text


@pytest.mark.parametrize("command", ["convert", "info", "upload"])
def test_subcommand_help_imports_only_its_module(command):
    text, modules = _run(command, "--help")
    others = {f"xnatpic.cli.{name}" for name in SUMMARIES} - {f"xnatpic.cli.{command}"}
    assert f"xnatpic.cli.{command}" in modules
    assert others.isdisjoint(modules)
    assert f"usage: xnatpic {command}" in text


@pytest.mark.parametrize("name", list(SUMMARIES))
def test_summaries_are_the_subcommands_help(name):
    # the line --help lists without the module is the one the module registers
    parser = argparse.ArgumentParser(formatter_class=lambda prog: argparse.HelpFormatter(
        prog, width=1000))
    sub = parser.add_subparsers()
    importlib.import_module(f"xnatpic.cli.{name}").add_parser(sub)
    assert f"    {name}  " in parser.format_help()
    assert SUMMARIES[name] in parser.format_help()


#: A step that asks the launch's XNAT (the local metadata server) for its session and
#: stores the answer as its output.
_ASKING_STEP = r'''
import base64, json, os, sys, urllib.request
from pathlib import Path
out = Path(sys.argv[sys.argv.index("--output") + 1])
token = base64.b64encode(f"{os.environ['XNAT_USER']}:{os.environ['XNAT_PASS']}".encode())
request = urllib.request.Request(os.environ["XNAT_HOST"] + "/data/experiments/XNAT_E00001"
                                 "?format=json", headers={"Authorization": "Basic "
                                                          + token.decode()})
with urllib.request.urlopen(request, timeout=30) as answer:
    item = json.loads(answer.read())["items"][0]
(out / "result").mkdir()
(out / "result" / "label.txt").write_text(item["data_fields"]["label"])
'''

#: What a one-session launch must not import in the launching process: DICOM (the
#: metadata server's import service loads it on its first import request), numpy, and
#: the progress bar of project launches.
_NOT_FOR_ONE_LAUNCH = ("pydicom", "numpy", "rich.progress")


def test_one_local_launch_imports_neither_dicom_nor_numpy(tmp_path):
    from tests.xnat.conftest import GOOD_COMMAND
    from tests.xnat.launch_archive import make_session

    session = make_session(tmp_path / "archive", "m1")
    command_file = tmp_path / "command.json"
    command_file.write_text(json.dumps(GOOD_COMMAND))
    step = tmp_path / "step.py"
    step.write_text(_ASKING_STEP)
    probe = _PROBE.replace("if m.startswith('xnatpic.cli.')",
                           f"if m in {_NOT_FOR_ONE_LAUNCH!r}")
    proc = subprocess.run(
        [sys.executable, "-c", probe, "launch", str(command_file), "--session", str(session),
         "--runtime", "local", "--entrypoint", f"{sys.executable} {step}", "--build-dir",
         str(tmp_path / "b")], capture_output=True, text=True, check=True)
    _, _, modules = proc.stdout.rpartition("MODULES ")
    # the step reached the metadata server and its output was stored
    assert (session / "RESOURCES" / "RESULT" / "label.txt").read_text() == "m1", \
        proc.stderr
    assert ast.literal_eval(modules) == []


_LEAN_PROBE = (
    "import gc, os, sys\n"
    "from xnatpic.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('RESULT', code, os.environ.get('OPENBLAS_NUM_THREADS'), gc.get_freeze_count() > 0,"
    " 'requests' in sys.modules)\n"
)


def test_phantom_info_and_upload_start_lean(tmp_path):
    # each asks for one OpenBLAS thread before numpy loads (xnatpic.lean_start); upload
    # also loads pydicom without its download packages and freezes its imports
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    study, archive = tmp_path / "phantom", tmp_path / "archive"
    seen = {}
    for argv in (["phantom", str(study)], ["info", str(study)],
                 ["upload", str(study), "--project", "P", "--archive", str(archive),
                  "--report", str(tmp_path / "report.json")]):
        proc = subprocess.run([sys.executable, "-c", _LEAN_PROBE, *argv], capture_output=True,
                              text=True, check=True, env=environ, cwd=tmp_path)
        seen[argv[0]] = proc.stdout.rpartition("RESULT ")[2].split()
    assert seen == {"phantom": ["0", "1", "False", "False"],
                    "info": ["0", "1", "False", "False"],
                    "upload": ["0", "1", "True", "False"]}
    assert len(list((archive / "P" / "arc001").iterdir())) == 1

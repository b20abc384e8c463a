"""project-summary reads subject, group and timepoint from XNAT's REST API, as on XNAT.

The step runs through ``xnatpic launch --runtime local`` on the project. The archive's
folders hold only files; the launcher answers the step's REST questions from
``<archive>/.xnatpic/PRECLIN.json`` (:mod:`xnatpic.xnat.metaserver`) and passes its address
as XNAT_HOST with per-launch XNAT_USER/XNAT_PASS, as the Container Service passes XNAT's
(ContainerServiceImpl.java:816-829). With ``--xnat-from-env`` the step asks the XNAT named
in the environment instead: here the one XNAT double of the test suite.
"""

from __future__ import annotations

import csv
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.double import PASSWORD, USER, XnatDouble
from tests.roi.helpers import write_map_resource
from xnatpic.xnat.metadata import update_project

ROOT = Path(__file__).resolve().parents[2]
STEP = ROOT / "pipelines" / "project_summary" / "run.py"
SUMMARY = ROOT / "commands" / "project-summary.json"
XNATPIC = Path(sys.executable).parent / "xnatpic"


def _project(archive: Path) -> Path:
    project = archive / "PRECLIN"
    for label in ("a_d0", "b_d7"):
        session = project / "arc001" / label
        write_map_resource(session, "T2MAP", {"T2": np.full((4, 4, 1), 40.0)}, np.eye(4))
    with update_project(archive, "PRECLIN") as meta:
        meta.ensure_experiment("a_d0", "mouseA", fields={"timepoint": "d0"})
        meta.ensure_experiment("b_d7", "mouseB", fields={"timepoint": "d7"})
        meta.ensure_subject("mouseA", group="control")
        meta.ensure_subject("mouseB", group="treated")
    return project


def _run(project: Path, build: Path, *extra: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    """Launch project-summary on the project (--project PRECLIN from the wrapper)."""
    entry = f"{shlex.quote(sys.executable)} {STEP}"
    return subprocess.run([str(XNATPIC), "launch", str(SUMMARY), "--project", str(project),
                           "--param", "plots=false", "--runtime", "local",
                           "--entrypoint", entry, "--build-dir", str(build), *extra],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, **(env or {})})


def _summary(project: Path) -> dict[str, dict[str, str]]:
    with (project / "RESOURCES" / "PROJECT_SUMMARY" / "summary.csv").open() as fh:
        return {r["session"]: r for r in csv.DictReader(fh)}


def test_subject_group_timepoint_over_rest(tmp_path):
    project = _project(tmp_path)
    proc = _run(project, tmp_path / "build")
    assert proc.returncode == 0, proc.stderr
    rows = _summary(project)
    assert [rows["a_d0"][k] for k in ("subject", "group", "timepoint")] == [
        "mouseA", "control", "d0"]
    assert [rows["b_d7"][k] for k in ("subject", "group", "timepoint")] == [
        "mouseB", "treated", "d7"]
    assert not (project / "RESOURCES" / "PROJECT_SUMMARY" / "plots").exists()  # plots=false
    (log,) = (tmp_path / "build").glob("*/stderr.log")
    assert "subject, group and timepoint of 2 session(s) of PRECLIN" in log.read_text()


def test_unreachable_metadata_is_a_warning(tmp_path):
    project = _project(tmp_path)
    double = XnatDouble(projects=("PRECLIN",))
    double.start()
    try:
        # the double has no subject listing route: 404, as an XNAT without the project's
        # subjects would answer
        proc = _run(project, tmp_path / "build", "--xnat-from-env",
                    env={"XNAT_HOST": double.url, "XNAT_USER": USER, "XNAT_PASS": PASSWORD})
    finally:
        double.stop()
    assert proc.returncode == 0, proc.stderr
    (log,) = (tmp_path / "build").glob("*/stderr.log")
    stderr = log.read_text()
    assert "subject/group/timepoint not read from XNAT" in stderr and "404" in stderr
    rows = _summary(project)
    assert rows["a_d0"]["group"] == "" and rows["b_d7"]["timepoint"] == ""

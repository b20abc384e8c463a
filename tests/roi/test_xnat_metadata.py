"""project-summary reads subject and group from XNAT when session.json does not have them.

The step runs through ``xnatpic launch --runtime local`` on the project, which passes
XNAT_HOST/XNAT_USER/XNAT_PASS to it as the Container Service does.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.roi.helpers import write_map_resource
from tests.xnat.fake_xnat import FakeXnat

ROOT = Path(__file__).resolve().parents[2]
STEP = ROOT / "pipelines" / "project_summary" / "run.py"
SUMMARY = ROOT / "commands" / "project-summary.json"
XNATPIC = Path(sys.executable).parent / "xnatpic"


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "PRECLIN"
    for label in ("a_d0", "b_d0"):
        session = project / "arc001" / label
        write_map_resource(session, "T2MAP", {"T2": np.full((4, 4, 1), 40.0)}, np.eye(4))
    # a session.json value wins over XNAT's
    (project / "arc001" / "b_d0" / "session.json").write_text(json.dumps({"group": "local"}))
    return project


def _routes(xnat: FakeXnat) -> None:
    xnat.routes[("GET", "/data/projects/PRECLIN/subjects")] = lambda r: (200, {"ResultSet": {
        "Result": [{"ID": "S1", "label": "mouseA", "group": "control"},
                   {"ID": "S2", "label": "mouseB", "group": "treated"}]}})
    xnat.routes[("GET", "/data/projects/PRECLIN/experiments")] = lambda r: (200, {"ResultSet": {
        "Result": [{"ID": "E1", "label": "a_d0", "subject_ID": "S1", "subject_label": "mouseA"},
                   {"ID": "E2", "label": "b_d0", "subject_ID": "S2",
                    "subject_label": "mouseB"}]}})


def _run(project: Path, build: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Launch project-summary on the project (--project PRECLIN from the wrapper)."""
    entry = f"{shlex.quote(sys.executable)} {STEP}"
    return subprocess.run([str(XNATPIC), "launch", str(SUMMARY), "--project", str(project),
                           "--param", "plots=false", "--runtime", "local",
                           "--entrypoint", entry, "--build-dir", str(build)],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, **env})


def _summary(project: Path) -> dict[str, dict[str, str]]:
    with (project / "RESOURCES" / "PROJECT_SUMMARY" / "summary.csv").open() as fh:
        return {r["session"]: r for r in csv.DictReader(fh)}


def test_subject_and_group_from_xnat(tmp_path):
    project = _project(tmp_path)
    with FakeXnat() as xnat:
        _routes(xnat)
        proc = _run(project, tmp_path / "build", xnat.env())
    assert proc.returncode == 0, proc.stderr
    rows = _summary(project)
    assert (rows["a_d0"]["subject"], rows["a_d0"]["group"]) == ("mouseA", "control")
    assert (rows["b_d0"]["subject"], rows["b_d0"]["group"]) == ("mouseB", "local")
    assert not (project / "RESOURCES" / "PROJECT_SUMMARY" / "plots").exists()  # plots=false
    paths = sorted(r.path for r in xnat.requests)
    assert paths == ["/data/projects/PRECLIN/experiments", "/data/projects/PRECLIN/subjects"]


def test_xnat_failure_is_a_warning(tmp_path):
    project = _project(tmp_path)
    with FakeXnat() as xnat:  # no routes: 404
        proc = _run(project, tmp_path / "build", xnat.env())
    assert proc.returncode == 0, proc.stderr
    (log,) = (tmp_path / "build").glob("*/stderr.log")
    stderr = log.read_text()
    assert "subject/group not read from XNAT" in stderr and "HTTP 404" in stderr
    rows = _summary(project)
    assert rows["a_d0"]["group"] == "" and rows["b_d0"]["group"] == "local"

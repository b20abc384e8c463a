"""Builders of the summary tests: map runs stored as the map steps store them (one folder
per run, ``RESOURCES/<LABEL>/<run-key>/`` with stats.json and provenance.json; see
/tmp/layout-contract.md), with known values."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from xnatpic.analysis.stats import map_statistics
from xnatpic.xnat.metadata import update_project

ROOT = Path(__file__).resolve().parents[2]
XNATPIC = Path(sys.executable).parent / "xnatpic"
SUMMARY = ROOT / "commands" / "project-summary.json"


def write_run(session: Path, label: str, *, step: str, method: str, scan: str,
              maps: dict[str, tuple[np.ndarray, str, str]]) -> Path:
    """``RESOURCES/<label>/<method>-scan<scan>/`` with stats.json entries from the real
    :func:`~xnatpic.analysis.stats.map_statistics`; ``maps``: name -> (values, unit, role).
    """
    run_key = f"{method}-scan{scan}".lower()
    folder = session / "RESOURCES" / label / run_key
    folder.mkdir(parents=True)
    stats = {name: {"unit": unit, "role": role,
                    **map_statistics(values, np.ones(values.shape, bool))}
             for name, (values, unit, role) in maps.items()}
    (folder / "stats.json").write_text(json.dumps({"step": step, "scans": {"source": scan},
                                                   "maps": stats}))
    (folder / "provenance.json").write_text(json.dumps({
        "step": step, "method": method, "run_key": run_key, "scans": {"source": scan},
        "parameters": {"method": method},
        "session": {"label": session.name}}))
    return folder


def register(archive: Path, project: str, session: str, subject: str, group: str,
             timepoint: str) -> None:
    """XNAT's database rows of a session: subject with its group, timepoint field."""
    with update_project(archive, project) as meta:
        meta.ensure_experiment(session, subject, fields={"timepoint": timepoint})
        meta.ensure_subject(subject, group=group)


def launch(command: Path, target: str, path: Path, build: Path, *args: str
           ) -> subprocess.CompletedProcess:
    """``xnatpic launch COMMAND --session|--project PATH ... --runtime local`` with the
    step script of ``pipelines/`` as the ENTRYPOINT."""
    step = command.stem.replace("-", "_")
    entry = f"{shlex.quote(sys.executable)} {ROOT / 'pipelines' / step / 'run.py'}"
    return subprocess.run([str(XNATPIC), "launch", str(command), target, str(path), *args,
                           "--runtime", "local", "--entrypoint", entry, "--build-dir",
                           str(build)], capture_output=True, text=True, check=False,
                          timeout=600)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))

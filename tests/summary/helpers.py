"""Builders of the summary tests: map runs stored as the map steps store them (one folder
per run, ``RESOURCES/<LABEL>/<run-key>/`` with stats.json and provenance.json; see
/tmp/layout-contract.md), with known values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xnatpic.analysis.stats import map_statistics
from xnatpic.xnat.metadata import update_project


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

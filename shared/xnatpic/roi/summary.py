"""Project summary: every session's statistics gathered into one tidy table, maps never mixed.

A map step stores one folder per run in its session resource (``RESOURCES/<LABEL>/<run-key>/``
with ``stats.json`` and ``provenance.json``; the older layout keeps them at the resource's
top). Each run is identified by its step, its fit method and its run key (``vtr-scan11``),
read from the run's ``provenance.json``; every map entry of its ``stats.json`` has a unit and
a role (``primary``, ``byproduct`` such as R_squared, S0 or M0, ``spectrum`` such as CEST
Z-spectrum frames). A row of the summary is therefore one value of one map of one run in
one ROI of one session: the key (map, units, step, method, ROI) never pools the T1 fit's R²
with the T2 fit's, nor a VTR T1 with an IR T1.

ROI statistics come from ``RESOURCES/ROISTATS/**/roi_stats.csv`` (roi-stats); a run that
roi-stats did not cover contributes its whole-map statistics (ROI ``whole_map``). The
archive folders hold only files, as on XNAT: subject, group and timepoint come from XNAT's
database through its REST API (:mod:`xnatpic.xnat.project_fields`, called by the step),
given to :func:`gather_project` as ``extra``; empty when not given.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.analysis.runs import ROLES, MapRun, map_run, run_folders
from xnatpic.roi.errors import RoiError

__all__ = ["KEY", "ROLES", "STAT_KEYS", "SUMMARY_COLUMNS", "WHOLE_MAP", "Gathered", "MapRun",
           "gather_project", "natural_key", "session_metadata", "session_runs"]

_log = logging.getLogger(__name__)

#: Statistics columns, in order.
STAT_KEYS = ("mean", "sd", "median", "q1", "q3", "n", "n_excluded")
#: What a summary row is about: rows are compared only when all of these agree.
KEY = ("map", "units", "step", "method", "roi")
#: Roles of a map (stats.json ``role``); only ``primary`` maps enter the comparisons unless
#: asked for.
#: Columns of the per-session table (one row per session × run × map × ROI).
SUMMARY_COLUMNS = ("project", "subject", "session", "group", "timepoint", "map", "units",
                   "step", "method", "roi", "role", "run_key", "scan", "resource",
                   *STAT_KEYS, "flag", "mask_source", "mask_kind", "map_file", "source")
#: ROI name of the whole-map statistics taken from a map run's stats.json.
WHOLE_MAP = "whole_map"
_ALIASES = {"sd": ("sd", "std", "SD"), "q1": ("q1", "p25", "Q1"), "q3": ("q3", "p75", "Q3"),
            "n": ("n", "count", "n_valid", "N"), "n_excluded": ("n_excluded", "n_nan",
                                                                 "n_failed")}
_NOT_MAPS = {"ROISTATS", "MASKS", "PROJECT_SUMMARY", "DICOM", "NIFTI", "PARAVISION",
             "SNAPSHOTS"}


def natural_key(text: Any) -> tuple[Any, ...]:
    """Sort key putting ``Z_2`` before ``Z_10`` and ``d7`` before ``d14``.

    Examples
    --------
    >>> sorted(["Z_10", "Z_2", "Z_1"], key=natural_key)
    ['Z_1', 'Z_2', 'Z_10']
    """
    parts = re.split(r"(\d+(?:\.\d+)?)", str(text))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p.lower())
                 for i, p in enumerate(parts) if p)


def _float(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RoiError(f"{path}: not valid JSON ({exc})") from exc


def session_metadata(session_dir: Path) -> dict[str, str]:
    """Project (the folder above ``arc001``, else "") and session label of a session folder;
    subject, group and timepoint empty (they are not in the archive's files)."""
    session_dir = Path(session_dir)
    parent = session_dir.resolve().parent
    return {
        "project": parent.parent.name if parent.name == "arc001" else "",
        "subject": "", "session": session_dir.name, "group": "", "timepoint": "",
    }


def _run(resource: Path, folder: Path) -> MapRun:
    return map_run(resource, folder, _read_json(folder / "provenance.json"),
                   _read_json(folder / "stats.json"))


def session_runs(session_dir: Path) -> list[MapRun]:
    """Every run of every map resource of a session (both layouts), naturally sorted."""
    runs = [_run(resource, folder)
            for resource in sorted(Path(session_dir).glob("RESOURCES/*"))
            if resource.name.upper() not in _NOT_MAPS
            for folder in run_folders(resource, lambda f: (f / "stats.json").is_file())]
    return sorted(runs, key=lambda r: (natural_key(r.resource), natural_key(r.run_key)))


def _stat_entries(data: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(map, roi, stats) from the shapes a stats.json may have."""
    if isinstance(data, dict) and "maps" in data:
        data = data["maps"]
    entries: list[tuple[str, str, dict[str, Any]]] = []
    if isinstance(data, dict):
        for name, value in data.items():
            if isinstance(value, dict) and isinstance(value.get("whole"), dict):
                # xnatpic.analysis: {"unit": .., "whole": {"n_voxels", "n_failed", ...}}
                whole = dict(value["whole"])
                if "n_voxels" in whole:
                    failed = whole.get("n_failed") or 0
                    whole.setdefault("n_excluded", failed)
                    whole.setdefault("n", (whole["n_voxels"] or 0) - failed)
                whole.setdefault("units", value.get("unit", value.get("units", "")))
                entries.append((str(name), WHOLE_MAP, whole))
            elif isinstance(value, dict) and any(k in value for k in ("mean", "median")):
                entries.append((str(name), str(value.get("roi") or WHOLE_MAP), value))
    elif isinstance(data, list):
        for value in data:
            if isinstance(value, dict) and (value.get("map") or value.get("name")):
                entries.append((str(value.get("map") or value.get("name")),
                                str(value.get("roi") or WHOLE_MAP), value))
    return entries


def _stats(value: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key in STAT_KEYS:
        alias = next((a for a in _ALIASES.get(key, (key,)) if a in value), key)
        out[key] = _float(value.get(alias))
    return out


def _whole_map_rows(run: MapRun, where: str) -> list[dict[str, Any]]:
    rows = []
    for name, roi, value in _stat_entries(run.stats):
        rows.append({**_identity(run), "map": name, "role": run.role(name), "roi": roi,
                     **_stats(value), "units": str(value.get("units", value.get("unit", ""))),
                     "flag": "", "mask_source": "", "mask_kind": "", "map_file": "",
                     "source": where})
    return rows


def _identity(run: MapRun) -> dict[str, str]:
    return {"step": run.step, "method": run.method, "run_key": run.run_key, "scan": run.scan_list,
            "resource": run.resource}


def _match_run(row: dict[str, str], runs: list[MapRun], path: Path) -> MapRun | None:
    """The run a roi_stats.csv row came from: its ``run_key`` column, or a resource column
    naming ``LABEL/<run-key>``, or the resource's only run."""
    resource, _, key = (row.get("resource") or "").partition("/")
    key = row.get("run_key") or key
    candidates = [r for r in runs if r.resource == resource and (not key or r.run_key == key)]
    if len(candidates) == 1:
        return candidates[0]
    why = ("no such run in the session" if not candidates else
           f"{len(candidates)} runs ({', '.join(r.run_key for r in candidates)}) and the row "
           "does not say which")
    _log.warning("%s: row %s/%s of resource %r not attributed to a map run: %s", path,
                 row.get("map"), row.get("roi"), row.get("resource"), why)
    return None


def _roistats_rows(path: Path, runs: list[MapRun], where: str, skipped: list[str]
                   ) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """Rows of one roi_stats.csv and the (resource, run key) runs it covered."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"map", "roi", "mean"} - set(reader.fieldnames or [])
        if missing:
            raise RoiError(f"{path}: not a roi_stats.csv (missing columns {sorted(missing)})")
        raw = list(reader)
    rows, covered = [], set()
    for r in raw:
        run = _match_run(r, runs, path)
        if run is None:
            skipped.append(f"{where}: {r.get('resource')} {r.get('map')} in {r.get('roi')} "
                           "(which run it came from is unknown)")
            continue
        covered.add((run.resource, run.run_key))
        rows.append({**_identity(run), "map": r["map"], "role": run.role(r["map"]),
                     "roi": r["roi"], **{k: _float(r.get(k)) for k in STAT_KEYS},
                     "units": r.get("units", ""), "flag": r.get("flag", ""),
                     "mask_source": r.get("mask_source", ""),
                     "mask_kind": r.get("mask_kind", ""), "map_file": r.get("map_file", ""),
                     "source": where})
    return rows, covered


@dataclass
class Gathered:
    """What :func:`gather_project` found."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    session_dirs: dict[str, Path] = field(default_factory=dict)

    def __iter__(self):  # rows, empty = gather_project(...)
        return iter((self.rows, self.empty))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def gather_project(sessions: list[Path], extra: dict[str, dict[str, str]] | None = None,
                   root: Path | None = None) -> Gathered:
    """Rows of the project summary, the sessions that contributed nothing, rows skipped.

    Parameters
    ----------
    sessions : list of Path
        Session folders (see :func:`xnatpic.xnat.archive.find_sessions`).
    extra : dict, optional
        Session label -> metadata (``subject``, ``group``, ``timepoint``) from XNAT
        (:mod:`xnatpic.xnat.project_fields`).
    root : Path, optional
        Folder the ``source`` column is relative to (default: the parent of ``arc001``).

    Returns
    -------
    Gathered
        ``rows`` (keys :data:`SUMMARY_COLUMNS`), ``empty`` (labels of sessions with no
        statistics), ``skipped`` (ROI rows that could not be attributed to one map run,
        one line each) and ``session_dirs``; unpacks as ``rows, empty``.
    """
    out = Gathered()
    for session_dir in sessions:
        session_dir = Path(session_dir)
        base = root or (session_dir.parent.parent if session_dir.parent.name == "arc001"
                        else session_dir.parent)
        meta = session_metadata(session_dir)
        for key, value in (extra or {}).get(meta["session"], {}).items():
            if value and not meta.get(key):
                meta[key] = value
        out.session_dirs[meta["session"]] = session_dir
        runs = session_runs(session_dir)
        found: list[dict[str, Any]] = []
        covered: set[tuple[str, str]] = set()
        for csv_path in sorted(session_dir.glob("RESOURCES/ROISTATS/**/roi_stats.csv")):
            rows, done = _roistats_rows(csv_path, runs, _relative(csv_path, base), out.skipped)
            found += rows
            covered |= done
        for run in runs:
            if (run.resource, run.run_key) not in covered:
                found += _whole_map_rows(run, _relative(run.folder / "stats.json", base))
        if not found:
            _log.warning("%s: no ROISTATS/roi_stats.csv and no map stats.json: skipped",
                         session_dir)
            out.empty.append(meta["session"])
        out.rows += [{**meta, **row} for row in found]
    return out

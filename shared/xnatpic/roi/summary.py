"""Project summary: every session's ROI statistics gathered into one table.

Per session (archive layout ``<project>/arc001/<session>/``), rows come from
``RESOURCES/ROISTATS/roi_stats.csv``; a session without it contributes the whole-map
statistics of its map resources' ``stats.json`` (ROI ``whole_map`` unless an entry names
its ROI). The archive folders hold only files, as on XNAT: subject, group and timepoint
come from XNAT's database through its REST API (:mod:`xnatpic.xnat.project_fields`, called
by the step, not by this layer), given to :func:`gather_project` as ``extra``; empty when
not given.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from xnatpic.roi.errors import RoiError

__all__ = ["STAT_KEYS", "SUMMARY_COLUMNS", "WHOLE_MAP", "gather_project", "session_metadata"]

_log = logging.getLogger(__name__)

#: Statistics columns, in order.
STAT_KEYS = ("mean", "sd", "median", "q1", "q3", "n", "n_excluded")
#: Columns of the project summary CSV.
SUMMARY_COLUMNS = ("project", "subject", "session", "group", "timepoint", "resource", "map",
                   "roi", *STAT_KEYS, "units", "flag", "source")
#: ROI name of the whole-map statistics taken from a map resource's stats.json.
WHOLE_MAP = "whole_map"
_ALIASES = {"sd": ("sd", "std", "SD"), "q1": ("q1", "p25", "Q1"), "q3": ("q3", "p75", "Q3"),
            "n": ("n", "count", "n_valid", "N"), "n_excluded": ("n_excluded", "n_nan",
                                                                 "n_failed")}


def _float(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def session_metadata(session_dir: Path) -> dict[str, str]:
    """Project (the folder above ``arc001``, else "") and session label of a session folder;
    subject, group and timepoint empty (they are not in the archive's files)."""
    session_dir = Path(session_dir)
    parent = session_dir.resolve().parent
    return {
        "project": parent.parent.name if parent.name == "arc001" else "",
        "subject": "", "session": session_dir.name, "group": "", "timepoint": "",
    }


def _rows_from_roistats(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"map", "roi", "mean"} - set(reader.fieldnames or [])
        if missing:
            raise RoiError(f"{path}: not a roi_stats.csv (missing columns {sorted(missing)})")
        return [{"resource": r.get("resource", ""), "map": r["map"], "roi": r["roi"],
                 **{k: _float(r.get(k)) for k in STAT_KEYS}, "units": r.get("units", ""),
                 "flag": r.get("flag", ""), "source": "ROISTATS"} for r in reader]


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


def _rows_from_map_stats(session_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for stats in sorted(Path(session_dir).glob("RESOURCES/*/stats.json")):
        if not stats.parent.name.upper().endswith("MAP"):
            continue
        try:
            data = json.loads(stats.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            _log.warning("%s: skipped, not valid JSON (%s)", stats, exc)
            continue
        entries = _stat_entries(data)
        if not entries:
            _log.warning("%s: skipped, no per-map statistics found", stats)
        for name, roi, value in entries:
            row: dict[str, Any] = {"resource": stats.parent.name, "map": name, "roi": roi}
            for key in STAT_KEYS:
                alias = next((a for a in _ALIASES.get(key, (key,)) if a in value), key)
                row[key] = _float(value.get(alias))
            row.update(units=str(value.get("units", value.get("unit", ""))), flag="",
                       source="stats.json")
            rows.append(row)
    return rows


def gather_project(sessions: list[Path], extra: dict[str, dict[str, str]] | None = None
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the project summary and the sessions that contributed nothing.

    Parameters
    ----------
    sessions : list of Path
        Session folders (see :func:`xnatpic.xnat.archive.find_sessions`).
    extra : dict, optional
        Session label -> metadata (``subject``, ``group``, ``timepoint``) from XNAT
        (:mod:`xnatpic.xnat.project_fields`).

    Returns
    -------
    rows : list of dict
        Keys :data:`SUMMARY_COLUMNS`.
    empty : list of str
        Labels of sessions with neither ROISTATS nor map stats.
    """
    rows: list[dict[str, Any]] = []
    empty: list[str] = []
    for session_dir in sessions:
        meta = session_metadata(session_dir)
        for key, value in (extra or {}).get(meta["session"], {}).items():
            if value and not meta.get(key):
                meta[key] = value
        roistats = session_dir / "RESOURCES" / "ROISTATS" / "roi_stats.csv"
        found = (_rows_from_roistats(roistats) if roistats.is_file()
                 else _rows_from_map_stats(session_dir))
        if not found:
            _log.warning("%s: no ROISTATS/roi_stats.csv and no map stats.json: skipped",
                         session_dir)
            empty.append(meta["session"])
        rows += [{**meta, **row} for row in found]
    return rows, empty

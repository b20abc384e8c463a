"""Parametric maps stored by the map steps, and the frame of reference they come from.

Convention of the map steps (t2map, t2starmap, t1map, adcmap, cest): a session resource
whose label ends in ``MAP`` (``T2MAP``, ``CESTMAP``...) holding one folder per run,
``<LABEL>/<run-key>/`` (run key ``<method>-scan<source scan>``, e.g. ``vtr-scan3``; the
layout contract of issue 12), each with the maps as float32 NIfTI on the source geometry,
NaN where the fit failed, in ``nifti/<NAME>.nii.gz`` (as :mod:`xnatpic.analysis.outputs`
writes them; ``nifti/mask.nii.gz`` and ``*_status`` images are not maps) or
``maps/<NAME>.nii.gz``, with ``stats.json``, ``stats.csv`` and ``provenance.json``
(``step``, ``method``, ``run_key``, ``scans`` {"source": id}). A resource holding
``nifti/`` or ``maps/`` itself (the layout before runs) is one run with an empty key. A
4-D map ``(X, Y, Z, C)`` gives one map per component, ``<NAME>_<c>``.

Frame of reference of a map, first found of: a ``FrameOfReferenceUID`` key (also
``frame-of-reference-uid``, ``frame_of_reference_uid``) anywhere in ``maps/<NAME>.json``,
then in the resource's ``provenance.json``; else the FrameOfReferenceUIDs of the DICOM
series of the session (``SCANS/*/DICOM``), any of which the map may come from.

Units: a ``units``/``Units`` key in ``maps/<NAME>.json``, else in ``stats.json`` under
the map's name, else :data:`DEFAULT_UNITS`, else empty.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
from nibabel.filebasedimages import ImageFileError
from pydicom.errors import InvalidDicomError

from xnatpic.analysis.runs import MapRun, map_run, run_folders
from xnatpic.roi.errors import RoiError
from xnatpic.roi.grid import Grid
from xnatpic.roi.labelmap import NIFTI_SUFFIXES, nifti_stem

__all__ = [
    "DEFAULT_UNITS",
    "MAP_FOLDERS",
    "MapRun",
    "MapVolume",
    "find_map_resources",
    "load_maps",
    "map_runs",
    "session_frames_of_reference",
]

_log = logging.getLogger(__name__)
_FOR_KEYS = {"frameofreferenceuid", "frame-of-reference-uid", "frame_of_reference_uid"}
#: Folders of a map resource that hold maps.
MAP_FOLDERS = ("nifti", "maps")
#: File stems in those folders that are not maps (the fit mask; ``*_status`` images too).
NOT_MAPS = {"mask"}

#: Units of the maps the map steps write, when their files do not say.
DEFAULT_UNITS = {
    "T1": "ms", "T2": "ms", "T2star": "ms", "T2s": "ms", "R1": "1/s", "R2": "1/s",
    "R2star": "1/s", "R2s": "1/s", "ADC": "mm2/s", "MD": "mm2/s", "FA": "1", "M0": "a.u.",
    "S0": "a.u.",
}


@dataclass
class MapVolume:
    """One map: its run, name, values, grid, units and frame(s) of reference."""

    resource: str
    name: str
    path: Path
    data: np.ndarray
    grid: Grid
    units: str
    frames_of_reference: set[str]
    run: MapRun | None = None


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        _log.warning("%s: ignored, not valid JSON (%s)", path, exc)
        return None


def _find_uids(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).lower() in _FOR_KEYS and isinstance(value, str) and value:
                found.add(value)
            else:
                found |= _find_uids(value)
    elif isinstance(data, list):
        for item in data:
            found |= _find_uids(item)
    return found


def session_frames_of_reference(session_dir: Path) -> set[str]:
    """FrameOfReferenceUIDs of the session's DICOM scans (one file read per scan resource)."""
    uids: set[str] = set()
    for resource in sorted(Path(session_dir).glob("SCANS/*/DICOM")):
        for path in sorted(resource.rglob("*")):
            if not path.is_file() or path.name.endswith(".xml"):
                continue
            try:
                ds = pydicom.dcmread(str(path), stop_before_pixels=True,
                                     specific_tags=["FrameOfReferenceUID"])
            except (InvalidDicomError, OSError):
                continue
            if getattr(ds, "FrameOfReferenceUID", ""):
                uids.add(str(ds.FrameOfReferenceUID))
            break
    return uids


def _map_files(folder: Path) -> list[Path]:
    return [p for sub in MAP_FOLDERS for p in sorted((folder / sub).glob("*.nii*"))
            if p.name.endswith(NIFTI_SUFFIXES) and nifti_stem(p) not in NOT_MAPS
            and not nifti_stem(p).endswith("_status")]


def _run_folders(resource: Path) -> list[Path]:
    """The run folders of a map resource that hold maps (the resource itself too, when
    it holds maps as written before run folders)."""
    return run_folders(resource, lambda folder: bool(_map_files(folder)))


def map_runs(resource: Path) -> list[MapRun]:
    """Every run of a map resource that holds maps, with its step, method and scans.

    Parameters
    ----------
    resource : Path
        ``RESOURCES/<LABEL>``.
    """
    return [map_run(resource, folder, _read_json(folder / "provenance.json"))
            for folder in _run_folders(resource)]


def find_map_resources(session_dir: Path, labels: list[str] | None = None) -> list[Path]:
    """Map resources of a session: ``RESOURCES/*MAP`` holding ``nifti/`` or ``maps/*.nii*``.

    Parameters
    ----------
    session_dir : Path
    labels : list of str, optional
        Resource labels to use (default: every ``*MAP`` resource).

    Raises
    ------
    RoiError
        When a named resource is absent or no map resource exists.
    """
    root = Path(session_dir) / "RESOURCES"
    present = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    if labels:
        missing = [label for label in labels if label not in present]
        if missing:
            raise RoiError(f"{root}: no map resource {missing} in this session (resources: "
                           f"{', '.join(present) or 'none'})")
        chosen = [root / label for label in labels]
    else:
        chosen = [root / label for label in present if label.upper().endswith("MAP")]
    chosen = [c for c in chosen if _run_folders(c)]
    if not chosen:
        raise RoiError(f"{root}: no map resource with <run>/nifti/*.nii.gz (or nifti/, "
                       f"maps/) (resources: {', '.join(present) or 'none'}); run a map step "
                       "first")
    return chosen


def _units(name: str, sidecar: Any, stats: Any) -> str:
    for source in (sidecar, stats.get(name) if isinstance(stats, dict) else None,
                   (stats.get("maps") or {}).get(name) if isinstance(stats, dict)
                   and isinstance(stats.get("maps"), dict) else None):
        if isinstance(source, dict):
            for key in ("units", "Units", "unit"):
                if source.get(key):
                    return str(source[key])
    return DEFAULT_UNITS.get(name, "")


def load_maps(resource: Path, session_uids: set[str]) -> list[MapVolume]:
    """Load every map of every run of a map resource.

    Parameters
    ----------
    resource : Path
        ``RESOURCES/<LABEL>``.
    session_uids : set of str
        FrameOfReferenceUIDs of the session's series (used when the map does not say).

    Raises
    ------
    RoiError
        When a map file cannot be read or is not 3-D.
    """
    return [m for run in map_runs(resource) for m in _load_run(run, session_uids)]


def _load_run(run: MapRun, session_uids: set[str]) -> list[MapVolume]:
    provenance = run.provenance
    stats = _read_json(run.folder / "stats.json")
    resource = run.folder
    out = []
    for path in _map_files(resource):
        name = nifti_stem(path)
        try:
            img = nib.load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float32)
        except (OSError, ValueError, EOFError, ImageFileError) as exc:
            raise RoiError(f"{path}: cannot read the map: {exc}") from exc
        while data.ndim > 3 and data.shape[-1] == 1:
            data = data[..., 0]
        if data.ndim == 2:
            data = data[..., None]
        if data.ndim not in (3, 4):
            raise RoiError(f"{path}: maps must be 3-D or 4-D, got shape {data.shape}")
        sidecar = _read_json(path.with_name(name + ".json"))
        uids = _find_uids(sidecar) or _find_uids(provenance) or set(session_uids)
        units = _units(name, sidecar, stats)
        grid = Grid(data.shape[:3], img.affine)
        if data.ndim == 3:
            out.append(MapVolume(run.resource, name, path, data, grid, units, uids, run))
        else:
            out += [MapVolume(run.resource, f"{name}_{c}", path, data[..., c], grid, units,
                              uids, run) for c in range(data.shape[3])]
    return out

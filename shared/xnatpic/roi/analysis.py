"""ROI statistics of every map of a session: the work of the roi-stats step."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.roi.auto import AUTO_ROI, AutoMask, source_image_mask
from xnatpic.roi.errors import RoiError
from xnatpic.roi.maps import MapVolume, find_map_resources, load_maps, session_frames_of_reference
from xnatpic.roi.masks import MaskSource, check_frame_of_reference
from xnatpic.roi.sources import read_mask_folder, read_roi_collection
from xnatpic.roi.stats import roi_stats

__all__ = ["CSV_COLUMNS", "MaskChoice", "SessionStats", "format_value", "session_roi_stats"]

_log = logging.getLogger(__name__)

#: Columns of roi_stats.csv: what was measured, then where it came from.
CSV_COLUMNS = ("session", "map", "roi", "mean", "sd", "median", "q1", "q3", "n",
               "n_excluded", "units", "resource", "flag", "mask_source", "iqr", "step",
               "method", "run_key", "source_scan", "map_file", "mask_kind")


@dataclass
class SessionStats:
    """ROI statistics of one session: rows of roi_stats.csv plus what was used."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    maps: list[str] = field(default_factory=list)
    masks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> list[dict[str, Any]]:
        """Rows with a flag (empty ROI, all voxels failed)."""
        return [r for r in self.rows if r["flag"]]


@dataclass(frozen=True)
class MaskChoice:
    """Where the ROIs come from.

    Attributes
    ----------
    kind : str
        ``auto`` (the map's anatomical source image), ``resource`` (a session resource of
        mask files) or ``roi-collection`` (an ROI collection assessor's folder).
    name : str
        The resource label or the ROI collection's label (empty for ``auto``).
    folder : Path or None
        The ROI collection's folder (``/roi``, the assessor's files).
    auto_scan : str
        With ``auto``: the scan to threshold instead of each run's source scan.
    """

    kind: str
    name: str = ""
    folder: Path | None = None
    auto_scan: str = ""

    @property
    def key(self) -> str:
        """Folder name of this choice's statistics (``auto``, a label)."""
        return "auto" if self.kind == "auto" else self.name


def _relative(path: str, base: Path, prefix: str) -> str:
    """``prefix/<path relative to base>`` (the path itself when outside base)."""
    p = Path(path)
    try:
        rel = p.resolve().relative_to(base.resolve()).as_posix()
    except (ValueError, OSError):
        return p.name
    return f"{prefix}/{rel}" if prefix else rel


def _unique_names(sources: list[tuple[MaskSource, str]]) -> list[list[tuple[str, str]]]:
    """(original name, output name) per source; names repeated across files get a suffix."""
    seen: dict[str, int] = {}
    for src, _ in sources:
        for name in src.names:
            seen[name] = seen.get(name, 0) + 1
    out = []
    for src, rel in sources:
        stem = Path(rel).name.split(".")[0]
        out.append([(n, f"{n}@{stem}" if seen[n] > 1 else n) for n in src.names])
    return out


def _drawn_masks(session_dir: Path, choice: MaskChoice) -> list[tuple[MaskSource, str]]:
    """Drawn masks and their readable source (relative path)."""
    if choice.kind == "roi-collection":
        folder = choice.folder or Path("/roi")
        return [(s, _relative(s.source, folder, choice.name))
                for s in read_roi_collection(folder, choice.name)]
    sources = read_mask_folder(session_dir / "RESOURCES" / choice.name)
    return [(s, _relative(s.source, session_dir, "")) for s in sources]


def _map_file(vol: MapVolume, session_dir: Path) -> str:
    return _relative(str(vol.path), session_dir, "")


def session_roi_stats(session_dir: Path, *, session_label: str, map_labels: list[str] | None,
                      mask: MaskChoice | str) -> SessionStats:
    """Statistics of every map of a session in every ROI.

    Parameters
    ----------
    session_dir : Path
        Session in archive layout (``RESOURCES/<label>/<run-key>/``...).
    session_label : str
        Written in the ``session`` column.
    map_labels : list of str or None
        Map resources to use (None: every ``*MAP`` resource).
    mask : MaskChoice or str
        The drawn masks to use, or ``auto``: a foreground mask of each run's anatomical
        source image (never of a map). A string is ``auto`` or a mask resource label.

    Raises
    ------
    RoiError
        No map, no mask, an unreadable file, or a mask on another frame of reference
        (:class:`~xnatpic.roi.errors.FrameOfReferenceError`).
    """
    session_dir = Path(session_dir)
    if isinstance(mask, str):
        mask = MaskChoice("auto") if mask.strip().lower() == "auto" else \
            MaskChoice("resource", mask.strip())
    resources = find_map_resources(session_dir, map_labels)
    session_uids = session_frames_of_reference(session_dir)
    maps = [m for r in resources for m in load_maps(r, session_uids)]
    if not maps:
        raise RoiError(f"{session_dir}: map resources {[r.name for r in resources]} hold no map")
    result = SessionStats(maps=[_map_file(m, session_dir) for m in maps])
    drawn = [] if mask.kind == "auto" else _drawn_masks(session_dir, mask)
    names = _unique_names(drawn)
    for (src, rel), pairs in zip(drawn, names, strict=True):
        result.masks.append({"source": rel, "kind": mask.kind, "rois": [o for _, o in pairs],
                             "frame-of-reference-uid": src.frame_of_reference_uid})
    autos: dict[str, AutoMask] = {}
    for vol in maps:
        run = vol.run
        where = f"map {_map_file(vol, session_dir)}"
        if mask.kind == "auto":
            scan = mask.auto_scan or (run.source_scan if run else "")
            if scan not in autos:
                auto = autos[scan] = source_image_mask(session_dir, scan, why=where)
                result.masks.append({"source": auto.masks.source, "kind": "auto",
                                     "scan": auto.scan, "image": auto.folder,
                                     "rois": [AUTO_ROI], "frame-of-reference-uid":
                                     auto.masks.frame_of_reference_uid})
            auto = autos[scan]
            pairs_of = [(auto.masks, auto.masks.source, [(AUTO_ROI, AUTO_ROI)])]
        else:
            pairs_of = [(src, rel, pairs) for (src, rel), pairs in zip(drawn, names,
                                                                       strict=True)]
        for src, rel, pairs in pairs_of:
            check_frame_of_reference(src, vol.frames_of_reference, where)
            on_grid = src.on_grid(vol.grid)
            for original, name in pairs:
                stats = roi_stats(vol.data, on_grid[original])
                if stats.flag:
                    _log.warning("%s, ROI %r: %s (%d voxel(s) in the ROI, %d failed)",
                                 where, name, stats.flag, stats.n + stats.n_excluded,
                                 stats.n_excluded)
                result.rows.append({
                    "session": session_label, "map": vol.name, "roi": name,
                    **{k: getattr(stats, k) for k in ("mean", "sd", "median", "q1", "q3",
                                                      "n", "n_excluded")},
                    "units": vol.units, "resource": vol.resource, "flag": stats.flag,
                    "mask_source": rel, "iqr": stats.iqr,
                    "step": run.step if run else "", "method": run.method if run else "",
                    "run_key": run.run_key if run else "",
                    "source_scan": run.source_scan if run else "",
                    "map_file": _map_file(vol, session_dir), "mask_kind": mask.kind,
                })
    return result


def format_value(value: Any) -> str:
    """CSV text of a value: floats with 7 significant digits, NaN as empty."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.7g}"
    return str(value)

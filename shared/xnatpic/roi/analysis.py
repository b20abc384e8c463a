"""ROI statistics of every map of a session: the work of the roi-stats step."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from xnatpic.roi.auto import foreground_mask
from xnatpic.roi.errors import MaskSourceError, RoiError
from xnatpic.roi.maps import MapVolume, find_map_resources, load_maps, session_frames_of_reference
from xnatpic.roi.masks import MaskSource, check_frame_of_reference
from xnatpic.roi.sources import read_mask_folder
from xnatpic.roi.stats import roi_stats

__all__ = ["CSV_COLUMNS", "SessionStats", "format_value", "session_roi_stats"]

_log = logging.getLogger(__name__)

#: Columns of roi_stats.csv.
CSV_COLUMNS = ("session", "map", "roi", "mean", "sd", "median", "q1", "q3", "n",
               "n_excluded", "units", "resource", "flag", "mask_source", "iqr")


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


def _auto(maps: list[MapVolume], session_dir: Path, auto_image: str | None) -> MaskSource:
    if auto_image:
        path = Path(session_dir) / "RESOURCES" / auto_image
        try:
            img = nib.load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float64)
        except (OSError, ValueError, EOFError, ImageFileError) as exc:
            raise MaskSourceError(f"{path}: cannot read the image for the automatic mask "
                                  f"(give RESOURCE/path/in/resource.nii.gz): {exc}") from exc
        return foreground_mask(data, img.affine, source=str(path))
    first = maps[0]
    return foreground_mask(first.data, first.grid.affine, source=str(first.path))


def _unique_names(sources: list[MaskSource]) -> list[list[tuple[str, str]]]:
    """(original name, output name) per source; names repeated across files get a suffix."""
    seen: dict[str, int] = {}
    for src in sources:
        for name in src.names:
            seen[name] = seen.get(name, 0) + 1
    out = []
    for src in sources:
        stem = Path(src.source).name.split(".")[0]
        out.append([(n, f"{n}@{stem}" if seen[n] > 1 else n) for n in src.names])
    return out


def session_roi_stats(session_dir: Path, *, session_label: str, map_labels: list[str] | None,
                      mask: str, auto_image: str | None = None) -> SessionStats:
    """Statistics of every map of a session in every ROI.

    Parameters
    ----------
    session_dir : Path
        Session in archive layout (``RESOURCES/<label>/``...).
    session_label : str
        Written in the ``session`` column.
    map_labels : list of str or None
        Map resources to use (None: every ``*MAP`` resource).
    mask : str
        Label of the session resource holding the mask file(s), or ``auto``.
    auto_image : str, optional
        For ``auto``: ``RESOURCE/path.nii.gz`` of the image to threshold (default: the
        first map).

    Raises
    ------
    RoiError
        No map, no mask, an unreadable file, or a mask on another frame of reference
        (:class:`~xnatpic.roi.errors.FrameOfReferenceError`).
    """
    session_dir = Path(session_dir)
    resources = find_map_resources(session_dir, map_labels)
    session_uids = session_frames_of_reference(session_dir)
    maps = [m for r in resources for m in load_maps(r, session_uids)]
    if not maps:
        raise RoiError(f"{session_dir}: map resources {[r.name for r in resources]} hold no map")
    if mask.strip().lower() == "auto":
        sources = [_auto(maps, session_dir, auto_image)]
    else:
        sources = read_mask_folder(session_dir / "RESOURCES" / mask)
    names = _unique_names(sources)
    result = SessionStats(maps=[f"{m.resource}/{m.name}" for m in maps])
    for src, pairs in zip(sources, names, strict=True):
        result.masks.append({"source": src.source, "rois": [o for _, o in pairs],
                             "frame-of-reference-uid": src.frame_of_reference_uid})
    for vol in maps:
        where = f"map {vol.path}"
        for src, pairs in zip(sources, names, strict=True):
            check_frame_of_reference(src, vol.frames_of_reference, where)
            on_grid = src.on_grid(vol.grid)
            for original, name in pairs:
                stats = roi_stats(vol.data, on_grid[original])
                if stats.flag:
                    _log.warning("%s, ROI %r: %s (%d voxel(s) in the ROI, %d failed)",
                                 where, name, stats.flag, stats.n + stats.n_excluded,
                                 stats.n_excluded)
                row = {"session": session_label, "map": vol.name, "roi": name,
                       **{k: getattr(stats, k) for k in ("mean", "sd", "median", "q1", "q3",
                                                         "n", "n_excluded")},
                       "units": vol.units, "resource": vol.resource, "flag": stats.flag,
                       "mask_source": Path(src.source).name if src.source else "",
                       "iqr": stats.iqr}
                result.rows.append(row)
    return result


def format_value(value: Any) -> str:
    """CSV text of a value: floats with 7 significant digits, NaN as empty."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.7g}"
    return str(value)

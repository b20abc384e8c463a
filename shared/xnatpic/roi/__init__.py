"""ROI statistics of parametric maps: masks from DICOM SEG, RTSTRUCT, NIfTI label maps or
an automatic foreground, mapped onto each map's grid through world coordinates.

Layers: :mod:`grid` (grids, resampling) → :mod:`masks`, :mod:`labelmap`, :mod:`seg`,
:mod:`rtstruct`, :mod:`auto` (mask kinds) → :mod:`stats` → :mod:`maps`, :mod:`sources`,
:mod:`analysis` (a session) → :mod:`summary`, :mod:`report` (a project).
"""

from __future__ import annotations

from xnatpic.roi.analysis import CSV_COLUMNS, MaskChoice, SessionStats, session_roi_stats
from xnatpic.roi.auto import foreground_mask, otsu_threshold
from xnatpic.roi.errors import FrameOfReferenceError, MaskSourceError, RoiError
from xnatpic.roi.grid import Grid, resample_masks
from xnatpic.roi.labelmap import read_label_map
from xnatpic.roi.masks import GriddedMasks, check_frame_of_reference
from xnatpic.roi.rtstruct import ContourMasks, read_rtstruct
from xnatpic.roi.seg import read_seg
from xnatpic.roi.sources import read_mask_file, read_mask_folder
from xnatpic.roi.stats import RoiStats, roi_stats

__all__ = [
    "CSV_COLUMNS",
    "ContourMasks",
    "FrameOfReferenceError",
    "Grid",
    "GriddedMasks",
    "MaskChoice",
    "MaskSourceError",
    "RoiError",
    "RoiStats",
    "SessionStats",
    "check_frame_of_reference",
    "foreground_mask",
    "otsu_threshold",
    "read_label_map",
    "read_mask_file",
    "read_mask_folder",
    "read_rtstruct",
    "read_seg",
    "resample_masks",
    "roi_stats",
    "session_roi_stats",
]

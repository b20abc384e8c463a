"""DICOM Segmentation Storage (SEG) objects as masks.

Reads binary and fractional SEG (PS3.3 A.51, C.8.20): the Segment Sequence gives each
segment's number and label; every frame names its segment
(``SegmentIdentificationSequence > ReferencedSegmentNumber``) and its position
(``PlanePositionSequence > ImagePositionPatient``); orientation and pixel spacing come
from the shared (or per-frame) functional groups. Frames are stacked along the slice
normal, sorted by position; the resulting grid is converted from DICOM LPS to RAS.
Fractional frames are thresholded at half of ``MaximumFractionalValue``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from xnatpic.nifti.affine import LPS_TO_RAS
from xnatpic.roi.errors import MaskSourceError
from xnatpic.roi.grid import Grid
from xnatpic.roi.masks import GriddedMasks

__all__ = ["SEG_SOP_CLASS", "read_seg", "seg_from_dataset"]

#: Segmentation Storage SOP Class UID.
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def _group(ds: Any, index: int, name: str, where: str) -> Any:
    """A functional group macro item of frame ``index``: per-frame first, else shared."""
    for seq_name in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        seq = getattr(ds, seq_name, None)
        if not seq:
            continue
        item = seq[index] if seq_name.startswith("PerFrame") else seq[0]
        inner = getattr(item, name, None)
        if inner:
            return inner[0]
    raise MaskSourceError(f"{where}: frame {index + 1} has no {name} (neither per-frame nor "
                          "shared functional group)")


def seg_from_dataset(ds: Any, where: str) -> GriddedMasks:
    """Build masks from a SEG dataset already read.

    Parameters
    ----------
    ds : pydicom.Dataset
    where : str
        File name for messages.

    Returns
    -------
    GriddedMasks
        One ROI per segment, named by its SegmentLabel (``segment_<n>`` when empty).

    Raises
    ------
    MaskSourceError
        When the dataset is not a SEG, or a frame lacks its segment or position.
    """
    if str(getattr(ds, "SOPClassUID", "")) != SEG_SOP_CLASS:
        raise MaskSourceError(f"{where}: not a DICOM SEG (SOPClassUID "
                              f"{getattr(ds, 'SOPClassUID', 'absent')})")
    seg_type = str(getattr(ds, "SegmentationType", "BINARY")).upper()
    frames = np.asarray(ds.pixel_array)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.shape[0] != n_frames:
        raise MaskSourceError(f"{where}: NumberOfFrames {n_frames} but {frames.shape[0]} "
                              "frames of pixel data")
    if seg_type == "FRACTIONAL":
        maximum = float(getattr(ds, "MaximumFractionalValue", 255) or 255)
        frames = frames >= maximum / 2
    else:
        frames = frames > 0
    labels = {int(s.SegmentNumber): str(getattr(s, "SegmentLabel", "") or
                                         f"segment_{int(s.SegmentNumber)}")
              for s in getattr(ds, "SegmentSequence", [])}
    if not labels:
        raise MaskSourceError(f"{where}: SEG has no SegmentSequence")

    orient = np.asarray(_group(ds, 0, "PlaneOrientationSequence", where)
                        .ImageOrientationPatient, dtype=np.float64)
    measures = _group(ds, 0, "PixelMeasuresSequence", where)
    row_spacing, col_spacing = (float(v) for v in measures.PixelSpacing)
    row_dir, col_dir = orient[:3], orient[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.empty((n_frames, 3))
    segments = np.empty(n_frames, dtype=np.int64)
    for i in range(n_frames):
        positions[i] = np.asarray(_group(ds, i, "PlanePositionSequence", where)
                                  .ImagePositionPatient, dtype=np.float64)
        segments[i] = int(_group(ds, i, "SegmentIdentificationSequence", where)
                          .ReferencedSegmentNumber)
    unknown = sorted(set(segments.tolist()) - set(labels))
    if unknown:
        raise MaskSourceError(f"{where}: frames refer to segment(s) {unknown} absent from "
                              "the SegmentSequence")
    depth = positions @ normal
    planes = np.unique(np.round(depth, 4))
    spacing = float(getattr(measures, "SpacingBetweenSlices", 0) or 0)
    if len(planes) > 1:
        steps = np.diff(planes)
        spacing = spacing or float(steps.min())
        if np.any(np.abs(steps / spacing - np.round(steps / spacing)) > 0.05):
            raise MaskSourceError(f"{where}: frame positions are not on a regular slice "
                                  f"spacing ({spacing:g} mm; plane steps {steps.tolist()})")
    spacing = spacing or float(getattr(measures, "SliceThickness", 1.0) or 1.0)
    first = int(np.argmin(depth))
    origin = positions[first]
    k_index = np.round((depth - depth[first]) / spacing).astype(int)
    n_slices = int(k_index.max()) + 1
    rows, cols = frames.shape[1:]
    masks = {name: np.zeros((rows, cols, n_slices), dtype=bool) for name in labels.values()}
    for i in range(n_frames):
        masks[labels[int(segments[i])]][:, :, k_index[i]] |= frames[i]
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = col_dir * row_spacing   # index 0 = row number: down a column
    affine_lps[:3, 1] = row_dir * col_spacing   # index 1 = column number: along a row
    affine_lps[:3, 2] = normal * spacing
    affine_lps[:3, 3] = origin
    uid = str(getattr(ds, "FrameOfReferenceUID", "") or "") or None
    return GriddedMasks(masks, Grid((rows, cols, n_slices), LPS_TO_RAS @ affine_lps), where,
                        uid, {name: num for num, name in labels.items()})


def read_seg(path: Path) -> GriddedMasks:
    """Read a DICOM SEG file as masks (see :func:`seg_from_dataset`).

    Raises
    ------
    MaskSourceError
        When the file is not DICOM or not a valid SEG.
    """
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError) as exc:
        raise MaskSourceError(f"{path}: not a readable DICOM file: {exc}") from exc
    return seg_from_dataset(ds, str(path))

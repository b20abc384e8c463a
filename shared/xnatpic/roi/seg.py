"""DICOM Segmentation Storage (SEG) objects as masks, read with highdicom.

BINARY, FRACTIONAL and LABELMAP segmentations (PS3.3 C.8.20; LABELMAP since DICOM
2024c) are read by :meth:`highdicom.seg.Segmentation.get_volume` (one channel per
segment, frames placed by their PlanePositionSequence on a regular grid); each segment
becomes one ROI named by its SegmentLabel (``segment_<n>`` when empty). Fractional values
are rescaled to 0-1 by highdicom and thresholded at 0.5. The volume's LPS affine is
converted to RAS. A LABELMAP's background (segment 0) is not a ROI.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.errors import InvalidDicomError

from xnatpic.nifti.affine import LPS_TO_RAS
from xnatpic.roi.errors import MaskSourceError
from xnatpic.roi.grid import Grid
from xnatpic.roi.masks import GriddedMasks

__all__ = ["SEG_SOP_CLASS", "read_seg", "seg_from_dataset"]

#: Segmentation Storage SOP Class UID (LABELMAP segmentations use their own class).
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
#: Label Map Segmentation Storage SOP Class UID (DICOM 2024c).
LABELMAP_SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
SEG_SOP_CLASSES = (SEG_SOP_CLASS, LABELMAP_SEG_SOP_CLASS)


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
        One ROI per segment, named by its SegmentLabel.

    Raises
    ------
    MaskSourceError
        When the dataset is not a SEG, or highdicom cannot place its frames on a grid.
    """
    import highdicom as hd  # imported here: only SEG files need it

    if str(getattr(ds, "SOPClassUID", "")) not in SEG_SOP_CLASSES:
        raise MaskSourceError(f"{where}: not a DICOM SEG (SOPClassUID "
                              f"{getattr(ds, 'SOPClassUID', 'absent')})")
    if not getattr(ds, "SegmentSequence", None):
        raise MaskSourceError(f"{where}: SEG has no SegmentSequence")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # highdicom's notes on old files
            seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
            volume = seg.get_volume(combine_segments=False, allow_missing_positions=True)
    except KeyError as exc:
        tag = exc.args[0] if exc.args else ""
        name = keyword_for_tag(tag) if isinstance(tag, int) else str(tag)
        raise MaskSourceError(f"{where}: highdicom cannot read this SEG: a frame or the "
                              f"dataset lacks {name or tag}") from exc
    except (ValueError, AttributeError, TypeError, RuntimeError) as exc:
        raise MaskSourceError(f"{where}: highdicom cannot read this SEG as a volume "
                              f"(frames not on a regular grid, or missing positions): "
                              f"{exc}") from exc
    (descriptor,) = volume.channel_descriptors
    numbers = [int(n) for n in volume.get_channel_values(descriptor)]
    labels = {int(s.SegmentNumber): str(getattr(s, "SegmentLabel", "") or
                                         f"segment_{int(s.SegmentNumber)}")
              for s in ds.SegmentSequence}
    array = np.asarray(volume.array)
    fractional = str(getattr(ds, "SegmentationType", "")).upper() == "FRACTIONAL"
    masks: dict[str, np.ndarray] = {}
    for index, number in enumerate(numbers):
        if number == 0:
            continue  # a LABELMAP's background
        channel = array[..., index]
        masks[labels.get(number, f"segment_{number}")] = (
            channel >= 0.5 if fractional else channel > 0)
    if not masks:
        raise MaskSourceError(f"{where}: SEG holds no segment (only background)")
    uid = str(getattr(ds, "FrameOfReferenceUID", "") or "") or None
    return GriddedMasks(masks, Grid(array.shape[:3], LPS_TO_RAS @ np.asarray(volume.affine)),
                        where, uid, {name: num for num, name in labels.items()})


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

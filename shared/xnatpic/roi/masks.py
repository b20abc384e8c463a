"""Masks: a set of named boolean ROIs and the frame of reference they were drawn in.

Two kinds share one interface, :meth:`on_grid` (the ROIs as boolean arrays on a map's
grid):

* :class:`GriddedMasks` hold voxel masks on their own grid (NIfTI label maps, DICOM SEG,
  automatic masks) and are resampled by nearest neighbour through world coordinates;
* :class:`xnatpic.roi.rtstruct.ContourMasks` hold planar contours and are rasterised
  on the target grid directly.

:func:`check_frame_of_reference` refuses a mask from another frame of reference.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from xnatpic.roi.errors import FrameOfReferenceError
from xnatpic.roi.grid import Grid, resample_masks

__all__ = ["GriddedMasks", "MaskSource", "check_frame_of_reference"]

_log = logging.getLogger(__name__)


class MaskSource(Protocol):
    """Anything that yields named ROIs on a given grid."""

    source: str
    frame_of_reference_uid: str | None

    @property
    def names(self) -> list[str]:
        """ROI names, in order."""

    def on_grid(self, grid: Grid) -> dict[str, np.ndarray]:
        """The ROIs as boolean arrays of ``grid.shape``."""


@dataclass
class GriddedMasks:
    """Named boolean masks on one voxel grid.

    Attributes
    ----------
    masks : dict of str to numpy.ndarray of bool
        One mask per ROI, each of ``grid.shape``.
    grid : Grid
    source : str
        Where the masks come from (a file path, ``auto``), for messages and provenance.
    frame_of_reference_uid : str or None
        DICOM FrameOfReferenceUID, when known.
    """

    masks: dict[str, np.ndarray]
    grid: Grid
    source: str
    frame_of_reference_uid: str | None = None
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """ROI names, in order."""
        return list(self.masks)

    def on_grid(self, grid: Grid) -> dict[str, np.ndarray]:
        """The masks resampled onto ``grid`` (nearest neighbour in world coordinates)."""
        return resample_masks(self.masks, self.grid, grid)


def check_frame_of_reference(mask: MaskSource, map_uids: set[str], where: str) -> None:
    """Refuse a mask drawn in another frame of reference than the map's source.

    Parameters
    ----------
    mask : MaskSource
    map_uids : set of str
        FrameOfReferenceUIDs the map may be in (its source series, or every series of the
        session when the map does not say). Empty: unknown.
    where : str
        The map, for the message.

    Raises
    ------
    FrameOfReferenceError
        When both are known and the mask's UID is not among the map's.
    """
    uid = mask.frame_of_reference_uid
    if not uid or not map_uids:
        if uid and not map_uids:
            _log.warning("%s: the map's FrameOfReferenceUID is unknown; mask %s "
                         "(FrameOfReferenceUID %s) applied through world coordinates only",
                         where, mask.source, uid)
        return
    if uid not in map_uids:
        raise FrameOfReferenceError(
            f"{mask.source}: FrameOfReferenceUID {uid} differs from that of {where} "
            f"({', '.join(sorted(map_uids))}): the mask was drawn on another acquisition "
            "frame (another session or repositioning), so its coordinates mean nothing on "
            "this map; draw or register the mask on this session's images"
        )

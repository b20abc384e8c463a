"""Arrange the 2D images of a series into NIfTI volumes: one stack per slice package.

Order of the axes of a :class:`VolumeLayout` (documented in docs and sidecars):

* ``x`` = column index (along the row direction), ``y`` = row index;
* ``z`` = slice position. Slices keep the order in which the 2dseq first stores them when
  that order is monotonic along the slice normal (increasing or decreasing); otherwise
  they are sorted by increasing position along the normal. The affine's slice axis is
  measured from those positions, so its sign always matches the data;
* ``t`` = every image at one slice position, in 2dseq order (the first frame group
  varies fastest, e.g. echo then repetition). Volume ``t`` gathers the ``t``-th image of
  every slice, and all of them must agree on every frame-group index that is not tied to
  the slice, or the layout is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from xnatpic.errors import ConversionError
from xnatpic.nifti.affine import affine_from_slices, lps_to_ras
from xnatpic.paravision.series import Image, ImageSeries

__all__ = ["VolumeLayout", "shared_scaling", "volume_layouts"]

#: Positions closer than this (mm) along the normal are the same slice.
SLICE_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class VolumeLayout:
    """One NIfTI image: a slice package of a series as ``grid[z][t]`` of images.

    Attributes
    ----------
    package : int
        0-based slice package index.
    grid : tuple of tuple of Image
        ``grid[z][t]``: the image at slice ``z`` of volume ``t``.
    affine_lps : numpy.ndarray, shape (4, 4)
        Voxel ``(i, j, k)`` → LPS mm.
    volume_axes : tuple of str
        Frame-group axes that vary from volume to volume, in frame-group order.
    """

    package: int
    grid: tuple[tuple[Image, ...], ...]
    affine_lps: np.ndarray
    volume_axes: tuple[str, ...]

    @property
    def slices(self) -> int:
        """Number of slices (z)."""
        return len(self.grid)

    @property
    def volumes(self) -> int:
        """Number of volumes (t)."""
        return len(self.grid[0])

    @cached_property
    def affine_ras(self) -> np.ndarray:
        """Voxel ``(i, j, k)`` → RAS mm (the NIfTI sform/qform)."""
        return lps_to_ras(self.affine_lps)

    def volume_images(self, t: int) -> list[Image]:
        """The images of volume ``t``, slice by slice."""
        return [column[t] for column in self.grid]

    def first_images(self) -> list[Image]:
        """One image per volume (slice 0): carries the per-volume parameters."""
        return list(self.grid[0])


def shared_scaling(layout: VolumeLayout) -> tuple[float, float] | None:
    """The one (slope, offset) of every image of ``layout``, or None when they differ.

    None too when the pair is not finite or the slope is not a finite, non-zero float32
    (NIfTI-1's ``scl_slope`` type): the values are then written as float32 real values.
    """
    pairs = {(im.slope, im.intercept) for column in layout.grid for im in column}
    if len(pairs) != 1:
        return None
    slope, intercept = pairs.pop()
    with np.errstate(over="ignore", under="ignore"):
        slope32, intercept32 = np.float32(slope), np.float32(intercept)
    if not (np.isfinite(slope32) and np.isfinite(intercept32)) or slope32 == 0:
        return None
    return slope, intercept


def _slots(images: list[Image], normal: np.ndarray, where: str) -> list[list[Image]]:
    """Group images by slice position, in order of first appearance."""
    heights: list[float] = []
    slots: list[list[Image]] = []
    for image in images:
        h = float(np.dot(image.position, normal))
        for k, other in enumerate(heights):
            if abs(h - other) <= SLICE_TOLERANCE_MM:
                first = slots[k][0].position
                if np.linalg.norm(image.position - first) > 10 * SLICE_TOLERANCE_MM:
                    raise ConversionError(
                        f"{where}: images {slots[k][0].index} and {image.index} lie in the "
                        "same plane at different in-plane positions; not one volume"
                    )
                slots[k].append(image)
                break
        else:
            heights.append(h)
            slots.append([image])
    if len({len(s) for s in slots}) != 1:
        counts = sorted({len(s) for s in slots})
        raise ConversionError(
            f"{where}: slice positions hold different numbers of images ({counts}); "
            "the frames do not form a regular 4D volume"
        )
    diffs = np.diff(heights)
    if len(heights) > 2 and not (np.all(diffs > 0) or np.all(diffs < 0)):
        order = np.argsort(heights, kind="stable")
        slots = [slots[k] for k in order]
    return slots


def _volume_axes(slots: list[list[Image]], where: str) -> tuple[str, ...]:
    """Frame-group axes that vary within a slice position, after checking consistency."""
    names = list(slots[0][0].axes)
    varying = [
        name for name in names
        if any(len({im.axes.get(name) for im in slot}) > 1 for slot in slots)
    ]
    for t in range(len(slots[0])):
        keys = {tuple(slot[t].axes.get(n) for n in varying) for slot in slots}
        if len(keys) > 1:
            raise ConversionError(
                f"{where}: volume {t} mixes frames {sorted(keys)} of axes {varying} across "
                "slices; the frame order is not slice-major"
            )
    return tuple(varying)


def volume_layouts(series: ImageSeries) -> list[VolumeLayout]:
    """Split a series into one :class:`VolumeLayout` per slice package.

    Raises
    ------
    ConversionError
        When the images of a package do not form a regular (x, y, z, t) grid.
    """
    label = series.reco.label
    layouts: list[VolumeLayout] = []
    for package in range(series.package_count):
        images = series.package_images(package)
        where = f"{label} slice package {package + 1}"
        orientation = images[0].orientation
        slots = _slots(images, orientation[2], where)
        axes = _volume_axes(slots, where)
        affine = affine_from_slices(
            [slot[0].position for slot in slots], orientation, series.pixel_spacing,
            series.slice_thickness, where=where,
        )
        grid = tuple(tuple(slot) for slot in slots)
        layouts.append(VolumeLayout(package, grid, affine, axes))
    return layouts

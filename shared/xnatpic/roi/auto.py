"""Automatic foreground mask of a map run, computed on the anatomical SOURCE image.

The source image is the DICOM series the run was fitted from (``scans.source`` of the run's
``provenance.json``, or a scan named by the user), read as the map steps read it
(:func:`xnatpic.analysis.inputs.read_series`); the mask is the map steps' own anatomy mask,
:func:`xnatpic.analysis.mask.foreground_mask` (Otsu's threshold on the per-voxel maximum
over the measurements, small specks removed). A map is never thresholded: its values
(a noise ADC, a B0 offset) say nothing about where the anatomy is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xnatpic.analysis.inputs import read_series
from xnatpic.analysis.mask import foreground_mask as anatomy_mask
from xnatpic.analysis.mask import otsu_threshold as mask_otsu_threshold
from xnatpic.analysis.selection import scan_folder
from xnatpic.errors import XnatpicError
from xnatpic.roi.errors import MaskSourceError, RoiError
from xnatpic.roi.grid import Grid
from xnatpic.roi.masks import GriddedMasks

__all__ = ["AUTO_ROI", "AutoMask", "foreground_mask", "otsu_threshold", "source_image_mask"]

#: Name of the automatic ROI.
AUTO_ROI = "foreground"


@dataclass(frozen=True)
class AutoMask:
    """An automatic mask and the source image it was computed on."""

    masks: GriddedMasks
    scan: str
    folder: str


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of the finite values, by :func:`xnatpic.analysis.mask.otsu_threshold`;
    an image without two distinct finite values is an error here (no ROI can be drawn).

    Raises
    ------
    RoiError
        When fewer than two distinct finite values exist.

    Examples
    --------
    >>> t = otsu_threshold(np.array([1.0] * 50 + [9.0] * 50))
    >>> 1.0 <= t < 9.0
    True
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        raise RoiError("automatic mask: the image has fewer than two distinct finite "
                       "values, no foreground can be told from background")
    return mask_otsu_threshold(v, bins)  # the one Otsu routine (xnatpic.analysis.mask)


def foreground_mask(image: np.ndarray, affine: np.ndarray, *, source: str,
                    frame_of_reference_uid: str | None = None) -> GriddedMasks:
    """One ROI ``foreground``: the map steps' anatomy mask of an image.

    Parameters
    ----------
    image : numpy.ndarray, shape (ni, nj, nk) or (ni, nj, nk, n)
        The anatomical image (a 4-D series: the maximum over the measurements is used).
    affine : numpy.ndarray, shape (4, 4)
        Voxel to RAS.
    source : str
        What the image is, for messages and provenance.
    frame_of_reference_uid : str, optional

    Raises
    ------
    RoiError
        When the image is constant or all NaN, or no voxel is foreground.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim == 3:
        img = img[..., None]
    try:
        otsu_threshold(np.abs(img).max(axis=3))  # NaN voxels ignored
    except RoiError as exc:
        raise RoiError(f"{source}: {exc}") from exc
    mask = anatomy_mask(img)  # the one mask routine (xnatpic.analysis.mask)
    if not mask.any():
        raise RoiError(f"{source}: automatic mask: no foreground voxel found")
    return GriddedMasks({AUTO_ROI: mask}, Grid(img.shape[:3], affine),
                        f"auto: Otsu foreground of {source}", frame_of_reference_uid)


def source_image_mask(session_dir: Path, scan: str, *, why: str) -> AutoMask:
    """The automatic mask of scan ``scan`` of a session (its DICOM series).

    Parameters
    ----------
    session_dir : Path
    scan : str
        Scan id (``SCANS/<scan>``).
    why : str
        Which map needs it, for messages.

    Raises
    ------
    MaskSourceError
        When the scan is absent or its series cannot be read.
    """
    if not scan:
        raise MaskSourceError(f"{why}: its provenance.json names no source scan (\"scans\"), "
                              "so no automatic mask can be computed on the anatomical "
                              "image; give the scan with auto_scan=<id> or draw a mask")
    try:
        folder = scan_folder(Path(session_dir), scan)
        series = read_series(folder)
    except XnatpicError as exc:
        raise MaskSourceError(f"{why}: source scan {scan} cannot be read for the automatic "
                              f"mask: {exc}") from exc
    rel = folder.relative_to(session_dir).as_posix() if folder.is_relative_to(session_dir) \
        else folder.name
    label = f"scan {scan} ({rel}{', ' + series.description if series.description else ''})"
    masks = foreground_mask(series.data, series.affine, source=label,
                            frame_of_reference_uid=series.frame_of_reference_uid or None)
    return AutoMask(masks, scan, rel)

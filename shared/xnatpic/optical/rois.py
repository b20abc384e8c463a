"""Regions of interest on the signal image: Living Image's own, an ROI collection's, or
automatic.

Living Image ROIs are lines of the ``*** ROIs:`` section of AnalyzedClickInfo.txt::

    ROI 1:zColorIndex=1;ROI Type=Measurement;Shape=Ellipse;Xc=..;Yc=..;Width=..;
          Height=..;Angle=0.0000;Label=ROI 1;cm per pixel=0.0122;...

Centre and size are in full-resolution CCD pixels, ``cm per pixel`` converting them to
cm (the ROI tool cited in docs/optical.md writes them so: positions on the 2048/1920
pixel CCD canvas, cm per pixel = field of view / canvas). We place them in cm from the
top-left corner, so they fall on the same spot of the binned signal and of the finer
photograph. Shapes: ``Ellipse``/``Circle`` and ``Square``/``Rectangle``, rotated by
``Angle`` degrees; others (free-hand, grids) are refused with the ROI named.

Automatic ROIs (used when the folder has no Living Image ROI): connected regions of the
signal above ``max(5·σ, 5 % of the peak)`` (σ: robust noise SD of the image, 1.4826 × the
median absolute deviation), regions under 4 pixels dropped, each grown by a margin of
0.5 cm to take in the tails of the source (a Gaussian source of width s keeps 1 −
exp(−R²/2s²) of its flux inside radius R).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from xnatpic.arrays import median
from xnatpic.optical.acquisition import IvisAcquisition
from xnatpic.optical.errors import OpticalError
from xnatpic.optical.geometry import image_grid
from xnatpic.roi.masks import MaskSource

__all__ = ["AUTO_FRACTION", "AUTO_MARGIN_CM", "AUTO_SIGMAS", "Roi", "auto_rois",
           "collection_rois", "living_image_rois", "read_collection"]

AUTO_FRACTION = 0.05
AUTO_SIGMAS = 5.0
AUTO_MARGIN_CM = 0.5
AUTO_MIN_PIXELS = 4
_ELLIPSE = ("ellipse", "circle", "oval")
_RECTANGLE = ("square", "rectangle", "rect", "box")


@dataclass(frozen=True)
class Roi:
    """A region on the signal image.

    Attributes
    ----------
    label : str
        ROI name.
    mask : numpy.ndarray of bool
        Shape of the signal image.
    source : str
        ``living_image`` or ``auto``.
    """

    label: str
    mask: np.ndarray
    source: str


def _fields(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            out[key.strip()] = value.strip()
    return out


def _mask(fields: dict[str, str], shape: tuple[int, int], fov_cm: float, where: str
          ) -> np.ndarray:
    try:
        scale = float(fields["cm per pixel"])
        xc, yc = float(fields["Xc"]) * scale, float(fields["Yc"]) * scale
        half_w, half_h = float(fields["Width"]) * scale / 2, float(fields["Height"]) * scale / 2
        angle = math.radians(float(fields.get("Angle", "0") or 0))
    except (KeyError, ValueError) as exc:
        raise OpticalError(f"{where}: needs numeric Xc, Yc, Width, Height and 'cm per pixel' "
                           f"({exc})") from exc
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    x = (x + 0.5) * fov_cm / cols - xc
    y = (y + 0.5) * fov_cm / rows - yc
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    shape_name = fields.get("Shape", "").casefold()
    if shape_name in _ELLIPSE:
        return (u / half_w) ** 2 + (v / half_h) ** 2 <= 1.0
    if shape_name in _RECTANGLE:
        return (np.abs(u) <= half_w) & (np.abs(v) <= half_h)
    raise OpticalError(f"{where}: shape {fields.get('Shape')!r} not supported (ellipse, "
                       "circle, square or rectangle); redraw it or use automatic ROIs")


def living_image_rois(acq: IvisAcquisition) -> list[Roi]:
    """The measurement ROIs of AnalyzedClickInfo.txt on the signal image ([] if none).

    Raises
    ------
    OpticalError
        When an ROI line is malformed or of an unsupported shape, or the signal image has
        no field of view.
    """
    if acq.analyzed is None:
        return []
    signal = acq.signal
    rois = []
    for section in acq.analyzed.sections_named("ROIs"):
        for key, value in section.entries.items():
            if not key.casefold().startswith("roi"):
                continue
            fields = _fields(value)
            if fields.get("ROI Type", "Measurement").casefold() not in ("measurement", ""):
                continue  # background and subject ROIs are not measured
            where = f"{acq.analyzed.path}: {key}"
            if not signal.info.fov_cm:
                raise OpticalError(f"{where}: the signal image has no Field of View; cannot "
                                   "place the ROI")
            mask = _mask(fields, signal.shape, signal.info.fov_cm, where)
            rois.append(Roi(fields.get("Label") or key, mask, "living_image"))
    return rois


def read_collection(folder: Path) -> list[MaskSource]:
    """The masks of an ROI collection folder (DICOM SEG, RTSTRUCT, NIfTI label maps), read
    by :func:`xnatpic.roi.sources.read_mask_folder`.

    Raises
    ------
    xnatpic.roi.errors.MaskSourceError
        When the folder is missing, holds no mask or an unreadable one.
    """
    from xnatpic.roi.sources import read_mask_folder

    return read_mask_folder(Path(folder))


def collection_rois(acq: IvisAcquisition, masks: list[MaskSource], frame_of_reference: str
                    ) -> list[Roi]:
    """ROIs of an ROI collection on the signal image of ``acq``.

    Masks are placed through patient coordinates (:mod:`xnatpic.optical.geometry`), so a
    mask drawn on the photograph fits the binned signal. A mask whose FrameOfReferenceUID
    is another click's is not this click's (in a sequence, each click has its own); a mask
    without one applies to every click.
    """
    grid = image_grid(acq.signal)
    rois = []
    for mask in masks:
        if mask.frame_of_reference_uid not in (None, frame_of_reference):
            continue
        for name, array in mask.on_grid(grid).items():
            rois.append(Roi(name, np.asarray(array)[:, :, 0].astype(bool), "collection"))
    return rois


def noise_sd(image: np.ndarray) -> float:
    """Robust noise SD: 1.4826 × median absolute deviation from the median."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0
    return 1.4826 * median(np.abs(finite - median(finite)))


def auto_rois(signal: np.ndarray, pixel_cm: float, *, fraction: float = AUTO_FRACTION,
              sigmas: float = AUTO_SIGMAS, margin_cm: float = AUTO_MARGIN_CM) -> list[Roi]:
    """Automatic ROIs on a calibrated signal image (rule in the module docstring), the
    brightest first, labelled ``auto 1``, ``auto 2``...

    Parameters
    ----------
    signal : numpy.ndarray, shape (rows, cols)
        Dark-subtracted (calibrated) signal.
    pixel_cm : float
        Pixel side in cm.
    """
    peak = float(np.nanmax(signal)) if signal.size else 0.0
    if not peak > 0:
        return []
    threshold = max(sigmas * noise_sd(signal), fraction * peak)
    labels, count = ndimage.label(signal > threshold)
    grow = max(0, round(margin_cm / pixel_cm))
    disk = None
    if grow:
        yy, xx = np.mgrid[-grow:grow + 1, -grow:grow + 1]
        disk = xx ** 2 + yy ** 2 <= grow ** 2
    found = []
    for index in range(1, count + 1):
        region = labels == index
        if region.sum() < AUTO_MIN_PIXELS:
            continue
        if disk is not None:
            region = ndimage.binary_dilation(region, structure=disk)
        found.append((float(signal[region].sum()), region))
    found.sort(key=lambda item: -item[0])
    return [Roi(f"auto {i}", region, "auto") for i, (_s, region) in enumerate(found, start=1)]

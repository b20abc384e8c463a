"""Total flux and average radiance per ROI (Living Image's definitions).

* average radiance (p/s/cm²/sr): the mean of the calibrated signal over the ROI's pixels;
* total flux (p/s): the radiance integrated over the ROI's area, times 4π sr
  (``flux = 4π · Σ L_i · a``, a the pixel area in cm²), as the Living Image manual
  defines it. For fluorescence (radiant efficiency) the same sum is the total radiant
  efficiency; for an uncalibrated image (counts) the sum of counts is reported.

ROIs: Living Image's (AnalyzedClickInfo.txt) when the user drew any, else automatic
(:func:`xnatpic.optical.rois.auto_rois`); or those of an ROI collection (SEG, RTSTRUCT,
NIfTI label map) placed through patient coordinates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from xnatpic.optical.acquisition import IvisAcquisition
from xnatpic.optical.rois import Roi, auto_rois, collection_rois, living_image_rois
from xnatpic.roi.masks import MaskSource

__all__ = ["RoiMeasure", "measure", "quantify"]


@dataclass(frozen=True)
class RoiMeasure:
    """Measurements of one ROI on one click."""

    click: str
    roi: str
    roi_source: str
    n_pixels: int
    area_cm2: float
    total: float
    total_name: str
    total_unit: str
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    max: float
    mean_name: str
    mean_unit: str

    def as_dict(self) -> dict:
        """A JSON-ready dictionary."""
        return asdict(self)


#: (name of the total, its unit, name of the mean) per calibrated quantity.
_NAMES = {
    "radiance": ("total_flux", "p/s", "average_radiance"),
    "radiant efficiency": ("total_radiant_efficiency", "(p/s)/(µW/cm²)",
                           "average_radiant_efficiency"),
    "counts": ("total_counts", "counts", "average_counts"),
}


def measure(acq: IvisAcquisition, signal: np.ndarray, roi: Roi) -> RoiMeasure:
    """Measure ``roi`` on the calibrated ``signal`` of ``acq``."""
    image = acq.signal
    rows, cols = image.shape
    fov = image.info.fov_cm
    pixel_area = (fov / rows) * (fov / cols) if fov else float("nan")
    values = signal[roi.mask]
    quantity = acq.calibration.quantity
    total_name, total_unit, mean_name = _NAMES[quantity]
    if quantity == "counts":
        total = float(values.sum())
    else:
        total = float(values.sum() * pixel_area * 4.0 * math.pi)
    if values.size:
        q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
        mean, sd, peak = float(values.mean()), float(values.std(ddof=1)) \
            if values.size > 1 else 0.0, float(values.max())
    else:
        q1 = median = q3 = mean = sd = peak = float("nan")
    return RoiMeasure(acq.click_number, roi.label, roi.source, int(values.size),
                      float(values.size * pixel_area), total, total_name, total_unit,
                      mean, sd, median, q1, q3, peak, mean_name, acq.calibration.unit)


def quantify(acq: IvisAcquisition, *, rois: str = "living_image_or_auto",
             collection: list[MaskSource] | None = None, frame_of_reference: str = ""
             ) -> tuple[list[RoiMeasure], list[Roi], np.ndarray]:
    """Measure every ROI of a click.

    Parameters
    ----------
    acq : IvisAcquisition
        The click.
    rois : {"living_image_or_auto", "living_image", "auto", "collection"}
        Which ROIs; ``collection``: the masks of ``collection`` that belong to this click
        (FrameOfReferenceUID ``frame_of_reference``, or none).
    collection : list of MaskSource, optional
        From :func:`xnatpic.optical.rois.read_collection`.
    frame_of_reference : str
        The click's FrameOfReferenceUID (:func:`xnatpic.optical.dicom.frame_of_reference_uid`).

    Returns
    -------
    measures : list of RoiMeasure
    rois : list of Roi
    signal : numpy.ndarray
        The calibrated signal image.
    """
    signal = acq.calibrated()
    chosen: list[Roi] = []
    if rois == "collection":
        chosen = collection_rois(acq, collection or [], frame_of_reference)
    if rois in ("living_image_or_auto", "living_image"):
        chosen = living_image_rois(acq)
    if not chosen and rois in ("living_image_or_auto", "auto"):
        fov = acq.signal.info.fov_cm or float(acq.signal.shape[1])
        chosen = auto_rois(signal, fov / acq.signal.shape[1])
    return [measure(acq, signal, r) for r in chosen], chosen, signal

"""How 2dseq values become DICOM pixels: exact where possible, rescaled int16 otherwise.

MR Image Storage and Enhanced MR Image Storage hold 16-bit integer pixels, so the
encoding is chosen per series from the 2dseq word type (and, for 32-bit data, from the
values themselves):

=============================  =====================================================
2dseq                          DICOM pixels
=============================  =====================================================
int16                          int16, PixelRepresentation 1, exact; RescaleSlope and
                               RescaleIntercept = VisuCoreDataSlope/Offs per frame
uint8                          uint16, PixelRepresentation 0, exact
int32 fitting int16            int16, exact
int32 fitting 0..65535         uint16, exact
other int32                    int16 re-quantised per image (see below)
float32 holding integers       int16, exact, when every value is an integer in range
other float32                  int16 re-quantised per image
=============================  =====================================================

Re-quantised images store ``q = rint(real / a)`` with ``a = max|real| / 32766`` (written
as RescaleSlope, RescaleIntercept 0), so zero stays exactly zero, signs are kept and the
absolute error is at most ``a / 2``: a relative error of at most 1.6e-5 of the image's
largest magnitude. Float Pixel Data is not used: neither IOD allows it, and viewers and
XNAT's thumbnails expect integer pixels. The original VisuCoreDataSlope and
VisuCoreDataOffs are kept in the private block (docs/private-tags.md) either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from pydicom.valuerep import format_number_as_ds

from xnatpic.paravision.series import Image, ImageSeries

__all__ = ["EncodedImage", "PixelEncoding", "choose_encoding", "stored_image"]

_log = logging.getLogger(__name__)

_INT16 = np.iinfo(np.int16)
_UINT16 = np.iinfo(np.uint16)
#: Largest stored magnitude used when re-quantising (one below int16 max: the slope is
#: rounded to 16 characters, which must not push a value out of range).
_QUANT_MAX = 32766.0


@dataclass(frozen=True)
class EncodedImage:
    """The pixels of one image as written, with the rescale that gives real values."""

    pixels: np.ndarray
    slope: float
    intercept: float


@dataclass(frozen=True)
class PixelEncoding:
    """How every image of a series is encoded.

    Attributes
    ----------
    signed : bool
        int16 pixels (PixelRepresentation 1) or uint16 (0).
    requantise : bool
        True when real values are re-quantised per image, False when the stored 2dseq
        values are written unchanged with ParaVision's slope and offset.
    reason : str
        Why this encoding was chosen (logged, and written to the sidecar).
    """

    signed: bool
    requantise: bool
    reason: str

    @property
    def dtype(self) -> np.dtype:
        """The numpy type of the written pixels (little endian)."""
        return np.dtype("<i2" if self.signed else "<u2")

    @property
    def pixel_representation(self) -> int:
        """DICOM PixelRepresentation."""
        return 1 if self.signed else 0

    def encode(self, series: ImageSeries, image: Image,
               data: np.ndarray | None = None) -> EncodedImage:
        """The pixels of ``image`` and their rescale slope and intercept.

        ``data`` is the whole 2dseq (``series.stack.stored()``), opened once by callers
        that encode many images; without it the image is read on its own.
        """
        stored = series.stored(image) if data is None else stored_image(data, image)
        if not self.requantise:
            return EncodedImage(stored.astype(self.dtype, copy=False), image.slope,
                                image.intercept)
        real = stored.astype(np.float64) * image.slope + image.intercept
        finite = np.isfinite(real)
        if not finite.all():
            _log.warning("%s: image %d has %d non-finite values, written as 0",
                         series.reco.label, image.index, int((~finite).sum()))
            real = np.where(finite, real, 0.0)
        peak = float(np.max(np.abs(real))) if real.size else 0.0
        slope = float(format_number_as_ds(peak / _QUANT_MAX)) if peak > 0 else 1.0
        pixels = np.clip(np.rint(real / slope), _INT16.min, _INT16.max).astype(self.dtype)
        return EncodedImage(pixels, slope, 0.0)


def stored_image(data: np.ndarray, image: Image) -> np.ndarray:
    """The stored values of ``image`` from the whole 2dseq, native byte order."""
    frame = data[image.frame]
    values = np.asarray(frame[image.slice_in_frame] if frame.ndim == 3 else frame)
    return values.astype(values.dtype.newbyteorder("="), copy=False)


def _stored_range(series: ImageSeries, images: list[Image]) -> tuple[float, float, bool]:
    """Min and max stored value of ``images`` and whether all are finite integers."""
    low, high, integral = np.inf, -np.inf, True
    data = series.stack.stored()
    for image in images:
        stored = stored_image(data, image)
        if stored.size == 0:
            continue
        if stored.dtype.kind == "f":
            finite = np.isfinite(stored)
            if not finite.all() or not np.array_equal(stored, np.round(stored)):
                integral = False
            stored = stored[finite]
            if stored.size == 0:
                continue
        low, high = min(low, float(stored.min())), max(high, float(stored.max()))
    return low, high, integral


def choose_encoding(series: ImageSeries, images: list[Image]) -> PixelEncoding:
    """Choose the pixel encoding of a series (see the module docstring)."""
    dtype = series.stack.dtype
    if dtype.kind == "i" and dtype.itemsize == 2:
        return PixelEncoding(True, False, "int16 2dseq written unchanged")
    if dtype.kind == "u" and dtype.itemsize == 1:
        return PixelEncoding(False, False, "uint8 2dseq written as uint16 unchanged")
    low, high, integral = _stored_range(series, images)
    kind = "float32" if dtype.kind == "f" else f"{dtype.kind}{dtype.itemsize * 8}"
    if integral and _INT16.min <= low and high <= _INT16.max:
        return PixelEncoding(True, False, f"{kind} 2dseq whose values fit int16, unchanged")
    if dtype.kind != "f" and low >= 0 and high <= _UINT16.max:
        return PixelEncoding(False, False, f"{kind} 2dseq whose values fit uint16, unchanged")
    return PixelEncoding(
        True, True,
        f"{kind} 2dseq (stored range {low:g}..{high:g}) re-quantised into int16 per image "
        "(relative error ≤ 1.6e-5 of each image's largest magnitude)")

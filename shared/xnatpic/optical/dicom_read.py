"""Read back the DICOM written by :mod:`xnatpic.optical.dicom` for quantification.

A de-identified session holds no raw IVIS folder (the raw data would name the animal),
only the converted series; the bli-quant step then measures those: the signal through its
RescaleSlope/Intercept (the calibrated unit named by RescaleType), the photograph for the
overlay, the user labels from the private block, one click per FrameOfReferenceUID.
Living Image's own ROIs are not in the DICOM: automatic ROIs or an ROI collection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from xnatpic.optical.dicom import PRIVATE_CREATOR, PRIVATE_GROUP
from xnatpic.optical.errors import OpticalError
from xnatpic.optical.parameters import Calibration, ImageInfo, UserLabels

__all__ = ["DicomAcquisition", "DicomImage", "read_ivis_dicom"]

#: UCUM code of RescaleType → (unit, quantity), as the writer names them.
_UNITS = {"{photons}/s/cm2/sr": ("p/s/cm²/sr", "radiance"),
          "{photons}/s/cm2/sr/(uW/cm2)": ("(p/s/cm²/sr)/(µW/cm²)", "radiant efficiency"),
          "{counts}": ("counts", "counts")}
#: Private element offset → user label name.
_LABELS = {0x0D: "Animal Model", 0x0E: "Group", 0x0F: "Time Point", 0x10: "View",
           0x11: "Cell Line", 0x12: "Reporter", 0x13: "Treatment"}


@dataclass
class _TiffLike:
    path: Path


@dataclass
class DicomImage:
    """A converted IVIS series, with what quantification asks of an image."""

    info: ImageInfo
    shape: tuple[int, int]
    pixel_spacing_mm: tuple[float, float]
    tiff: _TiffLike
    pixels: np.ndarray = field(repr=False)

    def read(self) -> np.ndarray:
        """Stored pixel values."""
        return self.pixels


@dataclass
class DicomAcquisition:
    """One click's photograph and signal series, read back from DICOM."""

    click_number: str
    frame_of_reference: str
    labels: UserLabels
    calibration: Calibration
    images: dict[str, DicomImage]
    rescale: tuple[float, float]
    acquired: dt.datetime | None = None
    analyzed: None = None  # Living Image's ROIs are not in the DICOM

    @property
    def signal(self) -> DicomImage:
        """The luminescent or fluorescent series."""
        for kind in ("luminescent", "fluorescent"):
            if kind in self.images:
                return self.images[kind]
        raise OpticalError(f"click {self.click_number}: no signal series among the DICOM")

    @property
    def photograph(self) -> DicomImage | None:
        """The photograph series, if any."""
        return self.images.get("photograph")

    def calibrated(self) -> np.ndarray:
        """The signal in its calibrated unit: stored × slope + intercept."""
        slope, intercept = self.rescale
        return self.signal.read().astype(np.float64) * slope + intercept


def _private(ds: pydicom.Dataset) -> dict[int, str]:
    try:
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    except KeyError:
        return {}
    return {offset: str(block[offset].value) for offset in range(0x01, 0x20)
            if block.get_tag(offset) in ds}


def _files(paths: Iterable[Path]) -> list[tuple[Path, pydicom.Dataset]]:
    found = []
    for path in paths:
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError):
            continue  # not DICOM, or not ours to read
        if _private(ds).get(0x02):
            found.append((path, ds))
    return found


def _image(path: Path, ds: pydicom.Dataset, kind: str) -> DicomImage:
    try:
        spacing = (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]))
        pixels = ds.pixel_array
    except (AttributeError, ValueError, IndexError) as exc:
        raise OpticalError(f"{path}: {kind} series without usable PixelSpacing or pixels "
                           f"({exc})") from exc
    rows, cols = pixels.shape
    info = ImageInfo(kind=kind, file=path.name, fov_cm=spacing[1] * cols / 10.0)
    return DicomImage(info, (rows, cols), spacing, _TiffLike(path), pixels)


def read_ivis_dicom(paths: Iterable[Path]) -> list[DicomAcquisition]:
    """The clicks found among ``paths`` (files written by the IVIS converter; others are
    ignored), in series-number order.

    Raises
    ------
    OpticalError
        When a signal series lacks its rescale or unit.
    """
    by_frame: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for path, ds in _files(paths):
        by_frame.setdefault(str(ds.get("FrameOfReferenceUID", "") or path.parent),
                            []).append((path, ds))
    clicks = []
    for frame, members in by_frame.items():
        members.sort(key=lambda m: int(m[1].get("SeriesNumber", 0) or 0))
        images: dict[str, DicomImage] = {}
        rescale, calibration, labels, click, acquired = (1.0, 0.0), Calibration(), {}, "", None
        for path, ds in members:
            private = _private(ds)
            kind = private[0x02]
            images[kind] = _image(path, ds, kind)
            click = click or private.get(0x01) or f"series {ds.get('SeriesNumber', '?')}"
            labels.update({name: private[o] for o, name in _LABELS.items() if o in private})
            if kind != "photograph":
                if "RescaleSlope" not in ds or "RescaleType" not in ds:
                    raise OpticalError(f"{path}: {kind} series without RescaleSlope/Type")
                rescale = (float(ds.RescaleSlope), float(ds.get("RescaleIntercept", 0) or 0))
                ucum = str(ds.RescaleType)
                unit, quantity = _UNITS.get(ucum, (ucum, "counts"))
                calibration = Calibration(private.get(0x0A, ""), rescale[0], unit, ucum,
                                          quantity)
                date, time = str(ds.get("AcquisitionDate", "")), str(ds.get("AcquisitionTime",
                                                                            ""))
                if len(date) == 8 and len(time) >= 6:
                    acquired = dt.datetime.strptime(date + time[:6], "%Y%m%d%H%M%S")
        animal = str(members[0][1].get("PatientID", ""))
        clicks.append(DicomAcquisition(click, frame, UserLabels(
            "", {"Animal Number": animal, **labels} if animal else labels), calibration,
            images, rescale, acquired))
    return clicks

"""An IVIS Living Image acquisition folder (one "click") and sequences of them.

A click folder holds ``ClickInfo.txt`` and/or ``AnalyzedClickInfo.txt`` (the latter is
written by Living Image once the data were opened and analysed: user labels, graph
controls, ROIs) and the TIFFs they name: ``photograph.TIF`` (the white-light picture,
usually unbinned, so at a higher resolution than the signal), ``luminescent.TIF`` or a
fluorescent image (the CCD signal in counts), ``background.TIF`` (dark charge) and
``readbiasonly.TIF`` (zero-exposure read bias). A sequence folder holds
``SequenceInfo.txt`` and one click folder per acquisition.

Everything is parsed when opened except pixels (:class:`xnatpic.optical.images.LazyTiff`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xnatpic.optical.clickinfo import ClickText, read_click_text
from xnatpic.optical.errors import OpticalError
from xnatpic.optical.images import LazyTiff
from xnatpic.optical.parameters import (
    Calibration,
    CameraInfo,
    ImageInfo,
    UserLabels,
    calibration_of,
    camera_of,
    image_infos,
    user_labels_of,
)

__all__ = [
    "CLICK_FILES",
    "IvisAcquisition",
    "IvisImage",
    "IvisStudy",
    "find_ivis_studies",
    "is_ivis_folder",
    "open_ivis",
]

_log = logging.getLogger(__name__)

#: Text files that make a folder a Living Image click.
CLICK_FILES = ("AnalyzedClickInfo.txt", "ClickInfo.txt")
SEQUENCE_FILE = "SequenceInfo.txt"
SIGNAL_KINDS = ("luminescent", "fluorescent")


def _child(folder: Path, name: str) -> Path | None:
    """``folder/name``, matching the name case-insensitively (Windows copies)."""
    exact = folder / name
    if exact.is_file():
        return exact
    folded = name.casefold()
    try:
        return next((p for p in folder.iterdir() if p.name.casefold() == folded
                     and p.is_file()), None)
    except OSError:
        return None


def is_click_folder(path: Path) -> bool:
    """True when ``path`` holds ClickInfo.txt or AnalyzedClickInfo.txt."""
    path = Path(path)
    return path.is_dir() and any(_child(path, n) is not None for n in CLICK_FILES)


def is_ivis_folder(path: Path) -> bool:
    """True for a click folder or a sequence folder (one holding SequenceInfo.txt)."""
    path = Path(path)
    return is_click_folder(path) or (path.is_dir() and _child(path, SEQUENCE_FILE) is not None)


@dataclass(frozen=True)
class IvisImage:
    """One TIFF with its parameters."""

    info: ImageInfo
    tiff: LazyTiff

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return self.tiff.shape

    @property
    def pixel_spacing_mm(self) -> tuple[float, float] | None:
        """(row spacing, column spacing) in mm: the field of view over the matrix."""
        if not self.info.fov_cm:
            return None
        rows, columns = self.shape
        return (self.info.fov_cm * 10.0 / rows, self.info.fov_cm * 10.0 / columns)

    def read(self) -> np.ndarray:
        """The pixels."""
        return self.tiff.read()


@dataclass
class IvisAcquisition:
    """One Living Image click folder.

    Attributes
    ----------
    path : Path
        The folder.
    click_number : str
        Living Image's acquisition id (``*** ClickNumber``), else the folder name.
    click_info, analyzed : ClickText or None
        ClickInfo.txt and AnalyzedClickInfo.txt.
    images : dict of str to IvisImage
        Images by kind (``photograph``, ``luminescent``, ``fluorescent``, ``background``,
        ``readbias``).
    labels, camera, calibration
        User labels, instrument identity, intensity calibration.
    """

    path: Path
    click_number: str
    click_info: ClickText | None
    analyzed: ClickText | None
    images: dict[str, IvisImage]
    labels: UserLabels
    camera: CameraInfo
    calibration: Calibration

    @property
    def texts(self) -> list[ClickText]:
        """The text files present, AnalyzedClickInfo first."""
        return [t for t in (self.analyzed, self.click_info) if t is not None]

    @property
    def signal(self) -> IvisImage:
        """The luminescent or fluorescent image.

        Raises
        ------
        OpticalError
            When the folder lists neither.
        """
        for kind in SIGNAL_KINDS:
            if kind in self.images:
                return self.images[kind]
        raise OpticalError(f"{self.path}: no luminescent or fluorescent image listed in "
                           f"{', '.join(t.path.name for t in self.texts)}")

    @property
    def photograph(self) -> IvisImage | None:
        """The photograph, if any."""
        return self.images.get("photograph")

    @property
    def acquired(self) -> dt.datetime | None:
        """Acquisition time of the signal image (else of any image)."""
        kinds = [*SIGNAL_KINDS, *self.images]
        return next((self.images[k].info.acquired for k in kinds
                     if k in self.images and self.images[k].info.acquired), None)

    def dark(self) -> np.ndarray | float:
        """The dark level to subtract from the signal counts.

        ``background.TIF`` (dark charge plus read bias) scaled to the signal's exposure
        when both exposures and the read-bias image are known (dark charge grows with
        time, read bias does not); else ``background.TIF`` as is; else
        ``readbiasonly.TIF``; else the scalar ``Read Bias Level``; else 0.

        Raises
        ------
        OpticalError
            When a dark image's shape differs from the signal's.
        """
        signal = self.signal
        arrays = {}
        for kind in ("background", "readbias"):
            image = self.images.get(kind)
            if image is None:
                continue
            if image.shape != signal.shape:
                raise OpticalError(f"{image.tiff.path}: {image.shape[0]}×{image.shape[1]}, "
                                   f"but the signal {signal.tiff.path.name} is "
                                   f"{signal.shape[0]}×{signal.shape[1]}")
            arrays[kind] = image.read().astype(np.float64)
        if "background" in arrays:
            background = self.images["background"].info.exposure_s
            exposure = signal.info.exposure_s
            if "readbias" in arrays and background and exposure:
                bias = arrays["readbias"]
                return bias + (arrays["background"] - bias) * (exposure / background)
            return arrays["background"]
        if "readbias" in arrays:
            return arrays["readbias"]
        return float(signal.info.read_bias_level or 0.0)

    def counts(self) -> np.ndarray:
        """Signal counts minus :meth:`dark` (float64; noise may make some negative)."""
        return self.signal.read().astype(np.float64) - self.dark()

    def calibrated(self) -> np.ndarray:
        """The signal in :attr:`calibration` units (radiance p/s/cm²/sr, or counts)."""
        return self.counts() * self.calibration.per_count


def _read_optional(folder: Path, name: str) -> ClickText | None:
    path = _child(folder, name)
    return read_click_text(path) if path is not None else None


def _click_number(texts: list[ClickText], folder: Path) -> str:
    for text in texts:
        section = text.section("ClickNumber")
        if section is not None and section.value:
            return section.value
    return folder.name


def open_click(path: Path) -> IvisAcquisition:
    """Open one click folder.

    Raises
    ------
    OpticalError
        When the folder has no ClickInfo/AnalyzedClickInfo, a text file or a listed TIFF
        is unreadable, or no image is listed.
    """
    folder = Path(path)
    if not is_click_folder(folder):
        raise OpticalError(f"{folder}: not a Living Image click folder (no "
                           f"{' or '.join(CLICK_FILES)})")
    analyzed = _read_optional(folder, "AnalyzedClickInfo.txt")
    click_info = _read_optional(folder, "ClickInfo.txt")
    texts = [t for t in (click_info, analyzed) if t is not None]
    images: dict[str, IvisImage] = {}
    for text in texts:  # ClickInfo first: the acquisition's own record
        for info in image_infos(text):
            if info.kind in images:
                continue
            file = _child(folder, info.file)
            if file is None:
                raise OpticalError(f"{folder / info.file}: listed in {text.path.name} "
                                   "but missing")
            images[info.kind] = IvisImage(info, LazyTiff.open(file))
    if not images:
        raise OpticalError(f"{folder}: {', '.join(t.path.name for t in texts)} list no "
                           "image ('*** photographic image:', '*** luminescent image:'...)")
    ordered = [t for t in (analyzed, click_info) if t is not None]
    return IvisAcquisition(folder, _click_number(ordered, folder), click_info, analyzed,
                           images, user_labels_of(*ordered), camera_of(*ordered),
                           calibration_of(*ordered))


@dataclass
class IvisStudy:
    """What one XNAT session holds: a click, or the clicks of a sequence.

    Attributes
    ----------
    path : Path
        The click or sequence folder.
    acquisitions : list of IvisAcquisition
        Clicks in acquisition order.
    sequence_info : ClickText or None
        SequenceInfo.txt, when present (kept as text; only its sections are parsed).
    """

    path: Path
    acquisitions: list[IvisAcquisition]
    sequence_info: ClickText | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Stable identity of the study (folder name and first click number)."""
        first = self.acquisitions[0].click_number
        return first if len(self.acquisitions) == 1 and self.sequence_info is None \
            else f"{self.path.name}/{first}"

    @property
    def first(self) -> IvisAcquisition:
        """The first click (its labels name the subject)."""
        return self.acquisitions[0]


def _when(acquisition: IvisAcquisition) -> tuple[str, str]:
    acquired = acquisition.acquired
    return (acquired.isoformat() if acquired else "", acquisition.click_number)


def open_ivis(path: Path) -> IvisStudy:
    """Open a click folder or a sequence folder.

    Raises
    ------
    OpticalError
        When ``path`` is neither, or a click in it is unreadable.
    """
    path = Path(path)
    if is_click_folder(path):
        return IvisStudy(path, [open_click(path)])
    if not is_ivis_folder(path):
        raise OpticalError(f"{path}: not an IVIS click folder (no {' or '.join(CLICK_FILES)}) "
                           f"nor a sequence folder (no {SEQUENCE_FILE})")
    sequence = _read_optional(path, SEQUENCE_FILE)
    clicks = sorted(p for p in path.iterdir() if p.is_dir() and is_click_folder(p))
    if not clicks:
        raise OpticalError(f"{path}: no Living Image click folder (with "
                           f"{' or '.join(CLICK_FILES)}) in it")
    acquisitions = sorted((open_click(p) for p in clicks), key=_when)
    return IvisStudy(path, acquisitions, sequence)


def find_ivis_studies(root: Path) -> Iterator[Path]:
    """Folders under ``root`` (inclusive) that :func:`open_ivis` opens, outermost first:
    a sequence folder is returned once, not its clicks."""
    root = Path(root)
    if is_ivis_folder(root):
        yield root
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return
    for child in children:
        yield from find_ivis_studies(child)

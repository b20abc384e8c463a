"""Typed parameters of a Living Image acquisition, from its parsed text files.

Names read (as written by Living Image; sources in docs/optical.md):

* image sections ``*** photographic image``, ``luminescent image``, ``fluorescent image``,
  ``background image``, ``readbiasonly image`` (value: the TIFF name) with ``Acquisition
  Date`` (``Thursday, October 12, 2023``), ``Acquisition Time`` (``11:22:33``), ``Binning
  Factor``, ``<Kind> Exposure (Seconds)`` or ``Exposure Time Sec``, ``f Number``, ``Field of
  View`` (cm, the side of the square field), ``Emission filter``, ``Excitation filter``,
  ``Filter Position``, ``Read Bias Level``, ``Demand Temperature``, ``Measured
  Temperature`` (CCD, °C);
* ``*** User Label Name Set`` with the user labels (``User``, ``Group``, ``Experiment``,
  ``Comment1``, ``Comment2``, ``Time Point``, ``Animal Number``, ``Animal Strain``,
  ``Animal Model``, ``Sex``, ``View``, ``Cell Line``, ``Reporter``, ``Treatment``, ``Luc
  Injection Time``, ``IACUC Number``);
* ``*** Camera System Info`` (``Camera System ID``, ``Camera System alias``, ``System
  Configuration``, ``Camera Type``, ``Camera CCD Type``) and ``Living Image Version``;
* ``*** Graph Controls`` (``Intensity Calibration``, ``Calibration Value Per Count``);
* ``*** ClickNumber`` (value: the click number, Living Image's acquisition id).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from xnatpic.optical.clickinfo import ClickText, Section
from xnatpic.optical.errors import OpticalError

__all__ = [
    "IMAGE_SECTIONS",
    "USER_LABELS",
    "Calibration",
    "CameraInfo",
    "ImageInfo",
    "UserLabels",
    "calibration_of",
    "camera_of",
    "image_infos",
    "user_labels_of",
]

#: Image kind per image section name.
IMAGE_SECTIONS: dict[str, str] = {
    "photographic image": "photograph",
    "luminescent image": "luminescent",
    "fluorescent image": "fluorescent",
    "background image": "background",
    "readbiasonly image": "readbias",
    "readbias image": "readbias",  # names in XNAT-PIC's later parser
    "darkcharge image": "background",
}
#: User label keys of the "Living Image Universal" label set (PIXI's UserLabelNameSet).
USER_LABELS = ("User", "Group", "Experiment", "Comment1", "Comment2", "Time Point",
               "Animal Number", "Animal Strain", "Animal Model", "Sex", "View", "Cell Line",
               "Reporter", "Treatment", "Luc Injection Time", "IACUC Number")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def _number(section: Section, *keys: str) -> float | None:
    for key in keys:
        value = section.get(key)
        if value:
            match = _NUMBER.search(value)
            if match:
                return float(match.group(0))
    return None


def _wavelength(filter_name: str | None) -> float | None:
    """Wavelength in nm of a filter named by it (``"520"``, ``"520 nm"``); None for
    ``Open``, ``Block``, names without a number."""
    if not filter_name:
        return None
    match = re.fullmatch(r"\s*(\d{3,4}(\.\d+)?)\s*(nm)?\s*", filter_name, re.IGNORECASE)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class ImageInfo:
    """One image of an acquisition and its acquisition parameters.

    Attributes
    ----------
    kind : str
        ``photograph``, ``luminescent``, ``fluorescent``, ``background`` or ``readbias``.
    file : str
        TIFF name as written in the text file.
    acquired : datetime or None
        Acquisition date and time (local time of the instrument).
    binning : int or None
        CCD binning factor.
    exposure_s : float or None
        Exposure time, seconds.
    f_number, fov_cm : float or None
        Lens f-number; side of the (square) field of view in cm.
    emission_filter, excitation_filter : str or None
        Filter names as written; ``emission_nm``/``excitation_nm`` their wavelengths when
        the names are wavelengths.
    read_bias_level : float or None
        Scalar CCD read bias (counts).
    ccd_temperature_c, demand_temperature_c : float or None
        Measured and demanded CCD temperature, °C.
    """

    kind: str
    file: str
    acquired: dt.datetime | None = None
    binning: int | None = None
    exposure_s: float | None = None
    f_number: float | None = None
    fov_cm: float | None = None
    emission_filter: str | None = None
    excitation_filter: str | None = None
    emission_nm: float | None = None
    excitation_nm: float | None = None
    filter_position: int | None = None
    read_bias_level: float | None = None
    ccd_temperature_c: float | None = None
    demand_temperature_c: float | None = None


def _acquired(section: Section, path: Path) -> dt.datetime | None:
    date, time = section.get("Acquisition Date"), section.get("Acquisition Time")
    if not date:
        return None
    try:
        day = dt.datetime.strptime(date.strip(), "%A, %B %d, %Y").date()
    except ValueError as exc:
        raise OpticalError(f"{path}: '*** {section.name}' Acquisition Date {date!r} is not "
                           "written like 'Thursday, October 12, 2023'") from exc
    clock = dt.time(0, 0)
    if time:
        try:
            clock = dt.datetime.strptime(time.strip(), "%H:%M:%S").time()
        except ValueError as exc:
            raise OpticalError(f"{path}: '*** {section.name}' Acquisition Time {time!r} is "
                               "not HH:MM:SS") from exc
    return dt.datetime.combine(day, clock)


def _exposure(section: Section, kind: str) -> float | None:
    names = [f"{kind.capitalize()} Exposure (Seconds)", "Exposure Time Sec",
             "Exposure (Seconds)"]
    names += [k for k in section.entries if k.endswith("Exposure (Seconds)")]
    return _number(section, *names)


def image_infos(text: ClickText) -> list[ImageInfo]:
    """The images a ClickInfo/AnalyzedClickInfo file lists, in file order."""
    infos = []
    for section in text.sections:
        kind = IMAGE_SECTIONS.get(section.name.casefold())
        if kind is None:
            continue
        file = section.value or ""
        if not file.lower().endswith((".tif", ".tiff")):
            raise OpticalError(f"{text.path}:{section.line}: '*** {section.name}' names no "
                               f"TIFF file (value {section.value!r})")
        binning = _number(section, "Binning Factor")
        position = _number(section, "Filter Position")
        emission, excitation = section.get("Emission filter"), section.get("Excitation filter")
        infos.append(ImageInfo(
            kind=kind, file=file, acquired=_acquired(section, text.path),
            binning=int(binning) if binning else None, exposure_s=_exposure(section, kind),
            f_number=_number(section, "f Number"), fov_cm=_number(section, "Field of View"),
            emission_filter=emission or None, excitation_filter=excitation or None,
            emission_nm=_wavelength(emission), excitation_nm=_wavelength(excitation),
            filter_position=int(position) if position is not None else None,
            read_bias_level=_number(section, "Read Bias Level"),
            ccd_temperature_c=_number(section, "Measured Temperature"),
            demand_temperature_c=_number(section, "Demand Temperature")))
    return infos


@dataclass(frozen=True)
class UserLabels:
    """The user labels (first ``User Label Name Set``): label name → value ('' removed)."""

    name_set: str = ""
    values: dict[str, str] = field(default_factory=dict)

    def get(self, label: str) -> str:
        """Value of a label ('' when absent)."""
        return self.values.get(label, "")

    @property
    def animal(self) -> str:
        """``Animal Number``."""
        return self.get("Animal Number")


def user_labels_of(*texts: ClickText | None) -> UserLabels:
    """User labels from the first text holding a ``User Label Name Set``."""
    for text in texts:
        if text is None:
            continue
        section = text.section("User Label Name Set")
        if section is not None:
            values = {k: v for k, v in section.entries.items() if v}
            return UserLabels(section.value, values)
    return UserLabels()


@dataclass(frozen=True)
class CameraInfo:
    """Instrument identity."""

    system_id: str = ""
    alias: str = ""
    configuration: str = ""
    camera_type: str = ""
    ccd_type: str = ""
    software_version: str = ""


def camera_of(*texts: ClickText | None) -> CameraInfo:
    """Camera System Info and Living Image Version from the first text holding them."""
    values: dict[str, str] = {}
    for text in texts:
        if text is None:
            continue
        section = text.section("Camera System Info")
        for key, name in (("Camera System ID", "system_id"), ("Camera System alias", "alias"),
                          ("System Configuration", "configuration"),
                          ("Camera Type", "camera_type"), ("Camera CCD Type", "ccd_type")):
            value = section.get(key) if section is not None else None
            if value and name not in values:
                values[name] = value
        version = text.find("Living Image Version")
        if version and "software_version" not in values:
            values["software_version"] = version
    return CameraInfo(**values)


#: Calibrated units: (substring of "Intensity Calibration", unit, UCUM code, meaning).
_UNITS = (
    ("efficiency", "(p/s/cm²/sr)/(µW/cm²)", "{photons}/s/cm2/sr/(uW/cm2)",
     "radiant efficiency"),
    ("radiance", "p/s/cm²/sr", "{photons}/s/cm2/sr", "radiance"),
    ("photon", "p/s/cm²/sr", "{photons}/s/cm2/sr", "radiance"),
    ("count", "counts", "{counts}", "counts"),
)


@dataclass(frozen=True)
class Calibration:
    """How image counts become the calibrated signal.

    ``signal = (counts - dark) * per_count`` in :attr:`unit`. Without a calibration
    factor the signal stays in counts (``per_count`` 1).

    Attributes
    ----------
    label : str
        ``Intensity Calibration`` as written ('' when absent).
    per_count : float
        ``Calibration Value Per Count`` (1 for counts).
    unit, ucum, quantity : str
        Unit as printed, its UCUM code, and the quantity (radiance, radiant efficiency,
        counts).
    """

    label: str = ""
    per_count: float = 1.0
    unit: str = "counts"
    ucum: str = "{counts}"
    quantity: str = "counts"

    @property
    def calibrated(self) -> bool:
        """True when the signal is in physical units (not counts)."""
        return self.quantity != "counts"


def calibration_of(*texts: ClickText | None) -> Calibration:
    """The calibration in the first ``Graph Controls`` section found.

    Raises
    ------
    OpticalError
        When a calibrated unit is named without a usable (positive) factor.
    """
    for text in texts:
        section = text.section("Graph Controls") if text is not None else None
        if section is None:
            continue
        label = section.get("Intensity Calibration") or ""
        factor_text = section.get("Calibration Value Per Count")
        folded = label.casefold()
        unit = next((u for u in _UNITS if u[0] in folded), None)
        if unit is None or unit[3] == "counts":
            return Calibration(label=label)
        factor = _number(section, "Calibration Value Per Count")
        if factor is None or not factor > 0:
            raise OpticalError(f"{text.path}:{section.line}: 'Intensity Calibration' is "
                               f"{label!r} but 'Calibration Value Per Count' is "
                               f"{factor_text!r}; expected a positive number")
        return Calibration(label, factor, unit[1], unit[2], unit[3])
    return Calibration()

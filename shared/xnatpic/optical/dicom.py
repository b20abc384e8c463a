"""IVIS acquisitions → DICOM Secondary Capture, one study, photograph and signal as series.

Why Secondary Capture with Modality ``OT``: DICOM has no optical-imaging IOD for planar
bioluminescence; SC is the IOD every archive and viewer accepts. XNAT picks the session
type from the SOP class and modality: Secondary Capture with a modality XNAT has no
session type for lands in ``xnat:otherDicomSessionData`` with ``xnat:scScanData`` scans
(xnat-rest-tests ``TestDicomModalityAssignment.testModalityExtractionSecondaryCapture``
``UnmappableModality``; ``OT`` is that data type's modality code in the test framework's
``DataType.OTHER_SESSION``). A session type for optical imaging would need a plugin
(PIXI's ``pixi:bliSessionData``), which a DICOM import does not create.

Per click ``k`` (1-based, acquisition order): series ``2k-1`` the photograph (grey, as
recorded), series ``2k`` the signal: dark-subtracted counts stored as unsigned 16-bit with
``RescaleSlope``/``RescaleIntercept`` giving the calibrated signal (radiance p/s/cm²/sr,
radiant efficiency, or counts), the unit in ``RescaleType`` (its UCUM code) and in a
Real World Value Mapping item (UCUM-coded units), and in the JSON sidecar. Pixel spacing is
the field of view over the matrix, so the finer photograph and the binned signal cover
the same area. UIDs are derived from the click numbers (:mod:`xnatpic.dicom.uids`), so a
re-conversion gives the same UIDs; ``--deidentify`` applies the project's animal profile
(:mod:`xnatpic.dicom.deidentify`) with the same salt rules as for MRI.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import SecondaryCaptureImageStorage

from xnatpic import __version__
from xnatpic.dicom.codes import code_item
from xnatpic.dicom.deidentify import DeidentifyProfile, deidentify_dataset
from xnatpic.dicom.part10 import write_dataset
from xnatpic.dicom.routing import XnatRouting, apply_routing
from xnatpic.dicom.transforms import person_name
from xnatpic.dicom.uids import derived_uid
from xnatpic.optical.acquisition import IvisAcquisition, IvisImage, IvisStudy
from xnatpic.optical.errors import OpticalError
from xnatpic.optical.geometry import ORIENTATION, image_position

__all__ = ["PRIVATE_CREATOR", "PRIVATE_ELEMENTS", "WrittenSeries", "frame_of_reference_uid",
           "ivis_study_uid", "write_ivis_dicom"]

_log = logging.getLogger(__name__)

MODALITY = "OT"
PRIVATE_GROUP = 0x0029
PRIVATE_CREATOR = "XNATPIC IVIS 1.0"
#: Private creator slot: (0029,0020) reserves elements (0029,20xx) (apart from the MRI
#: block's (0029,10xx)).
PRIVATE_SLOT = 0x20
#: Private elements: offset → (VR, name, identifying). Documented in docs/private-tags.md.
PRIVATE_ELEMENTS: dict[int, tuple[str, str, bool]] = {
    0x01: ("LO", "Click number", True),
    0x02: ("LO", "Image kind", False),
    0x03: ("DS", "Field of view (cm)", False),
    0x04: ("DS", "f-number", False),
    0x05: ("LO", "Emission filter", False),
    0x06: ("LO", "Excitation filter", False),
    0x07: ("DS", "Emission wavelength (nm)", False),
    0x08: ("DS", "Read bias level (counts)", False),
    0x09: ("DS", "Demand CCD temperature (C)", False),
    0x0A: ("LO", "Intensity calibration", False),
    0x0B: ("DS", "Calibration value per count", False),
    0x0C: ("LO", "Dark subtraction", False),
    0x0D: ("LO", "Animal model", False),
    0x0E: ("LO", "Group", False),
    0x0F: ("LO", "Time point", False),
    0x10: ("LO", "View", False),
    0x11: ("LO", "Cell line", False),
    0x12: ("LO", "Reporter", False),
    0x13: ("LO", "Treatment", False),
    0x14: ("IS", "Filter position", False),
}
#: User labels dropped from the sidecar when de-identifying (people, free text, ids).
_IDENTIFYING_LABELS = frozenset({"User", "Experiment", "Comment1", "Comment2",
                                 "IACUC Number", "Animal Number", "Luc Injection Time"})
_UCUM_MEANING = {"{photons}/s/cm2/sr": "photons per second per square centimetre per "
                                       "steradian",
                 "{photons}/s/cm2/sr/(uW/cm2)": "radiant efficiency",
                 "{counts}": "counts"}


@dataclass(frozen=True)
class WrittenSeries:
    """One written series: its folder, files and UIDs."""

    click: str
    kind: str
    series_number: int
    folder: Path
    files: list[Path]
    series_instance_uid: str
    study_instance_uid: str


class _DeidContext:
    """What :func:`xnatpic.dicom.deidentify.deidentify_dataset` asks of a series context:
    the profile and the study/subject identities (as ParaVision parameter look-ups)."""

    def __init__(self, profile: DeidentifyProfile, study_key: str, subject: str):
        self.deidentify = profile
        self._values = {("visu", "VisuStudyUid"): study_key,
                        ("visu", "VisuSubjectId"): subject}

    def param(self, file: str, name: str) -> str | None:
        return self._values.get((file, name))


def _sex(value: str) -> str:
    folded = value.strip().casefold()
    return {"m": "M", "male": "M", "f": "F", "female": "F"}.get(folded, "O" if folded else "")


def _da_tm(acq: IvisAcquisition) -> tuple[str, str]:
    when = acq.acquired
    return (when.strftime("%Y%m%d"), when.strftime("%H%M%S")) if when else ("", "")


def _ds(value: float | None) -> str | None:
    return None if value is None else f"{value:.10g}"[:16]


def _study_dataset(study: IvisStudy, study_uid: str) -> Dataset:
    first = study.first
    labels = first.labels
    animal = labels.animal or first.click_number
    date, time = _da_tm(first)
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.PatientName = person_name(animal)
    ds.PatientID = animal[:64]
    ds.PatientBirthDate = ""
    ds.PatientSex = _sex(labels.get("Sex"))
    # An animal (PS3.3 C.7.1.1): species unknown to Living Image, so "ANIMAL" as the MRI
    # writer does for a generic animal type; the strain is the breed description.
    ds.PatientSpeciesDescription = "ANIMAL"
    ds.PatientBreedDescription = labels.get("Animal Strain")[:64]
    ds.PatientBreedCodeSequence = []
    ds.BreedRegistrationSequence = []
    ds.ResponsiblePerson = ""
    ds.ResponsibleOrganization = ""
    ds.PatientSexNeutered = ""
    if labels.get("Animal Strain"):
        ds.StrainDescription = labels.get("Animal Strain")[:64]
    ds.StudyInstanceUID = study_uid
    ds.StudyDate, ds.StudyTime = date, time
    ds.ReferringPhysicianName = ""
    ds.StudyID = first.click_number[:16]
    ds.AccessionNumber = ""
    if labels.get("Experiment"):
        ds.StudyDescription = labels.get("Experiment")[:64]
    ds.Modality = MODALITY
    ds.Laterality = ""
    ds.ConversionType = "WSD"
    ds.Manufacturer = ""
    if first.camera.configuration:
        ds.ManufacturerModelName = first.camera.configuration[:64]
    if first.camera.system_id:
        ds.DeviceSerialNumber = first.camera.system_id[:64]
    if first.camera.alias:
        ds.StationName = first.camera.alias[:16]
    versions = [f"Living Image {first.camera.software_version}"[:64]] \
        if first.camera.software_version else []
    ds.SoftwareVersions = [*versions, f"xnatpic {__version__}"]
    ds.SecondaryCaptureDeviceManufacturer = "xnatpic"
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    if labels.get("User"):
        ds.OperatorsName = person_name(labels.get("User"))
    return ds


def _private(ds: Dataset, values: dict[int, Any]) -> None:
    ds.add_new((PRIVATE_GROUP << 16) | PRIVATE_SLOT, "LO", PRIVATE_CREATOR)
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    for offset, value in sorted(values.items()):
        if value in (None, ""):
            continue
        vr, _name, _identifying = PRIVATE_ELEMENTS[offset]
        if vr == "DS":
            value = _ds(float(value))
        elif vr == "IS":
            value = str(int(value))
        else:
            value = str(value)[:64]
        block.add_new(offset, vr, value)


def _pixels(ds: Dataset, array: np.ndarray) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in array.shape)
    bits = 8 if array.dtype == np.uint8 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(array.astype(f"<u{bits // 8}")).tobytes()


def _grey_levels(photo: np.ndarray) -> np.ndarray:
    """The photograph as stored: 8/16-bit as recorded; other types (a float-corrected
    photograph) scaled linearly onto 0..65535 (a picture, not a measurement)."""
    if photo.dtype in (np.uint8, np.uint16):
        return photo
    low, high = float(np.nanmin(photo)), float(np.nanmax(photo))
    scale = 65535.0 / (high - low) if high > low else 0.0
    return np.rint((np.nan_to_num(photo, nan=low) - low) * scale).astype(np.uint16)


def _signal_storage(acq: IvisAcquisition) -> tuple[np.ndarray, float, str]:
    """Dark-subtracted counts as uint16, the offset added to them, and how the dark
    level was found."""
    counts = acq.counts()
    low = float(np.floor(counts.min()))
    offset = max(0.0, -low)
    stored = np.rint(counts + offset)
    if stored.max() > 65535:
        raise OpticalError(f"{acq.signal.tiff.path}: dark-subtracted counts span "
                           f"{counts.min():.0f}..{counts.max():.0f}, more than 16 bits hold")
    images = acq.images
    how = ("background.TIF scaled to the exposure, read bias kept" if "background" in images
           and "readbias" in images and images["background"].info.exposure_s
           and acq.signal.info.exposure_s else "background.TIF" if "background" in images
           else "readbiasonly.TIF" if "readbias" in images else "Read Bias Level"
           if acq.signal.info.read_bias_level is not None else "none")
    return stored.astype(np.uint16), offset, how


def _unit_code(ucum: str, unit: str) -> Dataset:
    """UCUM code item; a code longer than 16 characters goes in LongCodeValue (PS3.3
    Table 8.8-1: CodeValue holds at most 16)."""
    meaning = _UCUM_MEANING.get(ucum, unit)
    if len(ucum) <= 16:
        return code_item(ucum, "UCUM", meaning)
    item = Dataset()
    item.LongCodeValue = ucum
    item.CodingSchemeDesignator = "UCUM"
    item.CodeMeaning = meaning
    return item


def _geometry(ds: Dataset, image: IvisImage, frame_of_reference: str) -> None:
    """PixelSpacing from the field of view; with it the plane and frame of reference of
    :mod:`xnatpic.optical.geometry` (not part of the SC IOD: dciodvfy warns, viewers and
    ROI tools use them to place ROIs on both series)."""
    spacing = image.pixel_spacing_mm
    if spacing is None:
        return
    ds.PixelSpacing = [_ds(spacing[0]), _ds(spacing[1])]
    ds.ImagePositionPatient = [_ds(v) for v in image_position(image)]
    ds.ImageOrientationPatient = [_ds(v) for v in ORIENTATION]
    ds.FrameOfReferenceUID = frame_of_reference


def _acquisition(ds: Dataset, image: IvisImage) -> None:
    info = image.info
    if info.exposure_s is not None:
        ds.ExposureTimeInms = float(info.exposure_s) * 1000.0
    if info.binning:
        ds.DetectorBinning = [str(info.binning), str(info.binning)]
    if info.ccd_temperature_c is not None:
        ds.DetectorTemperature = _ds(info.ccd_temperature_c)
    if info.excitation_nm is not None:
        ds.IlluminationWaveLength = float(info.excitation_nm)


def _series(base: Dataset, acq: IvisAcquisition, image: IvisImage, *, study_uid: str,
            number: int, salt: str) -> tuple[Dataset, dict[str, Any]]:
    ds = Dataset()
    ds.update(base)
    series_uid = derived_uid("ivis-series", study_uid, acq.click_number, image.info.kind, salt)
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = derived_uid("instance", series_uid, 1, salt)
    ds.SeriesNumber = number
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    date, time = _da_tm(acq)
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time
    _geometry(ds, image, frame_of_reference_uid(study_uid, acq.click_number, salt))
    _acquisition(ds, image)
    info = image.info
    labels = acq.labels
    private = {0x01: acq.click_number, 0x02: info.kind, 0x03: info.fov_cm,
               0x04: info.f_number, 0x05: info.emission_filter, 0x06: info.excitation_filter,
               0x07: info.emission_nm, 0x08: info.read_bias_level,
               0x09: info.demand_temperature_c, 0x14: info.filter_position,
               0x0D: labels.get("Animal Model"), 0x0E: labels.get("Group"),
               0x0F: labels.get("Time Point"), 0x10: labels.get("View"),
               0x11: labels.get("Cell Line"), 0x12: labels.get("Reporter"),
               0x13: labels.get("Treatment")}
    sidecar: dict[str, Any] = {"kind": info.kind, "file": info.file,
                               "pixel_spacing_mm": image.pixel_spacing_mm}
    if info.kind == "photograph":
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.SeriesDescription = "IVIS photograph"
        _pixels(ds, _grey_levels(image.read()))
        sidecar["unit"] = "grey level"
    else:
        cal = acq.calibration
        stored, offset, how = _signal_storage(acq)
        ds.ImageType = ["DERIVED", "PRIMARY"]
        ds.SeriesDescription = f"IVIS {info.kind} ({cal.quantity}, {cal.ucum})"[:64]
        _pixels(ds, stored)
        slope, intercept = cal.per_count, -offset * cal.per_count
        ds.RescaleSlope = _ds(slope)
        ds.RescaleIntercept = _ds(intercept)
        ds.RescaleType = cal.ucum
        mapping = Dataset()
        mapping.RealWorldValueFirstValueMapped = 0
        mapping.RealWorldValueLastValueMapped = 65535
        mapping.RealWorldValueSlope = float(slope)
        mapping.RealWorldValueIntercept = float(intercept)
        mapping.LUTExplanation = cal.quantity
        mapping.LUTLabel = cal.quantity[:16]
        mapping.MeasurementUnitsCodeSequence = [_unit_code(cal.ucum, cal.unit)]
        ds.RealWorldValueMappingSequence = [mapping]
        private |= {0x0A: cal.label, 0x0B: cal.per_count, 0x0C: how}
        sidecar |= {"unit": cal.unit, "ucum": cal.ucum, "quantity": cal.quantity,
                    "intensity_calibration": cal.label, "calibration_per_count": slope,
                    "dark_subtraction": how, "stored_offset_counts": offset,
                    "rescale": {"slope": slope, "intercept": intercept}}
    _private(ds, private)
    sidecar["acquisition"] = {
        "binning": info.binning, "exposure_s": info.exposure_s, "f_number": info.f_number,
        "field_of_view_cm": info.fov_cm, "emission_filter": info.emission_filter,
        "excitation_filter": info.excitation_filter, "emission_nm": info.emission_nm,
        "excitation_nm": info.excitation_nm, "ccd_temperature_c": info.ccd_temperature_c,
        "read_bias_level": info.read_bias_level,
        "acquired": info.acquired.isoformat() if info.acquired else None}
    return ds, sidecar


def _deidentify_sidecar(sidecar: dict[str, Any]) -> None:
    sidecar["labels"] = {k: v for k, v in sidecar["labels"].items()
                         if k not in _IDENTIFYING_LABELS}
    sidecar.pop("click_number", None)
    sidecar.pop("camera", None)
    acquired = sidecar["acquisition"].pop("acquired", None)
    if acquired:
        sidecar["acquisition"]["time_of_day"] = acquired[11:]


def frame_of_reference_uid(study_uid: str, click_number: str, salt: str = "") -> str:
    """The FrameOfReferenceUID shared by the photograph and the signal of one click."""
    return derived_uid("ivis-frame-of-reference", study_uid, click_number, salt)


def ivis_study_uid(study: IvisStudy, salt: str | None = None) -> str:
    """StudyInstanceUID of a study: derived from its key (and, de-identifying, the UID
    key :meth:`DeidentifyProfile.uid_key` derived from the salt), so the same folder
    always gives the same UID."""
    anonymous = "anonymous" if salt is not None else ""
    return derived_uid("ivis-study", study.key, salt or "", anonymous)


def write_ivis_dicom(study: IvisStudy, output: Path, *,
                     deidentify: DeidentifyProfile | None = None,
                     routing: XnatRouting | None = None) -> list[WrittenSeries]:
    """Write every click of ``study`` as DICOM under ``output``.

    Layout: ``output/<NN>-<kind>/IM0001.dcm`` and ``sidecar.json`` per series.

    Parameters
    ----------
    study : IvisStudy
        From :func:`xnatpic.optical.open_ivis`.
    output : Path
        Folder (created).
    deidentify : DeidentifyProfile, optional
        Apply the animal de-identification profile (pseudonyms, shifted dates, salted
        UIDs; identifying private elements and user labels dropped).
    routing : XnatRouting, optional
        Project/subject/session written into PatientComments for XNAT's DICOM routing.

    Raises
    ------
    OpticalError
        When an image cannot be read or its counts do not fit 16 bits.
    """
    output = Path(output)
    # The UID key derived from the salt (HKDF, as for MRI), never the raw salt.
    uid_key = deidentify.uid_key() if deidentify is not None else None
    salt = uid_key or ""
    study_uid = ivis_study_uid(study, uid_key)
    base = _study_dataset(study, study_uid)
    written: list[WrittenSeries] = []
    for k, acq in enumerate(study.acquisitions, start=1):
        plan = [(2 * k - 1, acq.photograph), (2 * k, acq.signal)]
        for number, image in plan:
            if image is None:
                continue
            ds, sidecar = _series(base, acq, image, study_uid=study_uid, number=number,
                                  salt=salt)
            sidecar |= {"click_number": acq.click_number, "labels": dict(acq.labels.values),
                        "camera": vars(acq.camera), "modality": MODALITY,
                        "sop_class_uid": str(SecondaryCaptureImageStorage),
                        "xnat_session_type": "xnat:otherDicomSessionData"}
            if deidentify is not None:
                context = _DeidContext(deidentify, study.key, study.first.labels.animal)
                deidentify_dataset(ds, context)  # type: ignore[arg-type]
                block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
                for offset, (_vr, _name, identifying) in PRIVATE_ELEMENTS.items():
                    if identifying and block.get_tag(offset) in ds:
                        del ds[block.get_tag(offset)]
                _deidentify_sidecar(sidecar)
            apply_routing(ds, routing)
            folder = output / f"{number:02d}-{image.info.kind}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "IM0001.dcm"
            write_dataset(ds, path, f"{acq.path} {image.info.kind}")
            sidecar |= {"series_number": number,
                        "series_instance_uid": str(ds.SeriesInstanceUID),
                        "study_instance_uid": str(ds.StudyInstanceUID)}
            (folder / "sidecar.json").write_text(json.dumps(sidecar, indent=2, default=str)
                                                 + "\n", encoding="utf-8")
            written.append(WrittenSeries(acq.click_number, image.info.kind, number, folder,
                                         [path], str(ds.SeriesInstanceUID),
                                         str(ds.StudyInstanceUID)))
    return written

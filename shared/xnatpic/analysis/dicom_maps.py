"""Maps as derived MR Image Storage series that XNAT's viewer shows.

One classic MR file per slice: the source slice's patient, study, equipment and frame of
reference, ImageType ``DERIVED\\SECONDARY\\<T2 MAP...>``, 16-bit signed pixels with
RescaleSlope/Intercept giving the map values, a RealWorldValueMappingSequence with the
unit as a UCUM code, SourceImageSequence naming every source image of that slice and
ReferencedSeriesSequence naming the source series. NaN (outside the mask, failed fits)
is stored as the lowest pixel value and declared as PixelPaddingValue.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from xnatpic import __version__
from xnatpic.analysis.inputs import AnalysisSeries
from xnatpic.analysis.maps import UNITS, MapImage
from xnatpic.analysis.previews import display_range
from xnatpic.dicom.codes import code_item
from xnatpic.dicom.text_fit import fit_bytes
from xnatpic.dicom.uids import derived_uid

__all__ = ["write_dicom_map"]

_MR = "1.2.840.10008.5.1.4.1.1.4"
_PAD = -32768
#: SpecificCharacterSet declared when a text is not in the source's repertoire.
_UTF8 = "ISO_IR 192"
#: Longest LO value in bytes (PS3.5 6.2; dciodvfy counts encoded bytes).
_LO_BYTES = 64
_MAX = 32767
#: Attributes copied from the source header (patient, study, equipment, MR acquisition).
_COPIED = (
    "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber",
    "ReferringPhysicianName", "StudyInstanceUID", "StudyID", "StudyDescription",
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientWeight",
    "PatientSpeciesDescription", "PatientSpeciesCodeSequence", "PatientBreedDescription",
    "PatientBreedCodeSequence", "BreedRegistrationSequence", "ResponsiblePerson",
    "ResponsiblePersonRole", "ResponsibleOrganization", "PatientSexNeutered",
    "Manufacturer", "InstitutionName", "StationName", "ManufacturerModelName",
    "FrameOfReferenceUID", "PositionReferenceIndicator", "PatientPosition",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType",
    "MagneticFieldStrength", "ImagingFrequency", "ImagedNucleus", "SliceThickness",
    "AnatomicalOrientationType", "ImageLaterality", "InversionTime",
)


def _scaling(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0, 0.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        return max(abs(lo), 1.0) * 1e-4, lo
    slope = (hi - lo) / (_MAX - (_PAD + 1))
    intercept = lo - slope * (_PAD + 1)
    return slope, intercept


def _instance(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _encodes(text: str, codec: str) -> bool:
    """Whether ``codec`` (a Python encoding) can write ``text``."""
    try:
        text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _declare_charset(ds: Dataset, texts: tuple[str, ...]) -> list[str]:
    """Python encodings of ``ds``, declaring UTF-8 when a text is outside its repertoire.

    No SpecificCharacterSet (or ISO_IR 6) allows ASCII only; a single declared character
    set must encode every text; otherwise ``ISO_IR 192`` (UTF-8) is declared. The copied
    values are text already, so they are written again in the new character set.
    """
    declared = ds.get("SpecificCharacterSet") or "ISO_IR 6"
    terms = [declared] if isinstance(declared, str) else list(declared)
    if all(text.isascii() for text in texts):
        return convert_encodings(terms)
    if terms != ["ISO_IR 6"] and len(terms) == 1:
        codec = convert_encodings(terms)[0]
        if all(_encodes(text, codec) for text in texts):
            return [codec]
    # a text outside the declared repertoire: UTF-8
    ds.SpecificCharacterSet = _UTF8
    return convert_encodings(_UTF8)


def _rwvm(image: MapImage, slope: float, intercept: float,
          encodings: list[str]) -> Dataset:
    code, meaning = UNITS[image.unit]
    item = Dataset()
    item.RealWorldValueFirstValueMapped = _PAD + 1
    item.RealWorldValueLastValueMapped = _MAX
    item.RealWorldValueIntercept = float(intercept)
    item.RealWorldValueSlope = float(slope)
    item.LUTExplanation = fit_bytes(image.description, _LO_BYTES, encodings)
    item.LUTLabel = image.name[:16]
    item.MeasurementUnitsCodeSequence = Sequence([code_item(code, "UCUM", meaning)])
    return item


def write_dicom_map(image: MapImage, series: AnalysisSeries, folder: Path, *,
                    series_number: int, step: str, salt: str = "") -> list[Path]:
    """Write one 3-D map as a derived MR Image Storage series (one file per slice).

    Parameters
    ----------
    image : MapImage
        The map, shape (X, Y, Z), on the grid of ``series``.
    series : AnalysisSeries
        The source series (geometry, identity, references).
    folder : Path
        Output folder (created).
    series_number : int
        SeriesNumber of the new series.
    step : str
        Step name, in the derivation description.
    salt : str
        Mixed into the UIDs (e.g. the step's parameters): the same source, step and
        parameters give the same UIDs, other parameters give a new series.

    Returns
    -------
    list of Path
        The files written.
    """
    values = np.asarray(image.values, dtype=np.float64)
    folder.mkdir(parents=True, exist_ok=True)
    slope, intercept = _scaling(values)
    stored = np.full(values.shape, _PAD, dtype=np.int16)
    finite = np.isfinite(values)
    stored[finite] = np.clip(np.round((values[finite] - intercept) / slope), _PAD + 1,
                             _MAX).astype(np.int16)
    src = series.header
    series_uid = derived_uid(series.series_instance_uid, step, image.name, salt)
    now = _dt.datetime.now(_dt.UTC)
    lo, hi = display_range(values, image.unit)
    files = []
    for k in range(values.shape[2]):
        ds = Dataset()
        for keyword in _COPIED:
            if keyword in src:
                setattr(ds, keyword, src.data_element(keyword).value)
        series_description = f"{image.name} map ({step})"
        encodings = _declare_charset(ds, (image.description, series_description))
        ds.SOPClassUID = _MR
        ds.SOPInstanceUID = derived_uid(series_uid, k)
        ds.ImageType = ["DERIVED", "SECONDARY", image.image_type]
        ds.Modality = "MR"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = fit_bytes(series_description, _LO_BYTES, encodings)
        ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.InstanceNumber = k + 1
        ds.DerivationDescription = (f"{image.description}; xnatpic {__version__} {step}")[:1024]
        ds.DerivationCodeSequence = Sequence([code_item("110001", "DCM", "Image Processing")])
        position = series.affine_lps[:3, 3] + k * series.affine_lps[:3, 2]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in series.orientation[:2].ravel()]
        ds.SliceLocation = f"{float(position @ series.orientation[2]):.6f}"
        ds.PixelSpacing = [f"{np.linalg.norm(series.affine_lps[:3, 1]):.6f}",
                           f"{np.linalg.norm(series.affine_lps[:3, 0]):.6f}"]
        if values.shape[2] > 1:
            ds.SpacingBetweenSlices = f"{np.linalg.norm(series.affine_lps[:3, 2]):.6f}"
        ds.EchoTime = src.get("EchoTime", "")
        ds.RepetitionTime = src.get("RepetitionTime", "")
        ds.EchoTrainLength = src.get("EchoTrainLength", "")
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = values.shape[1], values.shape[0]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.PixelPaddingValue = _PAD
        ds.RescaleIntercept = f"{intercept:.10g}"
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleType = "US"
        ds.WindowCenter = f"{(lo + hi) / 2:.6g}"
        ds.WindowWidth = f"{max(hi - lo, 1e-6):.6g}"
        ds.VOILUTFunction = "LINEAR_EXACT"  # windows narrower than 1 (FA, ppm) are allowed
        ds.BurnedInAnnotation = "NO"
        ds.RealWorldValueMappingSequence = Sequence([_rwvm(image, slope, intercept, encodings)])
        refs = []
        for m, uid in enumerate(series.sop_instance_uids[k]):
            ref = Dataset()
            ref.ReferencedSOPClassUID = series.sop_class_uid
            ref.ReferencedSOPInstanceUID = uid
            frame = series.frame_numbers[k][m]
            if frame is not None:
                ref.ReferencedFrameNumber = frame
            refs.append(ref)
        ds.SourceImageSequence = Sequence(refs)
        ref_series = Dataset()
        ref_series.SeriesInstanceUID = series.series_instance_uid
        ref_series.ReferencedInstanceSequence = Sequence(
            [_instance(series.sop_class_uid, uid) for uid in dict.fromkeys(
                series.sop_instance_uids[k])])
        ds.ReferencedSeriesSequence = Sequence([ref_series])
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = _MR
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = derived_uid("xnatpic", "implementation")
        meta.ImplementationVersionName = f"XNATPIC_{__version__}"[:16]
        ds.file_meta = meta
        path = folder / f"{image.name}-{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files

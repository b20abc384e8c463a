"""Maps as derived MR Image Storage series that XNAT's viewer shows.

One classic MR file per slice: the source slice's patient, study, equipment and frame of
reference, ImageType ``DERIVED\\SECONDARY\\<T2 MAP...>``, 16-bit signed pixels with
RescaleSlope/Intercept giving the map values, a RealWorldValueMappingSequence with the
unit as a UCUM code, SourceImageSequence naming every source image of that slice and
ReferencedSeriesSequence naming the source series. NaN (outside the mask, failed fits)
is stored as the lowest pixel value and declared as PixelPaddingValue.

The elements common to every slice (:func:`map_template`) are encoded once
(:class:`~xnatpic.dicom.part10.EncodedDataset`); each file then encodes only its own
elements (:func:`slice_elements`) and its pixels, written from the array's buffer. The
files are byte for byte what ``pydicom.dcmwrite`` writes for the same dataset
(tests/analysis/test_dicom_maps_encoding.py).
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset
from pydicom.filewriter import correct_ambiguous_vr
from pydicom.sequence import Sequence

from xnatpic import __version__
from xnatpic.analysis.inputs import AnalysisSeries
from xnatpic.analysis.maps import UNITS, MapImage
from xnatpic.analysis.previews import display_range
from xnatpic.dicom.codes import code_item
from xnatpic.dicom.engine import tag_and_vr
from xnatpic.dicom.part10 import EncodedDataset, encode, encode_sequence, write_part10
from xnatpic.dicom.text_fit import fit_bytes
from xnatpic.dicom.uids import derived_uid

__all__ = ["map_template", "slice_elements", "stored_values", "write_dicom_map"]

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


def stored_values(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The map as 16-bit stored values (NaN as :data:`_PAD`), slope and intercept."""
    slope, intercept = _scaling(values)
    # every voxel scaled in place (the finite ones as on their own), the others padded
    scaled = np.subtract(values, intercept)
    np.divide(scaled, slope, out=scaled)
    np.round(scaled, out=scaled)
    np.clip(scaled, _PAD + 1, _MAX, out=scaled)
    with np.errstate(invalid="ignore"):  # NaN and inf are cast, then padded
        stored = scaled.astype("<i2")
    stored[~np.isfinite(values)] = _PAD
    return stored, slope, intercept


def map_template(image: MapImage, series: AnalysisSeries, *, series_uid: str,
                 series_number: int, step: str, slope: float, intercept: float,
                 now: _dt.datetime) -> tuple[Dataset, list[str]]:
    """The elements common to every slice of a map, and the Python encodings of its text.

    Ambiguous VRs (``US or SS``) are resolved as ``pydicom.dcmwrite`` resolves them.
    """
    values = np.asarray(image.values, dtype=np.float64)
    src = series.header
    ds = Dataset()
    for keyword in _COPIED:
        if keyword in src:
            setattr(ds, keyword, src.data_element(keyword).value)
    series_description = f"{image.name} map ({step})"
    encodings = _declare_charset(ds, (image.description, series_description))
    ds.SOPClassUID = _MR
    ds.ImageType = ["DERIVED", "SECONDARY", image.image_type]
    ds.Modality = "MR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = fit_bytes(series_description, _LO_BYTES, encodings)
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.DerivationDescription = (f"{image.description}; xnatpic {__version__} {step}")[:1024]
    ds.DerivationCodeSequence = Sequence([code_item("110001", "DCM", "Image Processing")])
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in series.orientation[:2].ravel()]
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
    lo, hi = display_range(values, image.unit)
    ds.WindowCenter = f"{(lo + hi) / 2:.6g}"
    ds.WindowWidth = f"{max(hi - lo, 1e-6):.6g}"
    ds.VOILUTFunction = "LINEAR_EXACT"  # windows narrower than 1 (FA, ppm) are allowed
    ds.BurnedInAnnotation = "NO"
    ds.RealWorldValueMappingSequence = Sequence([_rwvm(image, slope, intercept, encodings)])
    correct_ambiguous_vr(ds, True)
    return ds, encodings


def _encode(keyword: str, value: object) -> bytes:
    return encode(*tag_and_vr(keyword), value)


@lru_cache(maxsize=8192)
def _reference(sop_class: str, sop_instance: str, frame: int | None = None) -> bytes:
    """The encoded elements of one SOP Instance Reference item (each map of a run refers
    to the same source images: encoded once)."""
    parts = [_encode("ReferencedSOPClassUID", sop_class),
             _encode("ReferencedSOPInstanceUID", sop_instance)]
    if frame is not None:
        parts.append(_encode("ReferencedFrameNumber", frame))
    return b"".join(parts)


def slice_elements(series: AnalysisSeries, k: int, sop_instance_uid: str) -> dict[int, bytes]:
    """The encoded elements of slice ``k`` (index from 0) that differ between slices,
    pixel data aside: instance, position and the source images and series."""
    position = series.affine_lps[:3, 3] + k * series.affine_lps[:3, 2]
    sources = series.sop_instance_uids[k]
    values = {
        "SOPInstanceUID": sop_instance_uid,
        "InstanceNumber": k + 1,
        "ImagePositionPatient": [f"{v:.6f}" for v in position],
        "SliceLocation": f"{float(position @ series.orientation[2]):.6f}",
    }
    out = {tag_and_vr(keyword)[0]: _encode(keyword, value) for keyword, value in values.items()}
    source_images = encode_sequence(tag_and_vr("SourceImageSequence")[0], (
        _reference(series.sop_class_uid, uid, series.frame_numbers[k][m])
        for m, uid in enumerate(sources)))
    instances = encode_sequence(tag_and_vr("ReferencedInstanceSequence")[0], (
        _reference(series.sop_class_uid, uid) for uid in dict.fromkeys(sources)))
    referenced_series = encode_sequence(tag_and_vr("ReferencedSeriesSequence")[0], [
        instances + _encode("SeriesInstanceUID", series.series_instance_uid)])
    out[tag_and_vr("SourceImageSequence")[0]] = source_images
    out[tag_and_vr("ReferencedSeriesSequence")[0]] = referenced_series
    return out


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

    Raises
    ------
    ConversionError
        When a file cannot be written.
    """
    values = np.asarray(image.values, dtype=np.float64)
    folder.mkdir(parents=True, exist_ok=True)
    stored, slope, intercept = stored_values(values)
    series_uid = derived_uid(series.series_instance_uid, step, image.name, salt)
    ds, encodings = map_template(image, series, series_uid=series_uid,
                                 series_number=series_number, step=step, slope=slope,
                                 intercept=intercept, now=_dt.datetime.now(_dt.UTC))
    template = EncodedDataset(ds, encodings=encodings)
    files = []
    for k in range(values.shape[2]):
        sop_instance_uid = derived_uid(series_uid, k)
        encoded = template.copy()
        encoded.elements.update(slice_elements(series, k, sop_instance_uid))
        pixels = np.ascontiguousarray(stored[:, :, k].T)  # written from its buffer
        path = folder / f"{image.name}-{k + 1:04d}.dcm"
        write_part10(path, encoded, _MR, sop_instance_uid, f"{step}: {image.name} map",
                     memoryview(pixels))
        files.append(path)
    return files

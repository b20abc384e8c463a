"""One DICOM series (classic MR files or an Enhanced MR file) as an analysis volume.

Frames are grouped by their slice position along the slice normal (ascending) and, within
a slice, ordered by acquisition (TemporalPositionIdentifier / frame index, then
InstanceNumber). Every slice must hold the same measurements in the same order: the
per-measurement TE, TR, TI, b-value, gradient and saturation offset come from slice 0
and are checked against every other slice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from xnatpic.analysis.errors import BadSeriesError
from xnatpic.arrays import distinct
from xnatpic.dicom.part10_reader import NotHandled, Part10Dataset, parse_part10, read_part10
from xnatpic.dicom.private import BLOCK, CREATOR, GROUP
from xnatpic.errors import ConversionError
from xnatpic.nifti.affine import affine_from_slices, image_space_direction, lps_to_ras

__all__ = [
    "ENHANCED_MR_IMAGE_STORAGE",
    "M0_OFFSET_PPM",
    "MR_IMAGE_STORAGE",
    "AnalysisSeries",
    "Frame",
    "dicom_files",
    "read_frames",
    "read_header",
    "read_series",
    "release_unused_reads",
    "shared_reads",
    "skipped_file",
    "with_saturation_offsets",
]

_log = logging.getLogger(__name__)
#: A file's header as pydicom or the fast reader gives it (the interface used here is
#: the same: ``in``, ``get``, attributes, ``[tag].value``, ``get_item``, ``keys``).
Header = Dataset | Part10Dataset

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
#: Offsets in the xnatpic private block (docs/private-tags.md).
_SAT_PPM = 0x21
_IS_M0 = 0x22
_FRAME_SEQUENCE = 0x40
#: Inversion timing (nominal TI, readout duration, FAIR inversion mode).
_TI_NOMINAL = 0x34
_READOUT = 0x36
_INVERSION_MODE = 0x37
#: Slice positions closer than this along the normal are one slice (mm).
_SLICE_TOLERANCE_MM = 1e-3
#: A user-given offset at least this far from water is an M0 (unsaturated) reference.
M0_OFFSET_PPM = 20.0
#: Measurement attributes compared across slices, with their tolerances.
_ATTRIBUTES = ("te", "tr", "ti_protocol", "b", "sat_ppm")


@dataclass
class Frame:
    """One 2-D image of a series with the attributes the analyses use."""

    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    rows: int
    columns: int
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    thickness: float
    order: tuple[float, ...]
    te: float | None = None
    tr: float | None = None
    ti: float | None = None
    b: float | None = None
    gradient_lps: np.ndarray | None = None
    sat_ppm: float | None = None
    is_m0: bool | None = None
    pixels: Any = None
    frame_number: int | None = None
    ti_nominal: float | None = None
    readout: float | None = None
    inversion_mode: str | None = None

    @property
    def ti_protocol(self) -> float | None:
        """The protocol TI (the same in every slice); ``ti`` is the slice's effective one."""
        return self.ti if self.ti_nominal is None else self.ti_nominal


@dataclass
class AnalysisSeries:
    """A series ready for voxel-wise fitting.

    Attributes
    ----------
    data : ndarray of float32, shape (X, Y, Z, N)
        Real values (RescaleSlope/Intercept applied); x along a row (columns), y down a
        column (rows), z through the slices in ascending position along the normal, n the
        measurements.
    te, tr, ti, b, sat_ppm : ndarray of float64, shape (N,)
        Echo, repetition and inversion times (ms), b-values (s/mm²) and saturation offsets
        (ppm) per measurement; NaN where the file has no value. ``ti`` is the protocol
        (nominal) inversion time.
    gradient : ndarray, shape (N, 3)
        Unit diffusion gradient direction per measurement in image space (voxel axes
        x, y, z); zeros where there is none.
    is_m0 : ndarray of bool, shape (N,)
        The converter's M0 (unsaturated reference) flag per measurement.
    affine : ndarray, shape (4, 4)
        Voxel-to-world RAS affine (NIfTI convention).
    affine_lps : ndarray, shape (4, 4)
        The same in DICOM LPS.
    series_instance_uid, frame_of_reference_uid, sop_class_uid : str
    sop_instance_uids : list of list of str
        ``[z][n]`` SOP Instance UID of each frame (the same UID for every frame of an
        Enhanced MR file).
    frame_numbers : list of list of int or None
        ``[z][n]`` frame number in an Enhanced MR file (None for classic files).
    header : pydicom Dataset
        The first file's header (patient, study, equipment for derived series).
    source : Path
        The folder or file read.
    scanning_sequence : tuple of str
        ScanningSequence values (``SE``, ``GR``, ``IR``, ``EP``...).
    description : str
        SeriesDescription.
    """

    data: np.ndarray
    te: np.ndarray
    tr: np.ndarray
    ti: np.ndarray
    b: np.ndarray
    sat_ppm: np.ndarray
    gradient: np.ndarray
    is_m0: np.ndarray
    affine: np.ndarray
    affine_lps: np.ndarray
    series_instance_uid: str
    frame_of_reference_uid: str
    sop_class_uid: str
    sop_instance_uids: list[list[str]]
    frame_numbers: list[list[int | None]]
    header: Dataset
    source: Path
    scanning_sequence: tuple[str, ...] = ()
    description: str = ""
    orientation: np.ndarray = field(default_factory=lambda: np.eye(3))
    ti_slices: np.ndarray | None = None
    readout: np.ndarray | None = None
    inversion_mode: list[str | None] | None = None

    @property
    def n_measurements(self) -> int:
        """Number of measurements (last axis of ``data``)."""
        return int(self.data.shape[3])

    def distinct(self, name: str) -> np.ndarray:
        """Sorted distinct finite values of a measurement attribute (``"te"``...)."""
        values = np.asarray(getattr(self, name), dtype=np.float64)
        values = values[np.isfinite(values)]
        return distinct(np.round(values, 6))


def _float(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _text(value: object) -> str | None:
    return None if value is None or str(value) == "" else str(value)


class _Block:
    """The xnatpic private block of a dataset: its values by offset (None when absent).

    The creator is looked for where xnatpic writes it (``BLOCK``), then among every
    private creator element of the group, as pydicom's ``private_block`` does without
    sorting the whole dataset for each lookup.
    """

    def __init__(self, ds: Header) -> None:
        self.ds = ds
        self.base = self._find(ds)

    @staticmethod
    def _find(ds: Header) -> int | None:
        usual = (GROUP << 16) | BLOCK  # the creator element xnatpic writes
        if ds.get_item(usual) is not None and _creator(ds, usual):
            return (GROUP << 16) | (BLOCK << 8)
        tags = ds.keys()  # iterating the dataset itself would sort and convert its elements
        for tag in tags:
            if tag >> 16 == GROUP and 0x10 <= tag & 0xFFFF <= 0xFF and _creator(ds, tag):
                return (GROUP << 16) | ((tag & 0xFF) << 8)
        return None

    def get(self, offset: int) -> object:
        """The value at ``offset`` (None when absent or no block)."""
        if self.base is None:
            return None
        elem = self.ds.get(self.base | offset)  # a tag: the element, as pydicom gives it
        return None if elem is None else elem.value


def _creator(ds: Header, tag: int) -> bool:
    value = ds[tag].value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).strip(" \0") == CREATOR


def _numbers(ds: Header, keyword: str) -> object:
    """The numbers of a DS or IS element parsed from its raw text (pydicom's DSfloat
    conversion costs more than reading the file), else its value as pydicom gives it;
    None when absent."""
    elem = ds.get_item(keyword)
    if elem is None:
        return None
    raw = elem.value
    if isinstance(raw, bytes) and (elem.VR or dictionary_VR(elem.tag)) in ("DS", "IS"):
        try:
            return [float(v) for v in raw.split(b"\\")] if raw.strip() else None
        except ValueError:  # not plain numbers: pydicom converts (and reports) it
            return ds[keyword].value
    return ds[keyword].value


def _lookup(items: Iterable[Header | None], sequence: str, keyword: str) -> object:
    """First value of ``keyword`` inside functional group ``sequence`` of ``items``."""
    for item in items:
        if item is None or sequence not in item:
            continue
        seq = item[sequence].value
        if seq and keyword in seq[0]:
            return seq[0][keyword].value
    return None


#: Suffixes of files that are never DICOM images (catalogs, sidecars, previews, NIfTI).
_NOT_DICOM_SUFFIXES = frozenset({".xml", ".json", ".txt", ".csv", ".html", ".png", ".gz",
                                 ".nii"})


def skipped_file(path: Path | str) -> bool:
    """True for a file :func:`dicom_files` never opens (hidden, catalog, JSON, text...);
    ``path`` may be a file name."""
    name = os.path.basename(path)
    return name.startswith(".") or os.path.splitext(name)[1].lower() in _NOT_DICOM_SUFFIXES


def dicom_files(folder: Path) -> list[Path]:
    """DICOM files under ``folder`` (recursively; catalogs, JSON and hidden files skipped)."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    out = []
    for path in _candidates(folder):
        with path.open("rb") as fh:
            head = fh.read(132)
        if head[128:132] == b"DICM":
            out.append(path)
    return out


def _candidates(folder: Path) -> list[Path]:
    """The files under ``folder`` :func:`dicom_files` looks into, sorted (those of
    ``sorted(folder.rglob("*"))``: symbolic links to folders not followed, to files
    kept), with ``os.scandir``, whose entries know their type without a ``stat``."""
    found = []
    folders = [str(folder)]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue  # as rglob: nothing under it
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif entry.is_file() and not skipped_file(entry.name):
                found.append(Path(entry.path))
    return sorted(found)


def _dicom_bytes(path: Path, *, any_file: bool) -> bytes | None:
    """The bytes of ``path`` when it is a DICOM file (``DICM`` at byte 128; any file when
    ``any_file``), else None; the file is opened once."""
    try:
        with open(path, "rb", buffering=0) as fh:  # unbuffered: two reads, no copy between
            head = fh.read(132)
            while len(head) < 132 and (more := fh.read(132 - len(head))):
                head += more  # a short read (not at the end of the file)
            if head[128:132] != b"DICM" and not any_file:
                return None
            return head + fh.readall()
    except OSError as exc:
        raise BadSeriesError(f"{path}: not a readable DICOM file ({exc})") from exc


def _classic_frame(path: Path, ds: Header) -> Frame:
    where = f"{path}"
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if keyword not in ds:
            raise BadSeriesError(f"{where}: no {keyword}; cannot place the image in space")
    iop = np.asarray([float(v) for v in _numbers(ds, "ImageOrientationPatient")])
    gradient = ds.get("DiffusionGradientOrientation")
    b_value = ds.get("DiffusionBValue")
    diffusion = ds.get("MRDiffusionSequence")  # dicomifier writes the enhanced macro
    if diffusion:
        item = diffusion[0]
        b_value = item.get("DiffusionBValue") if b_value is None else b_value
        directions = item.get("DiffusionGradientDirectionSequence")
        if gradient is None and directions:
            gradient = directions[0].get("DiffusionGradientOrientation")
    block = _Block(ds)
    m0 = block.get(_IS_M0)
    spacing = _numbers(ds, "PixelSpacing")
    order = (_float(_numbers(ds, "TemporalPositionIdentifier")) or 0.0,
             _float(_numbers(ds, "InstanceNumber")) or 0.0)
    return Frame(
        path=path, sop_instance_uid=str(ds.SOPInstanceUID), sop_class_uid=str(ds.SOPClassUID),
        rows=int(ds.Rows), columns=int(ds.Columns),
        position=np.asarray([float(v) for v in _numbers(ds, "ImagePositionPatient")]),
        orientation=_orientation(iop, where),
        spacing=(float(spacing[0]), float(spacing[1])),
        thickness=_float(_numbers(ds, "SliceThickness")) or 0.0, order=order,
        te=_float(_numbers(ds, "EchoTime")), tr=_float(_numbers(ds, "RepetitionTime")),
        ti=_float(_numbers(ds, "InversionTime")), b=_float(b_value),
        gradient_lps=None if gradient is None else np.asarray([float(v) for v in gradient]),
        sat_ppm=_float(block.get(_SAT_PPM)),
        is_m0=None if m0 is None else str(m0).upper() == "YES",
        ti_nominal=_float(block.get(_TI_NOMINAL)),
        readout=_float(block.get(_READOUT)),
        inversion_mode=_text(block.get(_INVERSION_MODE)),
    )


def _orientation(iop: np.ndarray, where: str) -> np.ndarray:
    if iop.shape != (6,) or not np.isfinite(iop).all():
        raise BadSeriesError(f"{where}: ImageOrientationPatient {iop.tolist()} is not 6 numbers")
    row, col = iop[:3], iop[3:]
    (r0, r1, r2), (c0, c1, c2) = row.tolist(), col.tolist()
    normal = np.array([r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0])  # np.cross
    length = np.sqrt(normal.dot(normal))  # np.linalg.norm, without its checks
    if length < 0.5:
        raise BadSeriesError(f"{where}: ImageOrientationPatient rows are not orthogonal")
    return np.array([row, col, normal / length])


def _enhanced_frames(path: Path, ds: Header) -> list[Frame]:
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared_item = shared[0] if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    n = int(ds.get("NumberOfFrames", 1))
    if len(per_frame) != n:
        raise BadSeriesError(f"{path}: NumberOfFrames {n} but {len(per_frame)} per-frame items")
    frames = []
    for index, item in enumerate(per_frame):
        items = (item, shared_item)
        where = f"{path} frame {index + 1}"
        ipp = _lookup(items, "PlanePositionSequence", "ImagePositionPatient")
        iop = _lookup(items, "PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = _lookup(items, "PixelMeasuresSequence", "PixelSpacing")
        if ipp is None or iop is None or spacing is None:
            raise BadSeriesError(f"{where}: no plane position, orientation or pixel spacing")
        private_item = None
        for it in items:
            if it is None:
                continue
            seq = _Block(it).get(_FRAME_SEQUENCE)
            if seq is None:
                continue
            private_item = seq[0] if seq else None
            break
        gradient = None
        diff = _lookup(items, "MRDiffusionSequence", "DiffusionGradientDirectionSequence")
        if diff:
            g = diff[0].get("DiffusionGradientOrientation")
            gradient = None if g is None else np.asarray([float(v) for v in g])
        ti = _lookup(items, "MRModifierSequence", "InversionTimes")
        temporal = _lookup(items, "FrameContentSequence", "TemporalPositionIndex")
        block = None if private_item is None else _Block(private_item)
        m0 = None if block is None else block.get(_IS_M0)
        frames.append(Frame(
            path=path, sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID), rows=int(ds.Rows), columns=int(ds.Columns),
            position=np.asarray([float(v) for v in ipp]),
            orientation=_orientation(np.asarray([float(v) for v in iop]), where),
            spacing=(float(spacing[0]), float(spacing[1])),
            thickness=_float(_lookup(items, "PixelMeasuresSequence", "SliceThickness")) or 0.0,
            order=(_float(temporal) or 0.0, float(index)),
            te=_float(_lookup(items, "MREchoSequence", "EffectiveEchoTime")),
            tr=_float(_lookup(items, "MRTimingAndRelatedParametersSequence", "RepetitionTime")),
            ti=_float(ti),
            b=_float(_lookup(items, "MRDiffusionSequence", "DiffusionBValue")),
            gradient_lps=gradient,
            sat_ppm=None if block is None else _float(block.get(_SAT_PPM)),
            is_m0=None if m0 is None else str(m0).upper() == "YES",
            frame_number=index + 1,
            ti_nominal=None if block is None else _float(block.get(_TI_NOMINAL)),
            readout=None if block is None else _float(block.get(_READOUT)),
            inversion_mode=None if block is None else _text(block.get(_INVERSION_MODE)),
        ))
        slope = _float(_lookup(items, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _float(_lookup(items, "PixelValueTransformationSequence",
                                   "RescaleIntercept"))
        frames[-1].pixels = (1.0 if slope is None else slope, intercept or 0.0)
    return frames


#: Uncompressed little-endian transfer syntaxes (explicit, implicit VR) whose Pixel Data
#: is the stored values as they are.
_NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"})
_NATIVE_DTYPES = {(8, 0): "u1", (8, 1): "i1", (16, 0): "<u2", (16, 1): "<i2",
                  (32, 0): "<u4", (32, 1): "<i4"}


def _pixels(ds: Header, n_frames: int, path: Path) -> np.ndarray:
    """The stored pixel values of ``ds`` (the file ``path``) as a new float32 array
    (flat; ``n_frames`` frames).

    Native little-endian grey-scale data whose values fill their bits is read straight
    from Pixel Data (pydicom's decoder dispatch costs more than the rest of a small
    file's read); anything else (compressed, big-endian, BitsStored below BitsAllocated,
    float pixel data) goes through ``pydicom``'s ``pixel_array``.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    bits = int(ds.get("BitsAllocated", 0))
    dtype = _NATIVE_DTYPES.get((bits, int(ds.get("PixelRepresentation", -1))))
    if (syntax in _NATIVE_LITTLE_ENDIAN and dtype is not None and "PixelData" in ds
            and int(ds.get("SamplesPerPixel", 1)) == 1
            and int(ds.get("BitsStored", 0)) == bits):
        count = n_frames * int(ds.Rows) * int(ds.Columns)
        raw = ds.PixelData
        nbytes = count * np.dtype(dtype).itemsize
        if len(raw) in (nbytes, nbytes + 1):
            return np.frombuffer(raw, dtype=dtype, count=count).astype(np.float32)
    try:
        return np.array(ds.pixel_array, dtype=np.float32).ravel()  # a copy the caller owns
    except (ValueError, AttributeError, RuntimeError) as exc:  # truncated, absent, no codec
        raise BadSeriesError(f"{path}: the pixel data cannot be read ({exc})") from exc


def read_header(path: Path, *, pixels: bool = False, fast: bool = True) -> Header:
    """The header of one DICOM file (with its Pixel Data when ``pixels``).

    ``fast``: read by :func:`~xnatpic.dicom.part10_reader.read_part10` when it reads the
    file, else (or when not ``fast``) by ``pydicom.dcmread``.

    Raises
    ------
    BadSeriesError
        When the file cannot be read as DICOM.
    """
    try:
        if fast:
            try:
                return read_part10(path, stop_before_pixels=not pixels)
            except NotHandled as why:
                _log.debug("%s: read with pydicom (%s)", path, why)
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except (InvalidDicomError, OSError, ValueError, struct.error) as exc:  # struct: truncated
        raise BadSeriesError(f"{path}: not a readable DICOM file ({exc})") from exc


def _file_frames(path: Path, ds: Header, pixels: bool) -> list[Frame]:
    """The frames of one file's header (pixels rescaled when ``pixels``)."""
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class == ENHANCED_MR_IMAGE_STORAGE:
        new = _enhanced_frames(path, ds)
        if pixels:
            array = _pixels(ds, len(new), path).reshape(len(new), int(ds.Rows), int(ds.Columns))
            for frame, plane in zip(new, array, strict=True):
                slope, intercept = frame.pixels
                frame.pixels = plane * np.float32(slope) + np.float32(intercept)
        else:
            for frame in new:
                frame.pixels = None
        return new
    if sop_class == MR_IMAGE_STORAGE or "PixelData" in ds or "FloatPixelData" in ds \
            or not pixels:
        if str(ds.get("Modality", "MR")) != "MR":
            raise BadSeriesError(f"{path}: modality {ds.get('Modality')}, not MR")
        frame = _classic_frame(path, ds)
        if pixels:
            slope = _float(ds.get("RescaleSlope"))
            intercept = _float(ds.get("RescaleIntercept"))
            plane = _pixels(ds, 1, path).reshape(frame.rows, frame.columns)
            plane *= np.float32(1.0 if slope is None else slope)  # in place: _pixels' copy
            plane += np.float32(intercept or 0.0)
            frame.pixels = plane
        return [frame]
    raise BadSeriesError(f"{path}: SOP class {sop_class} is not an MR image")


def read_frames(folder: Path, *, pixels: bool = True) -> list[Frame]:
    """Read every frame of the one series under ``folder``.

    Parameters
    ----------
    folder : Path
        Folder of classic MR files (searched recursively) or one Enhanced MR file.
    pixels : bool
        Also read the pixel values (float32, rescaled) into ``Frame.pixels``.

    Raises
    ------
    BadSeriesError
        When no DICOM file is found, several series are mixed, a file is not MR, or the
        matrix sizes differ.
    """
    folder = Path(folder)
    frames: list[Frame] = []
    series_uids: dict[str, Path] = {}
    single = folder.is_file()  # read whatever it holds, as dicom_files gives it
    for path in [folder] if single else _candidates(folder):
        content = _dicom_bytes(path, any_file=single)
        if content is None:
            continue
        try:
            ds: Header = parse_part10(content, stop_before_pixels=not pixels)
            new = _file_frames(path, ds, pixels)
        except NotHandled as why:  # not a file the fast reader reads: pydicom reads it
            _log.debug("%s: read with pydicom (%s)", path, why)
            ds = read_header(path, pixels=pixels, fast=False)
            new = _file_frames(path, ds, pixels)
        series_uids.setdefault(str(ds.get("SeriesInstanceUID", "")), path)
        frames.extend(new)
        if len(series_uids) > 1:
            first, second = list(series_uids.items())[:2]
            raise BadSeriesError(
                f"{folder}: holds several series ({first[1].name}: {first[0]}, "
                f"{second[1].name}: {second[0]}); point the step at one scan")
    if not series_uids:
        raise BadSeriesError(f"{folder}: no DICOM file found")
    sizes = {(f.rows, f.columns) for f in frames}
    if len(sizes) > 1:
        by_size: dict[tuple[int, int], Path] = {}
        for f in frames:
            by_size.setdefault((f.rows, f.columns), f.path)
        detail = ", ".join(f"{r}x{c} in {p.name}" for (r, c), p in by_size.items())
        raise BadSeriesError(f"{folder}: matrix sizes differ between images ({detail}); "
                             "the series cannot be stacked into one volume")
    return frames


def _group_slices(frames: list[Frame], where: str) -> list[list[Frame]]:
    normal = frames[0].orientation[2]
    for f in frames:
        if not np.allclose(f.orientation, frames[0].orientation, atol=1e-4):
            raise BadSeriesError(f"{where}: {f.path.name} has another orientation than "
                                 f"{frames[0].path.name}; one stack of parallel slices needed")
    distance = np.array([float(f.position @ normal) for f in frames])
    order = np.argsort(distance, kind="stable")
    slices: list[list[Frame]] = []
    last = None
    for i in order:
        if last is None or distance[i] - last > _SLICE_TOLERANCE_MM:
            slices.append([])
            last = distance[i]
        slices[-1].append(frames[i])
    for group in slices:
        group.sort(key=lambda f: f.order)
    counts = {len(g) for g in slices}
    if len(counts) > 1:
        raise BadSeriesError(f"{where}: slices hold different numbers of images "
                             f"({sorted(counts)}); the series is incomplete")
    return slices


def _values(frames: list[Frame], name: str) -> np.ndarray:
    return np.array([np.nan if getattr(f, name) is None else getattr(f, name) for f in frames])


def _check_consistent(slices: list[list[Frame]], where: str) -> None:
    for name in _ATTRIBUTES:
        ref = _values(slices[0], name)
        for k, group in enumerate(slices[1:], start=1):
            other = _values(group, name)
            same = np.isclose(ref, other, rtol=1e-4, atol=1e-6) | (np.isnan(ref) & np.isnan(other))
            if not np.all(same):
                m = int(np.flatnonzero(~same)[0])
                raise BadSeriesError(
                    f"{where}: measurement {m} has {name} {ref[m]} in slice 0 but {other[m]} in "
                    f"slice {k} ({group[m].path.name}); frames cannot be matched across slices")


def read_series(folder: Path) -> AnalysisSeries:
    """Read one DICOM series into an :class:`AnalysisSeries`.

    Parameters
    ----------
    folder : Path
        A scan resource folder (``SCANS/<id>/DICOM``), any folder holding one series, or an
        Enhanced MR file.

    Returns
    -------
    AnalysisSeries

    Raises
    ------
    BadSeriesError
        Mixed series or matrix sizes, incomplete slices, inconsistent measurements, data
        that are all zero or contain NaN/infinite values.
    """
    folder = Path(folder)
    if _SHARED is not None:
        key = folder.resolve()
        if key not in _SHARED:
            _SHARED[key] = _read_series(folder)
            _SHARED[key].data.setflags(write=False)
        _SHARED_USED.add(key)
        return _SHARED[key]
    return _read_series(folder)


#: Series read inside :func:`shared_reads`, by resolved folder, and those read or reused
#: since the last :func:`release_unused_reads`.
_SHARED: dict[Path, AnalysisSeries] | None = None
_SHARED_USED: set[Path] = set()


@contextlib.contextmanager
def shared_reads() -> Iterator[None]:
    """Within the block, :func:`read_series` of a folder already read returns the same
    series (its data read-only: no map may change it), so maps run in one process read each
    scan once (the session-maps step)."""
    global _SHARED
    _SHARED = {}
    _SHARED_USED.clear()
    try:
        yield
    finally:
        _SHARED = None
        _SHARED_USED.clear()


def release_unused_reads() -> None:
    """Forget the shared series not read since the last call (bounds the memory of
    :func:`shared_reads` to what consecutive maps share)."""
    if _SHARED is None:
        return
    for key in [k for k in _SHARED if k not in _SHARED_USED]:
        del _SHARED[key]
    _SHARED_USED.clear()


def _read_series(folder: Path) -> AnalysisSeries:
    frames = read_frames(folder)
    where = str(folder)
    slices = _group_slices(frames, where)
    _check_consistent(slices, where)
    first = slices[0]
    n = len(first)
    rows, cols = frames[0].rows, frames[0].columns
    data = np.empty((cols, rows, len(slices), n), dtype=np.float32)
    for k, group in enumerate(slices):
        for m, frame in enumerate(group):
            data[:, :, k, m] = np.asarray(frame.pixels, dtype=np.float32).T
            frame.pixels = None
    bad = ~np.isfinite(data)
    if bad.any():
        voxels = int(np.any(bad, axis=3).sum())
        i, j, k, m = (int(v) for v in np.argwhere(bad)[0])
        raise BadSeriesError(
            f"{where}: {int(bad.sum())} samples in {voxels} voxels are NaN or infinite (first "
            f"at column {i}, row {j}, slice {k}, measurement {m} in "
            f"{slices[k][m].path.name}); the series is corrupt, re-export it")
    if not np.any(data):
        raise BadSeriesError(f"{where}: every pixel of the series is zero; nothing to fit "
                             "(an empty or failed reconstruction?)")
    orientation = frames[0].orientation
    positions = [group[0].position for group in slices]
    try:
        affine_lps = affine_from_slices(positions, orientation, frames[0].spacing,
                                        frames[0].thickness or 1.0, where=where)
    except ConversionError as exc:  # irregular slices
        raise BadSeriesError(str(exc)) from exc
    gradient = np.zeros((n, 3))
    for m, frame in enumerate(first):
        if frame.gradient_lps is not None and np.linalg.norm(frame.gradient_lps) > 0.5:
            gradient[m] = image_space_direction(frame.gradient_lps, affine_lps)
    header = pydicom.dcmread(first[0].path, stop_before_pixels=True)
    if header.SOPClassUID == ENHANCED_MR_IMAGE_STORAGE:
        scanning = _enhanced_scanning(header)
    else:
        scanning = tuple(str(v) for v in np.atleast_1d(header.get("ScanningSequence", [])))
    m0_flags = np.array([bool(f.is_m0) for f in first])
    return AnalysisSeries(
        data=data, te=_values(first, "te"), tr=_values(first, "tr"),
        ti=_values(first, "ti_protocol"),
        b=_values(first, "b"), sat_ppm=_values(first, "sat_ppm"), gradient=gradient,
        is_m0=m0_flags, affine=lps_to_ras(affine_lps), affine_lps=affine_lps,
        series_instance_uid=str(header.get("SeriesInstanceUID", "")),
        frame_of_reference_uid=str(header.get("FrameOfReferenceUID", "")),
        sop_class_uid=str(header.SOPClassUID),
        sop_instance_uids=[[f.sop_instance_uid for f in g] for g in slices],
        frame_numbers=[[f.frame_number for f in g] for g in slices],
        header=header, source=folder, scanning_sequence=scanning,
        description=str(header.get("SeriesDescription", "")), orientation=orientation,
        ti_slices=np.array([_values(group, "ti") for group in slices]),
        readout=_values(first, "readout"),
        inversion_mode=[f.inversion_mode for f in first],
    )


def with_saturation_offsets(series: AnalysisSeries, offsets_ppm: Iterable[float]
                            ) -> AnalysisSeries:
    """The series with the CEST saturation offsets a user gave (DICOM we did not write
    has none).

    Parameters
    ----------
    series : AnalysisSeries
        A series whose images carry no saturation offset.
    offsets_ppm : iterable of float
        Offsets in ppm in acquisition order: one per measurement, or one repetition of
        the list when the measurements are a whole number of repetitions of it. Offsets
        with ``|ppm| >= 20`` are M0 references.

    Raises
    ------
    BadSeriesError
        When the count does not divide the measurements, or the series already has
        offsets that differ from the list.
    """
    offsets = np.asarray(list(offsets_ppm), dtype=np.float64)
    n = series.n_measurements
    if offsets.size == 0 or n % offsets.size or not np.all(np.isfinite(offsets)):
        raise BadSeriesError(
            f"{series.source}: {offsets.size} saturation offsets given for {n} measurements "
            "per slice; give one per measurement or one repetition of the list, in "
            "acquisition order")
    full = np.tile(offsets, n // offsets.size)
    known = np.isfinite(series.sat_ppm)
    if known.any():
        if known.all() and np.allclose(series.sat_ppm, full, atol=1e-3):
            return series
        raise BadSeriesError(
            f"{series.source}: the DICOM already has saturation offsets "
            f"({np.nanmin(series.sat_ppm):g} to {np.nanmax(series.sat_ppm):g} ppm) that "
            "differ from the given list; leave --offsets-ppm empty")
    return replace(series, sat_ppm=full, is_m0=np.abs(full) >= M0_OFFSET_PPM)


def _enhanced_scanning(ds: Dataset) -> tuple[str, ...]:
    technique = str(ds.get("EchoPulseSequence", ""))
    out = []
    if technique in ("SPIN", "BOTH"):
        out.append("SE")
    if technique in ("GRADIENT", "BOTH"):
        out.append("GR")
    if str(ds.get("InversionRecovery", "NO")) == "YES":
        out.append("IR")
    return tuple(out)

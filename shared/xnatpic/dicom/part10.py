"""Fast DICOM Part 10 writing for many files that share most of their elements.

A classic series repeats the same ~100 series-level elements in every file. They are
encoded once (:class:`EncodedDataset`, Explicit VR Little Endian, with pydicom's own
element writer); each file then encodes only its own elements and joins the byte
strings in tag order. The result is byte-for-byte what ``pydicom.dcmwrite(...,
enforce_file_format=True)`` writes for the same dataset (a test checks it), several
times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element
from pydicom.uid import ExplicitVRLittleEndian

import xnatpic
from xnatpic.dicom.uids import derived_uid
from xnatpic.errors import ConversionError

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "EncodedDataset",
    "encode_element",
    "file_meta",
    "file_meta_bytes",
    "write_dataset",
    "write_part10",
]

#: Implementation Class UID of this xnatpic version (PS3.7 D.3.3.2), deterministic.
IMPLEMENTATION_CLASS_UID = derived_uid("xnatpic implementation", xnatpic.__version__)
IMPLEMENTATION_VERSION_NAME = f"XNATPIC_{xnatpic.__version__}"[:16]
_PREAMBLE = b"\x00" * 128 + b"DICM"
_ENCODINGS = ["utf_8"]  # SpecificCharacterSet ISO_IR 192
#: VRs never cached (large or nested values).
_UNCACHED = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"})


def encode_element(elem: DataElement) -> bytes:
    """One element encoded as Explicit VR Little Endian (UTF-8 text)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, _ENCODINGS)
    return fp.getvalue()


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return (type(value).__name__, value)


class EncodedDataset:
    """A dataset kept as encoded elements, by tag.

    Parameters
    ----------
    ds : Dataset or None
        Elements to encode.
    cache : dict or None
        Shared cache of encoded elements (values that repeat across the files of a series,
        such as an echo time, are encoded once).
    """

    def __init__(self, ds: Dataset | None = None, *, cache: dict | None = None) -> None:
        self.elements: dict[int, bytes] = {}
        self.cache = cache
        if ds is not None:
            for elem in ds.values():
                self.elements[int(elem.tag)] = encode_element(elem)

    def copy(self) -> EncodedDataset:
        """A copy whose elements can be replaced without touching this one."""
        other = EncodedDataset(cache=self.cache)
        other.elements = dict(self.elements)
        return other

    def set(self, elem: DataElement) -> None:
        """Add or replace one element."""
        self.elements[int(elem.tag)] = encode_element(elem)

    def set_value(self, tag: int, vr: str, value: Any,
                  make: Callable[[], DataElement]) -> None:
        """Add or replace one element from its value, encoding it only when not cached.

        ``make`` builds the DataElement when the (tag, VR, value) was not seen before.
        """
        if self.cache is None or vr in _UNCACHED:
            self.elements[tag] = encode_element(make())
            return
        key = (tag, vr, _hashable(value))
        encoded = self.cache.get(key)
        if encoded is None:
            encoded = self.cache[key] = encode_element(make())
        self.elements[tag] = encoded

    def update(self, ds: Dataset) -> None:
        """Add or replace every element of ``ds``."""
        for elem in ds.values():
            self.set(elem)

    def set_raw(self, tag: int, encoded: bytes) -> None:
        """Add or replace one element already encoded."""
        self.elements[tag] = encoded

    def tobytes(self) -> bytes:
        """The dataset as bytes, elements in ascending tag order."""
        return b"".join(self.elements[tag] for tag in sorted(self.elements))


@cache
def _meta_parts(sop_class_uid: str) -> tuple[bytes, bytes]:
    """Encoded meta elements before and after MediaStorageSOPInstanceUID."""
    before = [DataElement(0x00020001, "OB", b"\x00\x01"),
              DataElement(0x00020002, "UI", sop_class_uid)]
    after = [DataElement(0x00020010, "UI", ExplicitVRLittleEndian),
             DataElement(0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
             DataElement(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME)]
    return (b"".join(encode_element(e) for e in before),
            b"".join(encode_element(e) for e in after))


def file_meta_bytes(sop_class_uid: str, sop_instance_uid: str) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information group (Explicit VR LE)."""
    before, after = _meta_parts(sop_class_uid)
    body = before + encode_element(DataElement(0x00020003, "UI", sop_instance_uid)) + after
    length = encode_element(DataElement(0x00020000, "UL", len(body)))
    return _PREAMBLE + length + body


def write_part10(path: Path, encoded: EncodedDataset, sop_class_uid: str,
                 sop_instance_uid: str, where: str) -> None:
    """Write a Part 10 file from encoded elements.

    Raises
    ------
    ConversionError
        When the file cannot be written.
    """
    try:
        with open(path, "wb") as fp:
            fp.write(file_meta_bytes(sop_class_uid, sop_instance_uid))
            fp.write(encoded.tobytes())
    except OSError as exc:
        raise ConversionError(f"{where}: writing {path} failed: {exc}") from exc


def file_meta(sop_class_uid: str, sop_instance_uid: str) -> FileMetaDataset:
    """File Meta Information for Explicit VR Little Endian (for :func:`write_dataset`)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def write_dataset(ds: Dataset, path: Path, where: str) -> None:
    """Write ``ds`` with ``pydicom.dcmwrite(..., enforce_file_format=True)``.

    Raises
    ------
    ConversionError
        When the file cannot be written or pydicom refuses a value.
    """
    ds.file_meta = file_meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    try:
        dcmwrite(path, ds, enforce_file_format=True)
    except (OSError, ValueError, TypeError) as exc:
        raise ConversionError(f"{where}: writing {path} failed: {exc}") from exc

"""Fast DICOM Part 10 writing for many files that share most of their elements.

A classic series repeats the same ~100 series-level elements in every file. They are
encoded once (:class:`EncodedDataset`, Explicit VR Little Endian); each file then encodes
only its own elements and joins the byte strings in tag order. Elements are encoded by
:func:`encode_value` (text in ASCII, numbers, bytes: the values the mapping tables
produce) and by pydicom's own element writer for anything else (non-ASCII text, person
names, ambiguous VRs). :func:`write_dataset` encodes a whole dataset (sequences included)
the same way. The result is byte-for-byte what ``pydicom.dcmwrite(...,
enforce_file_format=True)`` writes for the same dataset (tests check it on every file of
the real studies), several times faster.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, MutableSequence
from functools import cache
from pathlib import Path
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, dcmwrite, write_data_element
from pydicom.uid import ExplicitVRLittleEndian

import xnatpic
from xnatpic.dicom.uids import derived_uid
from xnatpic.errors import ConversionError

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "PIXEL_DATA",
    "EncodedDataset",
    "encode",
    "encode_dataset",
    "encode_element",
    "encode_sequence",
    "encode_value",
    "file_meta",
    "file_meta_bytes",
    "write_dataset",
    "write_part10",
    "write_with_pydicom",
]

#: Implementation Class UID of this xnatpic version (PS3.7 D.3.3.2), deterministic.
IMPLEMENTATION_CLASS_UID = derived_uid("xnatpic implementation", xnatpic.__version__)
IMPLEMENTATION_VERSION_NAME = f"XNATPIC_{xnatpic.__version__}"[:16]
_PREAMBLE = b"\x00" * 128 + b"DICM"
_ENCODINGS = ["utf_8"]  # SpecificCharacterSet ISO_IR 192
#: VRs never cached (large or nested values).
_UNCACHED = frozenset({"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"})


#: VRs whose Explicit VR length field has 4 bytes (after 2 reserved bytes), PS3.5 7.1.2.
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
                       "UT", "UV"})
#: Character VRs encoded here when their text is ASCII (PN is left to pydicom).
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR", "LO", "LT", "SH",
                         "ST", "UC", "UT"})
_NUMBER_STRING_VRS = frozenset({"DS", "IS"})
_BINARY_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d",
                   "SV": "q", "UV": "Q"}
_BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW"})
_ITEM = b"\xfe\xff\x00\xe0"
#: (7FE0,0010) Pixel Data.
PIXEL_DATA = 0x7FE00010
_CHARSET = 0x00080005


def _strings(value: Any, number: bool) -> str | None:
    """The values of a character element joined by backslashes, or None when a value is
    not a plain string (or, for DS/IS, an int or a number kept with its string)."""
    items = value if isinstance(value, list | tuple | MutableSequence) else (value,)
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif number and hasattr(item, "original_string"):
            out.append(item.original_string)
        elif number and type(item) is int:
            out.append(str(item))
        else:
            return None
    return "\\".join(out)


def _value_bytes(vr: str, value: Any) -> bytes | None:
    if value is None or (isinstance(value, str | list | tuple | MutableSequence | bytes)
                         and len(value) == 0):
        return b""
    if vr in _STRING_VRS or vr in _NUMBER_STRING_VRS:
        text = _strings(value, vr in _NUMBER_STRING_VRS)
        if text is None or not text.isascii():
            return None
        if len(text) % 2:
            text += "\0" if vr == "UI" else " "
        return text.encode("ascii")
    fmt = _BINARY_FORMATS.get(vr)
    if fmt is not None:
        try:
            if isinstance(value, list | tuple | MutableSequence):
                return struct.pack(f"<{len(value)}{fmt}", *value)
            return struct.pack(f"<{fmt}", value)
        except struct.error:
            return None
    if vr in _BYTES_VRS and isinstance(value, bytes):
        return value + b"\x00" if len(value) % 2 else value
    return None


def encode_value(tag: int, vr: str, value: Any) -> bytes | None:
    """One element as Explicit VR Little Endian bytes, or None when pydicom must encode it.

    Handles ASCII text (single or multiple values), DS/IS strings and integers, binary
    numbers and byte values: what pydicom's element writer gives for them, byte for byte.
    """
    body = _value_bytes(vr, value)
    if body is None:
        return None
    if vr in _LONG_VRS:
        return struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, vr.encode(), len(body)) + body
    if len(body) > 0xFFFF:
        return None  # pydicom writes it as UN, with a warning
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(body)) + body


def encode(tag: int, vr: str, value: Any) -> bytes:
    """One element from its tag, VR and value (:func:`encode_value`, else pydicom)."""
    fast = encode_value(tag, vr, value) if vr != "SQ" else None
    return fast if fast is not None else encode_element(DataElement(tag, vr, value))


def _pydicom_element(elem: DataElement, encodings: list[str]) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, encodings)
    return fp.getvalue()


def encode_element(elem: DataElement, encodings: list[str] | None = None,
                   memo: dict[int, bytes] | None = None) -> bytes:
    """One element encoded as Explicit VR Little Endian (``encodings``: UTF-8 text).

    Sequences with defined lengths are encoded item by item here; anything
    :func:`encode_value` does not handle goes through pydicom's element writer. ``memo``
    (see :func:`encode_dataset`) is passed on to the items.
    """
    encodings = encodings or _ENCODINGS
    vr = elem.VR
    if vr == "SQ":
        items = elem.value
        if elem.is_undefined_length or any(
                getattr(item, "is_undefined_length_sequence_item", False) for item in items):
            return _pydicom_element(elem, encodings)
        return encode_sequence(int(elem.tag),
                               (encode_dataset(item, encodings, memo) for item in items))
    fast = None if elem.is_raw else encode_value(int(elem.tag), vr, elem.value)
    return fast if fast is not None else _pydicom_element(elem, encodings)


def encode_sequence(tag: int, items: Iterable[bytes]) -> bytes:
    """A sequence element of defined length from its items' encoded elements."""
    body = b"".join(_ITEM + struct.pack("<L", len(item)) + item for item in items)
    return struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, b"SQ", len(body)) + body


def encode_dataset(ds: Dataset, encodings: list[str] | None = None,
                   memo: dict[int, bytes] | None = None) -> bytes:
    """A dataset's elements (sequences included) in tag order, Explicit VR Little Endian.

    Ambiguous VRs must have been resolved (:func:`write_dataset` does it when there are
    any); retired group lengths are left out, as pydicom does. ``encodings`` are those of
    the enclosing dataset (default: the dataset's SpecificCharacterSet, else pydicom's
    default). ``memo`` keeps, by element object, the bytes of the elements
    :func:`encode_value` encoded (which do not depend on the character set), so an
    element shared by many items (the enhanced writer shares them across frames) is
    encoded once; it must not outlive the dataset.
    """
    memo = {} if memo is None else memo
    if _CHARSET in ds:
        encodings = convert_encodings(ds[_CHARSET].value)
    elif encodings is None:
        encodings = convert_encodings(None)
    parts = []
    for tag in sorted(ds.keys()):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue
        elem = ds.get_item(tag)
        if elem.is_raw:
            elem = ds[tag]
        encoded = memo.get(id(elem))
        if encoded is None:
            if len(elem.VR) != 2:
                raise _AmbiguousVR(tag)
            if elem.VR == "SQ":
                encoded = encode_element(elem, encodings, memo)
            else:
                encoded = encode_value(int(tag), elem.VR, elem.value)
                if encoded is None:
                    encoded = _pydicom_element(elem, encodings)
                else:
                    memo[id(elem)] = encoded
        parts.append(encoded)
    return b"".join(parts)


class _AmbiguousVR(Exception):
    """An element whose VR depends on other elements ('US or SS'): pydicom resolves it."""


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
    encodings : list of str or None
        Python encodings of the text of ``ds`` (its SpecificCharacterSet, as
        ``pydicom.charset.convert_encodings`` gives them); default UTF-8 (ISO_IR 192).
        Ambiguous VRs of ``ds`` must have been resolved
        (``pydicom.filewriter.correct_ambiguous_vr``).
    """

    def __init__(self, ds: Dataset | None = None, *, cache: dict | None = None,
                 encodings: list[str] | None = None) -> None:
        self.elements: dict[int, bytes] = {}
        self.cache = cache
        if ds is not None:
            for elem in ds.values():
                self.elements[int(elem.tag)] = encode_element(elem, encodings)

    def copy(self) -> EncodedDataset:
        """A copy whose elements can be replaced without touching this one."""
        other = EncodedDataset(cache=self.cache)
        other.elements = dict(self.elements)
        return other

    def set(self, elem: DataElement) -> None:
        """Add or replace one element."""
        self.elements[int(elem.tag)] = encode_element(elem)

    def set_value(self, tag: int, vr: str, value: Any, make: Callable[[], bytes]) -> None:
        """Add or replace one element from its value, encoding it only when not cached.

        ``make`` encodes the element when the (tag, VR, value) was not seen before.
        """
        if self.cache is None or vr in _UNCACHED:
            self.elements[tag] = make()
            return
        key = (tag, vr, _hashable(value))
        encoded = self.cache.get(key)
        if encoded is None:
            encoded = self.cache[key] = make()
        self.elements[tag] = encoded

    def update(self, ds: Dataset) -> None:
        """Add or replace every element of ``ds``."""
        for elem in ds.values():
            self.set(elem)

    def set_raw(self, tag: int, encoded: bytes) -> None:
        """Add or replace one element already encoded."""
        self.elements[tag] = encoded

    def parts(self) -> list[bytes]:
        """The encoded elements in ascending tag order."""
        return [self.elements[tag] for tag in sorted(self.elements)]

    def tobytes(self) -> bytes:
        """The dataset as bytes, elements in ascending tag order."""
        return b"".join(self.parts())


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
    body = before + encode(0x00020003, "UI", sop_instance_uid) + after
    length = encode(0x00020000, "UL", len(body))
    return _PREAMBLE + length + body


def _pixel_data_header(nbytes: int) -> bytes:
    """The (7FE0,0010) Pixel Data OW element without its value (``nbytes``, even)."""
    if nbytes % 2:
        raise ConversionError(f"internal: {nbytes} bytes of OW pixel data (odd)")
    return struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OW", nbytes)


def write_part10(path: Path, encoded: EncodedDataset, sop_class_uid: str,
                 sop_instance_uid: str, where: str, pixels: memoryview | None = None) -> None:
    """Write a Part 10 file from encoded elements.

    ``pixels``, when given, is the value of Pixel Data (OW), written with its element
    header straight from its buffer after the elements, which then all come before it.

    Raises
    ------
    ConversionError
        When the file cannot be written.
    """
    if pixels is not None and max(encoded.elements, default=0) >= PIXEL_DATA:
        raise ConversionError(f"{where}: internal: an element at or after Pixel Data")
    try:
        with open(path, "wb") as fp:
            fp.write(file_meta_bytes(sop_class_uid, sop_instance_uid))
            fp.writelines(encoded.parts())
            if pixels is not None:
                fp.write(_pixel_data_header(pixels.nbytes))
                fp.write(pixels)
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


def write_dataset(ds: Dataset, path: Path, where: str, *,
                  encoded: Mapping[int, bytes] | None = None) -> None:
    """Write ``ds`` as a Part 10 file: the bytes ``pydicom.dcmwrite(...,
    enforce_file_format=True)`` writes, encoded by :func:`encode_dataset`.

    ``encoded`` gives, by tag, elements already encoded (such as the enhanced writer's
    functional groups): ``ds`` holds an element at each of these tags, written as the
    given bytes instead of being encoded.

    Raises
    ------
    ConversionError
        When the file cannot be written or pydicom refuses a value.
    """
    ds.file_meta = file_meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    given = {id(ds.get_item(tag)): raw for tag, raw in (encoded or {}).items()}
    try:
        try:
            body = encode_dataset(ds, memo=dict(given))
        except _AmbiguousVR:
            correct_ambiguous_vr(ds, True)  # what dcmwrite does first
            body = encode_dataset(ds, memo=dict(given))
        with open(path, "wb") as fp:
            fp.write(file_meta_bytes(str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
            fp.write(body)
    except (OSError, ValueError, TypeError) as exc:
        raise ConversionError(f"{where}: writing {path} failed: {exc}") from exc


def write_with_pydicom(ds: Dataset, path: Path) -> None:
    """Write ``ds`` with ``pydicom.dcmwrite(..., enforce_file_format=True)`` (the reference
    :func:`write_dataset` matches byte for byte)."""
    ds.file_meta = file_meta(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
    dcmwrite(path, ds, enforce_file_format=True)

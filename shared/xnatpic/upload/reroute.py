"""Give an existing DICOM file XNAT's routing text, as the converter writes it.

A conversion the user made with ``xnatpic convert`` carries no routing; the upload that
reuses it (:mod:`xnatpic.upload.reuse`) writes ``Project: P Subject: S Session: X`` into
PatientComments (0010,4000) of each file (:func:`xnatpic.dicom.routing.apply_routing`,
the converter's own routine, decides the text), so the files are those a conversion with
routing would have written. A file in explicit VR little endian (what the converter
writes) gets the element spliced into its bytes, every other element left as it is; any
other file is read and written by pydicom.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from xnatpic.dicom.routing import XnatRouting, apply_routing

__all__ = ["write_with_routing"]

_PATIENT_COMMENTS = 0x00104000
_EXPLICIT_LE = b"1.2.840.10008.1.2.1"
#: Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF


def write_with_routing(source: Path, destination: Path, routing: XnatRouting) -> None:
    """Write ``source`` to ``destination`` with the routing text in PatientComments.

    Raises
    ------
    OSError
        When a file cannot be read or written.
    pydicom.errors.InvalidDicomError
        When ``source`` is not DICOM.
    """
    data = source.read_bytes()
    spliced = _splice(data, routing)
    if spliced is None:  # not the converter's layout: the general way
        ds = pydicom.dcmread(source)
        apply_routing(ds, routing)
        ds.save_as(destination, enforce_file_format=True)
        return
    destination.write_bytes(spliced)


def _splice(data: bytes, routing: XnatRouting) -> bytes | None:
    """``data`` with PatientComments replaced or inserted; None when the file is not
    explicit VR little endian Part 10 with defined lengths up to group 0010, or holds a
    comment that is not plain ASCII (its character set would matter)."""
    if data[128:132] != b"DICM":
        return None
    pos, syntax = _meta_end(data)
    if syntax != _EXPLICIT_LE:
        return None
    while pos + 8 <= len(data):
        tag, header, length = _element_header(data, pos)
        if tag >= _PATIENT_COMMENTS:
            break
        if length == _UNDEFINED:
            return None
        pos += header + length
    else:
        return None
    previous, rest = b"", pos
    if tag == _PATIENT_COMMENTS:
        previous, rest = data[pos + header:pos + header + length], pos + header + length
    if not previous.isascii():
        return None
    return data[:pos] + _element(previous, routing) + data[rest:]


@lru_cache(maxsize=64)
def _element(previous: bytes, routing: XnatRouting) -> bytes:
    """PatientComments (explicit VR little endian) holding ``previous`` (ASCII) and the
    routing text, as :func:`apply_routing` composes them (the files of a study share it)."""
    ds = Dataset()
    if previous.strip(b" \0"):
        ds.PatientComments = previous.decode("ascii").rstrip(" \0")
    apply_routing(ds, routing)
    value = ds.PatientComments.encode("ascii")
    value += b" " * (len(value) % 2)
    return struct.pack("<HH2sH", 0x0010, 0x4000, b"LT", len(value)) + value


def _meta_end(data: bytes) -> tuple[int, bytes]:
    """(offset of the data set, TransferSyntaxUID) of a Part 10 file (the meta group is
    always explicit VR little endian)."""
    pos, syntax = 132, b""
    while pos + 8 <= len(data):
        tag, header, length = _element_header(data, pos)
        if tag >> 16 != 0x0002:
            break
        if tag == 0x00020010:
            syntax = data[pos + header:pos + header + length].rstrip(b"\0 ")
        pos += header + length
    return pos, syntax


def _element_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, header bytes, value length) of the explicit VR little endian element at
    ``pos``."""
    group, element = struct.unpack_from("<HH", data, pos)
    if data[pos + 4:pos + 6] in _LONG_VRS:
        return group << 16 | element, 12, struct.unpack_from("<I", data, pos + 8)[0]
    return group << 16 | element, 8, struct.unpack_from("<H", data, pos + 6)[0]

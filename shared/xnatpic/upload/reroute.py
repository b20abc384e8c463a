"""Give an existing DICOM file XNAT's routing text, as the converter writes it.

A conversion the user made with ``xnatpic convert`` carries no routing; the upload that
reuses it (:mod:`xnatpic.upload.reuse`) writes ``Project: P Subject: S Session: X`` into
PatientComments (0010,4000) of each file (:func:`xnatpic.dicom.routing.apply_routing`,
the converter's own routine, decides the text), so the files are those a conversion with
routing would have written. A file in explicit VR little endian (what the converter
writes) gets the element spliced into its bytes where the map steps' reader
(:mod:`xnatpic.dicom.part10_reader`) finds it, every other element left as it is; any
other file is read and written by pydicom.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from xnatpic.dicom.part10 import encode_value
from xnatpic.dicom.part10_reader import NotHandled, parse_part10
from xnatpic.dicom.routing import XnatRouting, apply_routing

__all__ = ["write_with_routing"]

_PATIENT_COMMENTS = 0x00104000


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
    """``data`` with PatientComments replaced or inserted; None when the file is not one
    :func:`~xnatpic.dicom.part10_reader.parse_part10` reads in Explicit VR Little Endian,
    PatientComments or the element after it is an undefined-length sequence, or the
    comment or the routing text is not plain ASCII (its character set would matter)."""
    try:
        ds = parse_part10(data)
    except NotHandled:
        return None
    if ds.is_implicit_vr:
        return None
    span = ds.span(_PATIENT_COMMENTS)
    previous = b""
    if span is not None:
        previous = ds.get_item(_PATIENT_COMMENTS).value  # type: ignore[union-attr]
    elif _PATIENT_COMMENTS in ds:
        return None
    else:  # inserted before the first element after it, or at the end
        after = next((tag for tag in ds if tag > _PATIENT_COMMENTS), None)
        at = len(data) if after is None else (ds.span(after) or (None,))[0]
        if at is None:
            return None
        span = (at, at)
    element = _element(previous, routing) if previous.isascii() else None
    if element is None:
        return None
    return data[:span[0]] + element + data[span[1]:]


@lru_cache(maxsize=64)
def _element(previous: bytes, routing: XnatRouting) -> bytes | None:
    """PatientComments (explicit VR little endian, the converter's encoder) holding
    ``previous`` (ASCII) and the routing text, as :func:`apply_routing` composes them (the
    files of a study share it); None when the text is not ASCII."""
    ds = Dataset()
    if previous.strip(b" \0"):
        ds.PatientComments = previous.decode("ascii").rstrip(" \0")
    apply_routing(ds, routing)
    return encode_value(_PATIENT_COMMENTS, "LT", ds.PatientComments)

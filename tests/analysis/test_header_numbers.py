"""Header numbers parsed from the raw DS/IS text equal pydicom's own conversion.

The reader parses DS/IS values itself (pydicom's DSfloat conversion costs more than reading
the file); the truth is pydicom's conversion of the same element, on every file of the
converted phantom, in explicit and implicit VR, with the fall-back for text that is not a
plain number.
"""

from __future__ import annotations

import pydicom
from pydicom.uid import ImplicitVRLittleEndian

from xnatpic.analysis.inputs import _numbers, dicom_files

KEYWORDS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
            "SliceThickness", "EchoTime", "RepetitionTime", "InversionTime", "InstanceNumber",
            "TemporalPositionIdentifier")


def _pydicom(ds: pydicom.Dataset, keyword: str) -> list[float] | None:
    if keyword not in ds or ds[keyword].value in (None, ""):
        return None
    value = ds[keyword].value
    return [float(v) for v in (value if isinstance(value, pydicom.multival.MultiValue)
                                else [value])]


def test_every_phantom_file(phantom_dicom):
    checked = 0
    for folder in phantom_dicom.values():
        for path in dicom_files(folder):
            raw = pydicom.dcmread(path, stop_before_pixels=True)
            converted = pydicom.dcmread(path, stop_before_pixels=True)
            for keyword in KEYWORDS:
                assert _numbers(raw, keyword) == _pydicom(converted, keyword), (path, keyword)
                checked += keyword in raw
    assert checked > 5000


def test_implicit_vr_file(phantom_dicom, tmp_path):
    source = dicom_files(phantom_dicom["3"])[0]
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    target = tmp_path / "implicit.dcm"
    ds.save_as(target, enforce_file_format=True, implicit_vr=True, little_endian=True)
    raw = pydicom.dcmread(target, stop_before_pixels=True)
    assert raw.get_item("RepetitionTime").VR is None  # implicit: the dictionary says DS
    for keyword in KEYWORDS:
        assert _numbers(raw, keyword) == _pydicom(ds, keyword), keyword


def test_text_that_is_not_a_number_is_left_to_pydicom(phantom_dicom, tmp_path):
    ds = pydicom.dcmread(dicom_files(phantom_dicom["2"])[0])
    ds["EchoTime"].value = "12.5"
    target = tmp_path / "odd.dcm"
    ds.save_as(target)
    patched = target.read_bytes().replace(b"12.5", b"1e.5")  # not a number
    target.write_bytes(patched)
    raw = pydicom.dcmread(target, stop_before_pixels=True)
    # pydicom's own conversion decides (the string kept, or its error), as before
    converted = pydicom.dcmread(target, stop_before_pixels=True)
    assert str(_numbers(raw, "EchoTime")) == str(converted.EchoTime)

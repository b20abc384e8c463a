"""The fast Part 10 reader decodes what pydicom decodes, and refuses everything else.

Oracles: pydicom's own reading of the same bytes, on the real vendor DICOM of the corpus
(dicomifier's Implicit VR files, ParaVision's own export), pydicom's bundled test files
and data sets written by pydicom with undefined lengths.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from xnatpic.dicom.part10_reader import NotHandled, Part10Dataset, read_part10

#: VRs the reader leaves to pydicom (person names, tags, ambiguous VRs other than Pixel
#: Data's).
NOT_DECODED = frozenset({"PN", "AT", "US or SS", "US or SS or OW", "US or OW"})


def _same_value(ours: object, theirs: object) -> bool:
    if isinstance(theirs, MultiValue | list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(
            _same_value(a, b) for a, b in zip(ours, theirs, strict=True))
    if isinstance(ours, list):
        return False
    if isinstance(theirs, float) and math.isnan(theirs):
        return isinstance(ours, float) and math.isnan(ours)
    return ours == theirs and isinstance(ours, str) == isinstance(theirs, str)


def same_as_pydicom(ours: Part10Dataset, theirs: Dataset, where: str,
                    counts: Counter | None = None) -> Counter:
    """Assert every element of ``ours`` (items of sequences included) has pydicom's VR and
    value, or is one of the VRs left to pydicom; returns the elements compared by VR
    (``"refused <VR>"`` for those left)."""
    counts = Counter() if counts is None else counts
    tags = list(ours.keys())
    assert sorted(tags) == sorted(int(elem.tag) for elem in theirs), where
    for tag in tags:
        elem = theirs[tag]
        name = f"{where} ({tag >> 16:04X},{tag & 0xFFFF:04X})"
        try:
            value = ours[tag].value
        except NotHandled:
            assert elem.VR in NOT_DECODED or ours.get_item(tag).VR in NOT_DECODED, name
            counts[f"refused {elem.VR}"] += 1
            continue
        vr = ours.get_item(tag).VR
        assert vr == elem.VR or elem.VR in vr.split(" or "), (name, vr, elem.VR)
        counts[elem.VR] += 1
        if elem.VR == "SQ":
            assert len(value) == len(elem.value), name
            for k, (mine, item) in enumerate(zip(value, elem.value, strict=True)):
                same_as_pydicom(mine, item, f"{name}[{k}]", counts)
        else:
            assert _same_value(value, elem.value), (name, value, elem.value)
    return counts


def assert_file_same_as_pydicom(path: Path, counts: Counter | None = None) -> Counter:
    """:func:`same_as_pydicom` on one file, its file meta included."""
    ours = read_part10(path)
    theirs = pydicom.dcmread(path)
    counts = same_as_pydicom(ours, theirs, str(path), counts)
    same_as_pydicom(ours.file_meta, theirs.file_meta, f"{path} meta", counts)
    return counts


def _dicom_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.open("rb").read(132)[128:132] == b"DICM")


class TestVendorFiles:
    def test_dicomifier_implicit_vr_files(self, corpus):
        files = _dicom_under(corpus / "pv6-dicomifier" / "reference" / "dicomifier-dicom")
        assert len(files) > 100
        counts = Counter()
        for path in files:
            assert read_part10(path).file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
            assert_file_same_as_pydicom(path, counts)
        for vr in ("DS", "IS", "CS", "UI", "LO", "SH", "FD", "US", "SQ", "OW"):
            assert counts[vr] > 0, (vr, counts)

    def test_paravision_export(self, corpus):
        files = _dicom_under(corpus / "pv6-acidocest" / "study")
        assert len(files) > 100
        counts = Counter()
        for path in files:
            assert_file_same_as_pydicom(path, counts)
        assert counts["DS"] > 0 and counts["SQ"] > 0, counts

    @pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm",
                                      "MR_small_padded.dcm", "CT_small.dcm"])
    def test_pydicom_test_files(self, name):
        counts = assert_file_same_as_pydicom(Path(get_testdata_file(name)))
        assert sum(n for vr, n in counts.items() if not vr.startswith("refused")) > 50


def _nested(undefined: bool) -> Dataset:
    """A data set with nested sequences (and an empty sequence and an empty item), each
    sequence and item of undefined length when ``undefined``."""
    def item(**values: object) -> Dataset:
        ds = Dataset()
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.is_undefined_length_sequence_item = undefined
        return ds

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    measures = item(PixelSpacing=[0.5, 0.25], SliceThickness="1.5")
    plane = item(ImagePositionPatient=[1.0, -2.5, 3.0])
    ds.SharedFunctionalGroupsSequence = [item(PixelMeasuresSequence=[measures])]
    ds.PerFrameFunctionalGroupsSequence = [
        item(PlanePositionSequence=[plane], FrameContentSequence=[]),
        item(),
        item(PlanePositionSequence=[item(ImagePositionPatient=[0, 0, 1])],
             MREchoSequence=[item(EffectiveEchoTime=12.5)]),
    ]
    ds.Rows = ds.Columns = 2
    ds.NumberOfFrames = "3"
    if undefined:
        for elem in _sequences(ds):
            elem.is_undefined_length = True
    return ds


def _sequences(ds: Dataset) -> list:
    out = []
    for elem in ds:
        if elem.VR == "SQ":
            out.append(elem)
            for it in elem.value:
                out.extend(_sequences(it))
    return out


def _write(ds: Dataset, path: Path, syntax: str) -> Path:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


class TestSequences:
    @pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    @pytest.mark.parametrize("undefined", [True, False])
    def test_nested_sequences(self, tmp_path, syntax, undefined):
        path = _write(_nested(undefined), tmp_path / "a.dcm", syntax)
        raw = path.read_bytes()
        # the lengths are what the test is about: undefined ones with their delimiters
        assert (b"\xfe\xff\xdd\xe0" in raw) == undefined  # sequence delimitation item
        assert (b"\xfe\xff\x0d\xe0" in raw) == undefined  # item delimitation item
        counts = assert_file_same_as_pydicom(path)
        assert counts["SQ"] == 7
        ours = read_part10(path)
        third = ours.PerFrameFunctionalGroupsSequence[2]
        assert third.MREchoSequence[0].EffectiveEchoTime == 12.5
        assert ours.PerFrameFunctionalGroupsSequence[0].FrameContentSequence == []
        assert len(ours.PerFrameFunctionalGroupsSequence[1]) == 0


class TestRefused:
    """What the reader does not read raises NotHandled (the callers then use pydicom)."""

    @pytest.mark.parametrize("name", [
        "MR_small_bigendian.dcm",  # Explicit VR Big Endian
        "MR_small_RLE.dcm",  # encapsulated (RLE Lossless)
        "MR_small_jpeg_ls_lossless.dcm",  # encapsulated (JPEG-LS)
        "JPEG-lossy.dcm",  # encapsulated (JPEG baseline)
        "MR_truncated.dcm",  # Pixel Data runs past the end of the file
        "ExplVR_LitEndNoMeta.dcm",  # no preamble / DICM prefix
    ])
    def test_pydicom_test_files(self, name):
        with pytest.raises(NotHandled):
            read_part10(get_testdata_file(name))

    def test_deflated(self, tmp_path):
        path = tmp_path / "d.dcm"
        ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == \
            DeflatedExplicitVRLittleEndian
        with pytest.raises(NotHandled, match="transfer syntax"):
            read_part10(path)

    def test_every_truncation(self, tmp_path):
        """Cut anywhere, a file is refused, or (cut between elements) read exactly as
        pydicom reads what is left."""
        source = Path(get_testdata_file("MR_small.dcm")).read_bytes()
        refused = read = 0
        for cut in range(133, len(source), 7):
            path = tmp_path / f"{cut}.dcm"
            path.write_bytes(source[:cut])
            try:
                ours = read_part10(path)
            except NotHandled:
                refused += 1
                continue
            read += 1
            same_as_pydicom(ours, pydicom.dcmread(path), str(path))
        assert refused > read > 0

    def test_unknown_vr(self, tmp_path):
        path = _write(_nested(False), tmp_path / "a.dcm", ExplicitVRLittleEndian)
        raw = path.read_bytes()
        at = raw.index(b"CS", 132)  # Modality's VR
        path.write_bytes(raw[:at] + b"QQ" + raw[at + 2:])
        with pytest.raises(NotHandled, match="unknown VR"):
            read_part10(path)

    def test_implicit_syntax_on_explicit_data(self, tmp_path):
        path = _write(_nested(False), tmp_path / "a.dcm", ExplicitVRLittleEndian)
        raw = path.read_bytes()
        explicit = raw.index(ExplicitVRLittleEndian.encode())
        # same value length (20): the implicit UID and NULs (trailing NULs are padding)
        wrong = raw[:explicit] + ImplicitVRLittleEndian.encode() + b"\0\0\0" + \
            raw[explicit + 20:]
        assert len(wrong) == len(raw)
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        path.write_bytes(wrong)
        with pytest.raises(NotHandled, match="looks Explicit VR"):
            read_part10(path)

    def test_values_left_to_pydicom(self, tmp_path):
        ds = _nested(False)
        ds.PatientName = "Doe^Jane"
        ds.SeriesDescription = "a \x1b$B text"  # an ISO 2022 escape
        ds.SpecificCharacterSet = "ISO_IR 100"
        path = _write(ds, tmp_path / "a.dcm", ExplicitVRLittleEndian)
        ours = read_part10(path)
        assert ours.Modality == "MR"
        with pytest.raises(NotHandled):
            ours.get("PatientName")
        with pytest.raises(NotHandled):
            ours.get("SeriesDescription")
        with pytest.raises(NotHandled):
            ours.pixel_array  # noqa: B018 (the property is what is tested)

    def test_non_default_pydicom_settings(self, monkeypatch):
        monkeypatch.setattr(pydicom.config, "use_DS_decimal", True)
        with pytest.raises(NotHandled, match="settings"):
            read_part10(get_testdata_file("MR_small.dcm"))


def test_text_in_the_character_set(tmp_path):
    """Non-ASCII text decodes in the data set's character set, as pydicom decodes it."""
    for charset, text in (("ISO_IR 100", "Souris mâle"), ("ISO_IR 192", "Maus – 3 µm²")):
        ds = _nested(False)
        ds.SpecificCharacterSet = charset
        ds.SeriesDescription = text
        ds.ImageComments = text + "  "
        path = _write(ds, tmp_path / f"{charset}.dcm", ExplicitVRLittleEndian)
        assert_file_same_as_pydicom(path)
        assert read_part10(path).SeriesDescription == text


def test_stop_before_pixels(tmp_path):
    path = Path(get_testdata_file("MR_small.dcm"))
    ours = read_part10(path, stop_before_pixels=True)
    theirs = pydicom.dcmread(path, stop_before_pixels=True)
    assert "PixelData" not in ours
    same_as_pydicom(ours, theirs, str(path))


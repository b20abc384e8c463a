"""The fast Part 10 encoder (xnatpic.dicom.part10) writes what pydicom.dcmwrite writes.

Every file of the real corpus studies, classic and enhanced, is compared byte for byte
with pydicom's own writer: classic images rebuilt as pydicom datasets from the mapping
tables (the path the fast writer replaces), enhanced files read back with every element
decoded, so pydicom re-encodes every value, sequences included.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement

from tests.dicom.conftest import CORPUS_STUDIES, image_recos
from xnatpic.dicom import WrittenSeries, write_dicom_series
from xnatpic.dicom.classic import image_dataset, series_template
from xnatpic.dicom.context import Frame, SeriesContext
from xnatpic.dicom.modules import CLASSIC_MR_IOD
from xnatpic.dicom.part10 import encode_element, encode_value, write_dataset, write_with_pydicom
from xnatpic.dicom.pixels import choose_encoding
from xnatpic.dicom.uids import SeriesUids
from xnatpic.paravision.series import ImageSeries


def _decoded(path: Path) -> pydicom.Dataset:
    """The file read back with every element (in every item) decoded to a value."""
    ds = pydicom.dcmread(path)
    for _ in ds.iterall():
        pass
    return ds


def _uids(path: Path) -> SeriesUids:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return SeriesUids(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID)


def _written(corpus: Path, study: str, folder: Path, *, enhanced: bool
             ) -> Iterator[tuple[ImageSeries, WrittenSeries]]:
    """Every series xnatpic writes from a corpus study (in ``folder``)."""
    for series in image_recos(corpus, study):
        out = folder / series.reco.label
        out.mkdir()
        for written in write_dicom_series(series, out, enhanced=enhanced):
            yield series, written


@pytest.mark.parametrize("study", CORPUS_STUDIES)
def test_classic_files_are_what_dcmwrite_writes(corpus, tmp_path, study):
    checked = 0
    for series, written in _written(corpus, study, tmp_path, enhanced=False):
        images = series.package_images(written.package)
        ctx = SeriesContext(series, written.package, images, _uids(written.files[0]),
                            choose_encoding(series, series.images))
        template = series_template(ctx, CLASSIC_MR_IOD)
        by_index = {image.index: image for image in images}
        for number, (path, index) in enumerate(
                zip(written.files, written.image_indices, strict=True), 1):
            image = by_index[index]
            ds = pydicom.Dataset()
            ds.update(template)
            ds.update(image_dataset(ctx, Frame(image, number,
                                               ctx.pixels.encode(series, image))))
            reference = tmp_path / "reference.dcm"
            write_with_pydicom(ds, reference)
            assert path.read_bytes() == reference.read_bytes(), (
                f"{series.reco.label} {path.name}")
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("study", CORPUS_STUDIES)
def test_enhanced_files_reencode_identically(corpus, tmp_path, study):
    checked = 0
    for series, written in _written(corpus, study, tmp_path, enhanced=True):
        path = written.files[0]
        ours, theirs = tmp_path / "ours.dcm", tmp_path / "pydicom.dcm"
        write_dataset(_decoded(path), ours, "test")
        write_with_pydicom(_decoded(path), theirs)
        assert ours.read_bytes() == theirs.read_bytes() == path.read_bytes(), (
            f"{series.reco.label}")
        checked += 1
    assert checked > 0


class TestEncodeValue:
    def test_known_encodings(self):
        # (0028,0010) Rows US 256: tag, 'US', length 2, value
        assert encode_value(0x00280010, "US", 256) == struct.pack("<HH2sHH", 0x28, 0x10,
                                                                    b"US", 2, 256)
        # UI padded with NUL, other text with a space
        assert encode_value(0x00080018, "UI", "1.2.3").endswith(b"1.2.3\x00")
        assert encode_value(0x00080060, "CS", "MRI").endswith(b"\x04\x00MRI ")
        # long VRs: 2 reserved bytes, 4-byte length
        assert encode_value(0x7FE00010, "OW", b"\x01\x02") == (
            b"\xe0\x7f\x10\x00OW\x00\x00\x02\x00\x00\x00\x01\x02")

    @pytest.mark.parametrize(("vr", "value"), [
        ("DS", ["1.5", "-0.25", "3"]), ("IS", [1, -20, 300]), ("CS", ["A", "BC"]),
        ("FD", [0.1, 2.0]), ("SS", -3), ("UL", [1, 2, 3]), ("LO", ""), ("SH", None),
        ("FL", 1.5), ("OB", b"\x01"), ("DA", "20240101"), ("LT", "x" * 1001),
    ])
    def test_matches_pydicom(self, vr, value):
        tag = 0x00111011
        assert encode_value(tag, vr, value) == encode_element(DataElement(tag, vr, value))

    @pytest.mark.parametrize(("vr", "value"), [
        ("LO", "Souris é"),  # non-ASCII text: the character set matters
        ("PN", "Doe^John"),  # person names are pydicom's
        ("SH", "x" * 70000),  # too long for a 2-byte length
        ("US or SS", 1),  # ambiguous
    ])
    def test_leaves_the_rest_to_pydicom(self, vr, value):
        assert encode_value(0x00111011, vr, value) is None


def test_ambiguous_vr_resolved_as_dcmwrite_does(tmp_path):
    # SmallestImagePixelValue is 'US or SS': SS when PixelRepresentation is 1
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PixelRepresentation = 1
    ds.SmallestImagePixelValue = -5
    ds.ReferencedImageSequence = [pydicom.Dataset()]
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3"
    ours, theirs = tmp_path / "ours.dcm", tmp_path / "pydicom.dcm"
    write_dataset(ds, ours, "test")
    write_with_pydicom(ds, theirs)
    assert ours.read_bytes() == theirs.read_bytes()
    assert pydicom.dcmread(ours).SmallestImagePixelValue == -5

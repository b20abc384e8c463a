"""read_frames with the fast Part 10 reader gives exactly what the pydicom path gives.

Oracle: the same ``read_frames`` with every file read by ``pydicom.dcmread`` (the fast
reader made to refuse every file), on every DICOM file the suite reaches: our converter's
classic and enhanced output of every real ParaVision study of the corpus and of the
phantom, dicomifier's Implicit VR files, ParaVision's own export, pydicom's test files,
and crafted files (undefined lengths, truncation, other transfer syntaxes, a moved
private block).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.analysis.test_inputs import move_private_block
from tests.dicom.conftest import CORPUS_STUDIES
from tests.dicom.test_part10_reader import assert_file_same_as_pydicom
from xnatpic.analysis import BadSeriesError, inputs
from xnatpic.analysis.inputs import Frame, read_frames
from xnatpic.conversion import convert_study
from xnatpic.dicom.part10_reader import NotHandled


@pytest.fixture(scope="module")
def converted_corpus(corpus_dir, tmp_path_factory) -> list[Path]:
    """Series folders (classic) and files (enhanced) of every corpus study converted."""
    out = tmp_path_factory.mktemp("converted")
    series: list[Path] = []
    for k, study in enumerate(CORPUS_STUDIES):
        for fmt in ("dicom", "enhanced"):
            report = convert_study(corpus_dir / study, out / f"{k}-{fmt}", fmt=fmt)
            assert any(r.status == "converted" for r in report.results), study
            files = sorted((out / f"{k}-{fmt}").rglob("*.dcm"))
            series += files if fmt == "enhanced" else sorted({p.parent for p in files})
    return series


@pytest.fixture(scope="module")
def vendor_series(corpus_dir) -> list[Path]:
    """Folders of dicomifier's and ParaVision's own DICOM in the corpus."""
    folders = {p.parent for p in corpus_dir.rglob("*")
               if p.is_file() and p.open("rb").read(132)[128:132] == b"DICM"}
    assert any("dicomifier-dicom" in str(f) for f in folders)
    assert any(f.name == "dicom" and "pdata" in str(f) for f in folders)
    return sorted(folders)


def _refuse(content: bytes, *, stop_before_pixels: bool = False):
    raise NotHandled("the pydicom path (test oracle)")


def _outcome(folder: Path, pixels: bool) -> list[Frame] | str:
    try:
        return read_frames(folder, pixels=pixels)
    except BadSeriesError as exc:
        return f"BadSeriesError: {exc}"


def _both(folder: Path, pixels: bool, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[list[Frame] | str, list[Frame] | str, list[Path]]:
    """read_frames with the fast reader, with pydicom only, and the files the fast run
    read with pydicom (the reader refused them)."""
    refused: list[Path] = []
    original = inputs.read_header

    def read_header(path: Path, *, pixels: bool = False, fast: bool = True):
        if not fast:
            refused.append(path)
        return original(path, pixels=pixels, fast=fast)

    with monkeypatch.context() as patch:
        patch.setattr(inputs, "read_header", read_header)
        fast = _outcome(folder, pixels)
    with monkeypatch.context() as patch:
        patch.setattr(inputs, "parse_part10", _refuse)
        slow = _outcome(folder, pixels)
    return fast, slow, refused


def _same(a: object, b: object) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape \
            and a.tobytes() == b.tobytes()
    if isinstance(b, tuple):
        return isinstance(a, tuple) and len(a) == len(b) and all(
            _same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return type(a) is type(b) and a == b


def assert_same_outcome(fast: list[Frame] | str, slow: list[Frame] | str) -> None:
    """Same error message, or frames equal field by field (arrays bit for bit)."""
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
        return
    assert len(fast) == len(slow) > 0
    for mine, theirs in zip(fast, slow, strict=True):
        for field in dataclasses.fields(Frame):
            a, b = getattr(mine, field.name), getattr(theirs, field.name)
            assert _same(a, b), (mine.path, field.name, a, b)


def _check(folders: list[Path], monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Fast and pydicom outcomes equal on each folder, no file refused by the reader."""
    outcomes: Counter = Counter()
    for folder in folders:
        for pixels in (True, False):
            fast, slow, refused = _both(folder, pixels, monkeypatch)
            assert refused == [], refused
            assert_same_outcome(fast, slow)
            outcomes["error" if isinstance(fast, str) else "frames"] += 1
    return outcomes


def test_converted_corpus(converted_corpus, monkeypatch):
    outcomes = _check(converted_corpus, monkeypatch)
    assert outcomes["frames"] > 2 * 30, outcomes
    assert any(p.is_file() for p in converted_corpus)  # enhanced files among them


def test_converted_phantom(phantom_dicom, monkeypatch):
    outcomes = _check([phantom_dicom[scan] for scan in sorted(phantom_dicom)], monkeypatch)
    assert outcomes["frames"] == 2 * len(phantom_dicom)


def test_vendor_dicom(vendor_series, monkeypatch):
    outcomes = _check(vendor_series, monkeypatch)
    assert outcomes["frames"] >= 2 * 8, outcomes


def test_element_values_of_converted_files(converted_corpus, phantom_dicom):
    """Every element of our converter's files (sequence items included) decodes to
    pydicom's value."""
    counts: Counter = Counter()
    for series in converted_corpus + [phantom_dicom[scan] for scan in sorted(phantom_dicom)]:
        for path in [series] if series.is_file() else sorted(series.glob("*.dcm")):
            assert_file_same_as_pydicom(path, counts)
    for vr in ("DS", "IS", "CS", "UI", "LO", "SH", "LT", "FD", "US", "SQ", "OW"):
        assert counts[vr] > 0, (vr, counts)


def _undefined_lengths(ds: pydicom.Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_enhanced_file_with_undefined_lengths(converted_corpus, tmp_path, monkeypatch,
                                              syntax):
    source = next(p for p in converted_corpus if p.is_file() and "MSME" in p.name)
    ds = pydicom.dcmread(source)
    _undefined_lengths(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    folder = tmp_path / "enh"
    folder.mkdir()
    pydicom.dcmwrite(folder / "a.dcm", ds, enforce_file_format=True)
    assert b"\xfe\xff\xdd\xe0" in (folder / "a.dcm").read_bytes()
    outcomes = _check([folder], monkeypatch)
    assert outcomes["frames"] == 2
    rewritten = read_frames(folder)
    for frame in rewritten:
        frame.path = source
    assert_same_outcome(rewritten, read_frames(source))


def _folder_with(tmp_path: Path, name: str, source: Path) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(source, folder / "a.dcm")
    return folder


@pytest.mark.parametrize("name", ["MR_small_bigendian.dcm", "MR_small_RLE.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_truncated.dcm"])
def test_files_the_reader_refuses_are_read_by_pydicom(tmp_path, monkeypatch, name):
    folder = _folder_with(tmp_path, "f", Path(get_testdata_file(name)))
    fast, slow, refused = _both(folder, True, monkeypatch)
    assert refused == [folder / "a.dcm"]
    assert_same_outcome(fast, slow)
    if name == "MR_truncated.dcm":  # pydicom reads the header, not the pixels
        assert isinstance(fast, str) and "pixel data cannot be read" in fast
    else:
        reference = read_frames(_folder_with(tmp_path, "r",
                                             Path(get_testdata_file("MR_small.dcm"))))
        assert np.array_equal(fast[0].pixels, reference[0].pixels)


def test_truncated_converted_file(phantom_dicom, tmp_path, monkeypatch):
    source = sorted(phantom_dicom["2"].glob("*.dcm"))[0].read_bytes()
    pixel_start = len(source) - 96 * 64 * 2
    for cut in (300, 2000, pixel_start - 3, pixel_start + 100, len(source) - 1):
        folder = tmp_path / str(cut)
        folder.mkdir()
        (folder / "a.dcm").write_bytes(source[:cut])
        fast, slow, refused = _both(folder, True, monkeypatch)
        assert refused == [folder / "a.dcm"]
        assert_same_outcome(fast, slow)
        assert isinstance(fast, str), cut  # a BadSeriesError naming the file
        assert str(folder / "a.dcm") in fast


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_private_block_behind_another_creator(phantom_dicom, tmp_path, monkeypatch,
                                              syntax):
    """The xnatpic block at another creator element (written Explicit or Implicit VR,
    whose private values pydicom gives as raw bytes) reads as with pydicom."""
    ds = pydicom.dcmread(sorted(phantom_dicom["7"].glob("*.dcm"))[3])
    move_private_block(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    folder = tmp_path / "moved"
    folder.mkdir()
    pydicom.dcmwrite(folder / "a.dcm", ds, enforce_file_format=True)
    outcomes = _check([folder], monkeypatch)
    assert outcomes["frames"] == 2
    (frame,) = read_frames(folder)
    if syntax == ExplicitVRLittleEndian:
        assert frame.sat_ppm is not None and frame.is_m0 is not None

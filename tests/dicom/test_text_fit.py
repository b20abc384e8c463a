"""Values cut to their VR's maximum length in encoded bytes, never inside a character
(xnatpic.dicom.text_fit), in the converter's files (ISO_IR 192) and in map series."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.charset import convert_encodings, encode_string

from tests.dicom.synthetic import load, string, write_study
from xnatpic.dicom import write_dicom_series
from xnatpic.dicom.text_fit import fit_bytes, fits_bytes

#: 40 Japanese characters (3 bytes each in UTF-8): 120 bytes, over LO's 64.
JAPANESE = "拡散強調画像の縦緩和時間測定プロトコル第二版" * 2
#: 70 characters, 2 bytes each for the accented ones.
ACCENTED = "Étude de relaxométrie à très haute résolution spatiale, série numéro é"


def _longest(text: str, limit: int, encodings: list[str]) -> None:
    """``fit_bytes`` gives a prefix that fits and one more character would not."""
    cut = fit_bytes(text, limit, encodings)
    assert text.startswith(cut)
    assert len(encode_string(cut, encodings)) <= limit
    if cut != text:
        assert len(encode_string(text[:len(cut) + 1], encodings)) > limit


class TestFitBytes:
    @pytest.mark.parametrize("text", [JAPANESE, ACCENTED, "ASCII only " * 10, "😀" * 30])
    @pytest.mark.parametrize("limit", [16, 64])
    def test_utf8_longest_prefix(self, text, limit):
        cut = fit_bytes(text, limit)
        assert text.startswith(cut) and len(cut.encode("utf-8")) <= limit
        assert len(text[:len(cut) + 1].encode("utf-8")) > limit or cut == text
        _longest(text, limit, convert_encodings("ISO_IR 192"))

    def test_japanese_at_lo_limit(self):
        # 21 characters are 63 bytes; the 22nd would make 66
        assert fit_bytes(JAPANESE, 64) == JAPANESE[:21]
        assert not fits_bytes(JAPANESE, 64) and fits_bytes(JAPANESE[:21], 64)

    def test_single_byte_and_iso2022_character_sets(self):
        latin1 = convert_encodings("ISO_IR 100")
        assert fit_bytes(ACCENTED, 64, latin1) == ACCENTED[:64]  # one byte per character
        jis = convert_encodings(["ISO 2022 IR 6", "ISO 2022 IR 87"])
        _longest("T2 " + JAPANESE, 64, jis)

    def test_short_text_unchanged(self):
        assert fit_bytes("T2_MSME", 16) == "T2_MSME"
        assert fit_bytes("", 16) == ""


def test_converter_cuts_multibyte_values_by_bytes(tmp_path, dciodvfy):
    """LO, SH and PN values of Japanese and accented text at their VR's limit: each is
    the longest prefix within the limit in UTF-8 bytes, and dciodvfy finds no error."""
    stored = np.zeros((2, 4, 4), dtype="i2")
    reco = write_study(tmp_path / "study", stored, visu={
        "VisuAcquisitionProtocol": string(JAPANESE),            # ProtocolName, LO 64
        "VisuStudyId": string("Étude-été-éé"),                  # StudyID, SH 16
        "VisuSubjectName": string(ACCENTED),                    # PatientName, PN 64
    })
    (tmp_path / "out").mkdir()
    written = write_dicom_series(load(reco), tmp_path / "out")
    ds = pydicom.dcmread(written[0].files[0])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    expected = {"ProtocolName": (JAPANESE, 64), "StudyID": ("Étude-été-éé", 16)}
    for keyword, (original, limit) in expected.items():
        value = str(ds.data_element(keyword).value)
        raw = ds.data_element(keyword).value.encode("utf-8")
        assert len(raw) <= limit, keyword
        assert original.startswith(value) and value
        assert len(original[:len(value) + 1].encode("utf-8")) > limit, keyword
    name = str(ds.PatientName)
    assert len(name.encode("utf-8")) <= 64 and name
    errors, _ = dciodvfy(written[0].files[0])
    assert errors == []

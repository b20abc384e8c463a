"""Texts of the DICOM maps fit their value representation in encoded bytes, in a character
set that holds them (dciodvfy is the oracle)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.oracles import require_executable
from xnatpic.analysis.dicom_maps import write_dicom_map
from xnatpic.analysis.inputs import read_series
from xnatpic.analysis.maps import MapImage

#: 56 characters (under the LO limit of 64) but 89 bytes in UTF-8 (over it).
NON_ASCII = "T2 de la région d'intérêt " + "é" * 30


def _dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("description", [NON_ASCII, "abcdefghij" * 10])
def test_long_description_fits_lo_in_bytes(phantom_dicom, tmp_path, description):
    require_executable("dciodvfy", "'make tools' installs dicom3tools")
    series = read_series(phantom_dicom["2"])
    shape = series.data.shape[:3]
    values = np.linspace(10.0, 90.0, int(np.prod(shape))).reshape(shape)
    image = MapImage("T2", values, "ms", description, image_type="T2 MAP")
    files = write_dicom_map(image, series, tmp_path / "T2", series_number=201, step="t2map")
    assert _dciodvfy_errors(files[0]) == []
    ds = pydicom.dcmread(files[0])
    explanation = ds.RealWorldValueMappingSequence[0].LUTExplanation
    charset = ds.get("SpecificCharacterSet", "")
    codec = "utf-8" if charset == "ISO_IR 192" else "ascii"
    encoded = explanation.encode(codec)
    assert len(encoded) <= 64 and description.startswith(explanation)
    # the longest prefix that fits: one more character would not
    assert len(description[:len(explanation) + 1].encode(codec)) > 64
    if not description.isascii():
        assert charset == "ISO_IR 192"

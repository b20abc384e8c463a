"""Enhanced MR pixel data streamed to the file: same bytes as pydicom, memory flat in size.

The memory test converts synthetic recos of 16 and 64 MiB of int16 images in fresh
processes and bounds the growth of their peak resident set per MiB of image data
(before streaming it was about 3 to 5 MiB per MiB: the frames, their joined bytes and
the mapped 2dseq were all resident at once).
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.filewriter import dcmwrite

from tests.dicom.memory import convert_peak_rss_mib, write_large_study
from tests.dicom.synthetic import load, write_study
from xnatpic.dicom import enhanced, write_dicom_series

#: Allowed growth of the peak resident set per MiB of image data (the per-frame
#: functional groups of 256 × 256 frames take about 0.1).
MAX_MIB_PER_MIB = 0.35


def _rewritten(path) -> bytes:
    """What pydicom writes for the dataset read back from ``path`` (pixels in memory)."""
    ds = pydicom.dcmread(path)
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize(("dtype", "slopes"), [
    ("<i2", [0.5, 0.5, 0.5]),             # stored int16 unchanged, one slope
    ("<f4", [1.0, 2.0, 0.25]),            # float: re-quantised per frame while streaming
])
@pytest.mark.parametrize("keep", [True, False], ids=["frames-kept", "frames-read-twice"])
def test_streamed_file_is_what_pydicom_writes(tmp_path, monkeypatch, dtype, slopes, keep):
    # kept: the encoded frames of a small series are reused for Pixel Data; read twice:
    # a series above KEEP_PIXEL_BYTES reads and encodes each frame again for Pixel Data
    if not keep:
        monkeypatch.setattr(enhanced, "KEEP_PIXEL_BYTES", 0)
    rng = np.random.default_rng(7)
    stored = (rng.normal(0, 900, (3, 12, 10))).astype(dtype)
    reco = write_study(tmp_path / "study", stored, slopes=slopes, offsets=[0.0, 1.5, -2.0])
    out = tmp_path / "out"
    out.mkdir()
    (written,) = write_dicom_series(load(reco), out, enhanced=True)
    (path,) = written.files
    data = path.read_bytes()
    assert data == _rewritten(path)
    ds = pydicom.dcmread(path)
    assert int(ds.NumberOfFrames) == 3
    assert len(ds.PixelData) == 3 * 12 * 10 * 2
    assert data.endswith(ds.PixelData)  # Pixel Data is the last element
    pixels = ds.pixel_array
    for frame in range(3):
        measures = ds.PerFrameFunctionalGroupsSequence[frame]
        transform = (measures.PixelValueTransformationSequence[0]
                     if "PixelValueTransformationSequence" in measures
                     else ds.SharedFunctionalGroupsSequence[0]
                     .PixelValueTransformationSequence[0])
        real = pixels[frame] * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
        expected = stored[frame].astype(np.float64) * slopes[frame] + [0.0, 1.5, -2.0][frame]
        step = float(transform.RescaleSlope)
        np.testing.assert_allclose(real, expected, atol=step / 2 + 1e-9)


def test_enhanced_memory_is_flat_in_the_reco_size(tmp_path):
    peaks = {}
    for mib in (16, 64):
        study = tmp_path / f"study{mib}"
        write_large_study(study, mib)
        peaks[mib] = convert_peak_rss_mib(study, tmp_path / f"out{mib}", "enhanced")
        (dcm,) = (tmp_path / f"out{mib}").rglob("*.dcm")
        assert dcm.stat().st_size > mib * (1 << 20)  # every frame was written
    growth = (peaks[64] - peaks[16]) / (64 - 16)
    assert growth < MAX_MIB_PER_MIB, f"peak RSS {peaks} MiB: {growth:.2f} MiB per MiB"

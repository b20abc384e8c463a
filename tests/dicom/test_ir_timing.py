"""Per-frame inversion timing written by the converter (pv6 FAIR-RARE scans 13 and 30).

Expected values come from the ParaVision method files, read here with a few lines of
text parsing (not the project's JCAMP reader): the effective inversion time of a slice is
its protocol TI plus its acquisition position (PVM_ObjOrderList) times the slice period
(MultiRepTime − TI − RecoveryTime) / slices.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from xnatpic.dicom.private import CREATOR, GROUP

STUDY = "pv6-dicomifier/study"
NOMINAL, DELAY, READOUT, MODE = 0x34, 0x35, 0x36, 0x37


def _method_values(corpus: Path, scan: str, name: str) -> list[str]:
    text = (corpus / STUDY / scan / "method").read_text(encoding="latin-1")
    match = re.search(rf"^##\${name}=(.*?)(?=^##|^\$\$)", text, re.S | re.M)
    assert match, f"{name} not in scan {scan}'s method"
    body = match.group(1)
    if body.startswith("("):
        body = body.split(")", 1)[1]
    return body.split()


def _private(ds: pydicom.Dataset, offset: int) -> object:
    return ds.private_block(GROUP, CREATOR)[offset].value


def _frames(written: list, enhanced: bool) -> list[tuple[pydicom.Dataset, float, float, int]]:
    """(private item, InversionTime, RepetitionTime, 2dseq frame) of every image."""
    out = []
    for series in written:
        for path in series.files:
            ds = pydicom.dcmread(path)
            if not enhanced:
                out.append((ds, float(ds.InversionTime), float(ds.RepetitionTime),
                            int(_private(ds, 0x10))))
                continue
            for index, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
                shared = ds.SharedFunctionalGroupsSequence[0]
                modifier = (item.get("MRModifierSequence")
                            or shared.MRModifierSequence)[0]
                timing = (item.get("MRTimingAndRelatedParametersSequence")
                          or shared.MRTimingAndRelatedParametersSequence)[0]
                private = item.private_block(GROUP, CREATOR)[0x40].value[0]
                tag = private.private_block(GROUP, CREATOR).get_tag(0x10)
                frame = int(private[tag].value) if tag in private else index
                times = modifier.InversionTimes
                times = times[0] if isinstance(times, pydicom.multival.MultiValue) else times
                out.append((private, float(times),
                            float(timing.RepetitionTime), frame))
    return out


@pytest.mark.parametrize("enhanced", [False, True])
class TestScan13:
    def test_effective_inversion_time_per_slice(self, corpus, convert, enhanced):
        ti = np.array(_method_values(corpus, "13", "PVM_FairTIR_Arr"), float)
        tr = np.array(_method_values(corpus, "13", "MultiRepTime"), float)
        recovery = float(_method_values(corpus, "13", "RecoveryTime")[0])
        order = [int(v) for v in _method_values(corpus, "13", "PVM_ObjOrderList")]
        period = (tr[0] - ti[0] - recovery) / len(order)
        assert period == pytest.approx(63.17, abs=0.01)
        _, written = convert(STUDY, "13", enhanced=enhanced)
        frames = _frames(written, enhanced)
        assert len(frames) == 27
        seen = set()
        for private, inversion, repetition, frame in frames:
            nominal = float(_private(private, NOMINAL))
            k = int(np.argmin(np.abs(ti - nominal)))
            # 2dseq frames: slice fastest (FG_SLICE then FG_MOVIE), slice = object number
            slice_index, movie = frame % 9, frame // 9
            assert movie == k
            position = order.index(slice_index)
            assert inversion == pytest.approx(ti[k] + position * period, abs=1e-3)
            assert float(_private(private, DELAY)) == pytest.approx(position * period, abs=1e-6)
            assert repetition == pytest.approx(tr[k])
            assert float(_private(private, READOUT)) == pytest.approx(11 * 5.175)
            assert _private(private, MODE) == "NONSELECTIVE"
            seen.add((k, slice_index))
        assert len(seen) == 27


@pytest.mark.parametrize("enhanced", [False, True])
def test_scan30_marks_selective_and_nonselective_frames(corpus, convert, enhanced):
    tr = np.array(_method_values(corpus, "30", "MultiRepTime"), float)
    _, written = convert(STUDY, "30", enhanced=enhanced)
    frames = _frames(written, enhanced)
    modes = [_private(p, MODE) for p, *_ in frames]
    assert sorted(modes) == ["NONSELECTIVE"] * 3 + ["SELECTIVE"] * 3
    for private, inversion, repetition, frame in frames:
        assert _private(private, MODE) == ("SELECTIVE" if frame % 2 == 0 else "NONSELECTIVE")
        assert float(_private(private, DELAY)) == 0.0  # one slice
        assert inversion == pytest.approx(float(_private(private, NOMINAL)))
        assert min(abs(repetition - tr)) < 1e-6


def test_vtr_scan_has_no_inversion_timing(convert):
    _, written = convert(STUDY, "11")
    ds = pydicom.dcmread(written[0].files[0])
    assert "InversionTime" not in ds
    block = ds.private_block(GROUP, CREATOR)
    for offset in (NOMINAL, DELAY, READOUT, MODE):
        assert block.get_tag(offset) not in ds


def test_nifti_sidecar_slice_timing(corpus):
    from xnatpic.nifti.sidecar import sidecar
    from xnatpic.nifti.volumes import volume_layouts

    from .conftest import load_reco

    ti = np.array(_method_values(corpus, "13", "PVM_FairTIR_Arr"), float)
    tr = np.array(_method_values(corpus, "13", "MultiRepTime"), float)
    recovery = float(_method_values(corpus, "13", "RecoveryTime")[0])
    order = [int(v) for v in _method_values(corpus, "13", "PVM_ObjOrderList")]
    period = (tr[0] - ti[0] - recovery) / len(order)
    series = load_reco(corpus, STUDY, "13")
    [layout] = volume_layouts(series)
    meta = sidecar(series, layout)
    expected = [order.index(column[0].axes["slice"]) * period / 1000.0 for column in layout.grid]
    np.testing.assert_allclose(meta["SliceTiming"], expected, atol=1e-8)
    np.testing.assert_allclose(meta["InversionTimes"], ti / 1000.0)  # protocol TIs
    np.testing.assert_allclose(meta["RepetitionTimes"], tr / 1000.0, atol=1e-8)
    assert meta["ReadoutDuration"] == pytest.approx(11 * 5.175 / 1000.0)
    assert meta["InversionModes"] == ["NONSELECTIVE"] * 3

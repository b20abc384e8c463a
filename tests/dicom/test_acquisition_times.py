"""Per-frame acquisition times of repeated acquisitions (CEST repetitions)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pydicom
import pytest

from xnatpic.dicom import write_dicom_series

from .conftest import load_reco


def _moment(ds: pydicom.Dataset) -> datetime:
    return datetime.strptime(ds.AcquisitionDate + ds.AcquisitionTime.ljust(13, "0")[:13],
                             "%Y%m%d%H%M%S.%f")


@pytest.mark.parametrize("enhanced", [False, True])
def test_repetitions_carry_their_start_time(corpus, tmp_path, enhanced):
    series = load_reco(corpus, "pv6-acidocest/study", "4")
    written = write_dicom_series(series, tmp_path, enhanced=enhanced)
    period = timedelta(seconds=34.48984 / 176)  # VisuAcqScanTime / repetitions
    if enhanced:
        ds = pydicom.dcmread(written[0].files[0])
        frames = ds.PerFrameFunctionalGroupsSequence
        stamps = [datetime.strptime(f.FrameContentSequence[0].FrameAcquisitionDateTime[:21],
                                    "%Y%m%d%H%M%S.%f") for f in frames]
    else:
        stamps = [_moment(pydicom.dcmread(p)) for p in written[0].files]
    start = datetime(2022, 3, 16, 12, 2, 38, 85000)  # VisuAcqDate
    assert stamps[0] == start
    assert abs(stamps[1] - (start + period)) < timedelta(microseconds=2)
    assert abs(stamps[-1] - (start + 175 * period)) < timedelta(microseconds=2)

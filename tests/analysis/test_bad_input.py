"""§5: bad input through the launcher: a clear error, a non-zero exit and nothing stored."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import DataElement

from tests.analysis.conftest import RESOURCES, last_error, launch_step


def _assert_failed_cleanly(result, session: Path, step: str, *fragments: str,
                           not_applicable: bool = False) -> str:
    assert not result.ok
    # no suitable scan: the step does not apply (exit 3, "not applicable"), not a failure
    expected = (3, "not applicable") if not_applicable else (1, "error")
    assert (result.exit_code, result.outcome == "not applicable") == (
        expected[0], not_applicable), (result.status, result.error)
    message = last_error(result)
    assert message.startswith(f"{step}: {expected[1]}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert not (session / "RESOURCES" / RESOURCES[step]).exists()
    assert result.stored == []
    return message


def _files(session: Path, scan: str) -> list[Path]:
    return sorted((session / "SCANS" / scan / "DICOM").glob("*.dcm"))


class TestBadInput:
    def test_single_echo_scan_given_to_t2map(self, session_factory, tmp_path):
        session = session_factory(["1", "2"])
        result = launch_step("t2map", session, tmp_path / "b", {"scan": "1"})
        _assert_failed_cleanly(result, session, "t2map", "scan 1", "t2map needs a multi-echo",
                               "no echo time, TR, TI, b-value or saturation offset varies")

    def test_no_multi_echo_scan_in_session(self, session_factory, tmp_path):
        session = session_factory(["1", "3"])
        result = launch_step("t2map", session, tmp_path / "b")
        _assert_failed_cleanly(result, session, "t2map", "no scan fits t2map",
                               "--param scan=ID", not_applicable=True)

    def test_mismatched_matrix_sizes(self, session_factory, tmp_path):
        session = session_factory(["2"])
        victim = _files(session, "2")[7]
        ds = pydicom.dcmread(victim)
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[:32, :48]).tobytes()
        ds.Rows, ds.Columns = 32, 48
        ds.save_as(victim)
        result = launch_step("t2map", session, tmp_path / "b", {"scan": "2"})
        _assert_failed_cleanly(result, session, "t2map", "scan 2: ", "matrix sizes differ",
                               "32x48", victim.name)

    def test_all_zero_data(self, session_factory, tmp_path):
        session = session_factory(["2"])
        for path in _files(session, "2"):
            ds = pydicom.dcmread(path)
            ds.PixelData = np.zeros_like(ds.pixel_array).tobytes()
            ds.save_as(path)
        result = launch_step("t2map", session, tmp_path / "b")
        _assert_failed_cleanly(result, session, "t2map", "every pixel of the series is zero")

    def test_nan_values_are_flagged(self, session_factory, tmp_path):
        session = session_factory(["2"])
        victim = _files(session, "2")[3]
        ds = pydicom.dcmread(victim)
        with warnings.catch_warnings():  # pydicom warns that NaN is not a valid DS
            warnings.simplefilter("ignore", UserWarning)
            ds[0x00281053] = DataElement(0x00281053, "DS", "NaN")  # RescaleSlope
            ds.save_as(victim)
        result = launch_step("t2map", session, tmp_path / "b")
        message = _assert_failed_cleanly(result, session, "t2map", "NaN or infinite",
                                         victim.name)
        rows, columns = ds.Rows, ds.Columns
        assert f"{rows * columns} samples in {rows * columns} voxels" in message

    def test_cest_without_m0_frame(self, session_factory, tmp_path):
        session = session_factory(["7"])
        removed = 0
        for path in _files(session, "7"):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if abs(float(ds.private_block(0x0029, "XNATPIC 1.0")[0x21].value)) >= 20:
                path.unlink()
                removed += 1
        assert removed == 5  # one M0 frame per slice
        result = launch_step("cest", session, tmp_path / "b")
        _assert_failed_cleanly(result, session, "cest", "scan 7: ", "no M0 (unsaturated) frame")

    @pytest.mark.parametrize("method", ["ir", "vtr"])
    def test_t1_method_without_matching_scan(self, session_factory, tmp_path, method):
        other = {"ir": "3", "vtr": "4"}[method]
        session = session_factory([other])
        result = launch_step("t1map", session, tmp_path / "b", {"method": method})
        _assert_failed_cleanly(result, session, "t1map", "no scan fits t1map",
                               not_applicable=True)

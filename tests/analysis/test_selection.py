"""Scan selection from DICOM attributes (never names)."""

from __future__ import annotations

import pydicom
import pytest

from xnatpic.analysis import NoScanError
from xnatpic.analysis.selection import describe_scan, select_scan, session_scans

KINDS = {"1": "single", "2": "t2", "3": "vtr", "4": "ir", "5": "t2star", "6": "diffusion",
         "7": "cest", "8": "wassr"}


class TestClassify:
    def test_every_phantom_scan(self, phantom_session):
        found = {s.scan_id: s.kind for s in session_scans(phantom_session)}
        assert found == KINDS

    @pytest.mark.parametrize(("step", "scan"), [("t2map", "2"), ("t2starmap", "5"),
                                                ("t1map", "3"), ("adcmap", "6"),
                                                ("cest", "7")])
    def test_automatic_choice(self, phantom_session, step, scan):
        assert select_scan(phantom_session, step).scan_id == scan

    def test_names_are_ignored(self, session_factory):
        """A multi-echo scan renamed to look like a T1 scan is still the T2 scan."""
        session = session_factory(["2"])
        for path in (session / "SCANS" / "2" / "DICOM").glob("*.dcm"):
            ds = pydicom.dcmread(path)
            ds.SeriesDescription = ds.ProtocolName = "T1map_RARE_VTR"
            ds.save_as(path)
        assert describe_scan(session, "2").kind == "t2"

    def test_gradient_echo_is_t2star(self, session_factory):
        session = session_factory(["2"])
        for path in (session / "SCANS" / "2" / "DICOM").glob("*.dcm"):
            ds = pydicom.dcmread(path)
            ds.ScanningSequence = "GR"
            ds.save_as(path)
        assert describe_scan(session, "2").kind == "t2star"

    def test_latest_of_several_wins(self, phantom_dicom, tmp_path):
        from tests.analysis.conftest import make_session

        session = make_session(tmp_path, {"2": phantom_dicom["2"], "12": phantom_dicom["2"]})
        assert select_scan(session, "t2map").scan_id == "12"

    def test_scan_of_wrong_kind(self, phantom_session):
        with pytest.raises(NoScanError, match=r"scan 3 .*t2map needs a multi-echo spin-echo"
                                              r".*variable-TR series .*\(7 repetition times"):
            select_scan(phantom_session, "t2map", scan_id="3")

    def test_unknown_scan(self, phantom_session):
        with pytest.raises(NoScanError, match=r"no scan '42' \(scans: 1, 2, 3"):
            select_scan(phantom_session, "t2map", scan_id="42")

    def test_mri2dicom_resource_is_found(self, phantom_dicom, tmp_path):
        from tests.analysis.conftest import make_session

        session = make_session(tmp_path, {"2": phantom_dicom["2"]})
        (session / "SCANS" / "2" / "DICOM").rename(session / "SCANS" / "2" / "MRI2DICOM")
        info = describe_scan(session, "2")
        assert info.kind == "t2" and info.folder.name == "MRI2DICOM"

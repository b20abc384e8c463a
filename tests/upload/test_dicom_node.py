"""``xnatpic upload --dicom-node``: C-STORE to dcmtk's storescp, a real DICOM peer."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from tests.upload.conftest import free_port as _free_port
from xnatpic.cli.main import main
from xnatpic.upload.dicom_node import parse_dicom_node
from xnatpic.upload.errors import DicomNodeError


def _received(folder: Path) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in folder.iterdir() if p.is_file()}


class TestDicomNode:
    def test_every_file_arrives(self, storescp, dicom_studies, tmp_path):
        node, out = storescp
        src, expected = dicom_studies
        rc = main(["upload", str(src), "--project", "PRECLIN", "--dicom-node", node,
                   "--jobs", "2", "--report", str(tmp_path / "r.json")])
        assert rc == 0
        sent = {sop for scans in expected.values() for sops in scans.values() for sop in sops}
        assert _received(out) == sent
        assert len(list(out.iterdir())) == len(sent)

    def test_converted_phantom_arrives(self, storescp, phantom_study, tmp_path):
        node, out = storescp
        rc = main(["upload", str(phantom_study), "--project", "PRECLIN", "--dicom-node", node,
                   "--work", str(tmp_path / "work"), "--report", str(tmp_path / "r.json")])
        assert rc == 0
        converted = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                     for p in (tmp_path / "work").rglob("*.dcm")}
        assert converted and _received(out) == converted

    def test_unreachable_node_fails_before_converting(self, dicom_studies, tmp_path, capsys):
        src, _ = dicom_studies
        rc = main(["upload", str(src), "--project", "PRECLIN", "--dicom-node",
                   f"NOBODY@127.0.0.1:{_free_port()}", "--retries", "1"])
        assert rc == 1
        assert "association refused or node unreachable" in capsys.readouterr().err


class TestParse:
    def test_parse(self):
        node = parse_dicom_node("PACS@pacs.example.org:104")
        assert (node.ae_title, node.host, node.port) == ("PACS", "pacs.example.org", 104)

    @pytest.mark.parametrize("text", ["PACS@host", "host:104", "A" * 17 + "@h:104",
                                      "PACS@h:99999"])
    def test_bad(self, text):
        with pytest.raises(DicomNodeError, match="expected AE@host:port"):
            parse_dicom_node(text)

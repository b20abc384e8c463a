"""Fixtures of the upload tests: the fake XNAT, synthetic DICOM studies, the phantom."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from tests.double.server import PASSWORD, USER, XnatDouble
from tests.oracles import require_executable

#: (animal, study description) of the synthetic DICOM studies, one session each.
STUDIES = (("mouse1", "study1"), ("mouse2", "study2"), ("mouse3", "study3"))
SERIES, IMAGES = (3, 5), 4


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[XnatDouble]:
    """A running fake XNAT with project PRECLIN; credentials in the environment."""
    server = XnatDouble(("PRECLIN", "PREARC")).start()
    monkeypatch.setenv("XNAT_USER", USER)
    monkeypatch.setenv("XNAT_PASS", PASSWORD)
    monkeypatch.delenv("XNAT_HOST", raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent-netrc")
    yield server
    server.stop()


def _uid(*parts: object) -> str:
    return pydicom.uid.generate_uid(entropy_srcs=[str(p) for p in parts])


def dicom_instance(study_uid: str, series_uid: str, series_number: int | str, index: int,
                   *, modality: str = "MR", animal: str = "mouse1", name: str = "study1"
                   ) -> pydicom.Dataset:
    """One small image instance (its SOPInstanceUID derived from series and index)."""
    sop = _uid("sop", series_uid, index)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.PatientName = animal, animal
    ds.StudyDescription, ds.StudyDate, ds.StudyTime = name, "20240101", "101500"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, series_number, index
    ds.SeriesDescription = f"T2_RARE_{series_number}"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = (np.arange(64, dtype=np.uint16) * index).tobytes()
    return ds


def write_dicom_studies(root: Path, studies: tuple[tuple[str, str], ...] = STUDIES,
                        *, modality: str = "MR",
                        series: tuple[int | str, ...] = SERIES
                        ) -> dict[str, dict[str, set[str]]]:
    """Write small DICOM studies; return ``{session label: {scan id: {SOP UIDs}}}`` with
    the scan ids XNAT gives (SeriesNumber as written, ``N-MR1`` for a number used twice)."""
    expected: dict[str, dict[str, set[str]]] = {}
    for animal, name in studies:
        study_uid = _uid("study", animal, name)
        label = f"{name}_20240101"
        expected[label] = {}
        for k, number in enumerate(series):
            folder = root / animal / name / f"series{k}"
            folder.mkdir(parents=True, exist_ok=True)
            series_uid = _uid("series", study_uid, number, k)
            scan_id = str(number)
            if scan_id in expected[label]:
                scan_id = f"{number}-{modality}1"
            for i in range(1, IMAGES + 1):
                ds = dicom_instance(study_uid, series_uid, number, i, modality=modality,
                                    animal=animal, name=name)
                ds.save_as(folder / f"IM{i:04d}.dcm", enforce_file_format=True)
                expected[label].setdefault(scan_id, set()).add(str(ds.SOPInstanceUID))
    return expected


@pytest.fixture
def dicom_studies(tmp_path: Path) -> tuple[Path, dict[str, dict[str, set[str]]]]:
    """Three synthetic DICOM studies below one folder, and what each session must hold."""
    root = tmp_path / "incoming"
    return root, write_dicom_studies(root)


@pytest.fixture(scope="session")
def phantom_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom ParaVision study (``xnatpic phantom OUT --snr 50``)."""
    from xnatpic.phantom import write_phantom

    out = tmp_path_factory.mktemp("phantom") / "phantom"
    write_phantom(out, snr=50.0, seed=0)
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """storescp listening on a free port, writing what it receives to a folder."""
    exe = require_executable("storescp", "dcmtk's; apt-get install dcmtk")
    out = tmp_path / "received"
    out.mkdir()
    port = free_port()
    # TCP_NODELAY=1: dcmtk's switch for Nagle's algorithm (else ~50 ms per C-STORE)
    proc = subprocess.Popen([exe, "-aet", "STORESCP", "+xa", "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TCP_NODELAY": "1"})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("storescp did not start listening")
    yield f"STORESCP@127.0.0.1:{port}", out
    proc.terminate()
    proc.wait(timeout=10)

"""Fixtures of the upload tests: the fake XNAT, synthetic DICOM studies, the phantom."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

from tests.double.server import PASSWORD, USER, XnatDouble

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


def write_dicom_studies(root: Path, studies: tuple[tuple[str, str], ...] = STUDIES
                        ) -> dict[str, dict[str, set[str]]]:
    """Write small MR DICOM studies; return ``{session label: {scan id: {SOP UIDs}}}``."""
    expected: dict[str, dict[str, set[str]]] = {}
    for animal, name in studies:
        study_uid = _uid("study", animal, name)
        label = f"{name}_20240101"
        expected[label] = {}
        for series in SERIES:
            folder = root / animal / name / f"series{series}"
            folder.mkdir(parents=True, exist_ok=True)
            series_uid = _uid("series", study_uid, series)
            for i in range(1, IMAGES + 1):
                sop = _uid("sop", series_uid, i)
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
                ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", series, i
                ds.SeriesDescription = f"T2_RARE_{series}"
                ds.Rows = ds.Columns = 8
                ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
                ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
                ds.PhotometricInterpretation = "MONOCHROME2"
                ds.PixelData = (np.arange(64, dtype=np.uint16) * i).tobytes()
                ds.save_as(folder / f"IM{i:04d}.dcm", enforce_file_format=True)
                expected[label].setdefault(str(series), set()).add(sop)
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

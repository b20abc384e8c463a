"""Fixtures for the DICOM writer tests: corpus conversion (cached) and dciodvfy."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.oracles import require_executable
from xnatpic.dicom import DeidentifyProfile, WrittenSeries, write_dicom_series
from xnatpic.errors import UnsupportedDataError
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import ImageSeries, load_series

#: Every study of the corpus (relative to the corpus root).
CORPUS_STUDIES = (
    "pv6-dicomifier/study",
    "pv6-acidocest/study",
    "pv360-csi/study",
    "pv5-misc/brukerMRI-msme",
    "pv5-misc/brukerMRI-tripilot",
    "pv5-misc/pvconv-epi/BadBanana_01",
)

Converted = tuple[ImageSeries, list[WrittenSeries]]


def load_reco(corpus: Path, study: str, scan: str, reco: str = "1") -> ImageSeries:
    """Load one corpus reco."""
    found = open_dataset(corpus / study).scan(scan)
    return load_series(next(r for r in found.recos if r.number == reco))


def image_recos(corpus: Path, study: str) -> list[ImageSeries]:
    """Every image reco of a corpus study (spectroscopy is skipped by the reader)."""
    series = []
    for scan in open_dataset(corpus / study).scans:
        for reco in scan.recos:
            try:
                series.append(load_series(reco))
            except UnsupportedDataError:
                continue
    return series


@pytest.fixture(scope="session")
def convert(corpus: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Callable[..., Converted]:
    """Convert a corpus reco once per session: ``convert(study, scan, reco, enhanced=...)``."""
    cache: dict[tuple, Converted] = {}

    def _convert(study: str, scan: str, reco: str = "1", *, enhanced: bool = False,
                 deidentify: DeidentifyProfile | None = None) -> Converted:
        key = (study, scan, reco, enhanced, deidentify)
        if key not in cache:
            series = load_reco(corpus, study, scan, reco)
            out = tmp_path_factory.mktemp(f"{scan}-{reco}-{'enh' if enhanced else 'cls'}")
            cache[key] = (series, write_dicom_series(series, out, enhanced=enhanced,
                                                     deidentify=deidentify))
        return cache[key]

    return _convert


def run_dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) reported by dciodvfy for one file."""
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                            check=False)
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    warnings = [line for line in lines if "Warning" in line]
    return errors, warnings


@pytest.fixture(scope="session")
def dciodvfy() -> Callable[[Path], tuple[list[str], list[str]]]:
    """dciodvfy as a function (skips when dicom3tools is not installed)."""
    require_executable("dciodvfy", "Debian dicom3tools; run `make tools`")
    return run_dciodvfy


@pytest.fixture(scope="session")
def dcm2niix() -> str:
    """Path of dcm2niix (skips when it is not installed)."""
    return require_executable("dcm2niix", "run `make tools`")


def sample(files: list[Path]) -> list[Path]:
    """First, middle and last file of a series."""
    return sorted({files[0], files[len(files) // 2], files[-1]})

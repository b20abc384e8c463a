"""Fixtures of the analysis tests: the converted phantom as an archive session, launches.

The phantom (SNR 100, seed 0) is written and converted to classic DICOM once per test run;
each session built from it holds ``SCANS/<scan>/DICOM/*.dcm`` as XNAT stores scans. Steps
run through the local launcher exactly as ``xnatpic launch ... --runtime local`` does,
with the step script as the ENTRYPOINT.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.oracles import require_folder
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.phantom import write_phantom
from xnatpic.xnat.launcher import LaunchOptions, LaunchResult, launch
from xnatpic.xnat.metadata import update_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
PIPELINES = PROJECT_ROOT / "pipelines"
CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "paravision"
#: Output resource label of each step (the command's Resource handler).
RESOURCES = {"t2map": "T2MAP", "t2starmap": "T2STARMAP", "t1map": "T1MAP",
             "adcmap": "ADCMAP", "cest": "CESTMAP"}


def make_session(root: Path, scans: dict[str, Path], *, label: str = "phantom_d0") -> Path:
    """A session folder in archive layout with ``SCANS/<id>/DICOM/`` copied from folders."""
    session = root / "PRECLIN" / "arc001" / label
    for scan_id, folder in scans.items():
        target = session / "SCANS" / scan_id / "DICOM"
        target.mkdir(parents=True)
        for path in sorted(Path(folder).glob("*.dcm")):
            shutil.copy2(path, target / path.name)
    (session / "SCANS").mkdir(parents=True, exist_ok=True)
    with update_project(root, "PRECLIN") as meta:  # XNAT's database rows, not a file
        meta.ensure_experiment(label, "XNAT_S00001", xsiType="xnat:mrSessionData")
    return session


def launch_step(step: str, session: Path, build_root: Path,
                params: dict[str, str] | None = None) -> LaunchResult:
    """Launch ``step``'s wrapper on ``session`` with the local runtime."""
    command = json.loads((COMMANDS / f"{step}.json").read_text())
    options = LaunchOptions(runtime="local", build_root=build_root, timeout=900,
                            entrypoint=[sys.executable, str(PIPELINES / step / "run.py")])
    return launch(command, f"xnatpic-{step}-session", session, params or {}, options)


def last_error(result: LaunchResult) -> str:
    """The last stderr line of a launch (the step's reason for failing)."""
    lines = Path(result.stderr).read_text().strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def phantom_study(tmp_path_factory) -> Path:
    """The phantom study at SNR 100 (seed 0), with truth/."""
    out = tmp_path_factory.mktemp("phantom") / "study"
    write_phantom(out, snr=100.0, seed=0)
    return out


@pytest.fixture(scope="session")
def phantom_dicom(phantom_study, tmp_path_factory) -> dict[str, Path]:
    """Scan id -> folder of classic DICOM files converted from the phantom."""
    out = tmp_path_factory.mktemp("phantom-dicom")
    code = xnatpic_main(["convert", str(phantom_study), "-o", str(out)])
    assert code == 0, "xnatpic convert failed on the phantom"
    folders = {folder_key(p.name): p for p in out.glob("*/*/*") if p.is_dir()}
    assert sorted(folders) == [str(i) for i in range(1, 9)], sorted(folders)
    return folders


@pytest.fixture(scope="session")
def phantom_session(phantom_dicom, tmp_path_factory) -> Path:
    """A session with every converted phantom scan (1-8) as SCANS/<id>/DICOM."""
    return make_session(tmp_path_factory.mktemp("archive"), phantom_dicom)


@pytest.fixture
def session_factory(phantom_dicom, tmp_path) -> Callable[..., Path]:
    """Build a fresh session from chosen phantom scans: ``factory(["2", "3"])``."""
    counter = [0]

    def factory(scan_ids: list[str], *, label: str | None = None) -> Path:
        counter[0] += 1
        return make_session(tmp_path / f"a{counter[0]}",
                            {s: phantom_dicom[s] for s in scan_ids},
                            label=label or f"s{counter[0]}")

    return factory


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real ParaVision corpus (skips when absent)."""
    return require_folder(CORPUS, "real ParaVision corpus")

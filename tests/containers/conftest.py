"""Fixtures of the container tests: the mri2dicom step module, archive sessions, images."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.oracles import missing_oracle, require_folder
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.xnat.errors import ContainerRuntimeError
from xnatpic.xnat.metadata import read_project, update_project
from xnatpic.xnat.runtime import detect_runtime, runtime_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STEP_SCRIPT = PROJECT_ROOT / "pipelines" / "mri2dicom" / "run.py"
BUILD_SCRIPT = PROJECT_ROOT / "containers" / "build-images.sh"
ACIDOCEST = PROJECT_ROOT.parent / "shared" / "data" / "paravision" / "pv6-acidocest" / "study"


@pytest.fixture(scope="session")
def step_module() -> ModuleType:
    """pipelines/mri2dicom/run.py imported as a module."""
    spec = importlib.util.spec_from_file_location("mri2dicom_step", STEP_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mri2dicom_step"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def acidocest_session(tmp_path) -> Path:
    """A session in archive layout holding the real pv6-acidocest study as PARAVISION."""
    require_folder(ACIDOCEST, "real ParaVision study pv6-acidocest")
    archive = tmp_path / "archive"
    session = archive / "PRECLIN" / "arc001" / "acido_d0"
    shutil.copytree(ACIDOCEST, session / "RESOURCES" / "PARAVISION" / "study")
    with update_project(archive, "PRECLIN") as meta:  # XNAT's database rows, not a file
        meta.ensure_experiment("acido_d0", "mouse1", xsiType="xnat:mrSessionData")
    return session


def session_subject_id(session: Path) -> str:
    """The accession id of the subject of an archive session (from its project's rows)."""
    archive, project = session.parents[2], session.parents[1].name
    meta = read_project(archive, project)
    experiment = meta.experiment(session.name)
    assert experiment is not None, f"no metadata for {session}"
    subject = meta.subject(experiment["subject"])
    assert subject is not None
    return subject["ID"]


@pytest.fixture(scope="session")
def container_runtime() -> str:
    """docker (with an engine) or podman; skips only when neither can run containers."""
    try:
        return detect_runtime()
    except ContainerRuntimeError as exc:
        missing_oracle(f"no container runtime can run here: {exc}")


@pytest.fixture(scope="session")
def built_images(container_runtime) -> dict[str, float]:
    """Build xnatpic-base and every step image once per test run (containers/build-images.sh).

    Returns
    -------
    dict
        ``{"seconds": build time}``.
    """
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False,
        env={**runtime_env(container_runtime), "RUNTIME": container_runtime,
             "XNATPIC": str(Path(sys.executable).parent / "xnatpic"),
             "PYTHON": sys.executable},
        timeout=1800,
    )
    if proc.returncode != 0:
        pytest.fail(f"containers/build-images.sh failed ({proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"seconds": time.monotonic() - start}


@pytest.fixture(scope="session")
def fair_dicom(tmp_path_factory) -> Path:
    """The real FAIR scan (pv6 scan 30) converted to DICOM: perfusion needs selective and
    non-selective inversions, which the phantom lacks."""
    study = PROJECT_ROOT.parent / "shared" / "data" / "paravision" / "pv6-dicomifier" / "study"
    require_folder(study, "real ParaVision study pv6-dicomifier")
    out = tmp_path_factory.mktemp("pv6-fair") / "dicom"
    assert xnatpic_main(["convert", str(study), "-o", str(out), "--scans", "30"]) == 0
    return next(p for p in out.glob("*/*/*") if p.is_dir() and folder_key(p.name) == "30")

"""The map steps' images run as XNAT would run them (docker or podman through the launcher).

The images are built once per test run (``built_images``); the phantom (SNR 100) is
written, converted and stored as an archive session once per module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.analysis.conftest import RESOURCES, make_session
from tests.analysis.helpers import run_dir
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.phantom import read_truth_map, write_phantom
from xnatpic.xnat.launcher import LaunchOptions, launch

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
#: The real FAIR scan (pv6 scan 30: selective and non-selective inversions), for perfusion,
#: which the phantom (non-selective IR only) cannot feed.


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """(study with truth, scan id -> converted DICOM folder)."""
    root = tmp_path_factory.mktemp("phantom-images")
    study = root / "study"
    write_phantom(study, snr=100.0, seed=0)
    assert xnatpic_main(["convert", str(study), "-o", str(root / "dicom")]) == 0
    return study, {folder_key(p.name): p for p in (root / "dicom").glob("*/*/*") if p.is_dir()}


def _launch(runtime: str, step: str, session: Path, build: Path,
            params: dict[str, str] | None = None):
    command = json.loads((COMMANDS / f"{step}.json").read_text())
    options = LaunchOptions(runtime=runtime, build_root=build, timeout=900)
    return launch(command, f"xnatpic-{step}-session", session, params or {}, options)


class TestMapImages:
    def test_t2map_accuracy_in_container(self, built_images, container_runtime, phantom,
                                         tmp_path):
        study, dicom = phantom
        session = make_session(tmp_path / "archive", {s: dicom[s] for s in ("1", "2", "3")})
        result = _launch(container_runtime, "t2map", session, tmp_path / "builds")
        assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
        resource = run_dir(session / "RESOURCES" / "T2MAP", "nlls-scan2")
        t2 = np.asarray(nib.load(resource / "nifti" / "T2.nii.gz").dataobj)
        truth = read_truth_map(study, "axial", "T2").transpose(2, 1, 0)
        labels = read_truth_map(study, "axial", "labels").transpose(2, 1, 0)
        for label in range(1, 7):
            inside = labels == label
            error = np.nanmedian((t2[inside] - truth[inside]) / truth[inside])
            assert abs(error) <= 0.01, (label, error)
        assert sorted((resource / "dicom" / "T2").glob("*.dcm"))
        provenance = json.loads((resource / "provenance.json").read_text())
        assert provenance["scans"] == {"source": "2"}

    def test_t2map_single_echo_fails_in_container(self, built_images, container_runtime,
                                                  phantom, tmp_path):
        _, dicom = phantom
        session = make_session(tmp_path / "archive", {"1": dicom["1"]})
        result = _launch(container_runtime, "t2map", session, tmp_path / "builds",
                         {"scan": "1"})
        assert not result.ok and result.exit_code == 1
        last = Path(result.stderr).read_text().strip().splitlines()[-1]
        assert last.startswith("t2map: error: scan 1 ") and "multi-echo" in last
        assert not (session / "RESOURCES").exists()

    @pytest.mark.parametrize(("step", "scans"), [("t2starmap", ("5",)), ("t1map", ("4",)),
                                                 ("adcmap", ("6",)), ("cest", ("7", "8"))])
    def test_other_steps_in_container(self, built_images, container_runtime, phantom,
                                      tmp_path, step, scans):
        _, dicom = phantom
        session = make_session(tmp_path / "archive", {s: dicom[s] for s in scans})
        result = _launch(container_runtime, step, session, tmp_path / "builds")
        assert result.ok, (step, result.error, Path(result.stderr).read_text()[-3000:])
        resource = run_dir(session / "RESOURCES" / RESOURCES[step])
        stats = json.loads((resource / "stats.json").read_text())
        assert stats["failed_voxels"] < 0.01 * stats["mask_voxels"]
        assert (resource / "report.html").stat().st_size > 1000
        shutil.rmtree(session)


def test_perfusion_in_container(built_images, container_runtime, fair_dicom, tmp_path):
    session = make_session(tmp_path / "archive", {"30": fair_dicom})
    result = _launch(container_runtime, "perfusion", session, tmp_path / "builds",
                     {"snr_floor": "2"})
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
    resource = run_dir(session / "RESOURCES" / "PERFUSIONMAP", "fair-scan30")
    stats = json.loads((resource / "stats.json").read_text())
    assert stats["outcome"] == "complete" and "CBF" in stats["maps"]
    for t1 in ("T1_selective", "T1_nonselective"):  # secondary maps: NIfTI only
        assert (resource / "nifti" / f"{t1}.nii.gz").is_file(), t1
    assert (resource / "report.html").stat().st_size > 1000
    # the command's new snr_floor input reached the step inside the image
    assert float(stats["noise"]["snr_floor"]) == 2.0, stats["noise"]

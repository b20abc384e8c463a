"""Images of roi-stats and project-summary, and map steps on real converted scans.

Chain as a study would run it, every step in its container through the launcher:
t2map on two phantom sessions → roi-stats (automatic mask) on each → project-summary
once on the project. Then the map steps on real ParaVision scans converted by xnatpic.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.analysis.conftest import make_session
from tests.analysis.helpers import run_dir
from tests.oracles import require_folder
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.phantom import write_phantom
from xnatpic.xnat.launcher import LaunchOptions, launch, launch_project
from xnatpic.xnat.metadata import update_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
PV6 = PROJECT_ROOT.parent / "shared" / "data" / "paravision" / "pv6-dicomifier" / "study"


def _command(step: str) -> dict:
    return json.loads((COMMANDS / f"{step}.json").read_text())


def _options(runtime: str, build: Path) -> LaunchOptions:
    return LaunchOptions(runtime=runtime, build_root=build, timeout=900)


def _ok(result) -> None:
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])


@pytest.fixture(scope="module")
def phantom_dicom(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("phantom-roi")
    write_phantom(root / "study", snr=100.0, seed=3)
    assert xnatpic_main(["convert", str(root / "study"), "-o", str(root / "dicom")]) == 0
    return {folder_key(p.name): p for p in (root / "dicom").glob("*/*/*") if p.is_dir()}


def test_t2map_roi_stats_and_project_summary_in_containers(built_images, container_runtime,
                                                           phantom_dicom, tmp_path):
    archive = tmp_path / "archive"
    sessions = []
    for label, group in (("mouse1_d0", "control"), ("mouse2_d0", "treated")):
        session = make_session(archive, {"2": phantom_dicom["2"]}, label=label)
        with update_project(archive, "PRECLIN") as meta:
            subject = label.split("_")[0]
            meta.ensure_experiment(label, subject, fields={"timepoint": "d0"})
            meta.ensure_subject(subject, group=group)
        sessions.append(session)
        _ok(launch(_command("t2map"), "xnatpic-t2map-session", session, {},
                   _options(container_runtime, tmp_path / "b" / label)))
        _ok(launch(_command("roi-stats"), "xnatpic-roi-stats-session", session, {},
                   _options(container_runtime, tmp_path / "r" / label)))
        rows = list(csv.DictReader((session / "RESOURCES" / "ROISTATS" / "auto" /
                                    "roi_stats.csv").open()))
        t2_rows = [r for r in rows if r["map"] == "T2"]
        assert t2_rows, rows[:3]
        # The automatic foreground holds the bath (T2 truth in truth.json) and the vials:
        # its median lies within the phantom's T2 range.
        assert 20 < float(t2_rows[0]["median"]) < 300, t2_rows[0]
    project = archive / "PRECLIN"
    _ok(launch_project(_command("project-summary"), "xnatpic-project-summary-project",
                       project, {}, _options(container_runtime, tmp_path / "p")))
    summary = project / "RESOURCES" / "PROJECT_SUMMARY"
    rows = list(csv.DictReader((summary / "summary.csv").open()))
    assert {r["session"] for r in rows} == {"mouse1_d0", "mouse2_d0"}
    assert {r["group"] for r in rows} == {"control", "treated"}
    assert list((summary / "plots").glob("*.png"))


@pytest.fixture(scope="module")
def pv6_dicom(tmp_path_factory) -> dict[str, Path]:
    require_folder(PV6, "real ParaVision study")
    out = tmp_path_factory.mktemp("pv6") / "dicom"
    assert xnatpic_main(["convert", str(PV6), "-o", str(out), "--scans", "9,11,21,30"]) == 0
    return {folder_key(p.name): p for p in out.glob("*/*/*") if p.is_dir()}


@pytest.mark.parametrize(("step", "scan", "resource", "name", "low", "high"), [
    # pasta phantom: T2 over the whole mask (saline "long", not dropped; ~509 ms), T1 ~3 s
    # at 7 T (recovery after the echo train); scan 21's ADC: see the test below
    ("t2map", "9", "T2MAP", "T2", 400.0, 650.0),
    ("t1map", "11", "T1MAP", "T1", 2000.0, 4000.0),
])
def test_map_steps_on_real_scans_in_containers(built_images, container_runtime, pv6_dicom,
                                               tmp_path, step, scan, resource, name, low,
                                               high):
    session = make_session(tmp_path / "archive", {scan: pv6_dicom[scan]}, label="pv6")
    _ok(launch(_command(step), f"xnatpic-{step}-session", session, {},
               _options(container_runtime, tmp_path / "b")))
    run = run_dir(session / "RESOURCES" / resource)
    data = np.asarray(nib.load(run / "nifti" / f"{name}.nii.gz").dataobj)
    mask = np.asarray(nib.load(run / "nifti" / "mask.nii.gz").dataobj) > 0
    values = data[mask & np.isfinite(data)]
    assert values.size > 0.3 * mask.sum()
    assert low <= float(np.median(values)) <= high, float(np.median(values))


def test_adcmap_on_noise_is_not_enough_signal_in_containers(built_images, container_runtime,
                                                            pv6_dicom, tmp_path):
    """pv6 scan 21 (SNR ~2): the step exits 4, "not enough signal", and nothing is stored
    (issue 10; tests/analysis/test_real_t2_adc.py has the independent noise check)."""
    session = make_session(tmp_path / "archive", {"21": pv6_dicom["21"]}, label="pv6")
    result = launch(_command("adcmap"), "xnatpic-adcmap-session", session, {},
                    _options(container_runtime, tmp_path / "b"))
    assert not result.ok and result.exit_code == 4, result.error
    assert "not enough signal" in Path(result.stderr).read_text()
    assert result.stored == []


def test_perfusion_on_the_real_fair_scan_in_containers(built_images, container_runtime,
                                                      pv6_dicom, tmp_path):
    """pv6 scan 30 (FAIR, selective and non-selective inversions of a pasta phantom): the
    perfusion image fits both T1 series and finds no flow (far below mouse brain's 100-200
    mL/100 g/min; tests/analysis/test_real_ir.py has the independent T1 reference)."""
    session = make_session(tmp_path / "archive", {"30": pv6_dicom["30"]}, label="pv6")
    _ok(launch(_command("perfusion"), "xnatpic-perfusion-session", session, {},
               _options(container_runtime, tmp_path / "b")))
    resource = run_dir(session / "RESOURCES" / "PERFUSIONMAP", "fair-scan30")
    provenance = json.loads((resource / "provenance.json").read_text())
    assert provenance["parameters"]["fair_modes"] == ["NONSELECTIVE", "SELECTIVE"]
    stats = json.loads((resource / "stats.json").read_text())
    assert stats["outcome"] == "complete" and "CBF" in stats["maps"]
    cbf = np.asarray(nib.load(resource / "nifti" / "CBF.nii.gz").dataobj)
    mask = np.asarray(nib.load(resource / "nifti" / "mask.nii.gz").dataobj) > 0
    values = cbf[mask & np.isfinite(cbf)]
    assert values.size > 0.3 * mask.sum()
    assert abs(float(np.median(values))) < 20.0, float(np.median(values))

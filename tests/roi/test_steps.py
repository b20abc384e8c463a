"""roi-stats run as the Container Service would, on a tiny archive.

It goes through ``xnatpic launch --runtime local`` (the whole launcher: command
resolution, mounts, exit status, outputs stored as resources) on every session
(``--project``, a bulk launch) and is stored as each session's ROISTATS resource.
project-summary's launches are tested in tests/summary/test_step.py; both commands' lint
and labels here.
"""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.accepted_lint import accepted_warnings
from tests.roi.helpers import write_map_resource
from xnatpic.xnat.metadata import update_project

ROOT = Path(__file__).resolve().parents[2]
XNATPIC = Path(sys.executable).parent / "xnatpic"
ROI_STATS = ROOT / "commands" / "roi-stats.json"
SUMMARY = ROOT / "commands" / "project-summary.json"
FOR = "1.2.826.0.1.3680043.10.1000.11"
SHAPE = (8, 8, 2)
AFFINE = np.diag([0.5, 0.5, 1.0, 1.0])
#: session -> (subject, group, timepoint, T2 in tumour, T2 in muscle)
SESSIONS = {"m1_d0": ("m1", "control", "d0", 60.0, 30.0),
            "m2_d0": ("m2", "control", "d0", 64.0, 32.0),
            "m3_d0": ("m3", "treated", "d0", 80.0, 31.0)}


def _labels() -> np.ndarray:
    labels = np.zeros(SHAPE, np.int16)
    labels[1:4, 1:4, :] = 1    # tumour, 18 voxels
    labels[5:7, 5:8, 0] = 2    # muscle, 6 voxels
    return labels


def _session(project: Path, label: str, *, mask_for: str = FOR,
             group_timepoint: tuple[str, str] | None = None) -> Path:
    subject, group, timepoint, tumour, muscle = SESSIONS.get(label, ("x", "", "", 1, 1))
    group, timepoint = group_timepoint or (group, timepoint)
    session = project / "arc001" / label
    session.mkdir(parents=True)
    # group is the subject's (XNAT's subject group); timepoint a custom session field;
    # both in the archive's metadata store (XNAT's database), as XNAT keeps no file for them
    with update_project(project.parent, project.name) as meta:
        meta.ensure_experiment(label, subject, fields={"timepoint": timepoint} if timepoint
                               else {})
        meta.ensure_subject(subject, group=group or None)
    labels = _labels()
    t2 = np.where(labels == 1, tumour, np.where(labels == 2, muscle, 5.0)).astype(np.float32)
    t2[1, 1, 0] = np.nan       # one failed fit in the tumour
    write_map_resource(session, "T2MAP", {"T2": t2}, AFFINE, frame_uid=FOR)
    adc = np.where(labels > 0, 1.5e-3, 3e-3).astype(np.float32)
    write_map_resource(session, "ADCMAP", {"ADC": adc}, AFFINE, frame_uid=FOR,
                       units={"ADC": "mm2/s"})
    masks = session / "RESOURCES" / "MASKS"
    masks.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, AFFINE), masks / "labels.nii.gz")
    (masks / "labels_labels.json").write_text(json.dumps(
        {"1": "tumour", "2": "muscle", "FrameOfReferenceUID": mask_for}))
    return session


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _launch(*args: str, build: Path) -> subprocess.CompletedProcess:
    entry = f"{shlex.quote(sys.executable)} {ROOT / 'pipelines' / 'roi_stats' / 'run.py'}"
    return subprocess.run([str(XNATPIC), "launch", str(ROI_STATS), "--wrapper",
                           "xnatpic-roi-stats-session", *args, "--runtime", "local",
                           "--entrypoint", entry, "--build-dir", str(build)],
                          capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture
def archive(tmp_path) -> Path:
    project = tmp_path / "archive" / "PRECLIN"
    for label in SESSIONS:
        _session(project, label)
    return project


def _roi_stats_on_project(archive: Path, tmp_path: Path) -> None:
    proc = _launch("--project", str(archive), "--jobs", "2", "--param", "mask=MASKS",
                   build=tmp_path / "build")
    assert proc.returncode == 0, proc.stderr[-3000:]


class TestRoiStatsStep:
    def test_bulk_launch_stores_roistats(self, archive, tmp_path):
        _roi_stats_on_project(archive, tmp_path)
        for label, (_s, _g, _t, tumour, muscle) in SESSIONS.items():
            res = archive / "arc001" / label / "RESOURCES" / "ROISTATS"
            assert sorted(p.relative_to(res).as_posix() for p in res.rglob("*")) == [
                "MASKS", "MASKS/provenance.json", "MASKS/roi_stats.csv", "MASKS/roi_stats.json",
                "ROISTATS_catalog.xml"]
            res = res / "MASKS"  # one folder per mask: another mask adds a folder
            rows = _read_csv(res / "roi_stats.csv")
            assert list(rows[0])[:11] == ["session", "map", "roi", "mean", "sd", "median",
                                          "q1", "q3", "n", "n_excluded", "units"]
            got = {(r["map"], r["roi"]): r for r in rows}
            assert set(got) == {("ADC", "tumour"), ("ADC", "muscle"), ("T2", "tumour"),
                                ("T2", "muscle")}
            t2t = got[("T2", "tumour")]
            assert (t2t["session"], t2t["n"], t2t["n_excluded"], t2t["units"]) == (
                label, "17", "1", "ms")
            assert float(t2t["mean"]) == pytest.approx(tumour)
            assert float(t2t["sd"]) == pytest.approx(0.0, abs=1e-6)
            assert float(got[("T2", "muscle")]["median"]) == pytest.approx(muscle)
            assert float(got[("T2", "muscle")]["iqr"]) == pytest.approx(0.0)
            assert got[("T2", "muscle")]["n"] == "6"
            adc = got[("ADC", "tumour")]
            assert (float(adc["mean"]), adc["n"], adc["units"]) == (
                pytest.approx(1.5e-3), "18", "mm2/s")
            assert (t2t["mask_source"], t2t["map_file"], t2t["mask_kind"]) == (
                "RESOURCES/MASKS/labels.nii.gz", "RESOURCES/T2MAP/nifti/T2.nii.gz", "resource")
            prov = json.loads((res / "provenance.json").read_text())
            assert prov["parameters"]["mask"] == "MASKS"
            assert prov["parameters"]["session_label"] == label

    def test_only_the_chosen_maps(self, archive, tmp_path):
        session = archive / "arc001" / "m1_d0"
        proc = _launch("--session", str(session), "--param", "mask=MASKS",
                       "--param", "maps=ADCMAP", build=tmp_path / "build")
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = _read_csv(session / "RESOURCES" / "ROISTATS" / "MASKS" / "roi_stats.csv")
        assert {r["map"] for r in rows} == {"ADC"}

    def test_auto_mask_needs_the_source_scan(self, archive, tmp_path):
        """These maps' provenance names no source scan (and the session holds no scan):
        the automatic mask is not made from a map instead, the step says why and stops
        (tests/roi/test_roi_collection.py checks it on a real source scan)."""
        session = archive / "arc001" / "m3_d0"
        build = tmp_path / "build"
        proc = _launch("--session", str(session), build=build)  # mask=auto
        assert proc.returncode == 1
        assert not (session / "RESOURCES" / "ROISTATS").exists()
        (stderr,) = build.glob("*/stderr.log")
        last = stderr.read_text().strip().splitlines()[-1]
        assert last.startswith("roi-stats: error: map RESOURCES/ADCMAP/nifti/ADC.nii.gz: its "
                               "provenance.json names no source scan"), last
        assert "auto_scan=<id>" in last

    def test_mask_of_another_frame_of_reference_fails(self, tmp_path):
        project = tmp_path / "archive" / "OTHER"
        session = _session(project, "m9_d0", mask_for="1.2.3.999")
        build = tmp_path / "build"
        proc = _launch("--session", str(session), "--param", "mask=MASKS", build=build)
        assert proc.returncode == 1
        assert not (session / "RESOURCES" / "ROISTATS").exists()
        (stderr,) = build.glob("*/stderr.log")
        last = stderr.read_text().strip().splitlines()[-1]
        assert last.startswith("roi-stats: error: ")
        assert "FrameOfReferenceUID 1.2.3.999 differs from that of map" in last
        assert "labels.nii.gz" in last

    def test_missing_mask_resource_fails(self, archive, tmp_path):
        session = archive / "arc001" / "m1_d0"
        build = tmp_path / "build"
        proc = _launch("--session", str(session), "--param", "mask=SEGS", build=build)
        assert proc.returncode == 1
        (stderr,) = build.glob("*/stderr.log")
        assert "SEGS: no such mask resource" in stderr.read_text().strip().splitlines()[-1]


@pytest.mark.parametrize("path", [ROI_STATS, SUMMARY])
def test_commands_lint_clean(path):
    proc = subprocess.run([str(XNATPIC), "commands", "lint", str(path), "--json"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    # only the warnings tests/accepted_lint.py accepts (W117 for roi-stats' user-picked
    # ROI collection), and no error
    assert (report["commands"], report["errors"]) == (1, 0), report
    accepted = accepted_warnings(json.loads(path.read_text()))
    assert {f["code"] for f in report["findings"]} <= accepted, report


@pytest.mark.parametrize("step", ["roi-stats", "project-summary"])
def test_dockerfile_label_matches_command(step):
    proc = subprocess.run([str(XNATPIC), "commands", "label", f"commands/{step}.json",
                           "--dockerfile", f"containers/{step}/Dockerfile", "--check"],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr

"""roi-stats and project-summary run as the Container Service would, on a tiny archive.

Both go through ``xnatpic launch --runtime local`` (the whole launcher: command
resolution, mounts, exit status, outputs stored as resources): roi-stats on every session
(``--project``, a bulk launch) and stored as each session's ROISTATS resource,
project-summary once on the project (its wrapper's root is a Project) and stored as the
project's PROJECT_SUMMARY resource.
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
    return subprocess.run([str(XNATPIC), "launch", str(ROI_STATS), *args, "--runtime", "local",
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
            assert sorted(p.name for p in res.iterdir()) == [
                "ROISTATS_catalog.xml", "provenance.json", "roi_stats.csv", "roi_stats.json"]
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
            prov = json.loads((res / "provenance.json").read_text())
            assert prov["parameters"]["mask"] == "MASKS"
            assert prov["parameters"]["session_label"] == label

    def test_only_the_chosen_maps(self, archive, tmp_path):
        session = archive / "arc001" / "m1_d0"
        proc = _launch("--session", str(session), "--param", "mask=MASKS",
                       "--param", "maps=ADCMAP", build=tmp_path / "build")
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = _read_csv(session / "RESOURCES" / "ROISTATS" / "roi_stats.csv")
        assert {r["map"] for r in rows} == {"ADC"}

    def test_auto_mask(self, archive, tmp_path):
        session = archive / "arc001" / "m3_d0"
        proc = _launch("--session", str(session), build=tmp_path / "build")  # mask=auto
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = _read_csv(session / "RESOURCES" / "ROISTATS" / "roi_stats.csv")
        # Otsu on the first map (ADC: 1.5e-3 in the ROIs, 3e-3 elsewhere): the 104
        # background voxels at 3e-3 are the bright class; the tumour (18 voxels) is
        # enclosed by them, so hole filling adds it; the muscle touches the edge: not added
        assert {r["roi"] for r in rows} == {"foreground"}
        adc = next(r for r in rows if r["map"] == "ADC")
        assert (adc["n"], float(adc["mean"])) == (
            "122", pytest.approx((104 * 3e-3 + 18 * 1.5e-3) / 122))
        t2 = next(r for r in rows if r["map"] == "T2")
        assert (t2["n"], t2["n_excluded"]) == ("121", "1")

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


def _launch_summary(project: Path, build: Path, *args: str) -> subprocess.CompletedProcess:
    """``xnatpic launch project-summary --project PROJECT``: one launch on the project."""
    entry = f"{shlex.quote(sys.executable)} {ROOT / 'pipelines' / 'project_summary' / 'run.py'}"
    return subprocess.run([str(XNATPIC), "launch", str(SUMMARY), "--project", str(project),
                           *args, "--runtime", "local", "--entrypoint", entry,
                           "--build-dir", str(build)],
                          capture_output=True, text=True, check=False, timeout=300)


def _run_project_summary(project: Path, build: Path) -> Path:
    proc = _launch_summary(project, build)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(build.glob("*/stdout.log"))) == 1  # launched once, not per session
    return project / "RESOURCES" / "PROJECT_SUMMARY"


class TestProjectSummary:
    def test_summary_csv_plots_and_html(self, archive, tmp_path):
        _roi_stats_on_project(archive, tmp_path)
        # a 4th session without ROISTATS: its maps' stats.json are used
        _session(archive, "m4_d7", group_timepoint=("treated", "d7"))
        dest = _run_project_summary(archive, tmp_path / "summary")
        assert (dest / "PROJECT_SUMMARY_catalog.xml").exists()

        rows = _read_csv(dest / "summary.csv")
        assert list(rows[0])[:8] == ["project", "subject", "session", "group", "timepoint",
                                     "resource", "map", "roi"]
        roistats = [r for r in rows if r["source"] == "ROISTATS"]
        assert len(roistats) == 3 * 4
        for label, (subject, group, timepoint, tumour, _m) in SESSIONS.items():
            (row,) = [r for r in roistats if r["session"] == label and r["map"] == "T2"
                      and r["roi"] == "tumour"]
            assert (row["project"], row["subject"], row["group"], row["timepoint"]) == (
                "PRECLIN", subject, group, timepoint)
            assert (float(row["mean"]), row["n"], row["n_excluded"]) == (
                pytest.approx(tumour), "17", "1")
        whole = [r for r in rows if r["session"] == "m4_d7"]
        assert {(r["map"], r["roi"], r["source"], r["timepoint"]) for r in whole} == {
            ("T2", "whole_map", "stats.json", "d7"), ("ADC", "whole_map", "stats.json", "d7")}
        # m4_d7 has 1 in both ROIs, 5 elsewhere, one NaN: 127 valid voxels of 128
        t2 = next(r for r in whole if r["map"] == "T2")
        assert (t2["n"], t2["n_excluded"], t2["units"]) == ("127", "1", "ms")
        assert float(t2["mean"]) == pytest.approx((23 * 1.0 + 104 * 5.0) / 127)

        plots = sorted(p.name for p in (dest / "plots").iterdir())
        assert plots == ["ADC_muscle.png", "ADC_tumour.png", "ADC_whole_map.png",
                         "T2_muscle.png", "T2_tumour.png", "T2_whole_map.png"]
        assert all((dest / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
        page = (dest / "summary.html").read_text()
        assert "<img src='plots/T2_tumour.png'" in page
        # per-group table: control T2 tumour mean of (60, 64) = 62 over 2 sessions
        assert "<td>T2</td><td>tumour</td><td>control | d0</td><td>2</td><td>2</td>" \
               "<td>62</td>" in page
        prov = json.loads((dest / "provenance.json").read_text())
        assert prov["sessions"] == ["m1_d0", "m2_d0", "m3_d0", "m4_d7"]
        assert prov["parameters"]["project"] == "PRECLIN"

    def test_no_statistics_fails(self, tmp_path):
        project = tmp_path / "archive" / "EMPTY"
        (project / "arc001" / "s1" / "RESOURCES" / "OTHER").mkdir(parents=True)
        build = tmp_path / "build"
        proc = _launch_summary(project, build)
        assert proc.returncode == 1
        (stderr,) = build.glob("*/stderr.log")
        assert "none of 1 session(s) has ROISTATS" in stderr.read_text().strip().splitlines()[-1]
        assert not (project / "RESOURCES").exists()  # nothing stored on a failed launch


@pytest.mark.parametrize("path", [ROI_STATS, SUMMARY])
def test_commands_lint_clean(path):
    proc = subprocess.run([str(XNATPIC), "commands", "lint", str(path), "--json"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    # The only finding allowed is W104: commands/ names images without a registry host (the
    # prefix is added at build and register time, see containers/README.md).
    assert (report["commands"], report["errors"]) == (1, 0), report
    assert [f["code"] for f in report["findings"]] == ["W104"], report


@pytest.mark.parametrize("step", ["roi-stats", "project-summary"])
def test_dockerfile_label_matches_command(step):
    proc = subprocess.run([str(XNATPIC), "commands", "label", f"commands/{step}.json",
                           "--dockerfile", f"containers/{step}/Dockerfile", "--check"],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr

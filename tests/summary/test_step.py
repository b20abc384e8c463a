"""project-summary launched on a project as the Container Service would, on known values.

Twelve sessions: 2 groups × 3 animals × 2 timepoints, each with a T2 fit, two T1 fits
(VTR and IR) with their R_squared, and a CEST run with Z-spectrum frames. Group (the
subject's) and timepoint (a session field) live in the archive's metadata store, read by
the step over XNAT's REST API through ``xnatpic launch``. The files are checked against
the values the sessions were built with (numpy on the known values), and the page is
rendered in headless Chromium (tests/browser.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.browser import render
from tests.summary.helpers import SUMMARY, launch, read_csv, register, write_run

SHAPE = (3, 3, 1)
#: (group, timepoint) -> T2 of each of the 3 animals (whole-map value)
T2 = {("control", "d0"): [58.0, 61.0, 63.5], ("control", "d7"): [60.0, 62.0, 64.0],
      ("treated", "d0"): [70.0, 73.0, 71.0], ("treated", "d7"): [85.0, 90.0, 88.0]}


def _write(project: Path, label: str, t2: float) -> None:
    session = project / "arc001" / label
    write_run(session, "T2MAP", step="t2map", method="nlls", scan="9", maps={
        "T2": (np.full(SHAPE, t2), "ms", "primary"),
        "R_squared": (np.full(SHAPE, 0.58), "", "byproduct")})
    write_run(session, "T1MAP", step="t1map", method="vtr", scan="11", maps={
        "T1": (np.full(SHAPE, 30 * t2), "ms", "primary"),
        "R_squared": (np.full(SHAPE, 0.998), "", "byproduct")})
    write_run(session, "T1MAP", step="t1map", method="ir", scan="13", maps={
        "T1": (np.full(SHAPE, 25 * t2), "ms", "primary")})
    write_run(session, "CESTMAP", step="cest", method="lorentzian", scan="4", maps={
        **{f"Z_B0corrected_{i}": (np.full(SHAPE, 0.5), "", "spectrum") for i in range(12)}})


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    archive = tmp_path_factory.mktemp("archive")
    project = archive / "PRECLIN"
    for (group, timepoint), values in T2.items():
        for i, t2 in enumerate(values):
            label = f"{group[:3]}{i}_{timepoint}"
            _write(project, label, t2)
            register(archive, "PRECLIN", label, f"{group}{i}", group, timepoint)
    return project


def _launch(project: Path, build: Path, *args: str) -> subprocess.CompletedProcess:
    return launch(SUMMARY, "--project", project, build, *args)


@pytest.fixture(scope="module")
def summary(project, tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("build")
    proc = _launch(project, build)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(build.glob("*/stdout.log"))) == 1  # launched once, not per session
    return project / "RESOURCES" / "PROJECT_SUMMARY"


def test_group_table_against_the_known_values(summary):
    groups = read_csv(summary / "groups.csv")
    keys = {(g["map"], g["units"], g["step"], g["method"], g["roi"]) for g in groups}
    # primary maps only: no R_squared, no Z frames; two T1 methods apart
    assert keys == {("T2", "ms", "t2map", "nlls", "whole_map"),
                    ("T1", "ms", "t1map", "vtr", "whole_map"),
                    ("T1", "ms", "t1map", "ir", "whole_map")}
    for g in groups:
        scale = {"nlls": 1, "vtr": 30, "ir": 25}[g["method"]]
        x = scale * np.array(T2[(g["group"], g["timepoint"])])
        assert int(g["n_animals"]) == 3
        assert float(g["mean"]) == pytest.approx(x.mean(), rel=1e-9)
        assert float(g["sd"]) == pytest.approx(x.std(ddof=1), rel=1e-9)
        assert float(g["median"]) == pytest.approx(np.median(x), rel=1e-9)
    t2 = [(g["timepoint"], g["group"]) for g in groups if g["map"] == "T2"]
    assert t2 == [("d0", "control"), ("d0", "treated"), ("d7", "control"), ("d7", "treated")]


def test_comparisons_and_animals(summary):
    comparisons = [c for c in read_csv(summary / "comparisons.csv") if c["map"] == "T2"]
    assert [(c["timepoint"], c["test"], c["n_per_group"]) for c in comparisons] == [
        ("d0", "Welch t-test", "control=3; treated=3"),
        ("d0", "Mann-Whitney U", "control=3; treated=3"),
        ("d7", "Welch t-test", "control=3; treated=3"),
        ("d7", "Mann-Whitney U", "control=3; treated=3")]
    late = comparisons[3]
    assert float(late["effect_size"]) == -1.0  # every treated animal above every control
    assert float(late["p_value"]) == pytest.approx(0.1)  # exact, the smallest for 3 vs 3
    animals = [a for a in read_csv(summary / "animals.csv") if a["map"] == "T2"]
    assert len(animals) == 12
    treated0 = [a for a in animals if a["animal"] == "treated0"]
    assert [(a["timepoint"], float(a["value"]), a["sessions"]) for a in treated0] == [
        ("d0", 70.0, "tre0_d0"), ("d7", 85.0, "tre0_d7")]


def test_session_table_keeps_every_role(summary):
    rows = read_csv(summary / "summary.csv")
    assert len(rows) == 12 * (2 + 2 + 1 + 12)
    r2 = {(r["step"], r["method"], r["mean"]) for r in rows if r["map"] == "R_squared"}
    assert r2 == {("t2map", "nlls", "0.58"), ("t1map", "vtr", "0.998")}
    assert {r["role"] for r in rows if r["map"].startswith("Z_")} == {"spectrum"}
    # tidy: numpy reads the numeric columns as numbers, one header, no index column
    table = np.genfromtxt(summary / "summary.csv", delimiter=",", names=True, dtype=None,
                          encoding="utf-8")
    assert table.dtype["mean"].kind == "f" and table.dtype["n"].kind in "iu"
    assert table.shape == (len(rows),)
    data = json.loads((summary / "summary.json").read_text())
    assert data["included_roles"] == ["primary"]
    assert len(data["rows"]) == len(rows) and len(data["groups"]) == 12


def test_plots_and_page_render(summary, tmp_path):
    plots = sorted(p.name for p in (summary / "plots").iterdir())
    assert plots == ["t1map_ir_T1_whole-map.png", "t1map_vtr_T1_whole-map.png",
                     "t2map_nlls_T2_whole-map.png"]
    page = render(summary / "summary.html", screenshot=tmp_path / "summary.png")
    assert page.problems == []
    assert len(page.images) == 3
    assert "T1 (ms) in ROI whole_map — t1map, method vtr" in page.text
    assert "Kept out of the comparisons (ask with include=byproducts,spectra)" in page.text
    assert "Z_B0corrected_9, Z_B0corrected_10, Z_B0corrected_11" in page.text  # natural
    assert (tmp_path / "summary.png").stat().st_size > 10_000
    # a link to every session's index page, in the summary resource
    sessions = sorted(p.name for p in (summary / "sessions").iterdir())
    assert len(sessions) == 12
    assert {link.rsplit("/PROJECT_SUMMARY/", 1)[1] for link in page.links
            if "/sessions/" in link} == {f"sessions/{s}/index.html" for s in sessions}
    index = render(summary / "sessions" / "tre0_d7" / "index.html")
    assert index.problems == []
    assert "vtr-scan11" in index.text and "ir-scan13" in index.text


def test_include_byproducts(project, tmp_path):
    project = Path(shutil.copytree(project.parent, tmp_path / "archive")) / project.name
    proc = _launch(project, tmp_path / "build", "--param", "include=byproducts",
                   "--param", "plots=false")
    assert proc.returncode == 0, proc.stderr[-3000:]
    groups = read_csv(project / "RESOURCES" / "PROJECT_SUMMARY" / "groups.csv")
    r2 = {(g["step"], g["method"], g["mean"]) for g in groups if g["map"] == "R_squared"}
    # the T1 fit's R² never averaged with the T2 fit's
    assert r2 == {("t2map", "nlls", "0.58"), ("t1map", "vtr", "0.998")}
    assert not [g for g in groups if g["map"].startswith("Z_")]


def test_unknown_include_word_fails(project, tmp_path):
    build = tmp_path / "build"
    proc = _launch(project, build, "--param", "include=residuals")
    assert proc.returncode != 0
    (stderr,) = build.glob("*/stderr.log")
    assert "unknown residuals: give byproducts and/or spectra" in stderr.read_text()


def test_no_statistics_fails(tmp_path):
    project = tmp_path / "archive" / "EMPTY"
    (project / "arc001" / "s1" / "RESOURCES" / "OTHER").mkdir(parents=True)
    build = tmp_path / "build"
    proc = _launch(project, build)
    assert proc.returncode == 1
    (stderr,) = build.glob("*/stderr.log")
    assert "none of 1 session(s) has ROISTATS" in stderr.read_text().strip().splitlines()[-1]
    assert not (project / "RESOURCES").exists()  # nothing stored on a failed launch

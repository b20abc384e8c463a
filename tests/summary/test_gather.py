"""Gathering a project's statistics: one row per session × run × map × ROI, never pooled.

The session holds what the issue saw mixed: a T2 fit and two T1 fits (VTR and IR) of one
session, each with its own R_squared, and CEST Z-spectrum frames beside its primary maps.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.roi.helpers import write_map_resource
from tests.summary.helpers import write_run
from xnatpic.roi.errors import RoiError
from xnatpic.roi.summary import gather_project, session_runs

SHAPE = (4, 4, 2)


def _session(root, label="s1"):
    session = root / "P" / "arc001" / label
    write_run(session, "T2MAP", step="t2map", method="nlls", scan="9", maps={
        "T2": (np.full(SHAPE, 40.0), "ms", "primary"),
        "R_squared": (np.full(SHAPE, 0.583), "", "byproduct")})
    write_run(session, "T1MAP", step="t1map", method="vtr", scan="11", maps={
        "T1": (np.full(SHAPE, 3035.0), "ms", "primary"),
        "R_squared": (np.full(SHAPE, 0.998), "", "byproduct")})
    write_run(session, "T1MAP", step="t1map", method="ir", scan="13", maps={
        "T1": (np.full(SHAPE, 2164.0), "ms", "primary")})
    write_run(session, "CESTMAP", step="cest", method="lorentzian", scan="4", maps={
        "MTRasym_2ppm": (np.full(SHAPE, 0.011), "", "primary"),
        **{f"Z_B0corrected_{i}": (np.full(SHAPE, 0.9 - i / 100), "", "spectrum")
           for i in (0, 1, 2, 10, 11)}})
    return session


def test_two_t1_methods_and_r_squared_stay_apart(tmp_path):
    session = _session(tmp_path)
    rows, empty = gather_project([session])
    assert empty == []
    by = {(r["map"], r["step"], r["method"]): r for r in rows}
    assert len(by) == len(rows) == 11  # no two rows share map, step and method
    assert by[("T1", "t1map", "vtr")]["mean"] == 3035.0
    assert by[("T1", "t1map", "ir")]["mean"] == 2164.0
    assert by[("R_squared", "t1map", "vtr")]["mean"] == pytest.approx(0.998)
    assert by[("R_squared", "t2map", "nlls")]["mean"] == pytest.approx(0.583)
    vtr = by[("T1", "t1map", "vtr")]
    assert (vtr["run_key"], vtr["scan"], vtr["resource"], vtr["units"], vtr["roi"],
            vtr["role"], vtr["n"], vtr["source"]) == (
        "vtr-scan11", "11", "T1MAP", "ms", "whole_map", "primary", 32.0,
        "arc001/s1/RESOURCES/T1MAP/vtr-scan11/stats.json")
    roles = {r["map"]: r["role"] for r in rows}
    assert roles["R_squared"] == "byproduct" and roles["Z_B0corrected_10"] == "spectrum"
    assert roles["MTRasym_2ppm"] == "primary"


def test_runs_in_natural_order(tmp_path):
    session = tmp_path / "s"
    for scan in ("100", "20", "3"):
        write_run(session, "T2MAP", step="t2map", method="nlls", scan=scan,
                  maps={"T2": (np.ones(SHAPE), "ms", "primary")})
    assert [r.run_key for r in session_runs(session)] == [
        "nlls-scan3", "nlls-scan20", "nlls-scan100"]


def _roistats(session, rows):
    folder = session / "RESOURCES" / "ROISTATS"
    folder.mkdir(parents=True)
    with (folder / "roi_stats.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["session", "map", "roi", "mean", "sd", "n",
                                                "units", "resource", "run_key", "flag",
                                                "mask_source"])
        writer.writeheader()
        for r in rows:
            writer.writerow({"session": session.name, "sd": 1, "n": 10, "units": "ms",
                             "flag": "", "mask_source": "MASKS/labels.nii.gz", **r})


def test_roistats_rows_take_their_run(tmp_path):
    session = _session(tmp_path)
    _roistats(session, [
        {"map": "T1", "roi": "tumour", "mean": 2500, "resource": "T1MAP",
         "run_key": "vtr-scan11"},
        {"map": "T1", "roi": "tumour", "mean": 1900, "resource": "T1MAP/ir-scan13",
         "run_key": ""},
        {"map": "T2", "roi": "tumour", "mean": 55, "resource": "T2MAP", "run_key": ""},
        # a T1 row that does not say which of the two T1 runs it is: not used
        {"map": "T1", "roi": "muscle", "mean": 1, "resource": "T1MAP", "run_key": ""},
    ])
    gathered = gather_project([session])
    tumour = {(r["method"], r["map"]): r["mean"] for r in gathered.rows
              if r["roi"] == "tumour"}
    assert tumour == {("vtr", "T1"): 2500.0, ("ir", "T1"): 1900.0, ("nlls", "T2"): 55.0}
    assert all(r["source"] == "arc001/s1/RESOURCES/ROISTATS/roi_stats.csv"
               and r["mask_source"] == "MASKS/labels.nii.gz"
               for r in gathered.rows if r["roi"] == "tumour")
    (skipped,) = gathered.skipped
    assert "T1MAP T1 in muscle" in skipped
    # CEST had no ROI statistics: its whole-map statistics are used; the others are not
    whole = {(r["step"], r["roi"]) for r in gathered.rows if r["roi"] == "whole_map"}
    assert whole == {("cest", "whole_map")}


def test_older_layout_keeps_working(tmp_path):
    """A resource with stats.json at its top (before one folder per run)."""
    session = tmp_path / "P" / "arc001" / "old"
    write_map_resource(session, "T2MAP", {"T2": np.full(SHAPE, 40.0)}, np.eye(4))
    (row,) = gather_project([session]).rows
    assert (row["map"], row["step"], row["method"], row["run_key"], row["role"]) == (
        "T2", "t2map", "", "", "primary")


def test_broken_stats_json_names_the_file(tmp_path):
    session = _session(tmp_path)
    bad = session / "RESOURCES" / "T2MAP" / "nlls-scan9" / "stats.json"
    bad.write_text("{not json")
    with pytest.raises(RoiError, match=r"T2MAP/nlls-scan9/stats.json: not valid JSON"):
        gather_project([session])


def test_map_missing_from_stats_json_is_a_byproduct(tmp_path):
    """roi-stats measures every NIfTI of a run; a map the step did not list in stats.json
    (older steps listed only their primary maps) is not compared by default."""
    session = _session(tmp_path)
    stats = session / "RESOURCES" / "T2MAP" / "nlls-scan9" / "stats.json"
    data = json.loads(stats.read_text())
    del data["maps"]["R_squared"]
    stats.write_text(json.dumps(data))
    _roistats(session, [{"map": "R_squared", "roi": "tumour", "mean": 0.6,
                         "resource": "T2MAP", "run_key": "nlls-scan9"}])
    (row,) = [r for r in gather_project([session]).rows if r["roi"] == "tumour"]
    assert row["role"] == "byproduct"

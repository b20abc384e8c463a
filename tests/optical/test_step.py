"""The bli-quant step: a session with IVIS folders → BLIMAP rows that project-summary
gathers into per-animal values by group and time point."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

from tests.optical.conftest import FLUX, default_click
from xnatpic.optical.synthetic import GaussianSource, SyntheticRoi, write_click
from xnatpic.roi.summary import gather_project

RUN = Path(__file__).resolve().parents[2] / "pipelines" / "bli_quant" / "run.py"


def _step():
    spec = importlib.util.spec_from_file_location("bli_quant_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _session(root: Path, label: str, flux: float, day: str) -> Path:
    session = root / "arc001" / label
    click = default_click(click_number=f"{label}_001", sources=[
        GaussianSource(4.0, 6.0, 0.5, flux)], rois=[SyntheticRoi("ROI 1", 4, 6, 4, 4)],
        labels={"Animal Number": "M1", "Group": "treated", "Time Point": day})
    write_click(session / "RESOURCES" / "IVIS" / click.click_number, click)
    return session


def test_step_rows_reach_project_summary(tmp_path: Path):
    step = _step()
    growth = {"d1": FLUX, "d7": 4 * FLUX}
    sessions = []
    for day, flux in growth.items():
        session = _session(tmp_path / "P1", f"M1_{day}", flux, day)
        out = tmp_path / "out" / day
        assert step.run(["--input", str(session), "--output", str(out),
                         "--session-label", session.name]) == 0
        produced = out / "blimap"
        assert (produced / f"overlay_{session.name}_001.png").stat().st_size > 0
        with (produced / "bli_quant.csv").open() as fh:
            (row,) = list(csv.DictReader(fh))
        assert (row["group"], row["timepoint"], row["roi_source"]) == ("treated", day,
                                                                        "living_image")
        # archive the output as XNAT would: session resource BLIMAP
        target = session / "RESOURCES" / "BLIMAP"
        target.mkdir(parents=True)
        (target / "stats.json").write_text((produced / "stats.json").read_text())
        sessions.append(session)
    rows, empty = gather_project(sessions)
    assert empty == []
    flux_rows = {r["session"]: r for r in rows if r["map"] == "total_flux"}
    inside = 1 - math.exp(-(2.0 ** 2) / (2 * 0.5 ** 2))  # 4 cm ROI, σ 0.5 cm
    for day, flux in growth.items():
        row = flux_rows[f"M1_{day}"]
        assert row["units"] == "p/s" and row["resource"] == "BLIMAP"
        assert row["mean"] == pytest.approx(flux * inside, rel=5e-3)
    radiance = [r for r in rows if r["map"] == "average_radiance"]
    assert {r["units"] for r in radiance} == {"p/s/cm²/sr"}


def test_step_without_ivis_data_is_not_applicable(tmp_path: Path, capsys):
    """An MRI session (no IVIS data) is 'not applicable' (exit 3 with the mark the launcher
    and bulk launch read), as a map step on an IVIS session, not an error."""
    (tmp_path / "session" / "SCANS").mkdir(parents=True)
    assert _step().run(["--input", str(tmp_path / "session"),
                        "--output", str(tmp_path / "out")]) == 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("bli-quant: not applicable: ") and "no IVIS Living Image" in last


def test_command_json_maps_every_flag():
    command = json.loads((RUN.parents[2] / "commands" / "bli-quant.json").read_text())
    line = command["command-line"]
    for item in command["inputs"]:
        assert item["replacement-key"] in line


def test_step_with_an_roi_collection(tmp_path: Path):
    from tests.optical.conftest import write_disc_seg
    from xnatpic.optical import open_ivis
    from xnatpic.optical.dicom import write_ivis_dicom

    session = _session(tmp_path / "P1", "M1_d1", FLUX, "d1")
    click = session / "RESOURCES" / "IVIS" / "M1_d1_001"
    photo = write_ivis_dicom(open_ivis(click), tmp_path / "dicom")[0].files[0]
    write_disc_seg(photo, session / "RESOURCES" / "ROI" / "seg.dcm", x_cm=4.0, y_cm=6.0,
                   radius_cm=1.0)
    out = tmp_path / "out"
    assert _step().run(["--input", str(session), "--output", str(out), "--rois",
                        "collection"]) == 0
    with (out / "blimap" / "bli_quant.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["roi"], row["roi_source"]) == ("tumour", "collection")
    assert float(row["total"]) == pytest.approx(FLUX * (1 - math.exp(-2.0)), rel=5e-3)


def test_step_refuses_a_mask_of_another_session(tmp_path: Path, capsys):
    from tests.optical.conftest import write_disc_seg
    from xnatpic.optical import open_ivis
    from xnatpic.optical.dicom import write_ivis_dicom

    session = _session(tmp_path / "P1", "M1_d1", FLUX, "d1")
    other = _session(tmp_path / "P1", "M2_d1", FLUX, "d1")
    photo = write_ivis_dicom(open_ivis(other / "RESOURCES" / "IVIS" / "M2_d1_001"),
                             tmp_path / "dicom")[0].files[0]
    write_disc_seg(photo, session / "RESOURCES" / "ROI" / "seg.dcm", x_cm=4.0, y_cm=6.0,
                   radius_cm=1.0)
    assert _step().run(["--input", str(session), "--output", str(tmp_path / "out"),
                        "--rois", "collection"]) == 1
    assert "frame of reference of no acquisition" in capsys.readouterr().err


def test_step_on_a_deidentified_session_reads_the_converted_series(tmp_path: Path):
    """No raw folder (de-identified upload): the signal is read back through its rescale."""
    from xnatpic.dicom.deidentify import DeidentifyProfile
    from xnatpic.optical import open_ivis
    from xnatpic.optical.dicom import write_ivis_dicom
    from xnatpic.optical.rois import AUTO_FRACTION, AUTO_MARGIN_CM

    raw = write_click(tmp_path / "raw", default_click(rois=[]))
    session = tmp_path / "P1" / "arc001" / "S1"
    for series in write_ivis_dicom(open_ivis(raw), tmp_path / "dicom",
                                   deidentify=DeidentifyProfile(salt="x" * 20)):
        target = session / "SCANS" / str(series.series_number) / "DICOM"
        target.mkdir(parents=True)
        series.files[0].rename(target / series.files[0].name)
    out = tmp_path / "out"
    assert _step().run(["--input", str(session), "--output", str(out), "--rois", "auto"]) == 0
    with (out / "blimap" / "bli_quant.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    radius = 0.5 * math.sqrt(2 * math.log(1 / AUTO_FRACTION)) + AUTO_MARGIN_CM
    assert float(row["total"]) == pytest.approx(FLUX * (1 - math.exp(-radius ** 2 / 0.5)),
                                                rel=1e-2)
    assert row["group"] == "control" and row["animal"].startswith("ANON-")
    assert row["total_unit"] == "p/s"
    assert len(list((out / "blimap").glob("overlay_*.png"))) == 1
    # Living Image's ROIs are not in the DICOM: asking for them is refused
    assert _step().run(["--input", str(session), "--output", str(tmp_path / "o2"),
                        "--rois", "living_image"]) == 1

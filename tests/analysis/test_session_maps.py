"""The one-click session-maps step: every map the session supports, in one launch.

Launched through the local launcher exactly as ``xnatpic launch commands/session-maps.json
--runtime local`` does (and registered and launched on the XNAT double, which answers as
Container Service), on the converted phantom and on a real corpus session. The truth is
what the single steps produce on the same session: the session step must store the same
maps (bit for bit), statistics and statuses in the same resources, say "not applicable"
for a step with no scan, and keep going when one map fails.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.conftest import COMMANDS, PIPELINES, launch_step, make_session
from tests.analysis.helpers import run_dir
from xnatpic.analysis.scan_index import INDEX_NAME, stored_index_path
from xnatpic.analysis.session_maps import MAP_STEPS, SUMMARY_NAME
from xnatpic.xnat.launcher import LaunchOptions, LaunchResult, launch
from xnatpic.xnat.lint import lint_command

COMMAND = COMMANDS / "session-maps.json"


def launch_session_maps(session: Path, build: Path,
                        params: dict[str, str] | None = None) -> LaunchResult:
    """Launch the session-maps wrapper on ``session`` with the local runtime."""
    options = LaunchOptions(runtime="local", build_root=build, timeout=1800,
                            entrypoint=[sys.executable,
                                        str(PIPELINES / "session_maps" / "run.py")])
    return launch(json.loads(COMMAND.read_text()), "xnatpic-session-maps-session", session,
                  params or {}, options)


def _summary(session: Path) -> dict[str, Any]:
    return json.loads((session / "RESOURCES" / "SESSION_MAPS" / SUMMARY_NAME).read_text())


def _comparable(stats: dict[str, Any]) -> dict[str, Any]:
    """stats.json without what names the run's place and time."""
    return {k: v for k, v in stats.items() if k not in ("created", "generated", "time",
                                                         "provenance", "argv")}


def _same_run(single: Path, together: Path) -> None:
    """Same NIfTI maps (bit for bit) and the same statistics."""
    names = sorted(p.name for p in (single / "nifti").glob("*.nii.gz"))
    assert names and names == sorted(p.name for p in (together / "nifti").glob("*.nii.gz"))
    for name in names:
        a = np.asarray(nib.load(single / "nifti" / name).dataobj)
        b = np.asarray(nib.load(together / "nifti" / name).dataobj)
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True), name
    s1 = json.loads((single / "stats.json").read_text())
    s2 = json.loads((together / "stats.json").read_text())
    assert _comparable(s1) == _comparable(s2)
    assert sorted(p.name for p in (single / "dicom").rglob("*.dcm")) == \
        sorted(p.name for p in (together / "dicom").rglob("*.dcm"))


def test_command_lints_and_declares_one_resource_per_map():
    command = json.loads(COMMAND.read_text())
    problems = [p for p in lint_command(command) if p.severity == "error"]
    assert problems == []
    handlers = {h["accepts-command-output"]: h["label"]
                for h in command["xnat"][0]["output-handlers"]}
    for step, label in MAP_STEPS.items():
        single = json.loads((COMMANDS / f"{step}.json").read_text())
        (handler,) = single["xnat"][0]["output-handlers"]
        assert handlers[step] == handler["label"] == label  # stored as the single step does
    assert handlers["session"] == "SESSION_MAPS"
    outputs = {o["name"]: o for o in command["outputs"]}
    assert all(outputs[s]["required"] is False for s in MAP_STEPS)


@pytest.fixture(scope="module")
def phantom_run(phantom_dicom, tmp_path_factory) -> tuple[Path, LaunchResult, Path]:
    """The phantom session after one session-maps launch."""
    root = tmp_path_factory.mktemp("session-maps")
    session = make_session(root / "archive", phantom_dicom)
    build = root / "builds"
    return session, launch_session_maps(session, build), build


def test_phantom_every_applicable_map_in_one_launch(phantom_run):
    session, result, _ = phantom_run
    assert result.ok, Path(result.stderr).read_text()[-3000:]
    summary = _summary(session)["steps"]
    assert {s: e["status"] for s, e in summary.items()} == {
        "t2map": "complete", "t2starmap": "complete", "t1map": "complete",
        "perfusion": "not applicable", "adcmap": "complete", "cest": "complete"}
    assert "FAIR" in summary["perfusion"]["message"]
    resources = session / "RESOURCES"
    assert not (resources / "PERFUSIONMAP").exists()
    sources = {"t2map": "2", "t2starmap": "5", "t1map": "3", "adcmap": "6", "cest": "7"}
    for step, scan in sources.items():
        run = run_dir(resources / MAP_STEPS[step])
        assert summary[step]["runs"] == [run.name]
        provenance = json.loads((run / "provenance.json").read_text())
        assert provenance["step"] == step and provenance["scans"]["source"] == scan
        assert (run / "report.html").is_file()
    # the scan index is stored with the session, where later steps read it
    stored = json.loads(stored_index_path(session).read_text())
    assert {k: v["kind"] for k, v in stored["scans"].items()} == {
        "1": "single", "2": "t2", "3": "vtr", "4": "ir", "5": "t2star", "6": "diffusion",
        "7": "cest", "8": "wassr"}
    assert stored_index_path(session).name == INDEX_NAME


def test_session_index_lists_every_run_and_renders_in_the_archive(phantom_run):
    """The session index stored in SESSION_MAPS names the five runs and every link and
    image it shows resolves in the archive once XNAT has stored the resources."""
    from tests.browser import render

    session, result, _ = phantom_run
    assert result.ok
    folder = session / "RESOURCES" / "SESSION_MAPS"
    index = json.loads((folder / "index.json").read_text())
    assert sorted((r["resource"], r["run_key"]) for r in index["runs"]) == [
        ("ADCMAP", "loglinear-scan6"), ("CESTMAP", "lorentzian-scan7"),
        ("T1MAP", "vtr-scan3"), ("T2MAP", "nlls-scan2"), ("T2STARMAP", "nlls-scan5")]
    page = render(folder / "index.html")
    assert page.problems == []
    # every link and image stays inside SESSION_MAPS: XNAT serves each resource at its own
    # .../resources/<LABEL>/files/ URL, where the archive's ../T2MAP/ would not resolve
    local = [urllib.parse.unquote(urllib.parse.urlparse(u).path)
             for u in page.links + page.images if u.startswith("file:")]
    assert len(local) > 10
    assert all(Path(p).resolve().is_relative_to(folder.resolve()) for p in local), local
    # the reports the index links to lead back to it
    report = render(folder / "RESOURCES" / "T2MAP" / "nlls-scan2" / "report.html")
    assert report.problems == []
    assert (folder / "index.html").as_uri() in report.links


@pytest.mark.parametrize("step", ["t2map", "t2starmap", "t1map", "adcmap", "cest"])
def test_phantom_maps_equal_the_single_steps(phantom_run, phantom_dicom, tmp_path, step):
    session, result, _ = phantom_run
    assert result.ok
    alone = make_session(tmp_path / "archive", phantom_dicom)
    single = launch_step(step, alone, tmp_path / "builds")
    assert single.ok, Path(single.stderr).read_text()[-2000:]
    _same_run(run_dir(alone / "RESOURCES" / MAP_STEPS[step]),
              run_dir(session / "RESOURCES" / MAP_STEPS[step]))


def test_a_later_single_step_reads_the_stored_index(phantom_run, tmp_path):
    session, result, _ = phantom_run
    assert result.ok
    single = launch_step("t2map", session, tmp_path / "builds", {"method": "loglinear"})
    assert single.ok, Path(single.stderr).read_text()[-2000:]
    log = Path(single.stderr).read_text()
    assert "scans read" not in log  # no header of the session was read to choose
    # a second run adds its folder next to the first
    names = sorted(p.name for p in (session / "RESOURCES" / "T2MAP").iterdir() if p.is_dir())
    assert names == ["loglinear-scan2", "nlls-scan2"]


def test_one_failing_map_does_not_stop_the_others(session_factory, tmp_path):
    session = session_factory(["2", "3"])
    for path in (session / "SCANS" / "2" / "DICOM").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PixelData = bytes(len(ds.PixelData))  # every pixel zero: t2map must fail
        ds.save_as(path)
    result = launch_session_maps(session, tmp_path / "builds")
    assert result.ok, Path(result.stderr).read_text()[-3000:]
    steps = _summary(session)["steps"]
    assert steps["t2map"]["status"] == "failed" and steps["t2map"]["exit"] == 1
    assert "every pixel of the series is zero" in steps["t2map"]["message"]
    assert steps["t1map"]["status"] == "complete"
    assert not (session / "RESOURCES" / "T2MAP").exists()
    run_dir(session / "RESOURCES" / "T1MAP")
    stderr = Path(result.stderr).read_text()
    assert "t2map: error: scan 2: " in stderr
    assert stderr.strip().splitlines()[-1].startswith("session-maps: complete: t1map;")


def test_no_applicable_map_is_not_applicable(session_factory, tmp_path):
    session = session_factory(["1"])
    result = launch_session_maps(session, tmp_path / "builds")
    assert result.outcome == "not applicable" and result.exit_code == 3
    lines = Path(result.stderr).read_text().strip().splitlines()
    assert lines[-1].startswith("session-maps: not applicable: no scan of ")
    assert not (session / "RESOURCES").exists() or not any(
        (session / "RESOURCES").iterdir())


def test_steps_input_limits_the_maps(session_factory, tmp_path):
    session = session_factory(["2", "3"])
    result = launch_session_maps(session, tmp_path / "builds", {"steps": "t1map"})
    assert result.ok, Path(result.stderr).read_text()[-3000:]
    assert list(_summary(session)["steps"]) == ["t1map"]
    assert not (session / "RESOURCES" / "T2MAP").exists()


def test_registered_and_launched_on_the_xnat_double():
    """Container Service accepts the command (several outputs and handlers) and launches
    its wrapper on a session."""
    from tests.double import XnatDouble
    from tests.double.container_service import state
    from tests.xnat.test_rest_double_cs import call

    double = XnatDouble(("PRECLIN",)).start()
    try:
        cs = state(double)
        cs.queue_delay, cs.staging_time, cs.run_time = 0.05, 0.01, 0.02
        status, text = call(double, "POST", "/xapi/commands", json.loads(COMMAND.read_text()))
        assert status == 201, text
        command = cs.commands[int(text)]
        wrapper_id = command["xnat"][0]["id"]
        assert len(command["outputs"]) == len(command["xnat"][0]["output-handlers"]) == 7
        session = double.new_session("PRECLIN", "mouse1", "m1", "xnat:mrSessionData").id
        status, text = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                            "/root/session/launch", {"session": f"/archive/experiments/{session}"})
        report = json.loads(text)
        assert status == 200 and report["status"] == "success", report
    finally:
        double.stop()


def _real_session(corpus_dir: Path, tmp_path: Path, scans: str, label: str
                  ) -> tuple[dict[str, Path], Path]:
    """pv6-dicomifier ``scans`` converted into a session, after one session-maps launch."""
    from tests.analysis.test_steps_real import _convert
    from tests.oracles import missing_oracle

    study = corpus_dir / "pv6-dicomifier" / "study"
    if not study.is_dir():
        missing_oracle("pv6-dicomifier study missing from the corpus")
    converted = _convert(study, scans, tmp_path / "dicom")
    session = make_session(tmp_path / "archive", converted, label=label)
    result = launch_session_maps(session, tmp_path / "builds")
    assert result.ok, Path(result.stderr).read_text()[-3000:]
    return converted, session


def test_real_corpus_session(corpus_dir, tmp_path):
    """pv6-dicomifier (pasta phantom): T2 (scan 9), T1 (VTR scan 11 is preferred over the
    FAIR_RARE scan 13), ADC scan 21 ends "not enough signal" (nearly pure noise, see
    test_steps_real.py), no multi-gradient-echo or CEST scan."""
    scans, session = _real_session(corpus_dir, tmp_path, "9,11,13,21", "pasta")
    steps = _summary(session)["steps"]
    statuses = {s: e["status"] for s, e in steps.items()}
    assert statuses["t2map"] == "complete" and statuses["t1map"] == "complete"
    assert statuses["adcmap"] == "not enough signal"
    assert statuses["cest"] == statuses["t2starmap"] == "not applicable"
    t2 = run_dir(session / "RESOURCES" / "T2MAP")
    assert json.loads((t2 / "provenance.json").read_text())["scans"] == {"source": "9"}
    t1 = run_dir(session / "RESOURCES" / "T1MAP")
    assert json.loads((t1 / "provenance.json").read_text())["scans"] == {"source": "11"}
    # the same T2 map as the single step
    alone = make_session(tmp_path / "alone", {"9": scans["9"]}, label="pasta")
    single = launch_step("t2map", alone, tmp_path / "builds")
    assert single.ok, Path(single.stderr).read_text()[-2000:]
    _same_run(run_dir(alone / "RESOURCES" / "T2MAP"), t2)


def test_real_fair_scan_shared_by_t1map_and_perfusion(corpus_dir, tmp_path):
    """pv6-dicomifier FAIR scan 30: t1map (inversion recovery) and perfusion share one
    read of the series (read-only in the session step); both maps equal the single steps'."""
    scans, session = _real_session(corpus_dir, tmp_path, "30", "fair")
    steps = _summary(session)["steps"]
    assert steps["t1map"]["status"] == steps["perfusion"]["status"] == "complete"
    for step in ("t1map", "perfusion"):
        alone = make_session(tmp_path / f"alone-{step}", scans, label="fair")
        single = launch_step(step, alone, tmp_path / "builds")
        assert single.ok, Path(single.stderr).read_text()[-2000:]
        _same_run(run_dir(alone / "RESOURCES" / MAP_STEPS[step]),
                  run_dir(session / "RESOURCES" / MAP_STEPS[step]))


def test_unusable_input_or_output_is_one_line(tmp_path, capsys):
    """No SCANS folder, or an output that cannot be written: exit 1, one stderr line
    naming the folder, nothing else written."""
    from xnatpic.analysis.session_maps import main

    assert main(["--input", str(tmp_path / "none"), "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"session-maps: error: {tmp_path / 'none'}: no SCANS folder; mount the "
                   "session (archive layout SCANS/<id>/<resource>/) at the input"]
    (tmp_path / "s" / "SCANS").mkdir(parents=True)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert main(["--input", str(tmp_path / "s"), "--output", str(blocked / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"session-maps: error: {blocked / 'out'}")
    assert list((tmp_path / "out").iterdir()) == []  # the first run wrote nothing

"""The steps as Docker Swarm services on a real one-node swarm, images pulled by registry name.

Every launch goes through :func:`xnatpic.xnat.launcher.launch` with ``runtime="swarm"``
(or ``"docker"`` for the plain Engine API back end) and the command as registered with a
registry-qualified image. Declared ``reserve-memory``/``limit-memory`` are checked
against the measured peak of each run (conftest.record: an OOM kill fails the test; a
reservation far above the peak is a warning in build/swarm-engine/memory-report.json).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.conftest import RESOURCES, make_session
from tests.analysis.helpers import run_dir
from tests.swarm.conftest import record, stderr_tail
from tests.swarm.engine import registered_command
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.phantom import read_truth_map, write_phantom
from xnatpic.xnat.archive import find_sessions, load_session
from xnatpic.xnat.bulk import bulk_launch
from xnatpic.xnat.docker_engine import container_config, ensure_image
from xnatpic.xnat.launcher import LaunchOptions, launch
from xnatpic.xnat.metadata import update_project
from xnatpic.xnat.resolve import find_wrapper, resolve
from xnatpic.xnat.swarm import service_spec

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "paravision"
ACIDOCEST = CORPUS / "pv6-acidocest" / "study"
PV6 = CORPUS / "pv6-dicomifier" / "study"


def _require(path: Path) -> None:
    if not path.is_dir():
        pytest.fail(f"real ParaVision study not found at {path} (../shared/data/paravision "
                    "beside the project)")


def _options(build: Path, runtime: str = "swarm") -> LaunchOptions:
    return LaunchOptions(runtime=runtime, build_root=build, timeout=1200, prune=True)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """(phantom study with truth, scan id -> converted DICOM folder)."""
    root = tmp_path_factory.mktemp("swarm-phantom")
    write_phantom(root / "study", snr=100.0, seed=0)
    assert xnatpic_main(["convert", str(root / "study"), "-o", str(root / "dicom")]) == 0
    return root / "study", {folder_key(p.name): p
                            for p in (root / "dicom").glob("*/*/*") if p.is_dir()}


@pytest.fixture(scope="module")
def pv6_dicom(tmp_path_factory) -> dict[str, Path]:
    """Real scans (pasta phantom, PV6) converted by xnatpic: 9 MSME, 11 RARE-VTR."""
    _require(PV6)
    out = tmp_path_factory.mktemp("swarm-pv6") / "dicom"
    assert xnatpic_main(["convert", str(PV6), "-o", str(out), "--scans", "9,11"]) == 0
    return {folder_key(p.name): p for p in out.glob("*/*/*") if p.is_dir()}


def _paravision_session(archive: Path, label: str) -> Path:
    session = archive / "PRECLIN" / "arc001" / label
    shutil.copytree(ACIDOCEST, session / "RESOURCES" / "PARAVISION" / "study")
    with update_project(archive, "PRECLIN") as meta:
        meta.ensure_experiment(label, "mouse1", xsiType="xnat:mrSessionData")
    return session


def test_engine_keeps_the_spec_as_sent(swarm, images, tmp_path):
    """The engine accepts the CS-shaped spec and stores its resources, user and mounts."""
    command = registered_command("t2map", images["t2map"].split("/")[0])
    session = make_session(tmp_path / "archive", {})
    resolved = resolve(command, find_wrapper(command, None), load_session(session), {})
    hosts = {m.name: (tmp_path / m.name) for m in resolved.mounts}
    for folder in hosts.values():
        folder.mkdir()
    spec = service_spec(resolved, command["image"], hosts, {"A": "1"}, user="1000:1000",
                        network="host", limits=True)
    service_id = swarm.create_service(spec)
    try:
        kept = swarm.inspect_service(service_id)["Spec"]
    finally:
        swarm.remove_service(service_id)
    task = kept["TaskTemplate"]
    assert kept["Mode"] == {"Replicated": {"Replicas": 0}}
    assert task["Resources"] == {
        "Reservations": {"MemoryBytes": command["reserve-memory"] << 20},
        "Limits": {"MemoryBytes": command["limit-memory"] << 20,
                   "NanoCPUs": int(command["limit-cpu"] * 10**9)}}
    assert task["RestartPolicy"]["Condition"] == "none"
    container = task["ContainerSpec"]
    assert container["User"] == "1000:1000" and container["Env"] == ["A=1"]
    assert container["Image"].startswith(images["t2map"])  # the engine may pin a digest
    assert [(m["Source"], m["Target"], m.get("ReadOnly", False), m.get("Type"))
            for m in container["Mounts"]] == [
        (str(hosts["in"]), "/input", True, "bind"), (str(hosts["out"]), "/output", False,
                                                      "bind")]


def test_mri2dicom_as_a_service_on_real_paravision(swarm, images, memory_log, tmp_path):
    _require(ACIDOCEST)
    registry = images["mri2dicom"].split("/")[0]
    command = registered_command("mri2dicom", registry)
    swarm_session = _paravision_session(tmp_path / "swarm", "acido_d0")
    local_session = _paravision_session(tmp_path / "local", "acido_d0")
    result = launch(command, None, swarm_session, {"import": "false"},
                    _options(tmp_path / "b1"))
    record(memory_log, "mri2dicom", "pv6-acidocest", result)
    assert result.ok, (result.error, stderr_tail(result))
    assert result.task["state"] == "complete" and result.task["exit_code"] == 0
    assert [h["state"] for h in result.task["history"]][-1] == "complete"
    # the same conversion as a plain process on this host: the runtime must not change it
    local = launch(command, None, local_session, {"import": "false"},
                   _options(tmp_path / "b2", "local"))
    assert local.ok, local.error

    def instances(session: Path) -> dict[str, str]:
        files = sorted((session / "RESOURCES" / "MRI2DICOM").rglob("*.dcm"))
        return {str(ds.SOPInstanceUID): ds.SeriesDescription
                for ds in (pydicom.dcmread(f, stop_before_pixels=True) for f in files)}

    on_swarm = instances(swarm_session)
    assert on_swarm and on_swarm == instances(local_session)
    assert (swarm_session / "RESOURCES" / "MRI2DICOM" / "MRI2DICOM_catalog.xml").exists()
    assert Path(result.stdout).stat().st_size + Path(result.stderr).stat().st_size > 0


def test_t2map_on_the_phantom_as_a_service(swarm, images, memory_log, phantom, tmp_path):
    study, dicom = phantom
    session = make_session(tmp_path / "archive", {s: dicom[s] for s in ("1", "2", "3")})
    command = registered_command("t2map", images["t2map"].split("/")[0])
    result = launch(command, None, session, {}, _options(tmp_path / "b"))
    record(memory_log, "t2map", "phantom", result)
    assert result.ok, (result.error, stderr_tail(result))
    t2 = np.asarray(nib.load(run_dir(session / "RESOURCES" / "T2MAP") / "nifti" /
                             "T2.nii.gz").dataobj)
    truth = read_truth_map(study, "axial", "T2").transpose(2, 1, 0)
    labels = read_truth_map(study, "axial", "labels").transpose(2, 1, 0)
    for label in range(1, 7):
        inside = labels == label
        error = np.nanmedian((t2[inside] - truth[inside]) / truth[inside])
        assert abs(error) <= 0.01, (label, error)


@pytest.mark.parametrize(("step", "scans"), [("t2starmap", ("5",)), ("t1map", ("4",)),
                                             ("adcmap", ("6",)), ("cest", ("7", "8"))])
def test_map_steps_on_the_phantom_as_services(swarm, images, memory_log, phantom, tmp_path,
                                              step, scans):
    _, dicom = phantom
    session = make_session(tmp_path / "archive", {s: dicom[s] for s in scans})
    command = registered_command(step, images[step].split("/")[0])
    result = launch(command, None, session, {}, _options(tmp_path / "b"))
    record(memory_log, step, "phantom", result)
    assert result.ok, (step, result.error, stderr_tail(result))
    resource = run_dir(session / "RESOURCES" / RESOURCES[step])
    stats = json.loads((resource / "stats.json").read_text())
    assert stats["failed_voxels"] < 0.01 * stats["mask_voxels"]
    assert (resource / "report.html").stat().st_size > 1000


@pytest.mark.parametrize(("step", "scan", "resource", "name", "low", "high"), [
    # pasta phantom at 7 T: T2 of pasta and saline (long), T1 ~3 s
    ("t2map", "9", "T2MAP", "T2", 150.0, 539.0),
    ("t1map", "11", "T1MAP", "T1", 2000.0, 4000.0),
])
def test_map_steps_on_real_scans_as_services(swarm, images, memory_log, pv6_dicom, tmp_path,
                                             step, scan, resource, name, low, high):
    session = make_session(tmp_path / "archive", {scan: pv6_dicom[scan]}, label="pv6")
    command = registered_command(step, images[step].split("/")[0])
    result = launch(command, None, session, {}, _options(tmp_path / "b"))
    record(memory_log, step, f"pv6-dicomifier scan {scan}", result)
    assert result.ok, (result.error, stderr_tail(result))
    folder = run_dir(session / "RESOURCES" / resource) / "nifti"
    data = np.asarray(nib.load(folder / f"{name}.nii.gz").dataobj)
    mask = np.asarray(nib.load(folder / "mask.nii.gz").dataobj) > 0
    values = data[mask & np.isfinite(data)]
    assert values.size > 0.3 * mask.sum()
    assert low <= float(np.median(values)) <= high, float(np.median(values))


def test_step_killed_by_its_own_limit_is_reported(swarm, images, phantom, tmp_path):
    """The OOM check has teeth: a limit below the step's need ends in exit 137, OOM."""
    _, dicom = phantom
    session = make_session(tmp_path / "archive", {s: dicom[s] for s in ("1", "2", "3")})
    command = registered_command("t2map", images["t2map"].split("/")[0])
    command = {**command, "reserve-memory": 16, "limit-memory": 24}
    result = launch(command, None, session, {}, _options(tmp_path / "b"))
    assert not result.ok and result.exit_code == 137, (result.exit_code, result.error)
    assert result.task["oom_killed"] is True
    assert result.task["state"] == "failed"
    assert not (session / "RESOURCES" / "T2MAP").exists()


def test_missing_image_is_a_rejected_task_with_the_engine_reason(swarm, images, tmp_path):
    registry = images["t2map"].split("/")[0]
    command = registered_command("t2map", registry)
    command = {**command, "image": f"{registry}/xnatpic-no-such-step:{uuid.uuid4().hex[:8]}"}
    session = make_session(tmp_path / "archive", {})
    result = launch(command, None, session, {}, _options(tmp_path / "b"))
    assert result.status == "Failed" and result.exit_code is None
    assert result.task["state"] == "rejected"
    assert "No such image" in result.error or "not found" in result.error, result.error


def test_docker_engine_api_runtime_runs_a_step(swarm, images, memory_log, phantom, tmp_path):
    """--runtime docker: a plain container created through the Engine API as CS does."""
    _, dicom = phantom
    session = make_session(tmp_path / "archive", {"5": dicom["5"]})
    command = registered_command("t2starmap", images["t2starmap"].split("/")[0])
    result = launch(command, None, session, {}, _options(tmp_path / "b", "docker"))
    record(memory_log, "t2starmap (docker)", "phantom", result)
    assert result.ok, (result.error, stderr_tail(result))
    assert result.task["runtime"] == "docker" and result.task["state"] == "exited"
    stats = json.loads((run_dir(session / "RESOURCES" / "T2STARMAP") / "stats.json")
                       .read_text())
    assert stats["failed_voxels"] < 0.01 * stats["mask_voxels"]


def test_docker_engine_keeps_host_config_as_sent(swarm, images, tmp_path):
    command = registered_command("cest", images["cest"].split("/")[0])
    session = make_session(tmp_path / "archive", {})
    resolved = resolve(command, find_wrapper(command, None), load_session(session), {})
    hosts = {m.name: (tmp_path / m.name) for m in resolved.mounts}
    for folder in hosts.values():
        folder.mkdir()
    config = container_config(resolved, command["image"], hosts, {"A": "1"},
                              user="1000:1000", network="host", limits=True)
    ensure_image(swarm, command["image"])  # pulled by name first, as CS does
    created = swarm.create_container(config, name=f"xnatpic-spec-{uuid.uuid4().hex[:8]}")
    try:
        kept = swarm.inspect_container(created["Id"])
    finally:
        swarm.remove_container(created["Id"])
    host = kept["HostConfig"]
    assert host["Memory"] == command["limit-memory"] << 20
    assert host["MemoryReservation"] == command["reserve-memory"] << 20
    assert host["NanoCpus"] == int(command["limit-cpu"] * 10**9)
    assert host["Binds"] == [f"{hosts['in']}:/input:ro", f"{hosts['out']}:/output"]
    assert host["NetworkMode"] == "host"
    assert kept["Config"]["User"] == "1000:1000" and "A=1" in kept["Config"]["Env"]


def test_bulk_launch_queues_more_jobs_than_the_node_holds(swarm, images, memory_log,
                                                          phantom, tmp_path, capsys):
    """Six sessions, reservations sized so two fit on the node: the scheduler keeps the
    others pending with its reason, and all six complete."""
    _, dicom = phantom
    archive = tmp_path / "archive"
    for i in range(6):
        make_session(archive, {s: dicom[s] for s in ("1", "2", "3")}, label=f"mouse{i}_d0")
    node_mib = swarm.info()["MemTotal"] >> 20
    command = registered_command("t2map", images["t2map"].split("/")[0])
    reserve = int(node_mib * 0.4)  # two jobs fit (0.8 of the node), a third does not
    command = {**command, "reserve-memory": reserve, "limit-memory": reserve}
    command_file = tmp_path / "t2map-big.json"
    command_file.write_text(json.dumps(command))
    sessions = find_sessions(archive / "PRECLIN")
    assert len(sessions) == 6
    report_file = tmp_path / "report.json"
    code = xnatpic_main(["launch", str(command_file), "--project", str(archive / "PRECLIN"),
                         "--runtime", "swarm", "--jobs", "6", "--build-dir",
                         str(tmp_path / "b"), "--report", str(report_file), "--timeout",
                         "1200"])
    report = json.loads(report_file.read_text())
    assert code == 0, report
    table = capsys.readouterr().err
    assert "task" in table and "insufficient resources on 1 node" in table, table[-3000:]
    assert report["succeeded"] == 6
    tasks = [r["task"] for r in report["results"]]
    assert all(t["state"] == "complete" and t["exit_code"] == 0 for t in tasks)
    reasons = {t["reason"] for t in tasks if t["reason"]}
    assert "no suitable node (insufficient resources on 1 node)" in reasons, reasons
    queued = [t for t in tasks if any(h["state"] == "pending" and h["err"]
                                      for h in t["history"])]
    assert len(queued) >= 1
    for r in report["results"]:
        assert (run_dir(Path(r["session_dir"]) / "RESOURCES" / "T2MAP") / "stats.json"
                ).exists()
    assert swarm.request("GET", "/services") == []  # each removed once its logs were read
    for r in report["results"][:1]:
        memory_log.append({"step": "t2map (bulk, reserve scaled)", "data": "phantom x6",
                           "status": r["status"], "exit": r["exit_code"],
                           "reserve_mib": reserve, "limit_mib": reserve,
                           "peak_mib": r["task"]["memory"].get("peak_mib"),
                           "working_set_mib": r["task"]["memory"].get("working_set_mib"),
                           "oom_killed": r["task"]["oom_killed"], "seconds": r["seconds"],
                           "pending_seconds": r["task"]["pending_seconds"],
                           "scaled_for_queueing": True})


def test_bulk_launch_api_counts_each_session(swarm, images, phantom, tmp_path):
    """bulk_launch with the swarm runtime: one result per session, in order."""
    _, dicom = phantom
    archive = tmp_path / "archive"
    for label in ("a_d0", "b_d0", "c_d0"):
        make_session(archive, {"5": dicom["5"]}, label=label)
    command = registered_command("t2starmap", images["t2starmap"].split("/")[0])
    sessions = find_sessions(archive / "PRECLIN")
    results = bulk_launch(command, None, sessions, {}, _options(tmp_path / "b"), jobs=3)
    assert [r.session_dir for r in results] == [str(s) for s in sessions]
    assert all(r.ok and r.task["state"] == "complete" for r in results), \
        [(r.session, r.error) for r in results]

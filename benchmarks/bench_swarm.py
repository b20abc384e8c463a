"""Jobs per minute of a bulk launch on a one-node Docker Swarm vs the plain local runtime.

The launch: mri2dicom (import off) over a project whose sessions are the ParaVision
studies of the corpus (../shared/data/paravision), every job submitted at once
(``--jobs`` = number of sessions). Swarm: a private dockerd made a one-node swarm, the
image pulled by its registry name from a local registry (tests/swarm/engine.py), one
service per job. Baseline, measured in the same run: the same launch with
``--runtime local`` (the step as a process of this Python). Also printed: each job's
declared reserve/limit memory and its measured peak on the swarm.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.swarm.engine import (
    docker_swarm,
    local_registry,
    publish_images,
    registered_command,
)
from xnatpic.xnat.archive import find_sessions
from xnatpic.xnat.bulk import bulk_launch
from xnatpic.xnat.launcher import LaunchOptions, LaunchResult
from xnatpic.xnat.metadata import update_project

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "paravision"
STUDIES = ["pv6-acidocest/study", "pv6-dicomifier/study", "pv360-csi/study",
           "pv5-misc/brukerMRI-msme", "pv5-misc/brukerMRI-tripilot", "pv5-misc/pvconv-epi"]


def _project(root: Path) -> list[Path]:
    for i, study in enumerate(STUDIES):
        label = f"corpus{i}_{study.split('/')[0].replace('-', '_')}"
        session = root / "PRECLIN" / "arc001" / label
        shutil.copytree(CORPUS / study, session / "RESOURCES" / "PARAVISION" / "study")
        with update_project(root, "PRECLIN") as meta:
            meta.ensure_experiment(label, f"subject{i}", xsiType="xnat:mrSessionData")
    return find_sessions(root / "PRECLIN")


def _run(command: dict, runtime: str, work: Path) -> tuple[float, list[LaunchResult]]:
    sessions = _project(work / "archive")
    options = LaunchOptions(runtime=runtime, build_root=work / "builds", timeout=1800,
                            prune=True)
    start = time.monotonic()
    results = bulk_launch(command, None, sessions, {"import": "false"}, options,
                          jobs=len(sessions))
    return time.monotonic() - start, results


def _line(name: str, seconds: float, results: list[LaunchResult]) -> float:
    rate = len(results) * 60.0 / seconds
    outcomes = [r.outcome for r in results]
    failed = [f"{r.session_dir}: {r.status}: {r.error}" for r in results
              if r.outcome == "failed"]
    if failed:  # a rate of failures measures nothing
        raise SystemExit(f"bench_swarm: {name}: {len(failed)} job(s) failed:\n"
                         + "\n".join(failed))
    print(f"{name:<28} {len(results)} jobs in {seconds:6.1f} s = {rate:5.2f} jobs/min "
          f"({outcomes.count('complete')} complete, {outcomes.count('not applicable')} not "
          f"applicable, {outcomes.count('failed')} failed)")
    return rate


def main() -> None:
    missing = [s for s in STUDIES if not (CORPUS / s).is_dir()]
    if missing:
        raise SystemExit(f"bench_swarm: corpus studies missing under {CORPUS}: {missing}")
    previous = os.environ.get("DOCKER_HOST")
    with tempfile.TemporaryDirectory(prefix="bench-swarm-") as tmp, \
            local_registry(Path(tmp) / "registry") as registry, docker_swarm() as client:
        os.environ["DOCKER_HOST"] = f"unix://{client.path}"
        try:
            image = publish_images(registry, ["mri2dicom"])["mri2dicom"]
            client.pull(image)  # pulled once up front: the rate is of running, not pulling
            command = registered_command("mri2dicom", registry)
            local_s, local = _run(command, "local", Path(tmp) / "local")
            swarm_s, swarm = _run(command, "swarm", Path(tmp) / "swarm")
        finally:
            if previous is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = previous
    base = _line("local runtime (baseline)", local_s, local)
    rate = _line("one-node Docker Swarm", swarm_s, swarm)
    print(f"swarm / local: {rate / base:.2f}x jobs per minute")
    print("\nmemory on the swarm (MiB): session, declared reserve / limit, measured peak "
          "(kernel high-water mark), working set")
    for r in swarm:
        task = r.task or {}
        memory = task.get("memory") or {}
        figures = (f"peak {memory['peak_mib']}  working set {memory.get('working_set_mib')}"
                   if memory.get("peak_mib") is not None
                   else "not measured: the container ended before its first memory sample")
        print(f"  {r.session:<36} {task.get('reserve_memory_mib')} / "
              f"{task.get('limit_memory_mib')}  {figures}  {r.outcome}")
    print(json.dumps({"swarm_jobs_per_min": round(rate, 2),
                      "local_jobs_per_min": round(base, 2), "ratio": round(rate / base, 2)}))

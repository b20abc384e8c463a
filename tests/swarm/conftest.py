"""Fixtures of the Swarm tests: a private dockerd as a one-node swarm, a local registry
holding the step images, and the memory report (declared vs measured per step).

These tests are required: when dockerd, the swarm or the registry cannot start they FAIL
with the reason (tests/swarm/engine.py), they never skip. DOCKER_HOST points at the
private engine only while this package's tests run (package-scoped fixtures), so runtime
detection elsewhere (podman here) is unchanged.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.swarm.engine import (
    STATE,
    EngineUnavailable,
    docker_swarm,
    local_registry,
    publish_images,
)
from xnatpic.xnat.docker_api import DockerClient

#: Steps run as services: the converter and every map step the phantom and corpus feed.
STEPS = ["mri2dicom", "t2map", "t2starmap", "t1map", "adcmap", "cest"]
#: A reservation this many times the measured peak is reported as a warning.
OVERSIZED_RESERVATION = 4.0
MEMORY_REPORT = STATE / "memory-report.json"


@pytest.fixture(scope="package")
def registry(tmp_path_factory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a docker-registry storing in a temporary folder."""
    try:
        with local_registry(tmp_path_factory.mktemp("registry")) as address:
            yield address
    except EngineUnavailable as exc:
        pytest.fail(f"local registry: {exc}")


@pytest.fixture(scope="package")
def swarm() -> Iterator[DockerClient]:
    """A private dockerd, one-node swarm manager; DOCKER_HOST set while the package runs."""
    previous = os.environ.get("DOCKER_HOST")
    try:
        with docker_swarm() as client:
            os.environ["DOCKER_HOST"] = f"unix://{client.path}"
            try:
                yield client
            finally:
                if previous is None:
                    os.environ.pop("DOCKER_HOST", None)
                else:
                    os.environ["DOCKER_HOST"] = previous
    except EngineUnavailable as exc:
        pytest.fail(f"Docker Swarm: {exc}")


@pytest.fixture(scope="package")
def images(registry) -> dict[str, str]:
    """Step -> registry-qualified image, built with podman for the registry and pushed."""
    try:
        return publish_images(registry, STEPS)
    except EngineUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="package")
def memory_log() -> Iterator[list[dict[str, Any]]]:
    """Rows (step, data, declared, measured) gathered by the tests; written to
    build/swarm-engine/memory-report.json, oversized reservations warned about."""
    rows: list[dict[str, Any]] = []
    yield rows
    if not rows:
        return
    MEMORY_REPORT.parent.mkdir(parents=True, exist_ok=True)
    MEMORY_REPORT.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        peak = row["peak_mib"]
        if row.get("scaled_for_queueing"):  # sized on purpose to fill the node
            continue
        if peak and row["reserve_mib"] and row["reserve_mib"] > OVERSIZED_RESERVATION * peak:
            warnings.warn(
                f"{row['step']} on {row['data']}: reserve-memory {row['reserve_mib']} MiB is "
                f"{row['reserve_mib'] / peak:.1f}x its measured peak {peak} MiB "
                f"(limit {row['limit_mib']} MiB); see {MEMORY_REPORT}", stacklevel=1)


def record(memory_log: list[dict[str, Any]], step: str, data: str, result: Any) -> None:
    """Add a launch's declared and measured memory to the report; fail on an OOM kill or
    an unmeasured peak."""
    task = result.task or {}
    memory = task.get("memory") or {}
    memory_log.append({
        "step": step, "data": data, "status": result.status, "exit": result.exit_code,
        "reserve_mib": task.get("reserve_memory_mib"),
        "limit_mib": task.get("limit_memory_mib"),
        "peak_mib": memory.get("peak_mib"), "working_set_mib": memory.get("working_set_mib"),
        "oom_killed": task.get("oom_killed"), "seconds": result.seconds,
        "pending_seconds": task.get("pending_seconds"),
    })
    # the launcher runs on the engine's host here: the container's own cgroup is read from
    # the container's start (Docker Engine) or once the task names it (Swarm, polled every
    # 0.05 s): a container that ran for a second or more is always measured
    if task.get("runtime") == "docker" or (task.get("running_seconds") or 0.0) >= 1.0:
        assert memory.get("peak_mib"), f"{step} on {data}: peak memory not measured: {memory}"
    assert not task.get("oom_killed") and result.exit_code != 137, (
        f"{step} on {data} was killed by its own limit-memory {task.get('limit_memory_mib')} "
        f"MiB (peak {memory.get('peak_mib')} MiB)")


def stderr_tail(result: Any) -> str:
    """The last lines of a launch's stderr (for assertion messages)."""
    path = Path(result.stderr) if result.stderr else None
    return path.read_text(errors="replace")[-3000:] if path and path.exists() else ""

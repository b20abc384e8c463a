"""Run one resolved launch as a plain Docker container through the Engine API, as CS does.

The Container Service's Docker back end (container-service v3.7.3,
src/main/java/org/nrg/containers/api/DockerControlApi.java, ``createDockerContainer``
:497-628) creates the container through the Engine API with:

- ``HostConfig``: AutoRemove, Runtime and IpcMode (empty by default), ``Binds`` as
  ``HOST:PATH`` plus ``:ro`` when not writable (Container.java:847-849), no port
  bindings, ``MemoryReservation`` = reserve-memory MiB x 1048576, ``Memory`` =
  limit-memory MiB x 1048576 (Container.java:143-152, ContainerUtils.java:19),
  ``NanoCpus`` = limit-cpu x 1e9 (Container.java:155-157, ContainerUtils.java:20), and
  NetworkMode when a network is set (:533-548);
- ``Cmd``: the command line split as a shell would, or ``/bin/sh -c LINE`` with an empty
  ``Entrypoint`` when ``override-entrypoint`` (:606-618); ``Env`` ``NAME=VALUE``;
  ``WorkingDir`` (empty when none); ``User`` the server's container user; ``Labels``
  the command's container labels (:609-615);
- the image pulled first when the engine does not hold it (:588-597).

It starts the container (:871-880), reads stdout and stderr once it has stopped
(:918-935) and removes it (``autoCleanup``, ContainerServiceImpl.java:1417-1432).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat.docker_api import DockerApiError, DockerClient
from xnatpic.xnat.engine_memory import MIB, PeakMemory
from xnatpic.xnat.errors import ContainerRuntimeError, LaunchError
from xnatpic.xnat.resolve import ResolvedCommand

__all__ = ["NANO", "EngineRun", "container_config", "ensure_image", "resources",
           "run_container"]

_log = logging.getLogger(__name__)

#: CPUs to NanoCPUs (ContainerUtils.java:20).
NANO = 1e9


@dataclass
class EngineRun:
    """What the engine said about one launch (JSON-ready through :meth:`as_dict`).

    ``state`` is the task state on Swarm (``complete``, ``failed``, ``rejected``...) or
    the container's (``exited``); ``history`` lists each state seen with the engine's
    message and error (the scheduler's reason while a task is ``pending``, e.g. "no
    suitable node (insufficient resources on 1 node)"); ``failure`` says why there is no
    exit code.
    """

    runtime: str
    name: str
    image: str
    state: str = "new"
    exit_code: int | None = None
    oom_killed: bool = False
    reason: str | None = None
    failure: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    reserve_memory_mib: int | None = None
    limit_memory_mib: int | None = None
    nano_cpus: int | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    pending_seconds: float = 0.0
    running_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The run as a dict."""
        return asdict(self)

    def note(self, state: str, message: str = "", err: str = "") -> None:
        """Record a state when it or its reason changed."""
        last = self.history[-1] if self.history else None
        entry = {"state": state, "message": message, "err": err}
        if last != entry:
            self.history.append(entry)
            _log.info("%s: %s%s", self.name, state, f" ({err or message})"
                      if err or message else "")
        self.state = state
        if state == "pending" and err:
            self.reason = err


def resources(command: dict[str, Any], limits: bool) -> tuple[int, int, int]:
    """(reserve bytes, limit bytes, NanoCPUs) of a command, 0 when not declared.

    Container.java:143-157: MiB x 1048576 and CPUs x 1e9 truncated to an integer.
    """
    if not limits:
        return 0, 0, 0
    reserve = int(command.get("reserve-memory") or 0) * MIB
    limit = int(command.get("limit-memory") or 0) * MIB
    nano = int(NANO * float(command.get("limit-cpu") or 0))
    return reserve, limit, nano


def container_config(resolved: ResolvedCommand, image: str, hosts: dict[str, Path],
                     env: dict[str, str], *, user: str, network: str | None,
                     limits: bool) -> dict[str, Any]:
    """The ``POST /containers/create`` body CS sends (DockerControlApi.java:533-618)."""
    cmd = resolved.command
    reserve, limit, nano = resources(cmd, limits)
    host_config: dict[str, Any] = {
        "AutoRemove": bool(cmd.get("auto-remove", False)),
        "Runtime": str(cmd.get("runtime") or ""),
        "IpcMode": str(cmd.get("ipc-mode") or ""),
        "Binds": [f"{hosts[m.name]}:{m.path}" + ("" if m.writable else ":ro")
                  for m in resolved.mounts],
        "PortBindings": {},
        "MemoryReservation": reserve,
        "Memory": limit,
        "NanoCpus": nano,
    }
    if cmd.get("shm-size") is not None and int(cmd["shm-size"]) >= 0:
        host_config["ShmSize"] = int(cmd["shm-size"])
    if network:
        host_config["NetworkMode"] = network
    config: dict[str, Any] = {
        "Image": image,
        "HostConfig": host_config,
        "AttachStdout": True,
        "AttachStderr": True,
        "Cmd": (["/bin/sh", "-c", resolved.command_line] if resolved.override_entrypoint
                else list(resolved.arguments)),
        "Env": [f"{k}={v}" for k, v in env.items()],
        "WorkingDir": resolved.working_directory or "",
        "User": user,
        "Labels": dict(resolved.container_labels),
    }
    if resolved.override_entrypoint:
        config["Entrypoint"] = [""]
    return config


def ensure_image(client: DockerClient, image: str) -> None:
    """Pull ``image`` when the engine does not hold it (DockerControlApi.java:588-597).

    Raises
    ------
    LaunchError
        "Could not pull image ... from repository." with the engine's reason.
    """
    if client.image_exists(image):
        return
    try:
        client.pull(image)
    except ContainerRuntimeError as exc:
        raise LaunchError(f"Could not pull image {image} from repository: {exc}") from exc


def run_container(client: DockerClient, resolved: ResolvedCommand, image: str,
                  hosts: dict[str, Path], env: dict[str, str], *, name: str, user: str,
                  network: str | None, limits: bool, timeout: float | None,
                  stdout: Path, stderr: Path) -> EngineRun:
    """Create, start and wait for the container; write its logs; remove it.

    Raises
    ------
    LaunchError
        When the image cannot be pulled, the container cannot be created or started, or
        it runs longer than ``timeout`` (then it is killed).
    """
    run = EngineRun("docker", name, image)
    reserve, limit, nano = resources(resolved.command, limits)
    run.reserve_memory_mib, run.limit_memory_mib = reserve // MIB or None, limit // MIB or None
    run.nano_cpus = nano or None
    ensure_image(client, image)
    config = container_config(resolved, image, hosts, env, user=user, network=network,
                              limits=limits)
    try:
        created = client.create_container(config, name=name)
    except DockerApiError as exc:
        raise LaunchError(f"Could not create container: {exc.engine_message}") from exc
    for warning in created.get("Warnings") or []:
        _log.warning("%s: %s", name, warning)
    container_id = created["Id"]
    try:
        client.start_container(container_id)
        run.note("running")
        started = time.monotonic()
        watcher = PeakMemory(client, container_id)
        try:
            code = client.wait_container(container_id, timeout=timeout)
        except ContainerRuntimeError as exc:
            client.kill_container(container_id)
            raise LaunchError(f"stopped after {timeout:g} s (--timeout)") from exc
        run.running_seconds = round(time.monotonic() - started, 2)
        run.memory = watcher.result()
        state = client.inspect_container(container_id)["State"]
        run.exit_code, run.oom_killed = code, bool(state.get("OOMKilled"))
        run.note(str(state.get("Status", "exited")), "", str(state.get("Error") or ""))
        out, err = client.container_logs(container_id)
        stdout.write_bytes(out)
        stderr.write_bytes(err)
    finally:
        if not config["HostConfig"]["AutoRemove"]:
            try:
                client.remove_container(container_id)
            except DockerApiError as exc:
                _log.warning("%s: cannot remove container %s: %s", name, container_id[:12],
                             exc)
    return run

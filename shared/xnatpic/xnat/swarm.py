"""Run one resolved launch as a Docker Swarm service, as the Container Service's Swarm back end.

container-service v3.7.3, src/main/java/org/nrg/containers/api/DockerControlApi.java:

- ``create`` (:444-477) makes the service with **0 replicas**
  (``createDockerSwarmService``, :641-810) and ``start`` (:820-869) updates it to 1
  replica at the version it inspected;
- the service spec (:678-772): ``Mounts`` ``{Source: host path, Target: container path,
  ReadOnly: not writable}`` (no Type: the engine's default, a bind mount); ContainerSpec
  ``Image``, ``Dir`` (the working directory, absent when blank), ``User`` (the server's
  container user), ``Labels``, ``Env`` ``NAME=VALUE``, and ``Command`` ``/bin/sh -c
  LINE`` when ``override-entrypoint`` else ``Args`` (the split command line, the image's
  ENTRYPOINT kept); TaskTemplate ``Resources`` with ``Reservations.MemoryBytes`` =
  reserve-memory MiB x 1048576 and ``Limits`` ``MemoryBytes`` = limit-memory MiB x
  1048576 and ``NanoCPUs`` = limit-cpu x 1e9 (Container.java:143-157), ``Placement``
  with the swarm constraints, ``RestartPolicy`` ``{Condition: none}``, ``Networks``
  ``[{Target: network}]`` when a network is set; service ``Name`` the container name or a
  random UUID (Container.java:130-133), the container labels again on the service, no
  published ports;
- the task is read as ``ServiceTask.create`` does (ServiceTask.java:41-74): its state,
  message, err, container exit code; states ``failed``, ``complete``, ``rejected`` and
  ``shutdown`` end it (:22-26), ``complete`` is success (:21); an exit state without an
  exit code is completed from the container's inspect (DockerControlApi.java:1206-1218);
  the job fails when the exit code is non-zero or the state is not ``complete``
  (ContainerServiceImpl.java:1288);
- logs are the service's stdout and stderr (:937-954), read at finalizing
  (ContainerFinalizeServiceImpl.java:330-331); the service is then removed
  (``autoCleanup``, ContainerServiceImpl.java:1417-1432; ``kill`` on Swarm removes the
  service, DockerControlApi.java:1039-1046).

One difference: ServiceTask.java:51-54 blanks a ``pending`` task's message and err; we
keep the err as :attr:`EngineRun.reason` (the scheduler's own words, e.g. "no suitable
node (insufficient resources on 1 node)") to show why a job waits.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from xnatpic.xnat.docker_api import DockerApiError, DockerClient
from xnatpic.xnat.docker_engine import EngineRun, resources, run_container
from xnatpic.xnat.engine_memory import MIB, PeakMemory
from xnatpic.xnat.errors import LaunchError
from xnatpic.xnat.resolve import ResolvedCommand

__all__ = ["ENGINE_RUNTIMES", "EXIT_STATES", "run_on_engine", "run_service", "service_spec",
           "task_summary"]

_log = logging.getLogger(__name__)

#: Runtimes that go through the Docker Engine API.
ENGINE_RUNTIMES = ("docker", "swarm")
#: Task states that end a job (ServiceTask.java:22-26); ``orphaned`` and ``remove`` also
#: never come back, so they end it here too.
EXIT_STATES = frozenset({"failed", "complete", "rejected", "shutdown", "orphaned", "remove"})
_POLL_SECONDS = 0.5
#: Task states in which the task's container is about to run or runs: polled every
#: :data:`_CONTAINER_POLL_SECONDS` until its id is known, so that its memory is followed
#: from its first fraction of a second (a map step's container lives for about one).
_PLACED_STATES = frozenset({"assigned", "accepted", "preparing", "ready", "starting",
                            "running"})
_CONTAINER_POLL_SECONDS = 0.05


def service_spec(resolved: ResolvedCommand, image: str, hosts: dict[str, Path],
                 env: dict[str, str], *, user: str | None, network: str | None,
                 limits: bool, name: str | None = None,
                 constraints: list[str] | None = None, replicas: int = 0) -> dict[str, Any]:
    """The ``POST /services/create`` body CS sends (DockerControlApi.java:678-772)."""
    reserve, limit, nano = resources(resolved.command, limits)
    container: dict[str, Any] = {
        "Image": image,
        "Mounts": [{"Source": str(hosts[m.name]), "Target": m.path,
                    "ReadOnly": not m.writable} for m in resolved.mounts],
        "Labels": dict(resolved.container_labels),
        "Env": [f"{k}={v}" for k, v in env.items()],
    }
    if resolved.working_directory:
        container["Dir"] = resolved.working_directory
    if user:
        container["User"] = user
    if resolved.override_entrypoint:
        container["Command"] = ["/bin/sh", "-c", resolved.command_line]
    else:
        container["Args"] = list(resolved.arguments)
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Placement": {"Constraints": list(constraints or [])},
        "RestartPolicy": {"Condition": "none"},
        "Resources": {"Reservations": {"MemoryBytes": reserve},
                      "Limits": {"MemoryBytes": limit, "NanoCPUs": nano}},
    }
    if network:
        task["Networks"] = [{"Target": network}]
    return {
        "Name": name or str(uuid.uuid4()),
        "TaskTemplate": task,
        "EndpointSpec": {"Ports": []},
        "Labels": dict(resolved.container_labels),
        "Mode": {"Replicated": {"Replicas": replicas}},
    }


def _start(client: DockerClient, service_id: str, attempts: int = 5) -> None:
    """Set the service's replicas to 1 at the version read (DockerControlApi.java:838-869).

    The version is the engine's optimistic lock: when the service changed between the
    inspect and the update ("update out of sequence", seen here right after creation) the
    inspect and update are repeated, up to ``attempts`` times.
    """
    for attempt in range(1, attempts + 1):
        service = client.inspect_service(service_id)
        spec = service["Spec"]
        spec["Mode"] = {"Replicated": {"Replicas": 1}}
        try:
            client.update_service(service_id, service["Version"]["Index"], spec)
            return
        except DockerApiError as exc:
            if "out of sequence" not in exc.engine_message or attempt == attempts:
                raise LaunchError(f"Could not update service {service_id} to 1 replica: "
                                  f"{exc.engine_message}") from exc
            time.sleep(0.2 * attempt)


def _watch(client: DockerClient, service_id: str, run: EngineRun, timeout: float | None,
           ) -> str | None:
    """Poll the service's task until it ends; return its container id."""
    start = time.monotonic()
    running_since: float | None = None
    container_id: str | None = None
    watcher: PeakMemory | None = None
    while True:
        tasks = client.service_tasks(service_id)
        if len(tasks) > 1:  # restart policy none: one task (DockerControlApi.java:1199-1201)
            raise LaunchError(f"service {run.name} has {len(tasks)} tasks; expected one")
        if tasks:
            task = tasks[0]
            status = task.get("Status") or {}
            state = str(status.get("State", "new"))
            container_status = status.get("ContainerStatus") or {}
            run.node = task.get("NodeID") or run.node
            run.note(state, str(status.get("Message") or ""), str(status.get("Err") or ""))
            found = container_status.get("ContainerID")
            if found and container_id is None:
                container_id = found
                watcher = PeakMemory(client, found)
            if state == "running" and running_since is None:
                running_since = time.monotonic()
                run.pending_seconds = round(running_since - start, 2)
            if state in EXIT_STATES:
                if "ExitCode" in container_status and container_id:
                    run.exit_code = int(container_status["ExitCode"])
                if running_since is not None:
                    run.running_seconds = round(time.monotonic() - running_since, 2)
                break
        if timeout is not None and time.monotonic() - start > timeout:
            raise LaunchError(f"stopped after {timeout:g} s (--timeout); task "
                              f"{run.state}" + (f": {run.reason}" if run.reason else ""))
        placed = bool(tasks) and run.state in _PLACED_STATES
        time.sleep(_CONTAINER_POLL_SECONDS if placed and container_id is None
                   else _POLL_SECONDS)
    if watcher is not None:
        run.memory = watcher.result()
    return container_id


def run_service(client: DockerClient, resolved: ResolvedCommand, image: str,
                hosts: dict[str, Path], env: dict[str, str], *, user: str | None,
                network: str | None, limits: bool, timeout: float | None, stdout: Path,
                stderr: Path, constraints: list[str] | None = None) -> EngineRun:
    """Create the service with 0 replicas, start it, follow its task, write its logs.

    The exit code is the task's (or its container's); ``failure`` says why there is none
    (e.g. a task ``rejected`` because the image cannot be pulled). The service is
    removed at the end, also after a timeout.

    Raises
    ------
    LaunchError
        When the service cannot be created or the job runs longer than ``timeout``.
    """
    spec = service_spec(resolved, image, hosts, env, user=user, network=network,
                        limits=limits, constraints=constraints)
    run = EngineRun("swarm", spec["Name"], image)
    reserve, limit, nano = resources(resolved.command, limits)
    run.reserve_memory_mib, run.limit_memory_mib = reserve // MIB or None, limit // MIB or None
    run.nano_cpus = nano or None
    try:
        service_id = client.create_service(spec)
    except DockerApiError as exc:
        raise LaunchError(f"Could not create service: {exc.engine_message}") from exc
    try:
        _start(client, service_id)
        container_id = _watch(client, service_id, run, timeout)
        if container_id:
            inspected = client.inspect_container(container_id)
            state = inspected.get("State") or {}
            run.oom_killed = bool(state.get("OOMKilled"))
            if run.exit_code is None and run.state in EXIT_STATES:
                run.exit_code = int(state.get("ExitCode", -1))
        out, err = client.service_logs(service_id)
        stdout.write_bytes(out)
        stderr.write_bytes(err)
        if run.exit_code is None:
            last = run.history[-1] if run.history else {}
            run.failure = (f"task {run.state}: " + (last.get("err") or last.get("message")
                                                     or "no container ran"))
        elif run.state != "complete" and run.exit_code == 0:
            run.failure = f"task ended {run.state} with exit code 0"
    finally:
        try:
            client.remove_service(service_id)
        except DockerApiError as exc:
            _log.warning("%s: cannot remove service %s: %s", run.name, service_id, exc)
    return run


def run_on_engine(runtime: str, resolved: ResolvedCommand, image: str,
                  hosts: dict[str, Path], env: dict[str, str], *, name: str, user: str,
                  network: str | None, limits: bool, timeout: float | None, stdout: Path,
                  stderr: Path, client: DockerClient | None = None) -> EngineRun:
    """Run a launch on the Docker engine (``docker``) or as a Swarm service (``swarm``).

    Raises
    ------
    LaunchError
        When the engine cannot run it (see :func:`run_container`, :func:`run_service`);
        :class:`~xnatpic.xnat.errors.ContainerRuntimeError` (a LaunchError) when it
        cannot be reached.
    """
    client = client or DockerClient()
    if runtime == "swarm":
        swarm = client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise LaunchError(
                f"--runtime swarm: the Docker engine at {client.path} is not a swarm "
                f"manager (Swarm state {swarm.get('LocalNodeState', 'unknown')!r}); run "
                "'docker swarm init --advertise-addr 127.0.0.1' or point DOCKER_HOST at a "
                "manager")
        return run_service(client, resolved, image, hosts, env, user=user,
                           network=network, limits=limits, timeout=timeout,
                           stdout=stdout, stderr=stderr)
    return run_container(client, resolved, image, hosts, env, name=name, user=user,
                         network=network, limits=limits, timeout=timeout,
                         stdout=stdout, stderr=stderr)


def task_summary(task: dict[str, Any]) -> str:
    """One line for the launch table: the task states seen, the scheduler's reason while
    pending, and measured peak memory against the declared reservation and limit.

    Examples
    --------
    >>> task_summary({"history": [{"state": "pending", "message": "pending task "
    ...     "scheduling", "err": "no suitable node (insufficient resources on 1 node)"},
    ...     {"state": "running", "message": "started", "err": ""},
    ...     {"state": "complete", "message": "finished", "err": ""}],
    ...     "memory": {"peak_mib": 80.5}, "reserve_memory_mib": 256,
    ...     "limit_memory_mib": 1024, "oom_killed": False}).split("; ")
    ['pending: no suitable node (insufficient resources on 1 node) > running > complete', \
'peak 80.5 MiB (reserve 256, limit 1024)']
    """
    states: list[str] = []
    for entry in task.get("history") or []:
        text = entry["state"]
        if entry["state"] in ("pending", "rejected", "failed") and entry.get("err"):
            text += f": {entry['err']}"
        if not states or states[-1] != text:
            states.append(text)
    line = " > ".join(states) or str(task.get("state", "?"))
    peak = (task.get("memory") or {}).get("peak_mib")
    if peak is not None:
        line += (f"; peak {peak} MiB (reserve {task.get('reserve_memory_mib')}, limit "
                 f"{task.get('limit_memory_mib')})")
    if task.get("oom_killed"):
        line += "; killed by its memory limit (OOM)"
    return line

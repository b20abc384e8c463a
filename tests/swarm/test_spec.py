"""The service spec and container config are the ones the Container Service builds.

Expected values are worked out here from commands/<step>.json and CS's conversions
(MiB x 1048576, CPUs x 1e9: container-service Container.java:143-157,
ContainerUtils.java:19-20), not read back from our own functions. The engine tests
(test_swarm_runs.py) check that a real engine accepts and keeps them.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.analysis.conftest import make_session
from xnatpic.xnat.archive import load_session
from xnatpic.xnat.docker_api import demultiplex, socket_path
from xnatpic.xnat.docker_engine import container_config
from xnatpic.xnat.errors import ContainerRuntimeError
from xnatpic.xnat.resolve import find_wrapper, resolve
from xnatpic.xnat.swarm import service_spec, task_summary

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _resolved(tmp_path: Path, step: str = "t2map", command: dict | None = None):
    command = command or json.loads((PROJECT_ROOT / "commands" / f"{step}.json").read_text())
    session = make_session(tmp_path / "archive", {})
    wrapper = find_wrapper(command, f"xnatpic-{step}-session")
    resolved = resolve(command, wrapper, load_session(session), {})
    hosts = {m.name: tmp_path / "host" / m.name for m in resolved.mounts}
    return command, resolved, hosts


def test_service_spec_as_cs_builds_it(tmp_path):
    command, resolved, hosts = _resolved(tmp_path)
    env = {"XNAT_HOST": "http://127.0.0.1:1", "XNAT_USER": "u"}
    spec = service_spec(resolved, "reg:5000/xnatpic-t2map:0.1.0", hosts, env,
                        user="1000:1000", network="host", limits=True)
    task = spec["TaskTemplate"]
    container = task["ContainerSpec"]
    assert spec["Mode"] == {"Replicated": {"Replicas": 0}}  # created, started by update
    assert task["RestartPolicy"] == {"Condition": "none"}
    assert task["Resources"] == {
        "Reservations": {"MemoryBytes": command["reserve-memory"] * 1024 * 1024},
        "Limits": {"MemoryBytes": command["limit-memory"] * 1024 * 1024,
                   "NanoCPUs": int(command["limit-cpu"] * 1_000_000_000)}}
    assert task["Placement"] == {"Constraints": []}
    assert task["Networks"] == [{"Target": "host"}]
    assert container["Image"] == "reg:5000/xnatpic-t2map:0.1.0"
    assert container["User"] == "1000:1000"
    assert container["Env"] == ["XNAT_HOST=http://127.0.0.1:1", "XNAT_USER=u"]
    # the image's ENTRYPOINT stays: the split command line goes to Args, not Command
    assert "Command" not in container
    assert container["Args"] == shlex.split(resolved.command_line)
    assert container["Mounts"] == [
        {"Source": str(hosts["in"]), "Target": "/input", "ReadOnly": True},
        {"Source": str(hosts["out"]), "Target": "/output", "ReadOnly": False}]
    assert "Dir" not in container  # no working-directory in the command
    assert spec["Labels"] == container["Labels"] == resolved.container_labels
    assert spec["EndpointSpec"] == {"Ports": []}
    assert len(spec["Name"]) == 36  # a random UUID (Container.java:130-133)


def test_service_spec_override_entrypoint_and_no_limits(tmp_path):
    command = json.loads((PROJECT_ROOT / "commands" / "t2map.json").read_text())
    command = {**command, "override-entrypoint": True, "working-directory": "/output"}
    _, resolved, hosts = _resolved(tmp_path, command=command)
    spec = service_spec(resolved, "img", hosts, {}, user=None, network=None, limits=False)
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["Command"] == ["/bin/sh", "-c", resolved.command_line]
    assert "Args" not in container and "User" not in container
    assert container["Dir"] == "/output"
    assert "Networks" not in spec["TaskTemplate"]
    assert spec["TaskTemplate"]["Resources"] == {
        "Reservations": {"MemoryBytes": 0}, "Limits": {"MemoryBytes": 0, "NanoCPUs": 0}}


def test_container_config_as_cs_builds_it(tmp_path):
    command, resolved, hosts = _resolved(tmp_path, "cest")
    config = container_config(resolved, "xnatpic-cest:x", hosts, {"A": "1"}, user="0:0",
                              network="host", limits=True)
    host = config["HostConfig"]
    assert host["Binds"] == [f"{hosts['in']}:/input:ro", f"{hosts['out']}:/output"]
    assert host["MemoryReservation"] == command["reserve-memory"] * 1048576
    assert host["Memory"] == command["limit-memory"] * 1048576
    assert host["NanoCpus"] == int(command["limit-cpu"] * 1e9)
    assert host["NetworkMode"] == "host" and host["PortBindings"] == {}
    assert host["AutoRemove"] is False
    assert config["Cmd"] == shlex.split(resolved.command_line)
    assert "Entrypoint" not in config
    assert config["Env"] == ["A=1"] and config["User"] == "0:0"
    assert config["WorkingDir"] == "" and config["Labels"] == resolved.container_labels


def test_container_config_override_entrypoint_clears_it(tmp_path):
    command = json.loads((PROJECT_ROOT / "commands" / "t2map.json").read_text())
    _, resolved, hosts = _resolved(tmp_path, command={**command,
                                                      "override-entrypoint": True})
    config = container_config(resolved, "img", hosts, {}, user="", network=None,
                              limits=True)
    assert config["Entrypoint"] == [""]
    assert config["Cmd"] == ["/bin/sh", "-c", resolved.command_line]
    assert "NetworkMode" not in config["HostConfig"]


def test_demultiplex_splits_stdout_and_stderr():
    frames = (b"\x01\x00\x00\x00\x00\x00\x00\x03out" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
              + b"\x01\x00\x00\x00\x00\x00\x00\x01!")
    assert demultiplex(frames) == (b"out!", b"err\n")
    assert demultiplex(b"plain tty text") == (b"plain tty text", b"")


def test_docker_host_must_be_a_unix_socket():
    assert socket_path("unix:///tmp/x.sock") == "/tmp/x.sock"
    assert socket_path("") == "/var/run/docker.sock"
    with pytest.raises(ContainerRuntimeError, match="only unix:// sockets"):
        socket_path("tcp://10.0.0.1:2376")


def test_task_summary_names_the_scheduler_reason_and_oom():
    line = task_summary({"history": [
        {"state": "pending", "message": "pending task scheduling",
         "err": "no suitable node (insufficient resources on 1 node)"},
        {"state": "running", "message": "started", "err": ""},
        {"state": "failed", "message": "started", "err": "task: non-zero exit (137)"}],
        "memory": {"peak_mib": 64.0}, "reserve_memory_mib": 256, "limit_memory_mib": 64,
        "oom_killed": True})
    assert line == ("pending: no suitable node (insufficient resources on 1 node) > running "
                    "> failed: task: non-zero exit (137); peak 64.0 MiB (reserve 256, limit "
                    "64); killed by its memory limit (OOM)")

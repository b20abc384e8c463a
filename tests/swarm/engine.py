"""A private Docker engine, a one-node swarm and a local registry for the Swarm tests.

Everything runs as root on this machine only for the duration of the tests: ``dockerd``
with its own socket, data root, exec root, pid file and containerd namespace (so it
never answers on /var/run/docker.sock and the podman-based tests keep detecting podman),
``--iptables=false`` (no host firewall changes); ``POST /swarm/init`` advertising
127.0.0.1; Debian's ``docker-registry`` on 127.0.0.1. The step images are built for that
registry by ``containers/build-images.sh`` (REGISTRY=...) and pushed by
``containers/push-images.sh`` with podman; the swarm pulls them by name.

Used by tests/swarm/conftest.py and benchmarks/bench_swarm.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xnatpic.xnat.docker_api import DockerClient
from xnatpic.xnat.labels import qualified_image, read_command_file, with_registry
from xnatpic.xnat.runtime import runtime_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
#: The engine's data root and logs, under the ignored build/ folder (images are pruned at
#: the end of each run).
STATE = PROJECT_ROOT / "build" / "swarm-engine"


class EngineUnavailable(RuntimeError):
    """dockerd, the swarm or the registry could not be started (the reason is the text)."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def docker_swarm(state: Path = STATE) -> Iterator[DockerClient]:
    """Start a private dockerd, make it a one-node swarm manager, stop both at the end.

    Raises
    ------
    EngineUnavailable
        Naming what failed (not root, no dockerd, the daemon's last log lines).
    """
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineUnavailable("dockerd is not installed (make container-tools installs "
                                "Debian's docker.io where no Docker engine runs)")
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd must be started as root (rootless Docker is not "
                                "set up here)")
    state.mkdir(parents=True, exist_ok=True)
    run = Path(f"/tmp/xnatpic-swarm-{os.getpid()}")  # short: unix socket paths <= 107
    run.mkdir(exist_ok=True)
    sock, log = run / "docker.sock", state / "dockerd.log"
    argv = [dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--data-root", str(state / "data"), "--exec-root", str(run / "exec"),
            "--pidfile", str(run / "dockerd.pid"), "-H", f"unix://{sock}",
            "--containerd-namespace", "xnatpic-swarm",
            "--containerd-plugins-namespace", "xnatpic-swarm-plugins"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    client = DockerClient(str(sock))
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise EngineUnavailable(f"dockerd exited {proc.returncode}:\n{_tail(log)}")
            if sock.exists() and client.ping():
                break
            time.sleep(0.1)
        else:
            raise EngineUnavailable(f"dockerd did not answer on {sock} in 30 s:\n"
                                    f"{_tail(log)}")
        swarm = client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") == "active":  # a previous run's swarm left behind
            client.swarm_leave()
        client.swarm_init("127.0.0.1", f"127.0.0.1:{free_port()}")
        yield client
    finally:
        try:
            if proc.poll() is None and client.ping():
                for service in client.request("GET", "/services") or []:
                    client.remove_service(service["ID"])
                client.swarm_leave()
                # what the swarm left (task containers) and the images, pulled again next
                # run under a new registry port: the data root does not grow
                for container in client.request("GET", "/containers/json",
                                                query={"all": True}) or []:
                    client.remove_container(container["Id"])
                client.remove_all_images()
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
            _remove_exec_root(run)


def _remove_exec_root(run: Path) -> None:
    """Remove the stopped daemon's run folder, after unmounting the network namespaces
    dockerd bind-mounts under ``exec/netns`` (the swarm's ingress) and leaves behind."""
    netns = run / "exec" / "netns"
    for mount in sorted(netns.iterdir()) if netns.is_dir() else []:
        if os.path.ismount(mount) or mount.is_file():
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
    shutil.rmtree(run)


@contextmanager
def local_registry(root: Path, port: int | None = None) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (plain HTTP); yields ``127.0.0.1:PORT``.

    Raises
    ------
    EngineUnavailable
        When docker-registry is missing or does not answer.
    """
    exe = shutil.which("docker-registry")
    if exe is None:
        raise EngineUnavailable("docker-registry is not installed (make container-tools)")
    port = port or free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{root}/store\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise EngineUnavailable(f"docker-registry did not answer on 127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _script(name: str, registry: str, steps: list[str], **env: str) -> None:
    runtime = "podman"
    # without DOCKER_HOST: the scripts' `xnatpic commands lint image:...` would otherwise
    # find the private engine and look for the podman-built image there
    base = {k: v for k, v in runtime_env(runtime).items() if k != "DOCKER_HOST"}
    proc = subprocess.run(
        ["bash", str(PROJECT_ROOT / "containers" / name), *steps], capture_output=True,
        text=True, check=False, timeout=3600,
        env={**base, "RUNTIME": runtime, "REGISTRY": registry,
             "PYTHON": sys.executable, "XNATPIC": str(Path(sys.executable).parent / "xnatpic"),
             **env})
    if proc.returncode != 0:
        raise EngineUnavailable(f"containers/{name} {' '.join(steps)} failed "
                                f"({proc.returncode}):\n{proc.stderr[-3000:]}")


def publish_images(registry: str, steps: list[str]) -> dict[str, str]:
    """Build the steps' images for ``registry`` with podman and push them there.

    Returns
    -------
    dict
        Step name -> registry-qualified image (what the swarm pulls).
    """
    _script("build-images.sh", registry, steps)
    _script("push-images.sh", registry, steps, TLS_VERIFY="false")
    return {step: qualified_image(read_command_file(COMMANDS / f"{step}.json")["image"],
                                  registry) for step in steps}


def registered_command(step: str, registry: str) -> dict[str, Any]:
    """commands/<step>.json as ``xnatpic commands register --image`` records it: the
    image named with the registry."""
    [command] = with_registry(json.loads((COMMANDS / f"{step}.json").read_text()), registry)
    return command

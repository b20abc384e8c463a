"""Registry-qualified image names: tags and labels under ``REGISTRY`` (labels.py, Makefile).

Swarm and Kubernetes nodes pull the command's ``image`` by name (DockerControlApi.java:719
sets it as the service's image; the Kubernetes job's container image likewise), so an image
pushed to a registry must be tagged ``<registry>/xnatpic-<step>:<version>`` and its
``org.nrg.commands`` label must name it that way. commands/ stays unqualified.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oracles import require_executable
from xnatpic.xnat.errors import LabelError
from xnatpic.xnat.labels import (
    dockerfile_for_registry,
    qualified_image,
    read_command_file,
    read_dockerfile_label,
    with_registry,
)
from xnatpic.xnat.lint import lint_commands
from xnatpic.xnat.runtime import runtime_env
from xnatpic.xnat.schema import load_commands, read_image_label

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = PROJECT_ROOT / "containers" / "build-images.sh"
PUSH_SCRIPT = PROJECT_ROOT / "containers" / "push-images.sh"


@pytest.mark.parametrize(("registry", "expected"), [
    ("", "xnatpic-t1map:0.1.1"),
    ("127.0.0.1:5000", "127.0.0.1:5000/xnatpic-t1map:0.1.1"),
    ("registry.example.org:5000/lab/", "registry.example.org:5000/lab/xnatpic-t1map:0.1.1"),
    ("localhost:5000", "localhost:5000/xnatpic-t1map:0.1.1"),
    ("ghcr.io/my-lab", "ghcr.io/my-lab/xnatpic-t1map:0.1.1"),
    ("mylab", "mylab/xnatpic-t1map:0.1.1"),  # a Docker Hub namespace
])
def test_qualified_image(registry, expected):
    assert qualified_image("xnatpic-t1map:0.1.1", registry) == expected


@pytest.mark.parametrize("registry", ["my registry", "host:port", "host/UPPER", "host//lab",
                                      "https://host", "host:5000/lab:tag"])
def test_bad_registry_is_refused(registry):
    with pytest.raises(LabelError, match="is not a registry prefix"):
        qualified_image("xnatpic-t1map:0.1.1", registry)


@pytest.mark.parametrize("image", ["ghcr.io/x/y:1", "localhost/y:1", "host:5000/y:1"])
def test_image_with_registry_is_not_qualified_twice(image):
    with pytest.raises(LabelError, match="already names a registry"):
        qualified_image(image, "127.0.0.1:5000")


def test_with_registry_changes_only_images_of_a_copy():
    data = read_command_file(PROJECT_ROOT / "commands" / "t1map.json")
    original = json.dumps(data, sort_keys=True)
    [command] = with_registry(data, "reg.example.org")
    assert json.dumps(data, sort_keys=True) == original
    assert command["image"] == f"reg.example.org/{data['image']}"
    assert {**command, "image": data["image"]} == data


def test_dockerfile_for_registry_keeps_everything_but_the_label(tmp_path):
    dockerfile = PROJECT_ROOT / "containers" / "t1map" / "Dockerfile"
    command_file = PROJECT_ROOT / "commands" / "t1map.json"
    copy = tmp_path / "Dockerfile"
    copy.write_text(dockerfile_for_registry(dockerfile, command_file, "reg.example.org"))
    [label] = read_dockerfile_label(copy)
    data = read_command_file(command_file)
    assert label == {**data, "image": f"reg.example.org/{data['image']}"}
    original = [ln for ln in dockerfile.read_text().splitlines() if not ln.startswith("LABEL ")]
    assert [ln for ln in copy.read_text().splitlines() if not ln.startswith("LABEL ")] \
        == original


def test_dockerfile_out_of_date_is_refused(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    text = (PROJECT_ROOT / "containers" / "t1map" / "Dockerfile").read_text()
    dockerfile.write_text(text.replace('\\"label\\":\\"T1 map\\"', '\\"label\\":\\"T1\\"', 1))
    with pytest.raises(LabelError, match="run 'make labels'"):
        dockerfile_for_registry(dockerfile, PROJECT_ROOT / "commands" / "t1map.json", "reg.io")


def test_make_images_passes_registry():
    proc = subprocess.run(["make", "-n", "-C", str(PROJECT_ROOT), "images",
                           "REGISTRY=127.0.0.1:5000/lab"], capture_output=True, text=True,
                          check=True)
    assert "REGISTRY='127.0.0.1:5000/lab' containers/build-images.sh" in proc.stdout


def test_build_script_refuses_bad_registry_before_building(container_runtime):
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "t1map"], capture_output=True, text=True, check=False,
        env={**runtime_env(container_runtime), "RUNTIME": container_runtime,
             "REGISTRY": "my registry", "PYTHON": sys.executable,
             "XNATPIC": str(Path(sys.executable).parent / "xnatpic")},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "build-images: registry 'my registry' is not a registry prefix: expected "
        "HOST[:PORT][/path], e.g. registry.example.org:5000/lab")
    assert "build xnatpic-base" not in proc.stderr


@pytest.fixture(scope="module")
def registry_port() -> int:
    """A free local port for the test registry."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(script: Path, runtime: str, registry: str, *args: str,
            **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, check=False,
        env={**runtime_env(runtime), "RUNTIME": runtime, "REGISTRY": registry,
             "PYTHON": sys.executable, "XNATPIC": str(Path(sys.executable).parent / "xnatpic"),
             **env},
        timeout=1800,
    )


@pytest.fixture(scope="module")
def registry_image(built_images, container_runtime, registry_port) -> Iterator[str]:
    """xnatpic-t2map built for the registry 127.0.0.1:<port> (removed afterwards)."""
    command = read_command_file(PROJECT_ROOT / "commands" / "t2map.json")
    image = f"127.0.0.1:{registry_port}/{command['image']}"
    proc = _script(BUILD_SCRIPT, container_runtime, f"127.0.0.1:{registry_port}", "t2map")
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"build {image}" in proc.stderr
        yield image
    finally:
        subprocess.run([container_runtime, "rmi", image], capture_output=True, check=False,
                       env=runtime_env(container_runtime))


@pytest.fixture(scope="module")
def local_registry(registry_port, tmp_path_factory) -> Iterator[str]:
    """Debian's docker-registry serving plain HTTP on 127.0.0.1:<port> (container-runtime.md)."""
    exe = require_executable("docker-registry", "apt-get install docker-registry")
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/store\n"
                      f"http:\n  addr: 127.0.0.1:{registry_port}\n")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{registry_port}/v2/"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url, timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"docker-registry did not answer at {url}")
        yield f"127.0.0.1:{registry_port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_image_built_for_registry_is_labelled_as_tagged(registry_image, container_runtime):
    command = read_command_file(PROJECT_ROOT / "commands" / "t2map.json")
    assert json.loads(read_image_label(registry_image, cli=container_runtime)) \
        == [{**command, "image": registry_image}]
    # lints clean: not even W104 (no registry host), which the unqualified image gets
    assert lint_commands(load_commands(f"image:{registry_image}")) == []


def test_push_refuses_image_labelled_with_another_name(built_images, container_runtime,
                                                      registry_port):
    command = read_command_file(PROJECT_ROOT / "commands" / "t1map.json")
    image = f"127.0.0.1:{registry_port}/{command['image']}"
    env = runtime_env(container_runtime)
    subprocess.run([container_runtime, "tag", command["image"], image], check=True, env=env)
    try:
        proc = _script(PUSH_SCRIPT, container_runtime, f"127.0.0.1:{registry_port}", "t1map")
    finally:
        subprocess.run([container_runtime, "rmi", image], capture_output=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"push-images: image {image}: its label names ['{command['image']}'], not {image}; "
        f"rebuild it with make images REGISTRY=127.0.0.1:{registry_port}")


def test_pushed_image_is_pulled_by_its_name(registry_image, local_registry,
                                            container_runtime):
    env = runtime_env(container_runtime)
    tls = {"TLS_VERIFY": "false"} if container_runtime == "podman" else {}
    proc = _script(PUSH_SCRIPT, container_runtime, local_registry, "t2map", **tls)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, tag = registry_image.split("/", 1)[1].split(":")
    with urllib.request.urlopen(f"http://{local_registry}/v2/{name}/tags/list") as answer:
        assert json.load(answer) == {"name": name, "tags": [tag]}
    subprocess.run([container_runtime, "rmi", registry_image], capture_output=True,
                   check=True, env=env)
    pull = [container_runtime, "pull", *(["--tls-verify=false"] if tls else []),
            registry_image]
    subprocess.run(pull, capture_output=True, check=True, env=env)
    command = read_command_file(PROJECT_ROOT / "commands" / "t2map.json")
    assert json.loads(read_image_label(registry_image, cli=container_runtime)) \
        == [{**command, "image": registry_image}]


def test_push_needs_a_registry(container_runtime):
    proc = _script(PUSH_SCRIPT, container_runtime, "", "t2map")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "push-images: set REGISTRY=HOST[:PORT][/path], the registry the images were built "
        "for (make images REGISTRY=...)")

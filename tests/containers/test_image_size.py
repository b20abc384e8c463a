"""The built images: within the size budget containers/README.md states, nothing left over
from building them, the pinned Debian base, and the CPU limit seen by the fits.

The images are built once per test run (session fixture ``built_images``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.containers.test_images import STEPS, _image, _inspect
from tests.oracles import require_executable
from xnatpic.xnat.runtime import runtime_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
README = PROJECT_ROOT / "containers" / "README.md"
DEBIAN_LOCK = PROJECT_ROOT / "containers" / "debian-base.lock"


def _budget_bytes() -> int:
    """The budget containers/README.md states ("Image size budget: N MB", MB = 10^6 bytes,
    as docker and podman count)."""
    found = re.search(r"Image size budget: (\d+) MB", README.read_text())
    assert found, f"{README} states no 'Image size budget: N MB'"
    return int(found.group(1)) * 1_000_000


def _sh(runtime: str, image: str, script: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [runtime, "run", "--rm", "--network", "none", *options, "--entrypoint", "/bin/sh",
         image, "-c", script],
        capture_output=True, text=True, check=False, env=runtime_env(runtime), timeout=120)


@pytest.mark.parametrize("step", STEPS)
def test_image_within_the_stated_size_budget(built_images, container_runtime, step):
    size = int(_inspect(container_runtime, _image(step), "{{.Size}}"))
    budget = _budget_bytes()
    assert size <= budget, (f"{_image(step)} is {size / 1e6:.1f} MB, over the "
                            f"{budget / 1e6:.0f} MB budget of {README.name}")


def test_nothing_left_from_building(built_images, container_runtime):
    # apt's downloaded packages, lists and caches, pip and its cache, the packages' own test
    # suites and build-only files: none of it runs in a step
    site = "/opt/xnatpic/venv/lib/python3*/site-packages"
    proc = _sh(container_runtime, _image("t2map"), f"""
        find /var/cache/apt /var/lib/apt/lists -type f ! -name lock | head -5
        find / -xdev -name '*.deb' | head -5
        find /root/.cache /tmp -mindepth 1 -maxdepth 1 2>/dev/null | head -5
        find {site} -mindepth 2 -type d -name tests | head -5
        find {site} -name '*.pyi' -o -name '*.pxd' -o -name '*.h' | head -5
        ls -d {site}/pip {site}/setuptools 2>/dev/null
        echo checked
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["checked"], proc.stdout


def test_steps_import_what_they_need(built_images, container_runtime):
    # what the steps import, previews (matplotlib's Agg PNG writer) included, still works
    # after the trimming
    proc = _sh(container_runtime, _image("t2map"), """python3 - <<'EOF'
import io
import numpy as np
from matplotlib.figure import Figure
from matplotlib.backends.backend_agg import FigureCanvasAgg
import scipy.ndimage, scipy.optimize, scipy.special, pydicom, nibabel
import xnatpic.models, xnatpic.step_output
figure = Figure()
FigureCanvasAgg(figure)
axes = figure.add_subplot()
figure.colorbar(axes.imshow(np.arange(16.0).reshape(4, 4)))
axes.set_title("T2 (ms)")
out = io.BytesIO()
figure.savefig(out, format="png")
print(out.getvalue()[:4] == b"\\x89PNG")
EOF""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True"], proc.stdout


def test_base_is_the_pinned_debian_package_set(built_images, container_runtime):
    # containers/build-debian-base.sh checks every package against the lock before the
    # import and labels the base with the lock's sha256; the step images inherit the label
    lock_sha = hashlib.sha256(DEBIAN_LOCK.read_bytes()).hexdigest()
    label = _inspect(container_runtime, _image("t2map"),
                     '{{ index .Config.Labels "org.xnatpic.debian-base.lock" }}')
    assert label == lock_sha
    proc = _sh(container_runtime, _image("t2map"),
               "dpkg-query -W -f '${Package} ${Version} ${Architecture}\\n'")
    assert proc.returncode == 0, proc.stderr
    locked = sorted(" ".join(line.split()[1:4]) for line in DEBIAN_LOCK.read_text().splitlines()
                    if line.startswith("deb "))
    assert sorted(proc.stdout.splitlines()) == locked


def test_fits_use_the_cpus_of_the_container_limit(built_images, container_runtime):
    script = ('python3 -c "from xnatpic.models._blocks import available_cpus; '
              'print(available_cpus())"')
    limited = _sh(container_runtime, _image("t2map"), script, "--cpus", "1")
    assert limited.returncode == 0, limited.stderr
    assert limited.stdout.split() == ["1"]
    free = _sh(container_runtime, _image("t2map"), script)
    assert free.returncode == 0, free.stderr
    assert free.stdout.split() == [str(len(os.sched_getaffinity(0)))]


def test_base_build_refuses_packages_not_in_the_lock(container_runtime, tmp_path):
    # the pinning is a check, not a record: a lock that names another version of one
    # package (as after a Debian point release) stops the build before anything is imported
    require_executable("debootstrap", "make container-tools")
    lines = DEBIAN_LOCK.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("deb tzdata "))
    _, name, version, arch, sha = lines[index].split()
    lines[index] = f"deb {name} {version}~older {arch} {sha}"
    lock = tmp_path / "debian-base.lock"
    lock.write_text("\n".join(lines) + "\n")
    image = "localhost/xnatpic-test-refused-base:lock"
    proc = subprocess.run(
        ["bash", str(PROJECT_ROOT / "containers" / "build-debian-base.sh"), container_runtime],
        capture_output=True, text=True, check=False, timeout=900,
        env={**runtime_env(container_runtime), "DEBIAN_BASE_LOCK": str(lock),
             "DEBIAN_BASE_IMAGE": image})
    assert proc.returncode == 1, proc.stderr
    assert f"< {name} {version}~older {arch} {sha}" in proc.stderr
    assert f"> {name} {version} {arch} {sha}" in proc.stderr
    assert "refusing to build an unpinned base" in proc.stderr
    exists = subprocess.run([container_runtime, "image", "exists", image], check=False,
                            env=runtime_env(container_runtime))
    assert exists.returncode != 0


def test_requirements_lock_pins_the_tested_set_with_hashes():
    # every dependency of the package (transitively) is pinned to the version the project
    # venv tests, with at least one sha256, and nothing else is
    text = (PROJECT_ROOT / "containers" / "requirements.lock").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)((?:\s*\\\n\s*--hash=sha256:[0-9a-f]{64})+)",
                         text, flags=re.M)
    pinned = {canonicalize_name(name): version for name, version, _ in entries}
    requirements = [line for line in text.splitlines()
                    if line and not line.startswith((" ", "#"))]
    assert len(pinned) == len(requirements), "a requirement without a pin or a hash"
    project = tomllib.loads((PROJECT_ROOT / "shared" / "pyproject.toml").read_text())
    closure: set[str] = set()
    todo: list[str | None] = [None]  # None: the package itself, from its pyproject.toml
    while todo:
        name = todo.pop()
        specs = (project["project"]["dependencies"] if name is None
                 else metadata.distribution(name).requires or [])
        for spec in specs:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            name = canonicalize_name(req.name)
            if name not in closure:
                closure.add(name)
                todo.append(name)
    assert set(pinned) == closure
    for name, version in pinned.items():
        assert metadata.version(name) == version, name

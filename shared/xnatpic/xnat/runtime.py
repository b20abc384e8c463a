"""Find a container runtime that can run images here: docker with an engine, else podman.

On machines without a Docker engine podman is used; it needs the project's
``containers/containers.conf`` (runc, low ulimits: see container-runtime.md), which is
passed as ``CONTAINERS_CONF`` unless that variable is already set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from xnatpic.xnat.errors import ContainerRuntimeError

__all__ = ["RUNTIMES", "detect_runtime", "image_entrypoint", "runtime_env"]

RUNTIMES = ("docker", "podman")


def _project_conf() -> Path | None:
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        candidate = parent / "containers" / "containers.conf"
        if candidate.is_file():
            return candidate
    return None


def runtime_env(runtime: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment to run ``runtime`` with (CONTAINERS_CONF for podman)."""
    env = dict(os.environ if base is None else base)
    if runtime == "podman" and "CONTAINERS_CONF" not in env:
        conf = _project_conf()
        if conf is not None:
            env["CONTAINERS_CONF"] = str(conf)
    return env


def _works(runtime: str) -> bool:
    if not shutil.which(runtime):
        return False
    proc = subprocess.run([runtime, "info"], capture_output=True, check=False,
                          env=runtime_env(runtime), timeout=60)
    return proc.returncode == 0


def detect_runtime(preferred: str | None = None) -> str:
    """Return ``docker`` when its engine answers, else ``podman`` when it works.

    Parameters
    ----------
    preferred : str, optional
        Use this one (checked) instead of detecting.

    Raises
    ------
    ContainerRuntimeError
        When no runtime can run containers.
    """
    candidates = [preferred] if preferred else list(RUNTIMES)
    for runtime in candidates:
        if runtime not in RUNTIMES:
            raise ContainerRuntimeError(f"unknown runtime {runtime!r}; use docker or podman")
        if _works(runtime):
            return runtime
    raise ContainerRuntimeError(
        f"no container runtime works here (tried {', '.join(candidates)}: '<runtime> info' "
        "failed or it is not installed); install podman ('make container-tools') or start "
        "Docker"
    )


def image_entrypoint(image: str, runtime: str) -> list[str]:
    """Return an image's ENTRYPOINT as a list (empty when it has none).

    Raises
    ------
    ContainerRuntimeError
        When the image cannot be inspected.
    """
    proc = subprocess.run(
        [runtime, "image", "inspect", "--format", "{{json .Config.Entrypoint}}", image],
        capture_output=True, text=True, check=False, env=runtime_env(runtime),
    )
    if proc.returncode != 0:
        raise ContainerRuntimeError(f"image {image}: cannot inspect it with {runtime}: "
                                    f"{proc.stderr.strip()}")
    value = json.loads(proc.stdout.strip() or "null")
    return list(value or [])

"""The host command that stands in for a step image's ENTRYPOINT (``--runtime local``).

An xnatpic step image runs ``python3 /opt/xnatpic/pipelines/<step>/run.py`` (its
Dockerfile's ENTRYPOINT). From a clone the same step is ``pipelines/<step>/run.py`` of the
clone, run by the Python that runs xnatpic (``sys.executable``, the venv's), so
``xnatpic launch --runtime local`` needs neither the image nor an activated venv.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

__all__ = ["IMAGE_ROOT", "dockerfile_entrypoint", "host_entrypoint", "repository_root",
           "step_of_image"]

#: Where the base image copies the repository's ``pipelines/`` (containers/base/Dockerfile).
IMAGE_ROOT = "/opt/xnatpic/"

_ENTRYPOINT = re.compile(r"^\s*ENTRYPOINT\s+(\[.*\])\s*$", re.MULTILINE)


def repository_root() -> Path | None:
    """The clone this xnatpic runs from (holds ``containers/`` and ``pipelines/``), if any."""
    root = Path(__file__).resolve().parents[3]
    if (root / "containers").is_dir() and (root / "pipelines").is_dir():
        return root
    return None


def step_of_image(image: str) -> str:
    """``registry:5000/lab/xnatpic-t2map:0.1.1`` → ``t2map``.

    Examples
    --------
    >>> step_of_image("registry.example.org:5000/xnatpic/xnatpic-t1map:0.1.1")
    't1map'
    >>> step_of_image("xnatpic-roi-stats")
    'roi-stats'
    """
    name = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]
    return name.removeprefix("xnatpic-")


def dockerfile_entrypoint(dockerfile: Path) -> list[str] | None:
    """The exec-form ENTRYPOINT of a Dockerfile (the last one), or None."""
    found = _ENTRYPOINT.findall(dockerfile.read_text(encoding="utf-8"))
    return list(json.loads(found[-1])) if found else None


def host_entrypoint(entrypoint: list[str], root: Path) -> list[str]:
    """Map an image ENTRYPOINT onto the clone at ``root`` and this Python.

    Examples
    --------
    >>> import sys
    >>> cmd = host_entrypoint(["python3", "/opt/xnatpic/pipelines/t2map/run.py"], Path("/r"))
    >>> cmd == [sys.executable, "/r/pipelines/t2map/run.py"]
    True
    """
    mapped = []
    for i, arg in enumerate(entrypoint):
        if i == 0 and Path(arg).name.startswith("python"):
            mapped.append(sys.executable)
        elif arg.startswith(IMAGE_ROOT):
            mapped.append(str(root / arg.removeprefix(IMAGE_ROOT)))
        else:
            mapped.append(arg)
    return mapped

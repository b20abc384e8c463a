"""What the local launcher adds to Container Service parity to keep a step contained
(issue 16). docs/xnat-conformance.md (hardening section) lists where this differs from CS.

- :func:`local_environment`: a ``--runtime local`` step gets a minimal environment, not
  the user's (which may hold a salt, tokens, cloud keys).
- a command's declared secrets are resolved by :mod:`xnatpic.xnat.secrets` and reach only
  the steps of commands that declare them.
- :data:`PODMAN_HARDENING`: flags added to ``podman run`` only; the Docker Engine and
  Swarm paths mirror CS, which sets none of them (DockerControlApi.java:560-618).
- :func:`copy_output`: outputs are stored without following symbolic links.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from xnatpic.xnat.errors import LaunchError

__all__ = [
    "LOCAL_PASSTHROUGH",
    "PODMAN_HARDENING",
    "copy_output",
    "local_environment",
]

_log = logging.getLogger(__name__)

#: Host variables a local step still sees (locale and search path only).
LOCAL_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ")
#: Added to ``podman run``: no capabilities, no privilege gain through setuid files, a
#: read-only root with a private /tmp, and a bounded number of processes.
PODMAN_HARDENING = ("--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                    "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=1g",
                    "--pids-limit", "512")


def local_environment(step_env: Mapping[str, str],
                      host_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``--runtime local`` step: PATH, LANG, LC_ALL and TZ from the
    host, ``HOME=/tmp``, then ``step_env`` (the command's variables, XNAT's five and its
    resolved secrets). Nothing else of the host environment is passed.

    Examples
    --------
    >>> env = local_environment({"XNAT_HOST": "h"}, {"PATH": "/bin", "SALT": "s"})
    >>> sorted(env.items())
    [('HOME', '/tmp'), ('PATH', '/bin'), ('XNAT_HOST', 'h')]
    """
    host = os.environ if host_env is None else host_env
    env = {name: host[name] for name in LOCAL_PASSTHROUGH if name in host}
    env.setdefault("PATH", os.defpath)
    env["HOME"] = "/tmp"
    env.update(step_env)
    return env


def _skip_links(folder: str, names: list[str]) -> set[str]:
    skipped = {n for n in names if os.path.islink(os.path.join(folder, n))}
    for name in sorted(skipped):
        _log.warning("output %s: symbolic link not stored (it points at %s)",
                     os.path.join(folder, name), os.readlink(os.path.join(folder, name)))
    return skipped


def copy_output(source: Path, dest: Path) -> None:
    """Copy an output file or folder into ``dest`` without following symbolic links:
    links inside are skipped with a warning; an output that is itself a link fails.

    Raises
    ------
    LaunchError
        When ``source`` is a symbolic link.
    """
    if source.is_symlink():
        raise LaunchError(f"{source} is a symbolic link (to {os.readlink(source)}); "
                          "outputs are stored without following links")
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=_skip_links)
    else:
        shutil.copy2(source, dest / source.name, follow_symlinks=False)

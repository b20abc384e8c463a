"""What the local launcher adds to Container Service parity to keep a step contained
(issue 16). docs/xnat-conformance.d/hardening.md lists where this differs from CS.

- :func:`local_environment`: a ``--runtime local`` step gets a minimal environment, not
  the user's (which may hold a salt, tokens, cloud keys).
- :func:`secret_environment`: a command's ``secrets`` with an ``environment-variable``
  destination, resolved locally from the variable of that name in the launching
  environment, and only for commands that declare them (CS resolves a
  ``system-property`` source with ``System.getProperty``,
  container-service src/main/java/org/nrg/containers/secrets/SystemPropertySecretSource.java:72).
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
from typing import Any

from xnatpic.xnat.errors import LaunchError

__all__ = [
    "LOCAL_PASSTHROUGH",
    "PODMAN_HARDENING",
    "copy_output",
    "local_environment",
    "secret_environment",
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


def secret_environment(command: Mapping[str, Any],
                       host_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The command's environment-variable secrets, each read from the launching
    environment's variable of the same name (the local stand-in for XNAT's system
    property or environment-variable source).

    A secret that is not set is left out with a warning, so the step reports it itself;
    CS would fail the launch before it starts (ResolvedSecret.java:62).

    Examples
    --------
    >>> cmd = {"secrets": [{"source": {"type": "system-property", "identifier": "a.b"},
    ...        "destination": {"type": "environment-variable", "identifier": "S"}}]}
    >>> secret_environment(cmd, {"S": "x", "OTHER": "y"})
    {'S': 'x'}
    """
    host = os.environ if host_env is None else host_env
    out: dict[str, str] = {}
    for secret in command.get("secrets") or []:
        destination = secret.get("destination") or {}
        if destination.get("type") != "environment-variable":
            continue
        name = str(destination.get("identifier"))
        if host.get(name):
            out[name] = host[name]
        else:
            source = secret.get("source") or {}
            _log.warning("secret %r (%s) is not resolved: %s is not set in the launching "
                         "environment", source.get("identifier"), source.get("type"), name)
    return out


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

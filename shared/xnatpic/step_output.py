"""The first thing every step does: make sure it can write its output folder.

XNAT's Container Service creates each output folder as the user XNAT runs as and makes it
writable by that user only (container-service v3.7.3
``services/impl/CommandResolutionServiceImpl.java:3122`` ``Files.createDirectory``, then
``:3127`` ``File.setWritable(true)``, owner only). A step whose process runs as another uid
cannot write there, and would otherwise fail late with a traceback.
:func:`check_output_writable` fails at once with one line that names the owner of the
folder and the XNAT setting that fixes it, the *Container User* of the compute backend
(``containerService-siteAdmin.js:311-312``, tab ``site-settings.yaml:305``), which CS
passes to Docker (``api/DockerControlApi.java:614``), Swarm (``:722``) and Kubernetes
(``api/KubernetesClientImpl.java:366``) as the container's user.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from xnatpic.errors import XnatpicError

__all__ = ["CONTAINER_USER_SETTING", "NOT_APPLICABLE_EXIT", "NOT_APPLICABLE_MARK",
           "NOT_ENOUGH_SIGNAL_EXIT", "NOT_ENOUGH_SIGNAL_MARK", "STEP_OUTCOMES",
           "OutputNotWritableError", "check_output_writable", "launch_exit_status",
           "step_outcome"]

#: Exit status of a step that finds nothing to do in its input (a map step on a session
#: without a suitable scan). XNAT marks every non-zero exit Failed (container-service
#: ContainerServiceImpl.java:2204-2220 exitCodeIsFailed, :1288;
#: ContainerFinalizeServiceImpl.java:253, 274-310); ``xnatpic launch`` and ``xnatpic xnat
#: bulk-launch`` count it as "not applicable", neither success nor failure, when the last
#: stderr line also holds :data:`NOT_APPLICABLE_MARK` (``t2map: not applicable: ...``).
NOT_APPLICABLE_EXIT = 3
NOT_APPLICABLE_MARK = ": not applicable: "
#: Exit status of a map step whose noise gate finds the data cannot give a map (fewer than
#: half of the mask above the SNR floor; last stderr line ``t2map: not enough signal: ...``).
#: XNAT marks it Failed too; the launchers show it as its own outcome.
NOT_ENOUGH_SIGNAL_EXIT = 4
NOT_ENOUGH_SIGNAL_MARK = ": not enough signal: "
#: Outcomes a step states itself: exit status -> (outcome, mark of its last stderr line).
STEP_OUTCOMES: dict[int, tuple[str, str]] = {
    NOT_APPLICABLE_EXIT: ("not applicable", NOT_APPLICABLE_MARK),
    NOT_ENOUGH_SIGNAL_EXIT: ("not enough signal", NOT_ENOUGH_SIGNAL_MARK),
}


def step_outcome(exit_code: int | None, last_line: str) -> str | None:
    """The outcome a step stated by its exit status and last stderr line ("not applicable",
    "not enough signal"), or None (a failure, or a success)."""
    outcome, mark = STEP_OUTCOMES.get(exit_code if exit_code is not None else 0, ("", ""))
    return outcome if mark and mark in last_line else None


def launch_exit_status(outcomes: Iterable[str]) -> int:
    """Exit status of a launch over sessions from their outcomes: 1 when any failed;
    :data:`NOT_APPLICABLE_EXIT` when the step applied to none; :data:`NOT_ENOUGH_SIGNAL_EXIT`
    when some session's data could not give a map; 0 otherwise."""
    seen = set(outcomes)
    if seen - {"complete", "not applicable", "not enough signal"}:
        return 1
    if seen == {"not applicable"}:
        return NOT_APPLICABLE_EXIT
    return NOT_ENOUGH_SIGNAL_EXIT if "not enough signal" in seen else 0

#: Where an XNAT administrator sets the uid the containers run as (container-service
#: site-settings.yaml "Compute Backend" tab; containerService-siteAdmin.js field
#: ``container-user`` labelled "Container User").
CONTAINER_USER_SETTING = ("Administer > Plugin Settings > Container Service > Compute Backend "
                          "> (edit the host) > Container User")


class OutputNotWritableError(XnatpicError):
    """The step's output folder cannot be written by the user the step runs as."""


def check_output_writable(output: Path) -> None:
    """Create ``output`` if needed and prove a file can be created in it.

    A probe file is created and removed again, so nothing is left behind; permission
    bits alone do not tell (read-only mounts, ACLs, root squashing).

    Parameters
    ----------
    output : Path
        The step's output folder (``/output`` in the container).

    Raises
    ------
    OutputNotWritableError
        With one line saying why and what to change.
    """
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".xnatpic-write-check-", dir=output)
    except OSError as exc:
        raise OutputNotWritableError(_reason(output, exc)) from exc
    os.close(handle)
    os.unlink(probe)


def _reason(output: Path, exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return (f"{output} is on a read-only mount: the command's output mount must be "
                "'writable': true")
    if exc.errno not in (errno.EACCES, errno.EPERM):
        return f"{output} cannot be written: {exc.strerror or exc}"
    user = f"uid {os.getuid()}, gid {os.getgid()}"
    try:
        existing = next((p for p in (output, *output.parents) if p.exists()), output)
        owner = existing.stat()
    except OSError:  # not even searchable: the owner cannot be named
        return (f"{output} is not writable by this step's user ({user}). XNAT creates the "
                "output folder writable by the user XNAT runs as only: set "
                f"{CONTAINER_USER_SETTING} to the uid:gid XNAT runs as")
    folder = "" if existing == output else f" ({existing} exists)"
    return (f"{output} is not writable by this step's user ({user}); it belongs to uid "
            f"{owner.st_uid} gid {owner.st_gid} with mode {owner.st_mode & 0o7777:04o}"
            f"{folder}. XNAT creates the output folder writable by the user XNAT runs as "
            f"only: set {CONTAINER_USER_SETTING} to {owner.st_uid}:{owner.st_gid}")

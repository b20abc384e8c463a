"""Measure a running container's peak memory: from its cgroup when this host shows it,
else from the Docker engine's stats stream.

The engine reports, about once a second, the container's cgroup memory: on cgroup v1
``memory_stats.max_usage`` is the kernel's high-water mark since the container started
(``memory.max_usage_in_bytes``, page cache included: what ``limit-memory`` is enforced
against), so one sample before the container exits is enough; on cgroup v2 the engine
gives only the current ``usage``, so the peak is the largest sample. ``working_set`` is
``usage`` minus the inactive page cache (what ``docker stats`` shows).

The stream's first sample comes with the engine's next one-second collection (a
``one-shot`` request waits for it too), and a map step's container often exits before
it: the peak was unmeasured for 8 of 10 launches in the swarm tests. When the launcher
runs on the engine's host, :class:`PeakMemory` reads the kernel's own high-water mark
file of the container's memory cgroup instead (v1 ``memory.max_usage_in_bytes``, v2
``memory.peak``; found from ``/proc/<pid>/cgroup`` of the container's process, and
only when that path names the container), every :data:`CGROUP_POLL_SECONDS` until the
cgroup is removed at the container's exit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from xnatpic.xnat.docker_api import DockerClient
from xnatpic.xnat.errors import ContainerRuntimeError

__all__ = ["CGROUP_POLL_SECONDS", "MIB", "PeakMemory", "cgroup_memory_files"]

_log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Seconds between two reads of a container's cgroup memory files.
CGROUP_POLL_SECONDS = 0.02
#: Where this host mounts the cgroup hierarchies.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The memory files of a cgroup: (high-water mark, current usage, statistics) on v1, v2.
_V1_FILES = ("memory.max_usage_in_bytes", "memory.usage_in_bytes", "memory.stat")
_V2_FILES = ("memory.peak", "memory.current", "memory.stat")


def cgroup_memory_files(pid: int, container_id: str, root: Path = CGROUP_ROOT,
                        proc: Path = Path("/proc")) -> tuple[Path, Path, Path] | None:
    """The memory files of process ``pid``'s cgroup, when this host shows them and the
    cgroup is the container's own (its path names ``container_id``); else None.

    Parameters
    ----------
    pid : int
        The container's first process as the engine reports it (``State.Pid``).
    container_id : str
        The container's full id: a pid of another host (a remote engine) or of another
        process never passes for the container's.
    root, proc : Path
        The cgroup mount and the proc file system (tests give others).

    Returns
    -------
    (high-water mark, usage, memory.stat) or None
    """
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if container_id not in path:
            continue
        if "memory" in controllers.split(","):
            folder, names = root / "memory" / path.lstrip("/"), _V1_FILES
        elif controllers == "":  # the unified (v2) hierarchy
            folder, names = root / path.lstrip("/"), _V2_FILES
        else:
            continue
        files = tuple(folder / name for name in names)
        if all(f.is_file() for f in files):
            return files  # type: ignore[return-value]
    return None


@dataclass
class _Peak:
    max_usage: int = 0
    working_set: int = 0
    samples: int = 0
    kernel_high_water: bool = False


class PeakMemory:
    """Follow one container's stats in a thread until it stops.

    Parameters
    ----------
    client : DockerClient
        The engine running the container.
    container_id : str
        The container to follow.
    """

    def __init__(self, client: DockerClient, container_id: str) -> None:
        self._client = client
        self._container = container_id
        self._peak = _Peak()
        self._stop = threading.Event()
        files = self._cgroup_files()
        target = self._follow_stream if files is None else lambda: self._follow_cgroup(files)
        self._thread = threading.Thread(target=target, daemon=True,
                                        name=f"stats-{container_id[:12]}")
        self._thread.start()

    def _cgroup_files(self) -> tuple[Path, Path, Path] | None:
        """The container's cgroup memory files when this host shows them (None: the
        engine's stats stream is followed instead)."""
        try:
            inspected = self._client.inspect_container(self._container)
        except ContainerRuntimeError as exc:  # gone already: the stream says so
            _log.debug("inspect of %s: %s", self._container[:12], exc)
            return None
        pid = int((inspected.get("State") or {}).get("Pid") or 0)
        full_id = str(inspected.get("Id") or self._container)
        return cgroup_memory_files(pid, full_id) if pid > 0 else None

    def _follow_cgroup(self, files: tuple[Path, Path, Path]) -> None:
        high_water, current, stat = files
        peak = self._peak
        peak.kernel_high_water = True
        while not self._stop.is_set():
            try:
                maximum = int(high_water.read_text())
                usage = int(current.read_text())
                fields = dict(line.split() for line in stat.read_text().splitlines())
            except (OSError, ValueError):  # the cgroup is removed when the container exits
                return
            inactive = int(fields.get("total_inactive_file", fields.get("inactive_file", 0)))
            peak.max_usage = max(peak.max_usage, maximum, usage)
            peak.working_set = max(peak.working_set, usage - inactive)
            peak.samples += 1
            self._stop.wait(CGROUP_POLL_SECONDS)

    def _follow_stream(self) -> None:
        try:
            for sample in self._client.container_stats(self._container):
                memory = sample.get("memory_stats") or {}
                usage = int(memory.get("usage") or 0)
                stats = memory.get("stats") or {}
                inactive = int(stats.get("total_inactive_file", stats.get("inactive_file", 0))
                               or 0)
                peak = self._peak
                if "max_usage" in memory:
                    peak.kernel_high_water = True
                peak.max_usage = max(peak.max_usage, int(memory.get("max_usage") or 0), usage)
                peak.working_set = max(peak.working_set, usage - inactive)
                peak.samples += usage > 0
        except ContainerRuntimeError as exc:  # the container went away: the stream ends
            _log.debug("stats of %s ended: %s", self._container[:12], exc)

    def result(self, timeout: float = 10.0) -> dict[str, float | int | bool | None]:
        """Wait for the stream to end; return the figures in MiB (None without a sample).

        Returns
        -------
        dict
            ``peak_mib`` (the kernel's high-water mark where the cgroup's own file or the
            engine gives it, else the largest sample),
            ``working_set_mib``, ``samples``, ``kernel_high_water``.
        """
        self._stop.set()  # the launcher has seen the container end
        self._thread.join(timeout)
        peak = self._peak
        if not peak.samples:
            return {"peak_mib": None, "working_set_mib": None, "samples": 0,
                    "kernel_high_water": peak.kernel_high_water}
        return {"peak_mib": round(peak.max_usage / MIB, 1),
                "working_set_mib": round(peak.working_set / MIB, 1),
                "samples": peak.samples, "kernel_high_water": peak.kernel_high_water}

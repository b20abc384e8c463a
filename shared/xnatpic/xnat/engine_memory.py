"""Measure a running container's peak memory from the Docker engine's stats stream.

The engine reports, about once a second, the container's cgroup memory: on cgroup v1
``memory_stats.max_usage`` is the kernel's high-water mark since the container started
(``memory.max_usage_in_bytes``, page cache included: what ``limit-memory`` is enforced
against), so one sample before the container exits is enough; on cgroup v2 the engine
gives only the current ``usage``, so the peak is the largest sample. ``working_set`` is
``usage`` minus the inactive page cache (what ``docker stats`` shows).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from xnatpic.xnat.docker_api import DockerClient
from xnatpic.xnat.errors import ContainerRuntimeError

__all__ = ["MIB", "PeakMemory"]

_log = logging.getLogger(__name__)

MIB = 1024 * 1024


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
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"stats-{container_id[:12]}")
        self._thread.start()

    def _follow(self) -> None:
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
            ``peak_mib`` (kernel high-water mark on cgroup v1, largest sample on v2),
            ``working_set_mib``, ``samples``, ``kernel_high_water``.
        """
        self._thread.join(timeout)
        peak = self._peak
        if not peak.samples:
            return {"peak_mib": None, "working_set_mib": None, "samples": 0,
                    "kernel_high_water": peak.kernel_high_water}
        return {"peak_mib": round(peak.max_usage / MIB, 1),
                "working_set_mib": round(peak.working_set / MIB, 1),
                "samples": peak.samples, "kernel_high_water": peak.kernel_high_water}

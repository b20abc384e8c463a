"""Row-block processing: run a per-voxel computation on blocks of voxels, on every CPU.

NumPy evaluates every expression over whole arrays; with millions of voxels each temporary
is tens of megabytes and every operation streams from main memory. Blocks of about 16k
voxels keep the temporaries in cache, which measured ~30 % faster on the fits here, and
bound the peak memory.

Blocks are independent, so they run on a pool of threads: NumPy releases the GIL inside
its array loops, which is where a fit spends its time. The blocks are the same whatever
the number of threads and each writes its own rows of the result, so the result is
identical to the single-thread one, bit for bit. The number of threads defaults to the
CPUs this process may use (:func:`available_cpus`: its CPU affinity, capped by the
container's CPU limit) that are idle (:func:`idle_cpus`), and is set for a whole
computation with :func:`fit_threads` or the ``XNATPIC_THREADS`` environment variable;
``benchmarks/bench_models.py`` measures the speed-up against one thread.

The matrix products inside the blocks are small (a few columns); a multi-threaded BLAS
gains nothing on them and, when another process keeps a core busy, its thread team stalls
them by an order of magnitude. Blocks therefore run with BLAS limited to one thread
(threadpoolctl; restored afterwards, so the limit is visible to other threads of the
process only while a fit runs).
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = [
    "ROW_BLOCK",
    "THREADS_ENV",
    "available_cpus",
    "fit_threads",
    "idle_cpus",
    "map_rows",
    "serial_blas",
    "threads_setting",
]

#: Voxels per block.
ROW_BLOCK = 16384

#: Environment variable setting the number of threads of the fits (a positive integer).
THREADS_ENV = "XNATPIC_THREADS"

T = TypeVar("T", bound=tuple)

_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar("fit_threads", default=None)


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def serial_blas() -> Iterator[None]:
    """Limit BLAS to one thread for the duration of the block."""
    with _controller().limit(limits=1, user_api="blas"):
        yield


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup"),
                      proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs allowed by this process's cgroup (CFS quota / period), None without a limit.

    cgroup v2: ``cpu.max`` (``"max 100000"`` or ``"150000 100000"``); v1:
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: no limit). Both the process's
    own cgroup folder and the root of the hierarchy are read (inside a container with a
    cgroup namespace the process's cgroup is the root); the lowest limit found wins.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    v2, v1 = ["."], ["."]
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        path = parts[2].lstrip("/") or "."
        if parts[0] == "0" and parts[1] == "":
            v2.insert(0, path)
        elif "cpu" in parts[1].split(","):
            v1.insert(0, path)
    limits: list[float] = []
    for folder in {root / p for p in v2}:
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and float(period) > 0:
            limits.append(float(quota) / float(period))
    for name in ("cpu", "cpu,cpuacct"):
        for folder in {root / name / p for p in v1}:
            try:
                quota_us = float((folder / "cpu.cfs_quota_us").read_text())
                period_us = float((folder / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            if quota_us > 0 and period_us > 0:
                limits.append(quota_us / period_us)
    return min(limits) if limits else None


def available_cpus() -> int:
    """CPUs this process may use: its CPU affinity, capped by its cgroup's CPU quota.

    Inside a container started with a CPU limit (``docker run --cpus``, Swarm
    ``--limit-cpu``, Container Service's ``limit-cpu``) the quota is that limit; a
    fractional limit is rounded down (at least 1): a thread more than the quota only gets
    throttled.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def idle_cpus() -> int:
    """CPUs of the machine not kept busy by other work: the CPU count less the one-minute
    load average, this process counted as idle (at least 1).

    The load average is the host's, inside a container too, as is ``os.cpu_count()``.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:
        return os.cpu_count() or 1
    return max(1, math.floor((os.cpu_count() or 1) - load + 1))


def _parse_threads(value: object, source: str) -> int:
    try:
        threads = int(str(value).strip())
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{source} must be a positive whole number of threads, got {value!r}")
    return threads


def threads_setting() -> int:
    """Threads the fits use now: :func:`fit_threads`, else ``XNATPIC_THREADS``, else the
    CPUs available to this process (:func:`available_cpus`) that are idle
    (:func:`idle_cpus`).

    Threads pay only on an idle CPU: two threads add 9-31 % CPU time to a fit, but with
    every core busy with other work a second thread made the fits slower here, 0.43-1.11x
    one thread (``benchmarks/bench_models.py``).

    Raises
    ------
    ValueError
        ``XNATPIC_THREADS`` is set to something other than a positive integer.
    """
    chosen = _threads.get()
    if chosen is not None:
        return chosen
    env = os.environ.get(THREADS_ENV)
    if env is not None and env.strip():
        return _parse_threads(env, f"the environment variable {THREADS_ENV}")
    return min(available_cpus(), idle_cpus())


@contextmanager
def fit_threads(threads: int | None) -> Iterator[int]:
    """Run the fits inside the ``with`` block on ``threads`` threads (None: the default).

    Yields the number in effect.
    """
    token = _threads.set(None if threads is None else _parse_threads(threads, "threads"))
    try:
        yield threads_setting()
    finally:
        _threads.reset(token)


def map_rows(func: Callable[..., T], *arrays: np.ndarray, block: int = ROW_BLOCK) -> T:
    """``func(*arrays)`` evaluated block by block along the first axis and concatenated.

    ``func`` must treat rows independently and return a tuple of arrays whose first axis
    is the row axis. With more than two blocks and more than one thread
    (:func:`threads_setting`) the blocks after the first run on a thread pool; each block
    sees the caller's context (``np.errstate`` and :func:`fit_threads` included).
    """
    n = arrays[0].shape[0]
    with serial_blas():
        if n <= block:
            return func(*arrays)
        first = func(*(a[:block] for a in arrays))
        outputs = [np.empty((n, *np.shape(v)[1:]), dtype=np.asarray(v).dtype) for v in first]

        def run(start: int) -> None:
            part = func(*(a[start : start + block] for a in arrays))
            for out, value in zip(outputs, part, strict=True):
                out[start : start + block] = value

        for out, value in zip(outputs, first, strict=True):
            out[:block] = value
        starts = range(block, n, block)
        threads = min(threads_setting(), len(starts))
        if threads <= 1:
            for start in starts:
                run(start)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                futures = [pool.submit(contextvars.copy_context().run, run, start)
                           for start in starts]
                for future in futures:
                    future.result()
    return tuple(outputs)  # type: ignore[return-value]

"""Launch one wrapper on many archived sessions at once, each independent of the others.

As XNAT's bulk launch: N independent launches with shared parameters; each ends with its
own workflow status (``Complete``, ``Failed``, ``Failed (Upload)``, ``Failed (Staging)``,
``Failed (Command resolution)``: :mod:`xnatpic.xnat.launcher`; a step that finds
nothing to do in a session counts as "not applicable", not as a failure), and each gets
its own metadata server and credentials, as each XNAT job gets its own
XNAT_USER/XNAT_PASS token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from xnatpic.xnat.launcher import LaunchOptions, LaunchResult, launch

__all__ = ["bulk_launch", "report"]


def bulk_launch(command: dict[str, Any], wrapper: str | None, sessions: Sequence[Path],
                params: dict[str, str] | None = None, options: LaunchOptions | None = None,
                *, jobs: int = 1,
                on_done: Callable[[LaunchResult], None] | None = None) -> list[LaunchResult]:
    """Launch ``wrapper`` on every session, ``jobs`` at once.

    A failing session does not stop the others (as XNAT's bulk launch: N independent
    launches with shared parameters).

    Parameters
    ----------
    command : dict
        The command.
    wrapper : str or None
        The wrapper name.
    sessions : sequence of Path
        Session folders (see :func:`xnatpic.xnat.archive.find_sessions`).
    params : dict, optional
        Parameters shared by every launch.
    options : LaunchOptions, optional
        How to run each launch.
    jobs : int
        Launches at once (>= 1).
    on_done : callable, optional
        Called with each result as it finishes (for progress display).

    Returns
    -------
    list of LaunchResult
        In the order of ``sessions``.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    results: dict[int, LaunchResult] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(launch, command, wrapper, path, params, options): i
            for i, path in enumerate(sessions)
        }
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_done is not None:
                on_done(result)
    return [results[i] for i in range(len(sessions))]


def report(results: Sequence[LaunchResult], **extra: Any) -> dict[str, Any]:
    """Return the JSON report of a bulk launch: counts (``succeeded``, ``not_applicable``:
    the step found nothing to do in the session, ``not_enough_signal``: its data could not
    give a map, ``failed``), counts per XNAT status, one
    entry per session."""
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    outcomes = [r.outcome for r in results]
    return {
        **extra,
        "sessions": len(results),
        "succeeded": outcomes.count("complete"),
        "not_applicable": outcomes.count("not applicable"),
        "not_enough_signal": outcomes.count("not enough signal"),
        "failed": outcomes.count("failed"),
        "statuses": statuses,
        "results": [r.as_dict() for r in results],
    }

"""Where a map step's runs are in a session resource (the layout :mod:`.outputs` writes).

A map resource (``RESOURCES/<LABEL>``) holds one folder per run, ``<method>-scan<id>/``; a
resource written before run folders holds its one run's files itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["run_folders"]


def run_folders(resource: Path, holds: Callable[[Path], bool]) -> list[Path]:
    """The run folders of ``resource`` whose contents ``holds`` accepts: the resource
    itself (the layout before run folders), then its sub-folders in name order.

    Parameters
    ----------
    resource : Path
        ``RESOURCES/<LABEL>`` (absent: no runs).
    holds : callable
        Whether a folder holds a run (what the caller needs of it: its maps, its
        statistics...).
    """
    resource = Path(resource)
    if not resource.is_dir():
        return []
    found = [resource] if holds(resource) else []
    return found + [sub for sub in sorted(resource.iterdir()) if sub.is_dir() and holds(sub)]

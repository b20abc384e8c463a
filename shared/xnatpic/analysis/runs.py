"""Where a map step's runs are in a session resource (the layout :mod:`.outputs` writes).

A map resource (``RESOURCES/<LABEL>``) holds one folder per run, ``<method>-scan<id>/``; a
resource written before run folders holds its one run's files itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ROLES", "MapRun", "map_run", "run_folders"]

#: Roles of a run's maps in ``stats.json`` (:mod:`.outputs`).
ROLES = ("primary", "byproduct", "spectrum")


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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class MapRun:
    """One run of a map step: its folder and what its ``provenance.json`` and
    ``stats.json`` say.

    Attributes
    ----------
    resource : str
        Resource label (``T2MAP``).
    folder : Path
        ``RESOURCES/<LABEL>/<run-key>`` (or the resource itself in the layout before runs).
    run_key : str
        ``vtr-scan3``; empty for a resource without run folders.
    step, method : str
        The step (provenance, else stats.json, else the resource label in lower case) and
        its method (provenance ``method``, else ``parameters.method``/``model``).
    scans : dict
        Role -> scan id (``{"source": "9"}``, ``{"cest": "7", "wassr": "8"}``).
    provenance, stats : dict or None
        The two files as read.
    """

    resource: str
    folder: Path
    run_key: str
    step: str
    method: str
    scans: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    stats: Any = None

    @property
    def source_scan(self) -> str:
        """The scan the maps were fitted from: ``scans["source"]``, else the one scan all
        roles name; empty when that is not one scan."""
        if self.scans.get("source"):
            return self.scans["source"]
        values = {v for v in self.scans.values() if v}
        return values.pop() if len(values) == 1 else ""

    @property
    def scan_list(self) -> str:
        """Every scan of the run, comma-separated (``7,8`` for CEST with its WASSR)."""
        return self.scans.get("source") or ",".join(v for v in self.scans.values() if v)

    def role(self, name: str) -> str:
        """Role of map ``name``: its ``stats.json`` entry's ``role``; a map the step did not
        list there (older steps listed only their primary maps) is a by-product; without
        a ``maps`` table every map is primary."""
        maps = self.stats.get("maps") if isinstance(self.stats, dict) else None
        if isinstance(maps, dict) and isinstance(maps.get(name), dict):
            role = str(maps[name].get("role") or "primary")
            return role if role in ROLES else "byproduct"
        return "byproduct" if isinstance(maps, dict) else "primary"


def map_run(resource: Path, folder: Path, provenance: Any, stats: Any = None) -> MapRun:
    """The :class:`MapRun` of ``folder`` of ``resource`` from its two files as read (None
    or another type where a file is absent or not a JSON object)."""
    prov, stats_dict = _dict(provenance), _dict(stats)
    params = _dict(prov.get("parameters"))
    scans = _dict(prov.get("scans")) or _dict(stats_dict.get("scans"))
    return MapRun(
        resource=resource.name, folder=folder,
        run_key=str(prov.get("run_key") or ("" if folder == resource else folder.name)),
        step=str(prov.get("step") or stats_dict.get("step") or resource.name.lower()),
        method=str(prov.get("method") or params.get("method") or params.get("model") or ""),
        scans={str(k): str(v) for k, v in scans.items() if v not in (None, "")},
        provenance=prov, stats=stats)

"""The scan index of a session: every scan's classification, read from its headers once.

Choosing a scan (:mod:`xnatpic.analysis.selection`) needs what varies between the images of
every scan of the session, which is only known from every file's header: 1-3 s for a session
of 600-1,700 files, paid by every step. The index keeps, per scan, the folder of its DICOM
files, its kind and the signature of its files, so that a step reads headers only of scans
that changed since the index was written.

- **Signature** of a scan: a SHA-1 over the relative path, size and modification time (ns)
  of every file under ``SCANS/<id>/`` (catalogs, JSON, text and hidden files aside, as
  :func:`xnatpic.analysis.inputs.dicom_files` skips them). It is taken with ``stat`` only;
  a scan whose signature differs from the index entry is read again, a scan not in the
  index is read, a scan gone from the session is dropped.
- **Where it is kept**: ``scan-index.json`` in the session resource :data:`INDEX_RESOURCE`
  (``<session>/RESOURCES/SESSION_MAPS/scan-index.json``), written by the one-click
  ``session-maps`` step as one of its outputs, so that XNAT stores and catalogs it with the
  session and mounts it read-only with the session in every later step (a step never writes
  into ``/input``). When it is absent or stale, the index is built (or brought up to date)
  in memory, once per process: a step that selects scans twice reads the headers once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.analysis.errors import BadSeriesError, NoScanError
from xnatpic.analysis.inputs import skipped_file

__all__ = [
    "INDEX_NAME",
    "INDEX_RESOURCE",
    "IndexEntry",
    "ScanIndex",
    "scan_index",
    "scan_key",
    "scan_signature",
    "stored_index_path",
]

_log = logging.getLogger(__name__)

#: Session resource holding the stored index (the session-maps step's summary output).
INDEX_RESOURCE = "SESSION_MAPS"
#: File name of the stored index.
INDEX_NAME = "scan-index.json"
#: Version of the file layout; another version is ignored (rebuilt).
FORMAT = 1

_ERRORS: dict[str, type[NoScanError] | type[BadSeriesError]] = {
    "NoScanError": NoScanError, "BadSeriesError": BadSeriesError}


@dataclass(frozen=True)
class IndexEntry:
    """What the index knows of one scan.

    Attributes
    ----------
    signature : str
        :func:`scan_signature` of the scan folder when the entry was made.
    folder : str
        The DICOM folder relative to the session (``SCANS/2/DICOM``); empty on error.
    kind, detail : str
        Classification (:data:`xnatpic.analysis.selection.KIND_DESCRIPTIONS`); empty on error.
    n_frames : int
    inversion_modes : tuple of str
        Distinct FAIR inversion modes of the frames (private tag; ``""`` for frames
        without one), sorted.
    scanning : tuple of str
        ScanningSequence (or its Enhanced MR equivalent).
    error, error_type : str
        Why the scan cannot be analysed (message and error class name), else empty.
    """

    signature: str
    folder: str = ""
    kind: str = ""
    detail: str = ""
    n_frames: int = 0
    inversion_modes: tuple[str, ...] = ()
    scanning: tuple[str, ...] = ()
    error: str = ""
    error_type: str = ""

    def raise_error(self) -> None:
        """Raise the stored error again (same class, same message), if any."""
        if self.error:
            raise _ERRORS.get(self.error_type, BadSeriesError)(self.error)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"signature": self.signature, "folder": self.folder, "kind": self.kind,
                "detail": self.detail, "n_frames": self.n_frames,
                "inversion_modes": list(self.inversion_modes),
                "scanning": list(self.scanning), "error": self.error,
                "error_type": self.error_type}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexEntry:
        """Inverse of :meth:`as_dict` (raises KeyError/TypeError on a malformed entry)."""
        return cls(str(data["signature"]), str(data.get("folder", "")),
                   str(data.get("kind", "")), str(data.get("detail", "")),
                   int(data.get("n_frames", 0)),
                   tuple(str(v) for v in data.get("inversion_modes", ())),
                   tuple(str(v) for v in data.get("scanning", ())),
                   str(data.get("error", "")), str(data.get("error_type", "")))


@dataclass
class ScanIndex:
    """The index of one session.

    Attributes
    ----------
    session : Path
    entries : dict of str to IndexEntry
        By scan id (folder name under ``SCANS``).
    reused, read : list of str
        Scan ids taken from a stored/earlier index, and read from their headers, in the
        last update.
    """

    session: Path
    entries: dict[str, IndexEntry] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    read: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the file :data:`INDEX_NAME`)."""
        return {"format": FORMAT, "scans": {k: e.as_dict() for k, e in self.entries.items()}}

    def write(self, path: Path) -> Path:
        """Write the index to ``path`` (a file) and return it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
        return path


def scan_signature(folder: Path) -> str:
    """SHA-1 of the relative path, size and mtime (ns) of every candidate file under
    ``folder`` (``stat`` only; nothing is opened)."""
    top = os.fspath(folder)
    rows = []
    for root, _, files in os.walk(top):
        relative = os.path.relpath(root, top).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        for name in files:
            if skipped_file(name):
                continue
            st = os.stat(os.path.join(root, name))
            rows.append(f"{prefix}{name}\0{st.st_size}\0{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(sorted(rows)).encode()).hexdigest()


def stored_index_path(session: Path) -> Path:
    """Where XNAT keeps the session's index: ``RESOURCES/SESSION_MAPS/scan-index.json``."""
    return Path(session) / "RESOURCES" / INDEX_RESOURCE / INDEX_NAME


def _load_stored(session: Path) -> dict[str, IndexEntry]:
    path = stored_index_path(session)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            _log.info("%s: index format %s, not %s; rebuilt", path, data.get("format"), FORMAT)
            return {}
        return {str(k): IndexEntry.from_dict(v) for k, v in data["scans"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        _log.warning("%s: unreadable scan index (%s); the scans' headers are read instead",
                     path, exc)
        return {}


#: Indexes of this process by resolved session path (a step that selects twice reads once).
_MEMORY: dict[Path, ScanIndex] = {}


def scan_index(session: Path, read_entry: Callable[[Path, str, str], IndexEntry]
               ) -> ScanIndex:
    """The up-to-date index of ``session``.

    Parameters
    ----------
    session : Path
        Session folder in archive layout.
    read_entry : callable
        ``read_entry(session, scan_id, signature)`` reads one scan's headers into an entry
        (:func:`xnatpic.analysis.selection.read_scan_entry`).

    Entries come from this process's earlier index of the session, else from the stored
    index (:func:`stored_index_path`); each is kept only while its scan's signature is
    unchanged. Other scans are read with ``read_entry``.
    """
    session = Path(session)
    key = session.resolve()
    known = _MEMORY[key].entries if key in _MEMORY else _load_stored(session)
    index = ScanIndex(session)
    scans = session / "SCANS"
    ids = sorted((p.name for p in scans.iterdir() if p.is_dir()), key=scan_key) \
        if scans.is_dir() else []
    for scan_id in ids:
        signature = scan_signature(scans / scan_id)
        entry = known.get(scan_id)
        if entry is not None and entry.signature == signature:
            index.reused.append(scan_id)
        else:
            entry = read_entry(session, scan_id, signature)
            index.read.append(scan_id)
        index.entries[scan_id] = entry
    if index.read:
        _log.info("scan index of %s: %d scans read, %d from the index", session,
                  len(index.read), len(index.reused))
    _MEMORY[key] = index
    return index


def scan_key(name: str) -> tuple[int, int | str]:
    """Sort key of scan ids: numbers in numeric order, then other names."""
    return (0, int(name)) if name.isdigit() else (1, name)

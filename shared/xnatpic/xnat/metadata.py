"""What XNAT keeps in its database, kept for a local archive beside it (never in the sessions).

XNAT's archive holds only files: ``<archive>/<PROJECT>/arc001/<session label>/SCANS/...``.
Labels, accession ids, the subject of each session, the subject's group, custom fields
(``timepoint``...), scan types and the scans' database keys live in XNAT's database, and
steps read them through the REST API (XNAT_HOST/XNAT_USER/XNAT_PASS). A local archive keeps
the same facts in one file per project, outside every session folder::

    <archive>/.xnatpic/site.json          id counters (accession numbers are site-wide)
    <archive>/.xnatpic/<PROJECT>.json     the project's rows (below)

A project file uses XNAT's REST field names (``data_fields`` of
``GET /data/experiments/<id>?format=json``), keyed by label as the archive folders are::

    {"project": {"ID": "PRECLIN", "name": "Preclinical", "description": "", ...},
     "subjects": {"mouse1": {"ID": "XNAT_S00001", "group": "control", "src": "",
                             "fields": {"sex": "F"}}},
     "experiments": {"mouse1_d0": {"ID": "XNAT_E00001", "subject": "mouse1",
                                   "xsiType": "xnat:mrSessionData", "date": "2024-05-01",
                                   "visit_id": "", "fields": {"timepoint": "d0"},
                                   "scans": {"3": {"xnat_imagescandata_id": 1,
                                                   "type": "T1_RARE", ...}}}}}

:mod:`xnatpic.xnat.archive` builds the Container Service's view of objects from it;
:mod:`xnatpic.xnat.metaserver` answers XNAT's REST questions from it. Writers are
``xnatpic upload --archive`` and ``pipelines/demo.py``; steps never read it directly.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import ArchiveError

__all__ = [
    "FOLDER",
    "SCAN_FIELDS",
    "ProjectMetadata",
    "locate_session",
    "metadata_path",
    "read_project",
    "update_project",
]

#: The folder of an archive root holding the database-like files.
FOLDER = ".xnatpic"
#: Scan fields kept (XNAT's ``xnat:imageScanData`` REST names).
SCAN_FIELDS = ("type", "series_description", "modality", "quality", "frames", "uid", "note",
               "scanner", "scanner/manufacturer", "scanner/model", "startTime")
_LOCK = threading.Lock()


def metadata_path(archive: Path, project: str) -> Path:
    """``<archive>/.xnatpic/<project>.json``."""
    return Path(archive) / FOLDER / f"{project}.json"


def locate_session(session_dir: Path) -> tuple[Path, str, str] | None:
    """``(archive root, project, session label)`` of ``<archive>/<P>/arc001/<label>``.

    None when the folder is not inside a project's ``arc001``.
    """
    folder = Path(session_dir).resolve()
    if folder.parent.name != "arc001":
        return None
    return folder.parent.parent.parent, folder.parent.parent.name, folder.name


class ProjectMetadata:
    """The rows of one project (see the module); a plain JSON document underneath.

    Parameters
    ----------
    archive : Path
        The archive root.
    project : str
        The project id.
    data : dict, optional
        The document (default: an empty project).
    """

    def __init__(self, archive: Path, project: str, data: dict[str, Any] | None = None
                 ) -> None:
        self.archive = Path(archive)
        self.project = project
        self.data: dict[str, Any] = data or {}
        self.data.setdefault("project", {"ID": project})
        self.data.setdefault("subjects", {})
        self.data.setdefault("experiments", {})

    @property
    def path(self) -> Path:
        """Where the document is stored."""
        return metadata_path(self.archive, self.project)

    def _row(self, table: str, label: str) -> dict[str, Any] | None:
        row = self.data[table].get(label)
        return row if isinstance(row, dict) else None

    def _by_id(self, table: str, ident: str) -> tuple[str, dict[str, Any]] | None:
        for label, row in self.data[table].items():
            if ident in (row.get("ID"), label):
                return label, row
        return None

    def experiment(self, label: str) -> dict[str, Any] | None:
        """The row of the session labelled ``label``, None when unknown."""
        return self._row("experiments", label)

    def experiment_by_id(self, ident: str) -> tuple[str, dict[str, Any]] | None:
        """``(label, row)`` of the session whose accession id or label is ``ident``."""
        return self._by_id("experiments", ident)

    def subject(self, label: str) -> dict[str, Any] | None:
        """The row of the subject labelled ``label``, None when unknown."""
        return self._row("subjects", label)

    def subject_by_id(self, ident: str) -> tuple[str, dict[str, Any]] | None:
        """``(label, row)`` of the subject whose accession id or label is ``ident``."""
        return self._by_id("subjects", ident)

    # writers -------------------------------------------------------------------------

    def ensure_subject(self, label: str, **fields: Any) -> dict[str, Any]:
        """Create the subject when absent (a new accession id); set ``fields`` given."""
        row = self.data["subjects"].setdefault(label, {})
        if not row.get("ID"):
            row["ID"] = _next_id(self.archive, "S")
        for key, value in fields.items():
            if key == "fields":
                row.setdefault("fields", {}).update({k: str(v) for k, v in value.items()})
            elif value is not None:
                row[key] = value
        return row

    def ensure_experiment(self, label: str, subject: str, **fields: Any) -> dict[str, Any]:
        """Create the session (and its subject) when absent; set ``fields`` given."""
        self.ensure_subject(subject)
        row = self.data["experiments"].setdefault(label, {})
        if not row.get("ID"):
            row["ID"] = _next_id(self.archive, "E")
        row["subject"] = subject
        row.setdefault("xsiType", "xnat:mrSessionData")
        row.setdefault("scans", {})
        for key, value in fields.items():
            if key == "fields":
                row.setdefault("fields", {}).update({k: str(v) for k, v in value.items()})
            elif value is not None:
                row[key] = value
        return row

    def set_scan(self, session: str, scan_id: str, **fields: Any) -> dict[str, Any]:
        """Record a scan of a known session (a new database key when new)."""
        row = self.experiment(session)
        if row is None:
            raise ArchiveError(f"{self.path}: no session {session!r} to add scan {scan_id!r} "
                               "to; record the session first")
        scan = row.setdefault("scans", {}).setdefault(str(scan_id), {})
        if "xnat_imagescandata_id" not in scan:
            scan["xnat_imagescandata_id"] = int(_next_id(self.archive, "scan", raw=True))
        scan.setdefault("xsiType", "xnat:mrScanData")
        scan.update({k: v for k, v in fields.items() if v is not None})
        return scan

    def resource_key(self, uri: str) -> int:
        """The database key of the resource at ``uri`` (a new one when new)."""
        keys = self.data.setdefault("resources", {})
        if uri not in keys:
            keys[uri] = int(_next_id(self.archive, "resource", raw=True))
        return int(keys[uri])

    def save(self) -> None:
        """Write the document (through a temporary file, so a crash leaves the old one)."""
        _write(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")


def _write(path: Path, text: str) -> None:
    """Write through a hidden partial file, removed when the write fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); it "
                           "holds the archive's metadata: restore it or write it again "
                           "with xnatpic upload --archive") from exc
    except OSError as exc:
        raise ArchiveError(f"{path}: cannot be read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ArchiveError(f"{path}: must be a JSON object")
    return data


def _next_id(archive: Path, kind: str, *, raw: bool = False) -> str:
    """The next site-wide number of ``kind``: ``XNAT_S00001`` style, or a bare integer."""
    path = Path(archive) / FOLDER / "site.json"
    counters = _read(path)
    number = int(counters.get(kind, 0)) + 1
    counters[kind] = number
    _write(path, json.dumps(counters, indent=1) + "\n")
    return str(number) if raw else f"XNAT_{kind}{number:05d}"


def read_project(archive: Path, project: str) -> ProjectMetadata:
    """The project's rows (empty when the archive has none for it)."""
    return ProjectMetadata(archive, project, _read(metadata_path(archive, project)))


@contextmanager
def update_project(archive: Path, project: str) -> Iterator[ProjectMetadata]:
    """Read, let the caller change, and save a project's rows (one writer at a time)."""
    with _LOCK:
        meta = read_project(archive, project)
        yield meta
        meta.save()

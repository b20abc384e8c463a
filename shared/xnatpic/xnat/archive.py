"""Sessions and projects stored in XNAT's archive layout, seen as the Container Service sees them.

Layout, as XNAT keeps it (files only; no metadata file in any session)::

    <archive>/
      .xnatpic/<PROJECT>.json           what XNAT keeps in its database (xnatpic.xnat.metadata)
      <PROJECT>/
        RESOURCES/<label>/              project resources (e.g. RESOURCES/PROJECT_SUMMARY/)
        arc001/<session label>/         the project's archive root: what a Project mount shows
          SCANS/<scan id>/<RESOURCE>/   files of each scan resource (SCANS/3/DICOM/*.dcm)
          RESOURCES/<label>/            session resources (RESOURCES/PARAVISION/...)
          ASSESSORS/<label>/<RESOURCE>/ assessor resources

:func:`load_session` and :func:`load_project` return :class:`XnatObject` trees whose
``data`` is the JSON a matcher or ``derived-from-xnat-object-property`` sees: the
Container Service's model classes (``model/xnat/Session.java``, ``Scan.java``,
``Resource.java``, ``Subject.java``, ``Project.java``) serialised by Jackson without null
values. So a session has ``id``, ``label``, ``xsiType``, ``uri``, ``directory``,
``project-id``, ``subject-id``, ``visit-id``, ``scans``, ``resources`` and ``assessors``, and
no custom ``fields`` (they are not in Session.java: a matcher cannot test a timepoint); a
scan's ``integer-id`` is its database key (``xnat_imagescandata_id``), not its number; a
subject carries ``group`` and ``source``. A Project's ``directory`` (what a mount it feeds
shows) is ``<archive>/<PROJECT>/arc001``, its archive root path plus current arc
(Project.java).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import ArchiveError
from xnatpic.xnat.metadata import ProjectMetadata, locate_session, read_project

__all__ = [
    "XnatObject",
    "find_sessions",
    "is_session_dir",
    "load_project",
    "load_session",
]

_CATALOG_SUFFIX = "_catalog.xml"
#: Scan JSON keys (Scan.java) from the metadata row's REST field names.
_SCAN_KEYS = {
    "frames": "frames", "note": "note", "modality": "modality", "quality": "quality",
    "scanner": "scanner", "scanner-manufacturer": "scanner/manufacturer",
    "scanner-model": "scanner/model", "series-description": "series_description",
    "start-time": "startTime", "uid": "uid",
}


@dataclass
class XnatObject:
    """One XNAT object: its type, its JSON view, its folder and its children by type.

    Attributes
    ----------
    type : str
        Wrapper-input type name: ``Session``, ``Scan``, ``Resource``, ``File``,
        ``Subject``, ``Project``, ``Assessor``.
    data : dict
        The object as XNAT serialises it for matchers (kebab-case keys, ``uri``...).
    directory : Path or None
        The archive folder (or file) mounted when the object feeds a mount.
    children : dict of str to list of XnatObject
        Objects a derived input of that type can be found among.
    """

    type: str
    data: dict[str, Any]
    directory: Path | None = None
    children: dict[str, list[XnatObject]] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The object's URI, the value of an input holding it."""
        return str(self.data.get("uri", ""))

    @property
    def ident(self) -> str:
        """The id (or name, for a file) used in messages and to pick one by ``--param``."""
        return str(self.data.get("id") or self.data.get("name") or self.data.get("label"))


def _no_nulls(data: dict[str, Any]) -> dict[str, Any]:
    """Drop None values, as XNAT's object mapper does (serialization inclusion NON_NULL)."""
    return {k: v for k, v in data.items() if v is not None}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(resource_dir: Path, uri: str, *, checksums: bool) -> list[XnatObject]:
    files: list[XnatObject] = []
    for root, dirs, names in os.walk(resource_dir):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(_CATALOG_SUFFIX):
                continue
            path = Path(root) / name
            rel = path.relative_to(resource_dir).as_posix()
            data = _no_nulls({
                "name": rel, "label": rel, "path": str(path), "uri": f"{uri}/files/{rel}",
                "tags": [""], "format": None, "content": None,
                "size": path.stat().st_size,
                "checksum": _sha256(path) if checksums else None,
            })
            files.append(XnatObject("File", data, path))
    return files


def _resource(directory: Path, parent_uri: str, meta: ProjectMetadata | None, *,
              checksums: bool) -> XnatObject:
    label = directory.name
    uri = f"{parent_uri}/resources/{label}"
    files = _files(directory, uri, checksums=checksums)
    keys = (meta.data.get("resources", {}) if meta else {})
    data = _no_nulls({
        "id": label, "label": label, "xsiType": "xnat:resourceCatalog", "uri": uri,
        "directory": str(directory), "integer-id": keys.get(uri), "parent-uri": parent_uri,
        "files": [f.data for f in files],
    })
    return XnatObject("Resource", data, directory, {"File": files, "File[]": files})


def _resources(folder: Path, parent_uri: str, meta: ProjectMetadata | None, *,
               checksums: bool) -> list[XnatObject]:
    if not folder.is_dir():
        return []
    return [_resource(sub, parent_uri, meta, checksums=checksums)
            for sub in sorted(p for p in folder.iterdir() if p.is_dir())]


def is_session_dir(path: Path) -> bool:
    """Whether a folder looks like an archived session (SCANS, RESOURCES or ASSESSORS)."""
    path = Path(path)
    return path.is_dir() and any(
        (path / name).exists()
        for name in ("SCANS", "RESOURCES", "ASSESSORS")
    )


def _scan_object(scan_id: str, row: dict[str, Any], scan_dir: Path, session_uri: str,
                 project: str, session_id: str, meta: ProjectMetadata | None,
                 checksums: bool) -> XnatObject:
    uri = f"{session_uri}/scans/{scan_id}"
    resources = _resources(scan_dir, uri, meta, checksums=checksums)
    scan_type = row.get("type")
    data = _no_nulls({
        "id": scan_id, "label": f"{scan_id} - {'null' if scan_type is None else scan_type}",
        "xsiType": row.get("xsiType", "xnat:mrScanData"), "uri": uri,
        "directory": str(scan_dir), "integer-id": row.get("xnat_imagescandata_id"),
        "scan-type": scan_type, "project-id": project, "session-id": session_id,
        "resources": [r.data for r in resources],
        **{key: row.get(name) for key, name in _SCAN_KEYS.items()},
    })
    return XnatObject("Scan", data, scan_dir, {"Resource": resources})


def _session_object(directory: Path, label: str, row: dict[str, Any], project: str,
                    subject_id: str, meta: ProjectMetadata | None, parent_uri: str | None,
                    checksums: bool) -> XnatObject:
    sid = str(row.get("ID") or label)
    uri = f"{parent_uri}/experiments/{sid}" if parent_uri else f"/archive/experiments/{sid}"
    scan_rows = {str(k): v for k, v in (row.get("scans") or {}).items()}
    scan_ids = list(scan_rows)
    scans_dir = directory / "SCANS"
    if scans_dir.is_dir():
        on_disk = sorted((p.name for p in scans_dir.iterdir() if p.is_dir()), key=_scan_key)
        scan_ids += [s for s in on_disk if s not in scan_rows]
    scans = [_scan_object(s, scan_rows.get(s, {}), scans_dir / s, uri, project, sid, meta,
                          checksums) for s in sorted(scan_ids, key=_scan_key)]
    resources = _resources(directory / "RESOURCES", uri, meta, checksums=checksums)
    assessors = _assessors(directory, row, uri, project, sid, meta, checksums)
    data = _no_nulls({
        "id": sid, "label": label, "xsiType": row.get("xsiType", "xnat:mrSessionData"),
        "uri": uri, "directory": str(directory), "project-id": project,
        "subject-id": subject_id or None, "visit-id": row.get("visit_id"),
        "scans": [s.data for s in scans], "resources": [r.data for r in resources],
        "assessors": [a.data for a in assessors],
    })
    session = XnatObject("Session", data, directory, {
        "Scan": scans, "Resource": resources, "Assessor": assessors,
    })
    for child in scans + assessors:
        child.children["Session"] = [session]
    return session


def _subject_object(label: str, row: dict[str, Any], project: str, parent_uri: str | None
                    ) -> XnatObject:
    ident = str(row.get("ID") or label)
    uri = f"{parent_uri}/subjects/{ident}" if parent_uri else f"/archive/subjects/{ident}"
    return XnatObject("Subject", _no_nulls({
        "id": ident, "label": label, "xsiType": "xnat:subjectData", "uri": uri,
        "project-id": project, "group": row.get("group"), "source": row.get("src"),
        "initials": row.get("initials"), "sessions": [], "resources": [],
        "subject-assessors": [],
    }))


def _project_object(directory: Path, meta: ProjectMetadata, checksums: bool) -> XnatObject:
    row = meta.data["project"]
    pid = meta.project
    uri = f"/archive/projects/{pid}"
    resources = _resources(directory / "RESOURCES", uri, meta, checksums=checksums)
    name = row.get("name")
    return XnatObject("Project", _no_nulls({
        "id": pid, "label": name or pid, "xsiType": "xnat:projectData", "uri": uri,
        "directory": str(directory / "arc001"), "title": name,
        "running-title": row.get("secondary_ID"), "description": row.get("description"),
        "keywords": row.get("keywords"), "accessibility": row.get("accessibility", "private"),
        "aliases": [], "subjects": [], "resources": [r.data for r in resources],
        "project-assets": [],
    }), directory / "arc001", {"Resource": resources})


def load_session(directory: Path, *, checksums: bool = False,
                 project: str | None = None) -> XnatObject:
    """Read a session folder in XNAT's archive layout.

    Parameters
    ----------
    directory : Path
        The session folder, normally ``<archive>/<PROJECT>/arc001/<label>``: its metadata
        row comes from ``<archive>/.xnatpic/<PROJECT>.json``.
    checksums : bool
        Compute SHA-256 checksums of files (slow on big sessions; matchers rarely use
        them).
    project : str, optional
        Project id for a session folder outside a project's ``arc001``.

    Returns
    -------
    XnatObject
        The session, with ``Scan``, ``Resource``, ``Assessor``, ``Subject`` and
        ``Project`` children.

    Raises
    ------
    ArchiveError
        When the folder does not exist, is not a session, or its metadata is bad.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such session folder")
    if not is_session_dir(directory):
        raise ArchiveError(
            f"{directory}: not a session in XNAT's archive layout (expected SCANS/, "
            "RESOURCES/ or ASSESSORS/)"
        )
    where = locate_session(directory)
    meta: ProjectMetadata | None = None
    row: dict[str, Any] = {}
    subject_row: dict[str, Any] = {}
    if where is not None:
        archive, project_id, label = where
        project = project or project_id
        meta = read_project(archive, project_id)
        row = meta.experiment(label) or {}
        subject_row = meta.subject(str(row.get("subject", ""))) or {}
    else:
        label = directory.name
    project = project or ""
    subject_label = str(row.get("subject") or "")
    subject = _subject_object(subject_label, subject_row, project, None) if subject_label \
        else None
    session = _session_object(directory, label, row, project,
                              subject.ident if subject else "", meta, None, checksums)
    project_obj = _project_object(directory.resolve().parent.parent, meta, checksums) \
        if meta is not None else None
    if subject is not None:
        subject.data["sessions"] = [session.data]
        subject.children = {"Session": [session]}
        session.children["Subject"] = [subject]
    if project_obj is not None:
        session.children["Project"] = [project_obj]
        for child in session.children["Scan"] + session.children["Assessor"]:
            child.children["Project"] = [project_obj]
        if subject is not None:
            subject.children["Project"] = [project_obj]
    return session


def _project_folder(directory: Path) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such project folder")
    if directory.name == "arc001":
        return directory.parent
    if not (directory / "arc001").is_dir():
        projects = sorted(p.name for p in directory.iterdir() if (p / "arc001").is_dir())
        if projects:
            raise ArchiveError(f"{directory}: an archive root holding projects {projects}; "
                               "give one project folder (<archive>/<project>)")
        raise ArchiveError(f"{directory}: not a project folder: sessions must be in "
                           f"{directory}/arc001/ (XNAT's layout <project>/arc001/<session>/)")
    return directory


def load_project(directory: Path, *, checksums: bool = False) -> XnatObject:
    """Read a project folder in XNAT's archive layout (``<project>/arc001/<session>/``).

    Parameters
    ----------
    directory : Path
        The project folder ``<archive>/<PROJECT>`` (its ``arc001`` folder is accepted too).
    checksums : bool
        Compute SHA-256 checksums of files.

    Returns
    -------
    XnatObject
        The project, whose ``directory`` (what a mount it feeds shows) is its archive root
        ``<archive>/<PROJECT>/arc001``, with ``Subject`` children (each with its
        ``Session`` children) and ``Resource`` children (``RESOURCES/<label>/``).

    Raises
    ------
    ArchiveError
        When the folder does not exist, is an archive root of several projects, has no
        ``arc001/``, or its metadata cannot be read.
    """
    directory = _project_folder(directory)
    meta = read_project(directory.parent, directory.name)
    project = _project_object(directory, meta, checksums)
    pid = meta.project
    arc = directory / "arc001"
    subjects: dict[str, XnatObject] = {}
    for folder in sorted(p for p in arc.iterdir() if is_session_dir(p)):
        row = meta.experiment(folder.name) or {}
        subject_label = str(row.get("subject") or "")
        key = subject_label or f"\0{folder}"
        subject = subjects.get(key)
        if subject is None:
            subject = _subject_object(subject_label, meta.subject(subject_label) or {}, pid,
                                      project.uri)
            subject.children = {"Session": [], "Project": [project], "Resource": []}
            subjects[key] = subject
        session = _session_object(folder, folder.name, row, pid, subject.ident
                                  if subject_label else "", meta, subject.uri, checksums)
        session.children["Subject"] = [subject]
        session.children["Project"] = [project]
        subject.data["sessions"].append(session.data)
        subject.children["Session"].append(session)
    project.data["subjects"] = [s.data for s in subjects.values()]
    project.children["Subject"] = list(subjects.values())
    return project


def _assessors(directory: Path, row: dict[str, Any], uri: str, project: str, sid: str,
               meta: ProjectMetadata | None, checksums: bool) -> list[XnatObject]:
    listed = {str(a.get("label") or a.get("id")): a for a in row.get("assessors") or []
              if isinstance(a, dict)}
    folder = directory / "ASSESSORS"
    labels = list(listed)
    if folder.is_dir():
        labels += [p.name for p in sorted(folder.iterdir()) if p.is_dir() and p.name not in
                   listed]
    out = []
    for label in labels:
        ameta = listed.get(label, {})
        aid = str(ameta.get("id") or label)
        a_uri = f"{uri}/assessors/{aid}"
        a_dir = folder / label
        resources = _resources(a_dir, a_uri, meta, checksums=checksums)
        data = _no_nulls({
            "id": aid, "label": label,
            "xsiType": ameta.get("xsiType", "xnat:imageAssessorData"), "uri": a_uri,
            "directory": str(a_dir), "project-id": project, "session-id": sid,
            "resources": [r.data for r in resources],
        })
        out.append(XnatObject("Assessor", data, a_dir, {"Resource": resources}))
    return out


def _scan_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def find_sessions(directory: Path) -> list[Path]:
    """Return every session folder under a project folder.

    Accepts ``<archive>/<project>`` (sessions in ``arc001/``), an ``arc001`` folder,
    a folder of sessions, or an archive root holding ``<project>/arc001/<session>``.

    Raises
    ------
    ArchiveError
        When the folder does not exist or holds no session.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such project folder")
    if (directory / "arc001").is_dir():
        parents = [directory / "arc001"]
    else:
        nested = sorted(p / "arc001" for p in directory.iterdir() if (p / "arc001").is_dir())
        parents = nested or [directory]
    sessions = [
        p for parent in parents for p in sorted(parent.iterdir()) if is_session_dir(p)
    ]
    if not sessions:
        raise ArchiveError(
            f"{directory}: no session found (looked for <session>/ with SCANS/, RESOURCES/ "
            "or ASSESSORS/ in arc001/, */arc001/ and the folder itself)"
        )
    return sessions

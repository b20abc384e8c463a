"""Sessions and projects stored in XNAT's archive layout, seen as the Container Service sees them.

Layout of a project (``<archive>/<project>/``) and of a session folder in it::

    PROJECT/
      project.json                  project metadata (below); optional
      RESOURCES/<label>/            project resources (e.g. RESOURCES/PROJECT_SUMMARY/)
      arc001/SESSION/
        session.json                metadata (below); optional
        SCANS/<scan id>/<RESOURCE>/   files of each scan resource (e.g. SCANS/3/DICOM/*.dcm)
        RESOURCES/<label>/            session resources (e.g. RESOURCES/PARAVISION/...)
        ASSESSORS/<label>/<RESOURCE>/ assessor resources

``session.json`` holds what XNAT keeps in its database (kebab-case keys, as in the JSON
the Container Service gives matchers)::

    {"id": "XNAT_E00001", "label": "mouse1_d0", "project": "PRECLIN",
     "subject": "XNAT_S00001", "subject-label": "mouse1", "xsiType": "xnat:mrSessionData",
     "group": "control", "timepoint": "d0", "fields": {"weight_g": "24.5"},
     "scans": [{"id": "3", "xsiType": "xnat:mrScanData", "scan-type": "T1_RARE",
                "series-description": "T1_RARE_axial", "modality": "MR",
                "quality": "usable", "frames": 20, "uid": "1.2.3"}],
     "assessors": [{"id": "XNAT_E00002", "label": "qc", "xsiType": "xnat:qcAssessmentData"}]}

Every key is optional; any other key is refused. Defaults: ``id`` and ``label`` the
folder name, ``project`` the folder above ``arc001`` (else ""), ``xsiType``
``xnat:mrSessionData``. Scans and resources found on disk but not listed are added; scans
listed but absent on disk have no resources.

``group`` is the subject's group (XNAT's ``xnat:subjectData/group``): it is serialised on
the session's ``Subject`` (``group``), not on the session. ``timepoint`` and ``fields``
(a flat object of strings, numbers or booleans) are XNAT custom variables of the session:
serialised, as strings, under the session's ``fields`` (``timepoint`` becomes
``fields.timepoint``; giving both with different values is an error), so a matcher can
test ``@.fields.timepoint == 'd0'``.

``project.json`` (optional) may hold ``id``, ``label``, ``title``, ``description``,
``keywords`` and ``accessibility``; ``id`` and ``label`` default to the folder name.

:func:`load_session` and :func:`load_project` return :class:`XnatObject` trees whose
``data`` is the JSON a matcher or ``derived-from-xnat-object-property`` sees. A project's
``subjects[]`` are gathered from its sessions (by subject id); each subject lists its
``sessions[]``, which is how derived inputs reach sessions from a project (a session
without a ``subject`` has a subject of its own, with an empty id).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import ArchiveError

__all__ = [
    "METADATA_NAME",
    "XnatObject",
    "find_sessions",
    "is_session_dir",
    "load_project",
    "load_session",
]

METADATA_NAME = "session.json"
PROJECT_METADATA_NAME = "project.json"
_SESSION_KEYS = {
    "id", "label", "project", "subject", "subject-label", "xsiType", "visit-id",
    "datatype-string", "scans", "assessors", "date", "modality", "group", "timepoint",
    "fields",
}
_PROJECT_KEYS = {"id", "label", "title", "description", "keywords", "accessibility"}
_CATALOG_SUFFIX = "_catalog.xml"


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
            data = {
                "id": rel, "name": name, "path": rel, "uri": f"{uri}/files/{rel}",
                "xsiType": "xnat:fileData", "tags": [], "format": "", "content": "",
                "size": path.stat().st_size,
                "checksum": _sha256(path) if checksums else "",
                "directory": str(path.parent),
            }
            files.append(XnatObject("File", data, path))
    return files


def _resource(directory: Path, parent_uri: str, index: int, *, checksums: bool) -> XnatObject:
    label = directory.name
    uri = f"{parent_uri}/resources/{label}"
    files = _files(directory, uri, checksums=checksums)
    data = {
        "id": label, "label": label, "xsiType": "xnat:resourceCatalog", "uri": uri,
        "directory": str(directory), "integer-id": index, "parent-uri": parent_uri,
        "type": "", "format": "", "content": "",
        "files": [f.data for f in files],
    }
    return XnatObject("Resource", data, directory, {"File": files, "File[]": files})


def _resources(folder: Path, parent_uri: str, counter: list[int], *, checksums: bool
               ) -> list[XnatObject]:
    if not folder.is_dir():
        return []
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        counter[0] += 1
        out.append(_resource(sub, parent_uri, counter[0], checksums=checksums))
    return out


def _read_json_object(path: Path, allowed: set[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArchiveError(f"{path}: must be a JSON object")
    unknown = sorted(set(meta) - allowed)
    if unknown:
        raise ArchiveError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return meta


def _scalar_text(value: Any) -> str | None:
    """A custom-variable value as XNAT stores it (a string); None when not a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _session_fields(path: Path, meta: dict[str, Any]) -> dict[str, str]:
    raw = meta.get("fields", {})
    if not isinstance(raw, dict):
        raise ArchiveError(f"{path}: 'fields' must be an object of custom variables "
                           f"(name: value), not {type(raw).__name__}")
    fields: dict[str, str] = {}
    for name, value in raw.items():
        text = _scalar_text(value)
        if not str(name).strip() or text is None:
            raise ArchiveError(f"{path}: fields[{name!r}] must be a non-empty name with a "
                               f"string, number or boolean value, not {value!r}")
        fields[str(name)] = text
    if "timepoint" in meta:
        timepoint = _scalar_text(meta["timepoint"])
        if timepoint is None:
            raise ArchiveError(f"{path}: 'timepoint' must be a string or number, not "
                               f"{meta['timepoint']!r}")
        if fields.get("timepoint", timepoint) != timepoint:
            raise ArchiveError(f"{path}: 'timepoint' {timepoint!r} differs from "
                               f"fields.timepoint {fields['timepoint']!r}; give one")
        fields["timepoint"] = timepoint
    return fields


def _read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA_NAME
    meta = _read_json_object(path, _SESSION_KEYS)
    if not isinstance(meta.get("scans", []), list) or not all(
        isinstance(s, dict) and str(s.get("id", "")).strip() for s in meta.get("scans", [])
    ):
        raise ArchiveError(f"{path}: 'scans' must be a list of objects, each with an 'id'")
    if not isinstance(meta.get("group", ""), str):
        raise ArchiveError(f"{path}: 'group' (the subject's group) must be a string, not "
                           f"{meta['group']!r}")
    meta["fields"] = _session_fields(path, meta)
    return meta


def is_session_dir(path: Path) -> bool:
    """Whether a folder looks like an archived session (session.json, SCANS or RESOURCES)."""
    path = Path(path)
    return path.is_dir() and any(
        (path / name).exists() for name in (METADATA_NAME, "SCANS", "RESOURCES")
    )


def _default_project(directory: Path) -> str:
    parent = directory.resolve().parent
    return parent.parent.name if parent.name == "arc001" else ""


def load_session(directory: Path, *, checksums: bool = False,
                 project: str | None = None) -> XnatObject:
    """Read a session folder in XNAT's archive layout.

    Parameters
    ----------
    directory : Path
        The session folder.
    checksums : bool
        Compute SHA-256 checksums of files (slow on big sessions; matchers rarely use
        them).
    project : str, optional
        Project id when session.json has none (default: the folder above ``arc001``).

    Returns
    -------
    XnatObject
        The session, with ``Scan``, ``Resource``, ``Assessor``, ``Subject`` and
        ``Project`` children.

    Raises
    ------
    ArchiveError
        When the folder does not exist, is not a session, or its session.json is bad.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such session folder")
    if not is_session_dir(directory):
        raise ArchiveError(
            f"{directory}: not a session in XNAT's archive layout (expected "
            f"{METADATA_NAME}, SCANS/ or RESOURCES/)"
        )
    meta = _read_metadata(directory)
    sid = str(meta.get("id") or directory.name)
    project = str(meta.get("project") or project or _default_project(directory))
    subject = str(meta.get("subject") or "")
    uri = f"/archive/experiments/{sid}"
    counter = [0]
    scans_meta = {str(s["id"]): s for s in meta.get("scans", [])}
    scan_ids = list(scans_meta)
    scans_dir = directory / "SCANS"
    if scans_dir.is_dir():
        on_disk = sorted((p.name for p in scans_dir.iterdir() if p.is_dir()), key=_scan_key)
        scan_ids += [s for s in on_disk if s not in scans_meta]
    scans = []
    for scan_id in scan_ids:
        smeta = scans_meta.get(scan_id, {})
        scan_uri = f"{uri}/scans/{scan_id}"
        scan_dir = scans_dir / scan_id
        resources = _resources(scan_dir, scan_uri, counter, checksums=checksums)
        scan_type = str(smeta.get("scan-type", smeta.get("type", "")))
        data = {
            "frames": 0, "note": "", "quality": "usable", "modality": "MR", "uid": "",
            "series-description": "", "scanner": "", "scanner-manufacturer": "",
            "scanner-model": "", "start-time": "",
            **{k: v for k, v in smeta.items() if k not in ("resources", "type")},
            "id": scan_id, "label": f"{scan_id} - {scan_type}",
            "xsiType": smeta.get("xsiType", "xnat:mrScanData"), "uri": scan_uri,
            "directory": str(scan_dir), "integer-id": int(scan_id) if scan_id.isdigit() else 0,
            "scan-type": scan_type, "project-id": project, "session-id": sid,
            "resources": [r.data for r in resources],
        }
        scans.append(XnatObject("Scan", data, scan_dir, {"Resource": resources}))
    resources = _resources(directory / "RESOURCES", uri, counter, checksums=checksums)
    assessors = _assessors(directory, meta, uri, project, sid, counter, checksums)
    subject_obj = XnatObject("Subject", {
        "id": subject, "label": str(meta.get("subject-label") or subject),
        "xsiType": "xnat:subjectData", "uri": f"/archive/subjects/{subject}",
        "directory": "", "project-id": project, "group": str(meta.get("group") or ""),
        "source": "",
        "sessions": [], "resources": [],
    })
    project_obj = XnatObject("Project", {
        "id": project, "label": project, "xsiType": "xnat:projectData",
        "uri": f"/archive/projects/{project}", "directory": "", "title": project,
        "description": "", "keywords": "", "accessibility": "private", "subjects": [],
        "resources": [],
    })
    data = {
        "id": sid, "label": str(meta.get("label") or sid),
        "xsiType": meta.get("xsiType", "xnat:mrSessionData"), "uri": uri,
        "directory": str(directory), "project-id": project, "subject-id": subject,
        "visit-id": meta.get("visit-id", ""),
        "datatype-string": meta.get("datatype-string", meta.get("xsiType",
                                                                 "xnat:mrSessionData")),
        "fields": dict(meta["fields"]),
        "scans": [s.data for s in scans], "resources": [r.data for r in resources],
        "assessors": [a.data for a in assessors],
    }
    session = XnatObject("Session", data, directory, {
        "Scan": scans, "Resource": resources, "Assessor": assessors,
        "Subject": [subject_obj], "Project": [project_obj],
    })
    for child in scans + assessors:
        child.children["Session"] = [session]
    subject_obj.children = {"Session": [session], "Project": [project_obj]}
    project_obj.children = {"Subject": [subject_obj]}
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
        if any(is_session_dir(p) for p in directory.iterdir()):
            raise ArchiveError(f"{directory}: sessions must be in {directory}/arc001/ for a "
                               "project launch (XNAT's layout <project>/arc001/<session>/)")
    return directory


def load_project(directory: Path, *, checksums: bool = False) -> XnatObject:
    """Read a project folder in XNAT's archive layout (``<project>/arc001/<session>/``).

    Parameters
    ----------
    directory : Path
        The project folder (its ``arc001`` folder is accepted too).
    checksums : bool
        Compute SHA-256 checksums of files.

    Returns
    -------
    XnatObject
        The project (``directory`` the project folder), with ``Subject`` (gathered from
        the sessions, each with its ``Session`` children) and ``Resource`` children
        (``RESOURCES/<label>/``).

    Raises
    ------
    ArchiveError
        When the folder does not exist, is an archive root of several projects, holds
        sessions outside ``arc001/``, or a session.json or project.json is bad, or two
        sessions of one subject give it different groups.
    """
    directory = _project_folder(directory)
    meta = _read_json_object(directory / PROJECT_METADATA_NAME, _PROJECT_KEYS)
    for key, value in meta.items():
        if not isinstance(value, str):
            raise ArchiveError(f"{directory / PROJECT_METADATA_NAME}: {key!r} must be a "
                               f"string, not {value!r}")
    pid = meta.get("id") or directory.name
    uri = f"/archive/projects/{pid}"
    arc = directory / "arc001"
    folders = sorted(p for p in arc.iterdir() if is_session_dir(p)) if arc.is_dir() else []
    sessions = [load_session(f, checksums=checksums, project=pid) for f in folders]
    resources = _resources(directory / "RESOURCES", uri, [0], checksums=checksums)
    project = XnatObject("Project", {
        "id": pid, "label": meta.get("label") or pid, "xsiType": "xnat:projectData",
        "uri": uri, "directory": str(directory), "title": meta.get("title") or pid,
        "description": meta.get("description", ""), "keywords": meta.get("keywords", ""),
        "accessibility": meta.get("accessibility", "private"), "subjects": [],
        "resources": [r.data for r in resources],
    }, directory, {"Resource": resources})
    subjects: dict[str, XnatObject] = {}
    group_from: dict[str, Path] = {}
    for session in sessions:
        (own,) = session.children["Subject"]
        # sessions without a subject id are not merged: each keeps its own subject
        sid = own.data["id"] or f"\0{session.directory}"
        subject = subjects.get(sid)
        if subject is None:
            subject = XnatObject("Subject", {**own.data, "project-id": pid, "sessions": []},
                                 None, {"Session": [], "Project": [project], "Resource": []})
            subjects[sid] = subject
        group = own.data["group"]
        if group:
            if subject.data["group"] and subject.data["group"] != group:
                raise ArchiveError(
                    f"{session.directory / METADATA_NAME}: group {group!r} of subject "
                    f"{own.data['id']!r} "
                    f"differs from {subject.data['group']!r} in "
                    f"{group_from[sid] / METADATA_NAME} (group belongs to the subject)")
            subject.data["group"] = group
            group_from.setdefault(sid, session.directory or Path())
        subject.data["sessions"].append(session.data)
        subject.children["Session"].append(session)
        session.children["Subject"] = [subject]
        session.children["Project"] = [project]
    project.data["subjects"] = [s.data for s in subjects.values()]
    project.children["Subject"] = list(subjects.values())
    return project


def _assessors(directory: Path, meta: dict, uri: str, project: str, sid: str,
               counter: list[int], checksums: bool) -> list[XnatObject]:
    listed = {str(a.get("label") or a.get("id")): a for a in meta.get("assessors", [])
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
        resources = _resources(a_dir, a_uri, counter, checksums=checksums)
        data = {
            **ameta, "id": aid, "label": label,
            "xsiType": ameta.get("xsiType", "xnat:imageAssessorData"), "uri": a_uri,
            "directory": str(a_dir), "project-id": project, "session-id": sid,
            "resources": [r.data for r in resources],
        }
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
            f"{directory}: no session found (looked for <session>/ with {METADATA_NAME}, "
            "SCANS/ or RESOURCES/ in arc001/, */arc001/ and the folder itself)"
        )
    return sessions

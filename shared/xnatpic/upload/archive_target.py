"""Local destination in XNAT's archive layout, read back by :mod:`xnatpic.xnat.archive`.

``DIR/<project>/arc001/<session>/SCANS/<scan>/DICOM/<file>``, ``RESOURCES/PARAVISION/``,
``RESOURCES/CONVERSION/`` and ``session.json`` (labels, date, scans with their series UID
and description, and the fields, as :mod:`xnatpic.xnat.archive` documents them):

* the subject's ``group`` → ``group``;
* a session field ``timepoint`` → ``timepoint`` (seen by matchers as
  ``fields.timepoint``);
* other session fields → ``fields.NAME``, and the study UID the session holds →
  ``fields.xnatpic_study_uid`` (as on a server);
* other subject fields → ``fields["subject.NAME"]`` (session.json describes a session; a
  subject has no file of its own, so its custom variables ride on each of its sessions).

Every file is written to a temporary name and renamed into place, so a crash never leaves
a truncated file counted.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from xnatpic.upload.errors import ProjectNotFoundError
from xnatpic.upload.prepare import ScanFiles, SessionPlan
from xnatpic.upload.retry import os_error
from xnatpic.upload.target import MANIFEST_NAME
from xnatpic.xnat.archive import METADATA_NAME

__all__ = ["STUDY_UID_FIELD", "ArchiveTarget", "session_json_fields"]

_log = logging.getLogger(__name__)

#: The session field holding the StudyInstanceUID the session was created for.
STUDY_UID_FIELD = "xnatpic_study_uid"


def session_json_fields(subject: dict[str, str], session: dict[str, str]
                        ) -> dict[str, Any]:
    """The ``group``, ``timepoint`` and ``fields`` keys of session.json for these fields.

    Examples
    --------
    >>> session_json_fields({"group": "ctl", "sex": "F"}, {"timepoint": "d0", "dose": "2"})
    {'group': 'ctl', 'timepoint': 'd0', 'fields': {'subject.sex': 'F', 'dose': '2'}}
    """
    out: dict[str, Any] = {}
    custom: dict[str, str] = {}
    for name, value in subject.items():
        if name == "group":
            out["group"] = value
        else:
            custom[f"subject.{name}"] = value
    for name, value in session.items():
        if name == "timepoint":
            out["timepoint"] = value
        else:
            custom[name] = value
    out["fields"] = custom
    return out


def _atomic_copy(source: Path, destination: Path) -> None:
    """Copy through a hidden partial file, removed when the copy fails. A failure a retry
    may fix (a dropped network share) is a TransientError (the copy is idempotent, so the
    runner retries it); a full disk or a read-only folder is not retried
    (:func:`xnatpic.upload.retry.os_error`)."""
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, partial)
        partial.replace(destination)
    except OSError as exc:
        _discard(partial)
        raise os_error(destination, exc) from exc


def _atomic_write(destination: Path, text: str) -> None:
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        partial.replace(destination)
    except OSError as exc:
        _discard(partial)
        raise os_error(destination, exc) from exc


def _discard(partial: Path) -> None:
    """Remove a partial file left by a failed write (nothing half-written stays)."""
    try:
        partial.unlink(missing_ok=True)
    except OSError as exc:  # e.g. the folder became unreachable: name it, keep the error
        _log.warning("%s: cannot remove the partial file: %s", partial, exc.strerror or exc)


class ArchiveTarget:
    """Sessions into ``DIR/<project>/arc001/`` (created when absent).

    Parameters
    ----------
    root : Path
        The archive folder.
    """

    name = "archive"
    stateful = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def _dir(self, plan: SessionPlan) -> Path:
        return self.root / plan.project / "arc001" / plan.session

    def _meta(self, plan: SessionPlan) -> dict[str, Any]:
        path = self._dir(plan) / METADATA_NAME
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def check_project(self, project: str) -> None:
        """Create the project folder when the archive root exists."""
        if self.root.exists() and not self.root.is_dir():
            raise ProjectNotFoundError(f"{self.root}: not a folder; give --archive a folder")
        (self.root / project / "arc001").mkdir(parents=True, exist_ok=True)

    def manifest(self, plan: SessionPlan) -> dict[str, Any] | None:
        """``RESOURCES/CONVERSION/xnatpic-upload.json`` when present."""
        path = self._dir(plan) / "RESOURCES" / "CONVERSION" / MANIFEST_NAME
        try:
            return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except json.JSONDecodeError:
            return None

    def study_uid(self, plan: SessionPlan) -> str | None:
        """The ``study-uid`` kept for the session, None when it does not exist."""
        if not self._dir(plan).is_dir():
            return None
        return str(self._meta(plan).get("fields", {}).get(STUDY_UID_FIELD, ""))

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """Create the folder and session.json (with the study UID among its fields)."""
        self._dir(plan).mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._write_meta(plan, {}, {"fields": {STUDY_UID_FIELD: study_uid}})

    def _write_meta(self, plan: SessionPlan, scans: dict[str, dict[str, Any]],
                    fields: dict[str, Any] | None = None) -> None:
        meta = self._meta(plan)
        for key, value in (fields or {}).items():
            if key == "fields":
                meta.setdefault("fields", {}).update(value)
            else:
                meta[key] = value
        listed = {str(s["id"]): s for s in meta.get("scans", [])}
        listed.update(scans)
        date = plan.date
        meta.update({
            "id": plan.session, "label": plan.session, "project": plan.project,
            "subject": plan.subject, "subject-label": plan.subject,
            "xsiType": "xnat:mrSessionData",
            "scans": sorted(listed.values(), key=lambda s: (0, int(s["id"])) if
                            str(s["id"]).isdigit() else (1, str(s["id"]))),
        })
        if len(date) == 8:
            meta["date"] = f"{date[:4]}-{date[4:6]}-{date[6:]}"
        _atomic_write(self._dir(plan) / METADATA_NAME, json.dumps(meta, indent=2) + "\n")

    def scan_counts(self, plan: SessionPlan) -> dict[str, int]:
        """Files in ``SCANS/<id>/DICOM`` per scan."""
        scans = self._dir(plan) / "SCANS"
        if not scans.is_dir():
            return {}
        return {p.name: sum(1 for f in (p / "DICOM").glob("*") if f.is_file()
                            and not f.name.startswith("."))
                for p in scans.iterdir() if p.is_dir()}

    def send_scans(self, plan: SessionPlan, scans: list[ScanFiles], zip_path: Path) -> None:
        """Copy each scan's files into ``SCANS/<id>/DICOM`` and list it in session.json."""
        for scan in scans:
            target = self._dir(plan) / "SCANS" / scan.id / "DICOM"
            for path in scan.files:
                _atomic_copy(path, target / path.name)
            entry = {"id": scan.id, "xsiType": "xnat:mrScanData",
                     "scan-type": scan.description, "series-description": scan.description,
                     "modality": scan.modality, "uid": scan.series_uid,
                     "frames": len(scan.files)}
            with self._lock:
                self._write_meta(plan, {scan.id: entry})

    def resource_files(self, plan: SessionPlan, label: str) -> dict[str, int]:
        """Files of ``RESOURCES/<label>`` (name → size)."""
        folder = self._dir(plan) / "RESOURCES" / label
        if not folder.is_dir():
            return {}
        return {f.name: f.stat().st_size for f in folder.iterdir()
                if f.is_file() and not f.name.startswith(".")}

    def put_resource_file(self, plan: SessionPlan, label: str, path: Path, name: str) -> None:
        """Copy a file into ``RESOURCES/<label>``."""
        _atomic_copy(path, self._dir(plan) / "RESOURCES" / label / name)

    def set_fields(self, plan: SessionPlan) -> None:
        """Write subject and session fields into session.json (see the module)."""
        with self._lock:
            self._write_meta(plan, {}, session_json_fields(plan.subject_fields,
                                                           plan.session_fields))

    def close(self) -> None:
        """Nothing to release."""

"""Local destination in XNAT's archive layout, read back by :mod:`xnatpic.xnat.archive`.

Files go where XNAT keeps them: ``DIR/<project>/arc001/<session>/SCANS/<scan>/DICOM/<file>``,
``RESOURCES/PARAVISION/``, ``RESOURCES/CONVERSION/``. What XNAT keeps in its database goes
into ``DIR/.xnatpic/<project>.json`` (:mod:`xnatpic.xnat.metadata`), never into the session
folder:

* the session (accession id, subject, date, xsi type) and each scan (type, series
  description, modality, series UID, frames, a database key);
* the subject's ``group`` → the subject's ``group``; other subject fields → the subject's
  custom fields;
* session fields (``timepoint``...) → the session's custom fields, and the study UID the
  session holds → the field ``xnatpic_study_uid`` (as on a server).

Steps read them back as on XNAT, through the REST API (:mod:`xnatpic.xnat.metaserver`).
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
from xnatpic.xnat.metadata import metadata_path, read_project, update_project

__all__ = ["STUDY_UID_FIELD", "ArchiveTarget"]

_log = logging.getLogger(__name__)

#: The session field holding the StudyInstanceUID the session was created for.
STUDY_UID_FIELD = "xnatpic_study_uid"


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

    def check_project(self, project: str) -> None:
        """Create the project folder when the archive root exists."""
        if self.root.exists() and not self.root.is_dir():
            raise ProjectNotFoundError(f"{self.root}: not a folder; give --archive a folder")
        folder = self.root / project / "arc001"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # read-only, forbidden, full: before any session
            raise os_error(folder, exc) from exc

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
        row = read_project(self.root, plan.project).experiment(plan.session) or {}
        return str((row.get("fields") or {}).get(STUDY_UID_FIELD, ""))

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """Create the folder and the session's row (with the study UID among its fields)."""
        self._dir(plan).mkdir(parents=True, exist_ok=True)
        self._record(plan, fields={STUDY_UID_FIELD: study_uid})

    def _record(self, plan: SessionPlan, *, fields: dict[str, str] | None = None,
                scans: dict[str, dict[str, Any]] | None = None) -> None:
        """Create or update the session's row (and its subject's) in the project file."""
        date = plan.date
        try:
            with self._lock, update_project(self.root, plan.project) as meta:
                meta.ensure_experiment(
                    plan.session, plan.subject, xsiType="xnat:mrSessionData",
                    date=f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else None,
                    fields=fields or {})
                for scan_id, entry in (scans or {}).items():
                    meta.set_scan(plan.session, scan_id, **entry)
        except OSError as exc:
            raise os_error(metadata_path(self.root, plan.project), exc) from exc

    def scan_counts(self, plan: SessionPlan) -> dict[str, int]:
        """Files in ``SCANS/<id>/DICOM`` per scan."""
        scans = self._dir(plan) / "SCANS"
        if not scans.is_dir():
            return {}
        return {p.name: sum(1 for f in (p / "DICOM").glob("*") if f.is_file()
                            and not f.name.startswith("."))
                for p in scans.iterdir() if p.is_dir()}

    def send_scans(self, plan: SessionPlan, scans: list[ScanFiles], zip_path: Path) -> None:
        """Copy each scan's files into ``SCANS/<id>/DICOM`` and record the scan."""
        for scan in scans:
            target = self._dir(plan) / "SCANS" / scan.id / "DICOM"
            for path in scan.files:
                _atomic_copy(path, target / path.name)
            entry = {"xsiType": "xnat:mrScanData", "type": scan.description,
                     "series_description": scan.description, "modality": scan.modality,
                     "uid": scan.series_uid, "frames": len(scan.files)}
            self._record(plan, scans={scan.id: entry})

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
        """Record subject fields (``group`` apart) and session fields (see the module)."""
        subject = dict(plan.subject_fields)
        group = subject.pop("group", None)
        self._record(plan, fields=dict(plan.session_fields))
        try:
            with self._lock, update_project(self.root, plan.project) as meta:
                meta.ensure_subject(plan.subject, group=group, fields=subject)
        except OSError as exc:
            raise os_error(metadata_path(self.root, plan.project), exc) from exc

    def close(self) -> None:
        """Nothing to release."""

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

A new session is staged, as XNAT builds a session in its prearchive before it enters the
archive: its files go to ``DIR/<project>/.xnatpic-staging/<session>/`` (outside ``arc001``,
so no step, mount or :func:`~xnatpic.xnat.archive.find_sessions` sees it) and its rows are
kept in memory; when its upload manifest arrives (the last thing the runner writes) the
rows are written and the folder renamed into ``arc001``. A new session that fails is
removed (:meth:`ArchiveTarget.discard`); a staging folder left by a killed process is
replaced by the next upload of the session. A session already in ``arc001`` (complete or
partial) is written in place and never removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.upload.errors import ProjectNotFoundError
from xnatpic.upload.prepare import ScanFiles, SessionPlan
from xnatpic.upload.retry import os_error
from xnatpic.upload.target import MANIFEST_NAME
from xnatpic.upload.xnat_types import scan_xsi, session_xsi
from xnatpic.xnat.metadata import metadata_path, read_project, update_project

__all__ = ["STUDY_UID_FIELD", "ArchiveTarget"]

_log = logging.getLogger(__name__)

#: The session field holding the StudyInstanceUID the session was created for.
STUDY_UID_FIELD = "xnatpic_study_uid"
#: Folder of a project (beside ``arc001``) where new sessions are built.
STAGING = ".xnatpic-staging"


@dataclass
class _Staged:
    """A new session being built: its folder and the rows written when it completes."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    scans: dict[str, dict[str, Any]] = field(default_factory=dict)
    subject_fields: dict[str, str] | None = None
    group: str | None = None
    rows_written: bool = False


def _atomic_copy(source: Path, destination: Path, *, link: bool = False) -> None:
    """Copy through a hidden partial file, removed when the copy fails. A failure a retry
    may fix (a dropped network share) is a TransientError (the copy is idempotent, so the
    runner retries it); a full disk or a read-only folder is not retried
    (:func:`xnatpic.upload.retry.os_error`).

    ``link``: ``source`` is the upload's own file, removed after it (:attr:`ScanFiles.owned`):
    it is hard-linked when the file system allows it (the same disk), else copied.
    """
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not (link and _linked(source, partial)):
            shutil.copyfile(source, partial)
        partial.replace(destination)
    except OSError as exc:
        _discard(partial)
        raise os_error(destination, exc) from exc


def _linked(source: Path, partial: Path) -> bool:
    """Hard-link ``source`` as ``partial``; False when the file system refuses (another
    disk, no links there, a partial file left by a failed attempt)."""
    try:
        os.link(source, partial)
    except OSError:
        return False
    return True


def _discard(partial: Path) -> None:
    """Remove a partial file left by a failed write (nothing half-written stays)."""
    try:
        partial.unlink(missing_ok=True)
    except OSError as exc:  # e.g. the folder became unreachable: name it, keep the error
        _log.warning("%s: cannot remove the partial file: %s", partial, exc.strerror or exc)


def _remove_empty(folder: Path) -> None:
    """Remove the staging folder of a project once no session is built in it."""
    try:
        folder.rmdir()
    except OSError:  # not empty (another session is being built) or already gone
        return


class ArchiveTarget:
    """Sessions into ``DIR/<project>/arc001/`` (created when absent).

    Parameters
    ----------
    root : Path
        The archive folder.
    """

    name = "archive"
    stateful = True
    sends_zip = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._staged: dict[tuple[str, str], _Staged] = {}

    def _final(self, plan: SessionPlan) -> Path:
        return self.root / plan.project / "arc001" / plan.session

    def _staging(self, plan: SessionPlan) -> _Staged | None:
        with self._lock:
            return self._staged.get((plan.project, plan.session))

    def _dir(self, plan: SessionPlan) -> Path:
        """Where the session's files are: its staging folder while new, else arc001."""
        staged = self._staging(plan)
        return staged.folder if staged is not None else self._final(plan)

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
        """The ``study-uid`` kept for the session, None when it is not in the archive."""
        if not self._final(plan).is_dir():
            return None
        row = read_project(self.root, plan.project).experiment(plan.session) or {}
        return str((row.get("fields") or {}).get(STUDY_UID_FIELD, ""))

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """An existing session: its row gets the study UID. A new one: an empty staging
        folder (what a killed upload left there is dropped), its rows kept until
        :meth:`put_resource_file` receives the manifest."""
        if self._final(plan).is_dir():
            self._record(plan, fields={STUDY_UID_FIELD: study_uid})
            return
        folder = self.root / plan.project / STAGING / plan.session
        try:
            with self._lock:
                if folder.exists():
                    shutil.rmtree(folder)
                folder.mkdir(parents=True)
        except OSError as exc:
            raise os_error(folder, exc) from exc
        with self._lock:
            self._staged[(plan.project, plan.session)] = _Staged(
                folder, fields={STUDY_UID_FIELD: study_uid})

    def _record(self, plan: SessionPlan, *, fields: dict[str, str] | None = None,
                scans: dict[str, dict[str, Any]] | None = None) -> None:
        """Create or update the session's row (and its subject's) in the project file."""
        date = plan.date
        try:
            with self._lock, update_project(self.root, plan.project) as meta:
                meta.ensure_experiment(
                    plan.session, plan.subject, xsiType=session_xsi(plan.modality),
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

    def send_scans(self, plan: SessionPlan, scans: list[ScanFiles], zip_path: Path | None
                   ) -> None:
        """Copy each scan's files into ``SCANS/<id>/DICOM`` and record the scan."""
        for scan in scans:
            target = self._dir(plan) / "SCANS" / scan.id / "DICOM"
            for path in scan.files:
                _atomic_copy(path, target / path.name, link=scan.owned)
            entry = {"xsiType": scan_xsi(scan.modality), "type": scan.description,
                     "series_description": scan.description, "modality": scan.modality,
                     "uid": scan.series_uid, "frames": len(scan.files)}
            staged = self._staging(plan)
            if staged is not None:
                staged.scans[scan.id] = entry
            else:
                self._record(plan, scans={scan.id: entry})

    def resource_files(self, plan: SessionPlan, label: str) -> dict[str, int]:
        """Files of ``RESOURCES/<label>`` (name → size)."""
        folder = self._dir(plan) / "RESOURCES" / label
        if not folder.is_dir():
            return {}
        return {f.name: f.stat().st_size for f in folder.iterdir()
                if f.is_file() and not f.name.startswith(".")}

    def put_resource_file(self, plan: SessionPlan, label: str, path: Path, name: str) -> None:
        """Copy a file into ``RESOURCES/<label>``; the upload manifest completes a new
        session (its rows written, its folder moved into ``arc001``)."""
        _atomic_copy(path, self._dir(plan) / "RESOURCES" / label / name)
        if label == "CONVERSION" and name == MANIFEST_NAME:
            staged = self._staging(plan)
            if staged is not None:
                self._commit(plan, staged)

    def set_fields(self, plan: SessionPlan) -> None:
        """Record subject fields (``group`` apart) and session fields (see the module)."""
        subject = dict(plan.subject_fields)
        group = subject.pop("group", None)
        staged = self._staging(plan)
        if staged is not None:
            staged.fields.update(plan.session_fields)
            staged.subject_fields, staged.group = subject, group
            return
        self._record(plan, fields=dict(plan.session_fields))
        self._record_subject(plan, subject, group)

    def _record_subject(self, plan: SessionPlan, fields: dict[str, str],
                        group: str | None) -> None:
        try:
            with self._lock, update_project(self.root, plan.project) as meta:
                meta.ensure_subject(plan.subject, group=group, fields=fields)
        except OSError as exc:
            raise os_error(metadata_path(self.root, plan.project), exc) from exc

    def _commit(self, plan: SessionPlan, staged: _Staged) -> None:
        """Write a staged session's rows, then move its folder into ``arc001`` (rows first:
        a folder in arc001 always has its rows; a row without a folder is not a session
        and is overwritten by the next upload)."""
        staged.rows_written = True
        self._record(plan, fields=staged.fields, scans=staged.scans)
        if staged.subject_fields is not None:
            self._record_subject(plan, staged.subject_fields, staged.group)
        final = self._final(plan)
        try:
            staged.folder.rename(final)
        except OSError as exc:
            raise os_error(final, exc) from exc
        with self._lock:
            self._staged.pop((plan.project, plan.session), None)
            _remove_empty(staged.folder.parent)

    def discard(self, plan: SessionPlan) -> None:
        """Forget a new session that failed: its staging folder is removed and its rows
        were never written. A session already in ``arc001`` is left as it is."""
        with self._lock:
            staged = self._staged.pop((plan.project, plan.session), None)
            if staged is None:
                return
            try:
                if staged.folder.exists():
                    shutil.rmtree(staged.folder)
                if staged.rows_written:  # the move into arc001 failed: the rows go too
                    with update_project(self.root, plan.project) as meta:
                        meta.data["experiments"].pop(plan.session, None)
            except OSError as exc:  # name it; the session is failed already
                _log.warning("%s: cannot remove what a failed new session left: %s",
                             staged.folder, exc.strerror or exc)
            _remove_empty(staged.folder.parent)

    def close(self) -> None:
        """Nothing to release."""

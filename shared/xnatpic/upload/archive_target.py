"""Local destination in XNAT's archive layout, read back by :mod:`xnatpic.xnat.archive`.

``DIR/<project>/arc001/<session>/SCANS/<scan>/DICOM/<file>``, ``RESOURCES/PARAVISION/``,
``RESOURCES/CONVERSION/`` and ``session.json`` (labels, scans with their series UID and
description, custom fields kept in ``DIR/<project>/xnatpic-fields.json``, since
session.json only holds the keys the Container Service sees). Every file is written to a
temporary name and renamed into place, so a crash never leaves a truncated file counted.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

from xnatpic.upload.errors import ProjectNotFoundError, TransientError
from xnatpic.upload.prepare import ScanFiles, SessionPlan
from xnatpic.upload.target import MANIFEST_NAME
from xnatpic.xnat.archive import METADATA_NAME

__all__ = ["FIELDS_NAME", "ArchiveTarget"]

#: Subject and session fields of a project, beside its arc001 folder.
FIELDS_NAME = "xnatpic-fields.json"


def _atomic_copy(source: Path, destination: Path) -> None:
    """Copy through a hidden partial file; an OSError (full or dropped network share) is
    reported as transient: the copy is idempotent, so the runner may retry it."""
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, partial)
        partial.replace(destination)
    except OSError as exc:
        raise TransientError(f"{destination}: {exc.strerror or exc}") from exc


def _atomic_write(destination: Path, text: str) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(destination)


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
        fields = self._fields(plan.project).get("sessions", {}).get(plan.session, {})
        return str(fields.get("xnatpic_study_uid", ""))

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """Create the folder and session.json."""
        self._dir(plan).mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._update_fields(plan, {}, {"xnatpic_study_uid": study_uid})
        self._write_meta(plan, {})

    def _write_meta(self, plan: SessionPlan, scans: dict[str, dict[str, Any]]) -> None:
        meta = self._meta(plan)
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

    def _fields(self, project: str) -> dict[str, Any]:
        path = self.root / project / FIELDS_NAME
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def _update_fields(self, plan: SessionPlan, subject: dict[str, str],
                       session: dict[str, str]) -> None:
        data = self._fields(plan.project)
        data.setdefault("subjects", {}).setdefault(plan.subject, {}).update(subject)
        data.setdefault("sessions", {}).setdefault(plan.session, {}).update(session)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        _atomic_write(self.root / plan.project / FIELDS_NAME, text)

    def set_fields(self, plan: SessionPlan) -> None:
        """Record subject and session fields in ``DIR/<project>/xnatpic-fields.json``."""
        with self._lock:
            self._update_fields(plan, plan.subject_fields, plan.session_fields)

    def fields(self, project: str) -> dict[str, Any]:
        """Every recorded field of a project (``subjects`` and ``sessions``)."""
        return self._fields(project)

    def close(self) -> None:
        """Nothing to release."""

"""What every destination offers the runner; each step is idempotent, so it can be retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from xnatpic.upload.prepare import ScanFiles, SessionPlan

__all__ = ["MANIFEST_NAME", "Target"]

#: Written last into the CONVERSION resource; its presence marks a complete session.
MANIFEST_NAME = "xnatpic-upload.json"


class Target(Protocol):
    """A destination of sessions (XNAT server, local archive, DICOM node).

    A destination may also offer (the runner uses them when present):

    * ``scan_ids(plan) -> {SeriesInstanceUID: scan id}``: the ids it gave the scans (XNAT
      renames a second series with a number already used ``N-MR1``);
    * ``held_sops(plan, scan_id) -> set of SOPInstanceUID``: the instances a scan holds, so
      a partly stored scan gets only its missing files;
    * ``resolve_prearchive(plan, *, cut=False) -> bool``: settle what earlier imports left
      in a staging area (XNAT's prearchive) before files are sent again.
    """

    name: str
    #: Whether the destination can be asked what it holds (resume, verification).
    stateful: bool
    #: Whether :meth:`send_scans` sends the batch's zip (XNAT's import service); a
    #: destination that stores the files from their paths gets None and no zip is made.
    sends_zip: bool

    def check_project(self, project: str) -> None:
        """Raise ProjectNotFoundError unless the project exists."""

    def manifest(self, plan: SessionPlan) -> dict[str, Any] | None:
        """The manifest of a complete session, or None."""

    def study_uid(self, plan: SessionPlan) -> str | None:
        """The StudyInstanceUID the session already holds, or None when it does not exist."""

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """Create the subject and session when absent (idempotent)."""

    def scan_counts(self, plan: SessionPlan) -> dict[str, int]:
        """Number of DICOM files of each scan of the session."""

    def send_scans(self, plan: SessionPlan, scans: list[ScanFiles], zip_path: Path | None
                   ) -> None:
        """Store some scans' DICOM files (from their paths, or their zip ``zip_path`` when
        :attr:`sends_zip`)."""

    def resource_files(self, plan: SessionPlan, label: str) -> dict[str, int]:
        """Files of a session resource: name → size."""

    def put_resource_file(self, plan: SessionPlan, label: str, path: Path, name: str) -> None:
        """Store one file in a session resource (creating the resource)."""

    def set_fields(self, plan: SessionPlan) -> None:
        """Set subject and session fields."""

    def close(self) -> None:
        """Release connections."""

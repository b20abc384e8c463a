"""The outcome of an upload, one row per session, serialisable to JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from xnatpic import __version__

__all__ = ["STATUSES", "SessionResult", "UploadReport"]

#: uploaded: sent now; complete: already there, not sent again; skipped: found but not
#: something to upload (``error`` says why); failed: see ``error``.
STATUSES = ("uploaded", "complete", "skipped", "failed")


@dataclass
class SessionResult:
    """What happened to one session."""

    source: str
    project: str
    subject: str
    session: str
    status: str = "failed"
    scans_sent: int = 0
    scans_present: int = 0
    files: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: The DICOM sent: ``converted`` (by this upload), ``reused: REPORT (output DIR)``
    #: (``--converted``) or ``as found`` (a DICOM study); "" before it was prepared.
    conversion: str = ""


@dataclass
class UploadReport:
    """Every session's result and the totals."""

    destination: str
    project: str
    results: list[SessionResult] = field(default_factory=list)
    seconds: float = 0.0
    xnatpic_version: str = __version__

    def add_problems(self, problems: Iterable[Any]) -> None:
        """A row for each study found but not uploaded (a discovery or planning problem,
        with ``path``, ``status`` and ``reason``), placed by source path among the
        others."""
        rows = [SessionResult(str(problem.path), self.project, "", "", status=problem.status,
                              error=problem.reason) for problem in problems]
        if rows:
            self.results = sorted([*self.results, *rows], key=lambda r: r.source)

    @property
    def failed(self) -> list[SessionResult]:
        """Sessions that failed."""
        return [r for r in self.results if r.status == "failed"]

    def counts(self) -> dict[str, int]:
        """Sessions per status."""
        out = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            out[r.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        sent = sum(r.bytes_sent for r in self.results)
        return {
            "destination": self.destination, "project": self.project,
            "xnatpic_version": self.xnatpic_version, "summary": self.counts(),
            "seconds": round(self.seconds, 3), "bytes_sent": sent,
            "mb_per_s": round(sent / 1e6 / self.seconds, 3) if self.seconds else 0.0,
            "sessions": [asdict(r) for r in self.results],
        }

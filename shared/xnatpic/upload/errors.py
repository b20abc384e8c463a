"""Errors of ``xnatpic upload``, all deriving from :class:`xnatpic.errors.XnatpicError`."""

from __future__ import annotations

from xnatpic.errors import XnatpicError

__all__ = [
    "DicomNodeError",
    "HttpStatusError",
    "MetadataError",
    "ProjectNotFoundError",
    "ServerBusyError",
    "SessionConflictError",
    "SourceError",
    "TransientError",
    "UploadError",
]


class UploadError(XnatpicError):
    """A session could not be sent to its destination."""


class TransientError(UploadError):
    """A failure worth retrying: HTTP 5xx, a timeout, a dropped connection."""


class ProjectNotFoundError(UploadError):
    """The destination project does not exist (xnatpic never creates projects)."""


class SessionConflictError(UploadError):
    """A session with the same label already holds a different study (another UID)."""


class SourceError(XnatpicError, ValueError):
    """A source folder or zip is neither a ParaVision study nor DICOM."""


class MetadataError(XnatpicError, ValueError):
    """The ``--metadata`` file cannot be read or does not fit the studies."""


class DicomNodeError(UploadError):
    """A DICOM node refused the association or a C-STORE."""


class ServerBusyError(TransientError):
    """XNAT is busy with the session (HTTP 423 "Duplicate archive attempt", open
    workflows, an import still archiving): wait and try again."""


class HttpStatusError(UploadError):
    """XNAT answered a status the request did not accept; ``status`` and XNAT's
    ``message`` (read from its HTML status page or plain-text body)."""

    def __init__(self, text: str, *, status: int, message: str) -> None:
        super().__init__(text)
        self.status, self.message = status, message

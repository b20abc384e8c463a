"""Errors of ``xnatpic upload``, all deriving from :class:`xnatpic.errors.XnatpicError`."""

from __future__ import annotations

from xnatpic.errors import XnatpicError

__all__ = [
    "DicomNodeError",
    "MetadataError",
    "ProjectNotFoundError",
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

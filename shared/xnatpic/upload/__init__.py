"""``xnatpic upload``: ParaVision and DICOM studies into XNAT, a local archive or a DICOM node.

Layers: :mod:`discover` (what is below the paths) → :mod:`planning` (labels, metadata) →
:mod:`prepare` (conversion, grouping by scan) → :mod:`runner` (idempotent, retried steps,
in parallel) → a destination: :mod:`server` (XNAT's REST API through
:mod:`xnatpic.xnat.http`, standard library only), :mod:`archive_target`, :mod:`dicom_node`.

:class:`ServerTarget` is imported on first use (the local archive does not need it).
"""

from __future__ import annotations

from xnatpic.upload.archive_target import ArchiveTarget
from xnatpic.upload.dicom_node import DicomNodeTarget, parse_dicom_node
from xnatpic.upload.discover import Source, discover_sources
from xnatpic.upload.metadata import load_metadata
from xnatpic.upload.planning import build_plans
from xnatpic.upload.prepare import SessionPlan
from xnatpic.upload.report import SessionResult, UploadReport
from xnatpic.upload.retry import RetryPolicy
from xnatpic.upload.runner import Callbacks, upload_sessions

__all__ = [
    "ArchiveTarget",
    "Callbacks",
    "DicomNodeTarget",
    "RetryPolicy",
    "ServerTarget",
    "SessionPlan",
    "SessionResult",
    "Source",
    "UploadReport",
    "build_plans",
    "discover_sources",
    "load_metadata",
    "parse_dicom_node",
    "upload_sessions",
]


def __getattr__(name: str) -> object:
    """Import :class:`ServerTarget` only when asked for."""
    if name == "ServerTarget":
        from xnatpic.upload.server import ServerTarget

        return ServerTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Errors of the ROI package, all deriving from :class:`xnatpic.errors.XnatpicError`."""

from __future__ import annotations

from xnatpic.errors import XnatpicError

__all__ = ["FrameOfReferenceError", "MaskSourceError", "RoiError"]


class RoiError(XnatpicError, ValueError):
    """A mask or a map cannot be used for ROI statistics; the message says which and why."""


class MaskSourceError(RoiError):
    """A mask file (DICOM SEG, RTSTRUCT, NIfTI label map) is missing, unreadable or malformed."""


class FrameOfReferenceError(RoiError):
    """A mask was drawn in another frame of reference than the map it is applied to."""

"""Errors of the optical (IVIS Living Image) reader and writers."""

from __future__ import annotations

from xnatpic.errors import XnatpicError

__all__ = ["OpticalError"]


class OpticalError(XnatpicError, ValueError):
    """An IVIS Living Image folder, text file or TIFF is missing, unreadable or inconsistent.

    The message names the file and what was seen versus expected.
    """

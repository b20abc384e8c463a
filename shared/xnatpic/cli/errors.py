"""Errors of the command line itself (not of the work it does)."""

from __future__ import annotations

from xnatpic.errors import XnatpicError

__all__ = ["UsageError"]


class UsageError(XnatpicError, ValueError):
    """The command line asks for something that cannot be done as written (exit status 2):
    a file that does not exist, an option value no input accepts."""

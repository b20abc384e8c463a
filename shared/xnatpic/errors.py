"""The exception hierarchy of xnatpic.

Every error a user can hit derives from :class:`XnatpicError` and carries a message that
says what failed, where (file, scan, reco, parameter), what was seen versus expected and,
where possible, what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConversionError",
    "FittingError",
    "JcampSyntaxError",
    "MissingParameterError",
    "NotParaVisionError",
    "ParaVisionError",
    "SelectionError",
    "UnsafeArchiveError",
    "UnsupportedDataError",
    "XnatpicError",
]


class XnatpicError(Exception):
    """Base class of every error raised on purpose by xnatpic."""


class ParaVisionError(XnatpicError, ValueError):
    """A ParaVision dataset is malformed or inconsistent."""


class JcampSyntaxError(ParaVisionError):
    """A JCAMP-DX parameter file cannot be parsed.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or None
        The file being parsed, when known.
    line : int or None
        1-based line number of the offending record, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class MissingParameterError(ParaVisionError, KeyError):
    """A required ParaVision parameter is absent."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotParaVisionError(ParaVisionError):
    """A path is not a ParaVision study, scan, reco or archive of one."""


class UnsafeArchiveError(ParaVisionError):
    """An archive member would be extracted outside its extraction folder."""


class SelectionError(XnatpicError, KeyError):
    """The user asked for something the data does not have (a scan id, a wrapper...)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsupportedDataError(XnatpicError):
    """Data that xnatpic recognises but does not convert (spectroscopy, adjustments...)."""


class ConversionError(XnatpicError):
    """Writing DICOM or NIfTI from a reco failed."""


class FittingError(XnatpicError, ValueError):
    """Model fitting received inputs it cannot fit (wrong shapes, too few points...)."""

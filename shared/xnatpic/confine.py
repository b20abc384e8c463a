"""Paths named by launch values stay inside the folder they are meant for (issue 16)."""

from __future__ import annotations

from pathlib import Path

from xnatpic.errors import XnatpicError

__all__ = ["EscapingPathError", "confined"]


class EscapingPathError(XnatpicError):
    """A value names a path outside the folder it must stay in."""


def confined(base: Path, name: str, *, what: str) -> Path:
    """``base / name`` once every ``..`` and symbolic link is resolved, when still inside
    ``base``.

    Parameters
    ----------
    base : Path
        The folder the value must stay in (a mount, a session's resources).
    name : str
        The relative path given (a resource label, a file name).
    what : str
        What the value is, for the message ("resource", "--roi-resource").

    Raises
    ------
    EscapingPathError
        When the resolved path is not inside the resolved ``base``.

    Examples
    --------
    >>> confined(Path("/input/RESOURCES"), "PARAVISION", what="resource").name
    'PARAVISION'
    >>> confined(Path("/input/RESOURCES"), "../../..", what="resource")
    Traceback (most recent call last):
    ...
    xnatpic.confine.EscapingPathError: resource '../../..' names /, outside /input/RESOURCES
    """
    root = base.resolve()
    target = (base / name).resolve()
    if target != root and root not in target.parents:
        raise EscapingPathError(f"{what} {name!r} names {target}, outside {root}")
    return target

"""One strictness switch for parameter problems: ignore, warn or raise.

A parameter problem is a value ParaVision wrote that xnatpic cannot use as it is (a date
it cannot read, say): the output is still valid without it, but something the user may
expect is missing. What happens is set once, ``--strict {ignore,warn,raise}`` on the CLI
(pydicom's ``config.settings`` IGNORE / WARN / RAISE):

``ignore``
    logged at DEBUG, nothing else;
``warn`` (default)
    logged as a warning and listed in the conversion report (``warnings`` of the reco);
``raise``
    :class:`ParameterProblemError`: the reco fails with that message.

Messages name the file and parameter and sizes, never the value (it may identify the
animal or the study).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum

from xnatpic.errors import XnatpicError

__all__ = [
    "ParameterProblemError",
    "Strictness",
    "add_strict_option",
    "collect_problems",
    "current_strictness",
    "parameter_problem",
    "strictness",
]

_log = logging.getLogger(__name__)


class Strictness(StrEnum):
    """What a parameter problem does."""

    IGNORE = "ignore"
    WARN = "warn"
    RAISE = "raise"


class ParameterProblemError(XnatpicError, ValueError):
    """A parameter problem under ``--strict raise``."""


_LEVEL: ContextVar[Strictness] = ContextVar("xnatpic_strictness", default=Strictness.WARN)
_PROBLEMS: ContextVar[list[str] | None] = ContextVar("xnatpic_problems", default=None)


def current_strictness() -> Strictness:
    """The strictness in force (``warn`` unless set with :func:`strictness`)."""
    return _LEVEL.get()


@contextmanager
def strictness(level: Strictness | str) -> Iterator[Strictness]:
    """Use ``level`` inside the ``with`` block (and in worker processes forked in it)."""
    token = _LEVEL.set(Strictness(level))
    try:
        yield _LEVEL.get()
    finally:
        _LEVEL.reset(token)


@contextmanager
def collect_problems() -> Iterator[list[str]]:
    """Collect the messages of the problems warned about inside the ``with`` block."""
    problems: list[str] = []
    token = _PROBLEMS.set(problems)
    try:
        yield problems
    finally:
        _PROBLEMS.reset(token)


def parameter_problem(message: str) -> None:
    """Report one parameter problem as the strictness in force says.

    Parameters
    ----------
    message
        Where and what (file, parameter, sizes), never the value itself.

    Raises
    ------
    ParameterProblemError
        Under ``raise``.
    """
    level = _LEVEL.get()
    if level is Strictness.RAISE:
        raise ParameterProblemError(f"{message} (--strict raise)")
    if level is Strictness.IGNORE:
        _log.debug("%s", message)
        return
    _log.warning("%s", message)
    problems = _PROBLEMS.get()
    if problems is not None:
        problems.append(message)


def add_strict_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--strict {ignore,warn,raise}`` to a subcommand's parser."""
    parser.add_argument(
        "--strict", choices=[s.value for s in Strictness], default=Strictness.WARN.value,
        help="what a parameter xnatpic cannot use (e.g. an unreadable date) does: ignore it, "
             "warn and list it in the report (default), or fail the reco",
    )

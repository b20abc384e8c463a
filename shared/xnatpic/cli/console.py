"""The rich console every subcommand draws with: the terminal's width on a terminal,
whole lines (no wrapping, nothing cut) in a pipe or a log file."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["PIPE_WIDTH", "make_console"]

#: Width when the stream is not a terminal: wide enough that no line is wrapped or cut.
PIPE_WIDTH = 10_000


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) sized to the terminal, or unlimited in a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(stderr=stderr, width=None if tty else PIPE_WIDTH)

"""Entry point of the ``xnatpic`` command line.

Each subcommand lives in its own module under :mod:`xnatpic.cli` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``. Add a subcommand by listing its
module in :data:`SUBCOMMANDS`.

Errors are handled here, in one place: an :class:`~xnatpic.errors.XnatpicError` or an
``OSError`` (a read-only or full disk, a path that is a file) prints one line
``xnatpic COMMAND: error: ...`` and exits 1 (2 for a
:class:`~xnatpic.cli.errors.UsageError`); any other exception prints one line naming it
and exits 1. ``--debug`` shows the traceback instead. A closed stdout (``xnatpic info
--json | head``) ends the command quietly with the status a shell gives a program killed
by SIGPIPE (141).
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from xnatpic import __version__
from xnatpic.cli.errors import UsageError
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.errors import XnatpicError
from xnatpic.lean_start import numpy_single_threaded
from xnatpic.strictness import Strictness, strictness

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Subcommand modules, in the order ``xnatpic --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = tuple(f"xnatpic.cli.{name}" for name in SUMMARIES)

_log = logging.getLogger("xnatpic")

#: Exit status of a command whose stdout was closed by its reader (128 + SIGPIPE).
BROKEN_PIPE_STATUS = 141

#: Allocations between two young-generation garbage collections (Python's default: 700).
#: A command makes many short-lived objects and few reference cycles (importing pydicom,
#: building datasets): collecting every 700 allocations cost 5-13 % of a conversion's CPU
#: time on the real studies; every 50,000 keeps the cycles it does make bounded.
GC_THRESHOLD = 50_000


def _command_of(argv: Sequence[str] | None) -> str | None:
    """The subcommand named in ``argv`` (first argument not starting with '-'), if any."""
    for arg in argv or ():
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser.

    Parameters
    ----------
    command : str, optional
        When it names a subcommand (the module's last name, e.g. ``convert``), only that
        module is imported, so a conversion does not pay for the imports of the others;
        otherwise every subcommand is listed with its line of :data:`SUMMARIES` and none
        is imported (``xnatpic --help``, or an unknown command, which argparse refuses).
    """
    parser = argparse.ArgumentParser(
        prog="xnatpic",
        description="XNAT for Preclinical Imaging Centers: ParaVision to DICOM and analysis.",
    )
    parser.add_argument("--version", action="version", version=f"xnatpic {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks on errors (also of failed scans and sessions); "
                        f"${LOG_FILE_ENV}=FILE keeps them in FILE")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if command not in SUMMARIES:
        for name, summary in SUMMARIES.items():
            subparsers.add_parser(name, help=summary)
        return parser
    # every command runs numpy with one BLAS thread (none does linear algebra a thread team
    # speeds up; the fits thread their own blocks), set before its module can load numpy
    numpy_single_threaded()
    module = importlib.import_module(f"xnatpic.cli.{command}")
    sub = module.add_parser(subparsers)
    sub.set_defaults(_run=module.run)
    return parser


#: Environment variable naming a file that receives every log record at DEBUG level,
#: tracebacks of failed scans and sessions included (whatever -v or --debug say).
LOG_FILE_ENV = "XNATPIC_LOG_FILE"


def _configure_logging(verbosity: int, debug: bool = False) -> None:
    """stderr at WARNING (-v INFO, -vv DEBUG; --debug: xnatpic's DEBUG records, tracebacks
    of failed scans included); $XNATPIC_LOG_FILE receives xnatpic's DEBUG records too."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else level)
    handlers: list[logging.Handler] = [console]
    log_file = os.environ.get(LOG_FILE_ENV)
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    # A command owns the console: plain stream handlers left by an earlier command or step
    # run in this process (they may hold a closed stream) are replaced; other handlers (a
    # caller's own, e.g. a test's log capture) stay.
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    if debug or log_file:
        logging.getLogger("xnatpic").setLevel(logging.DEBUG)


def _describe(exc: BaseException) -> str:
    """One line for an exception that is not an XnatpicError."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        hint = {
            "EROFS": "; the file system is read-only: choose a writable folder",
            "EACCES": "; you may not write there: choose a folder you own",
            "ENOTDIR": "; a part of this path is a file, not a folder",
            "EEXIST": "; it already exists",
            "ENOSPC": "; the disk is full",
        }.get(_errno_name(exc.errno), "")
        return f"{where}{exc.strerror}{hint}"
    return f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"


def _errno_name(number: int | None) -> str:
    return errno.errorcode.get(number or 0, "")


def _quiet_broken_pipe() -> int:
    """Point stdout at /dev/null so Python's exit flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a descriptor (a test's capture)
        pass
    finally:
        os.close(devnull)
    return BROKEN_PIPE_STATUS


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Exit status: 0 on success, 1 when the work failed (any scan failed, any session
    failed, a file could not be written), 2 on usage errors, 141 when stdout was closed.
    """
    previous = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *previous[1:])
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        gc.set_threshold(*previous)  # a caller in the same process keeps its own


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    if _command_of(argv) is None and "--version" in argv:  # without importing subcommands
        print(f"xnatpic {__version__}")
        return 0
    try:
        parser = build_parser(_command_of(argv))
        args = parser.parse_args(argv)
        _configure_logging(args.verbose, debug)
        if not getattr(args, "_run", None):
            parser.print_help(sys.stderr)
            return 2
        with strictness(getattr(args, "strict", None) or Strictness.WARN):
            return int(args._run(args))
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt:
        print("xnatpic: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one place turns every error into one line (item: --debug)
        if debug:
            raise
        command = _command_of(argv)
        prefix = f"xnatpic {command}" if command else "xnatpic"
        message = str(exc) if isinstance(exc, XnatpicError) else _describe(exc)
        try:
            print(f"{prefix}: error: {message}", file=sys.stderr)
        except BrokenPipeError:
            return _quiet_broken_pipe()
        _log.debug("traceback of the error above", exc_info=exc)
        return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the ``xnatpic`` command line.

Each subcommand lives in its own module under :mod:`xnatpic.cli` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``. Add a subcommand by listing its
module in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from xnatpic import __version__
from xnatpic.errors import XnatpicError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Subcommand modules, in the order ``xnatpic --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "xnatpic.cli.info",
    "xnatpic.cli.convert",
    "xnatpic.cli.phantom",
    "xnatpic.cli.commands",
    "xnatpic.cli.launch",
    "xnatpic.cli.xnat",
    "xnatpic.cli.upload",
)

_log = logging.getLogger("xnatpic")


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
        otherwise every subcommand is registered (for ``--help``).
    """
    parser = argparse.ArgumentParser(
        prog="xnatpic",
        description="XNAT for Preclinical Imaging Centers: ParaVision to DICOM and analysis.",
    )
    parser.add_argument("--version", action="version", version=f"xnatpic {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more detail")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [m for m in SUBCOMMANDS if m.rsplit(".", 1)[1] == command] or SUBCOMMANDS
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # subcommand not shipped in this build
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status.

    Exit status: 0 on success, 1 when the work failed (any scan failed, any session
    failed), 2 on usage errors.
    """
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args))
    except XnatpicError as exc:
        if args.debug:
            raise
        print(f"xnatpic {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("xnatpic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

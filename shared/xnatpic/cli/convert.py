"""``xnatpic convert``: ParaVision study → DICOM (classic or enhanced) or NIfTI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from xnatpic.cli.console import make_console
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.conversion import (
    FORMATS,
    NIFTI_COMPRESSIONS,
    SALT_VARIABLE,
    ConversionReport,
    RecoResult,
    convert_study,
    require_deidentify_salt,
)
from xnatpic.errors import SelectionError
from xnatpic.strictness import add_strict_option

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["add_parser", "run"]

_STYLE = {"converted": "green", "skipped": "yellow", "failed": "red"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``convert`` subcommand."""
    p = subparsers.add_parser(
        "convert",
        help=SUMMARIES["convert"],
        description="Convert every image scan of a ParaVision study. Exit 0 when every image "
        "scan converted, 1 when any failed, 2 on usage errors.",
    )
    p.add_argument("source", type=Path, help="study, scan or reco folder, or a .zip of one")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output folder: OUTPUT/<subject>/<session>/<scan>[-<reco>]_<protocol>/ "
                   "with files <scan>-<reco>_<protocol>[_pack<n>] + _<n>.dcm (classic), .dcm "
                   "(enhanced), .nii.gz (nifti), .json; the protocol made file-system safe, "
                   "cleaned of identity with --deidentify (see README)")
    p.add_argument("--format", choices=FORMATS, default="dicom",
                   help="dicom: classic MR, one file per image (default); enhanced: one "
                   "multi-frame Enhanced MR file per series; nifti: NIfTI-1 + JSON sidecar")
    p.add_argument("--nifti-compression", choices=NIFTI_COMPRESSIONS, default="fast",
                   help="with --format nifti: fast = gzip by ISA-L (default; about 10x zlib's "
                   "speed, same size), best = zlib level 9 (about 2%% smaller, 30x slower), "
                   "none = uncompressed .nii")
    p.add_argument("--scans", help="comma-separated scan ids to convert, e.g. 3,9")
    p.add_argument("--jobs", type=int, default=1, help="recos converted in parallel")
    p.add_argument("--deidentify", action="store_true",
                   help="apply the animal de-identification profile (docs/deidentification.md); "
                   f"its secret salt (16+ characters, required) comes from the environment "
                   f"variable {SALT_VARIABLE}")
    p.add_argument("--report", type=Path, help="write the JSON report here "
                   "(default: OUTPUT/conversion-report.json)")
    add_strict_option(p)
    return p


def _relative(path: str | None, root: str) -> str:
    if path is None:
        return ""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def _summary_table(report: ConversionReport) -> Table:
    table = Table(title=f"xnatpic convert → {report.output}", show_lines=False)
    for column in ("scan", "reco", "method", "status", "files", "detail"):
        table.add_column(column)
    for r in report.results:
        detail = _relative(r.output, report.output) if r.status == "converted" else r.reason
        table.add_row(r.scan, r.reco, r.method or "", f"[{_STYLE[r.status]}]{r.status}[/]",
                      str(r.files) if r.files else "", escape(detail or ""))
    counts = report.counts()
    table.caption = ", ".join(f"{n} {k}" for k, n in counts.items())
    return table


Callbacks = tuple[Callable[[RecoResult], None], Callable[[int], None]]


@contextmanager
def _progress(err: Console) -> Iterator[Callbacks]:
    """``(on_progress, on_start)`` of :func:`convert_study`: a transient progress bar on a
    terminal; nothing in a pipe or a log file (where the bar would not show), so
    ``rich.progress`` is not even imported there."""
    if not err.is_terminal:
        yield (lambda result: None), (lambda n: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("[bold]converting"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"), console=err,
                  transient=True) as progress:
        task = progress.add_task("", total=None)
        started = False

        def on_start(n: int) -> None:
            nonlocal started
            started = True
            progress.update(task, total=n)

        def on_progress(result: RecoResult) -> None:
            if started:  # results before the start are scans skipped while planning
                progress.advance(task)
            progress.update(task, description=f"scan {result.scan}-{result.reco} {result.status}")

        yield on_progress, on_start


def run(args: argparse.Namespace) -> int:
    """Run the conversion; see :func:`xnatpic.conversion.convert_study`."""
    err = make_console(stderr=True)  # a log file gets whole lines
    if args.jobs < 1:
        err.print("xnatpic convert: error: --jobs must be at least 1")
        return 2
    scans = None
    if args.scans:
        scans = [s.strip() for s in args.scans.split(",") if s.strip()]
    if not args.source.exists():
        err.print(f"xnatpic convert: error: {args.source}: no such file or folder")
        return 2
    if args.output.exists() and not args.output.is_dir():
        err.print(f"xnatpic convert: error: -o {args.output}: is a file; give a folder "
                  "(it is created when missing)")
        return 2
    if args.deidentify:
        require_deidentify_salt()  # refused without a secret salt, before any work
    from xnatpic.lean_start import freeze_imports, fresh_process, import_pydicom_lean

    fresh = fresh_process()  # before the first numpy import (the IVIS check below)
    from xnatpic.optical.acquisition import is_ivis_folder

    if is_ivis_folder(args.source):  # IVIS Living Image click or sequence folder
        from xnatpic.optical.cli import run_convert

        return run_convert(args, err)
    if args.format != "nifti" or args.deidentify:  # the DICOM writers, de-identification
        import_pydicom_lean()
    if fresh:
        freeze_imports()
    with _progress(err) as (on_progress, on_start):
        try:
            report = convert_study(args.source, args.output, fmt=args.format, scans=scans,
                                   nifti_compression=args.nifti_compression,
                                   jobs=args.jobs, deidentify=args.deidentify,
                                   on_progress=on_progress, on_start=on_start)
        except SelectionError as exc:
            err.print(f"xnatpic convert: error: {exc}")
            return 2
    report.write(args.report or args.output / "conversion-report.json")
    err.print(_summary_table(report))
    for failure in report.failed:
        print(f"xnatpic convert: scan {failure.scan} reco {failure.reco} failed: "
              f"{failure.reason}", file=sys.stderr)
    return 1 if report.failed else 0

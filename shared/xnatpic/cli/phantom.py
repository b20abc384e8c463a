"""``xnatpic phantom``: write the multi-compartment phantom as a ParaVision 6.0.1 study."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xnatpic.cli.summaries import SUMMARIES

__all__ = ["add_parser", "run"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or positive, got {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``phantom`` subcommand."""
    p = subparsers.add_parser(
        "phantom",
        help=SUMMARIES["phantom"],
        description="Write a multi-compartment phantom (MSME, RARE-VTR, inversion recovery, "
        "MGE, two-shell DTI, CEST, WASSR and a localizer) as a ParaVision 6.0.1 study, with "
        "its ground truth in OUT/truth (truth.json and .npy maps). Exit 0 on success, 1 when "
        "the study cannot be written, 2 on usage errors.",
    )
    p.add_argument("out", type=Path, help="study folder to create (absent or empty)")
    p.add_argument("--snr", type=_positive_float, default=50.0,
                   help="signal-to-noise ratio: noise sigma = brightest noiseless voxel of "
                   "each scan / snr (default: 50)")  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0,
                   help="noise seed; the same seed writes identical files (default: 0)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the phantom study already in OUT")
    return p


def run(args: argparse.Namespace) -> int:
    """Write the phantom; see :func:`xnatpic.phantom.write_phantom`."""
    from xnatpic.phantom import write_phantom

    err = Console(stderr=True)
    columns = (TextColumn("[bold]phantom"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.description}"))  # fmt: skip
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("", total=None)

        def on_progress(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        report = write_phantom(
            args.out, snr=args.snr, seed=args.seed, force=args.force, progress=on_progress
        )
    err.print(
        f"xnatpic phantom: wrote {len(report.scans)} scans to {report.out} "
        f"({report.n_bytes / 1e6:.1f} MB in {report.seconds:.1f} s); truth in {report.truth}",
        soft_wrap=True,
    )
    return 0

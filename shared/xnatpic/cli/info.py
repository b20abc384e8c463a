"""``xnatpic info``: the tree of a ParaVision study with its key parameters."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from xnatpic.cli.console import make_console
from xnatpic.cli.safe_text import terminal_safe
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.strictness import add_strict_option

__all__ = ["add_parser", "run", "series_numbers"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``info`` subcommand."""
    p = subparsers.add_parser("info", help=SUMMARIES["info"],
                              description="Print the study tree: scans, methods, dimensions, "
                              "frame groups and key acquisition parameters. Scan E reco P "
                              "becomes DICOM series (XNAT scan) 10000*E+P, as ParaVision's "
                              "own DICOM export numbers it; the map steps' scan input "
                              "takes either number.")
    p.add_argument("source", type=Path, help="study, scan or reco folder, or a .zip of one")
    p.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    add_strict_option(p)
    return p


def _fmt(values: list[float], unit: str) -> str:
    if len(values) > 6:
        return f"{len(values)} values {values[0]}…{values[-1]} {unit}"
    return " ".join(f"{v:g}" for v in values) + f" {unit}"


def _plural(count: int, word: str) -> str:
    """``1 image``, ``3 images``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def series_numbers(scan: str, reco: str, packages: int) -> list[int]:
    """The DICOM SeriesNumber, hence the XNAT scan id, of each series a reco becomes.

    ``10000*E + P``, or ``10000*E + 100*P + package`` with several slice packages: the rule
    of ParaVision's own DICOM export, which the writer follows
    (:func:`xnatpic.dicom.derived` ``_series_number``).

    Examples
    --------
    >>> series_numbers("9", "1", 1)
    [90001]
    >>> series_numbers("1", "1", 3)
    [10101, 10102, 10103]
    """
    if not (scan.isdigit() and reco.isdigit()):
        return []
    base = int(scan) * 10000
    if packages > 1:
        return [base + int(reco) * 100 + k + 1 for k in range(packages)]
    return [base + int(reco)]


def _geometry(reco: dict[str, Any]) -> str:
    """``FOV 32×38.4 mm, voxel 0.5×0.4×1 mm, axial`` (in the order of the matrix; a 3D
    reco's third FOV value is its slices times their spacing)."""
    rows, columns = reco["matrix"]
    row_mm, column_mm = reco.get("pixel_spacing_mm", (0.0, 0.0))
    thickness = reco.get("slice_thickness_mm")
    voxel = f"{row_mm:g}×{column_mm:g}" + (f"×{thickness:g}" if thickness else "")
    planes = ", ".join(reco.get("orientation", []))
    fov = f"{rows * row_mm:.4g}×{columns * column_mm:.4g}"
    if reco.get("dim") == 3 and thickness and reco.get("frames"):  # slices of one frame
        fov += f"×{reco['images'] / reco['frames'] * thickness:.4g}"
    return f"FOV {fov} mm, voxel {voxel} mm" + (f", {planes}" if planes else "")


def _reco_line(scan: str, reco: dict[str, Any]) -> str:
    if not reco.get("image"):
        why = escape(terminal_safe(str(reco.get("reason") or reco.get("error"))))
        if reco.get("error"):  # corrupt data fails; only unsupported data is skipped
            return f"reco {reco['reco']}: [red]failed[/] {why}"
        return f"reco {reco['reco']}: [yellow]skipped[/] {why}"
    groups = " × ".join(f"{g['axis']} {g['size']}" for g in reco["frame_groups"])
    numbers = series_numbers(scan, str(reco["reco"]), int(reco.get("slice_packages", 1)))
    series = (f" → series {', '.join(map(str, numbers))}" if numbers else "")
    parts = [f"reco {reco['reco']}{series}: {reco['matrix'][0]}×{reco['matrix'][1]} "
             f"({reco['dim']}D, {reco['word_type']}), {_plural(reco['images'], 'image')} "
             f"{escape('[' + groups + ']')}", _geometry(reco)]
    for key, label, unit in (("echo_times_ms", "TE", "ms"), ("repetition_times_ms", "TR", "ms"),
                             ("inversion_times_ms", "TI", "ms"), ("b_values", "b", "s/mm²"),
                             ("saturation_offsets_ppm", "offsets", "ppm")):
        if key in reco:
            parts.append(f"{label} {_fmt(reco[key], unit)}")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Print the summary of a study."""
    from xnatpic.optical.acquisition import is_ivis_folder
    from xnatpic.paravision.dataset import open_dataset
    from xnatpic.paravision.summary import study_summary

    if is_ivis_folder(args.source):  # IVIS Living Image click or sequence folder
        from xnatpic.optical.cli import run_info

        return run_info(args)
    with open_dataset(args.source) as study:
        summary = study_summary(study)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    subject = summary["subject"]
    title = f"[bold]{escape(terminal_safe(str(summary['path'])))}[/]"
    if subject:  # names from the data: no markup, control or bidi characters
        title += "  " + ", ".join(f"{k}={escape(terminal_safe(str(v)))}"
                                  for k, v in subject.items())
    tree = Tree(title)
    for scan in summary["scans"]:
        text = terminal_safe(f"{scan.get('method', '')} {scan.get('protocol', '')}")
        node = tree.add(f"[bold]scan {escape(terminal_safe(str(scan['scan'])))}[/] "
                        f"{escape(text)}".rstrip())
        for reco in scan["recos"]:
            node.add(_reco_line(str(scan["scan"]), reco))
        if "reason" in scan:
            node.add(f"[yellow]skipped[/] {scan['reason']}")
    # a terminal: its width, long lines wrapped under their branch; a pipe or file: whole
    # lines (for grep), however long
    make_console().print(tree)
    return 0

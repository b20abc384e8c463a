"""``xnatpic info`` and ``xnatpic convert`` for IVIS folders (called by those commands when
their source is an IVIS click or sequence folder)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from xnatpic.optical.acquisition import open_ivis
from xnatpic.optical.convert import convert_ivis, ivis_summary

__all__ = ["run_convert", "run_info"]


def _image_line(kind: str, image: dict) -> str:
    rows, cols = image["matrix"]
    parts = [f"{kind}: {escape(image['file'])} {rows}×{cols}"]
    if image.get("pixel_spacing_mm"):
        parts.append(f"{image['pixel_spacing_mm'][0]:.3g} mm pixels")
    for key, label, unit in (("binning", "binning", ""), ("exposure_s", "exposure", " s"),
                             ("f_number", "f/", ""), ("fov_cm", "FOV", " cm")):
        if image.get(key) is not None:
            parts.append(f"{label} {image[key]:g}{unit}")
    filters = [f for f in (image.get("excitation_filter"), image.get("emission_filter")) if f]
    if filters:
        parts.append("filters " + "→".join(escape(f) for f in filters))
    return ", ".join(parts)


def run_info(args: argparse.Namespace) -> int:
    """Print the clicks of an IVIS folder (``--json`` for JSON)."""
    summary = ivis_summary(open_ivis(args.source))
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2, default=str))
        return 0
    tree = Tree(f"[bold]{escape(summary['path'])}[/] (IVIS Living Image"
                f"{', sequence' if summary['sequence'] else ''})")
    for click in summary["clicks"]:
        labels = ", ".join(f"{k}={v}" for k, v in click["labels"].items())
        node = tree.add(f"[bold]click {escape(click['click_number'])}[/] "
                        f"{click['acquired'] or ''} {escape(labels)}")
        cal = click["calibration"]
        node.add(f"signal: {click['signal']} in {escape(cal['unit'])}"
                 f" ({cal['per_count']:g} per count)")
        for kind, image in click["images"].items():
            node.add(_image_line(kind, image))
    Console(width=160).print(tree)
    return 0


def run_convert(args: argparse.Namespace, err: Console) -> int:
    """Convert an IVIS folder to DICOM; report as ``xnatpic convert`` does."""
    if getattr(args, "format", "dicom") != "dicom":
        err.print(f"xnatpic convert: error: {args.source} is an IVIS folder: only "
                  "--format dicom (Secondary Capture) is written for optical images")
        return 2
    if getattr(args, "scans", None):
        err.print("xnatpic convert: error: --scans selects ParaVision scans; an IVIS folder "
                  "is converted whole")
        return 2
    report = convert_ivis(args.source, args.output, deidentify=args.deidentify)
    report.write(args.report or args.output / "conversion-report.json")
    table = Table(title=f"xnatpic convert (IVIS) → {report.output}")
    for column in ("series", "image", "status", "files", "detail"):
        table.add_column(column)
    for r in report.results:
        table.add_row(r.scan, r.reco, r.status, str(r.files or ""),
                      escape(r.output or r.reason or ""))
    err.print(table)
    for failure in report.failed:
        print(f"xnatpic convert: {args.source} failed: {failure.reason}", file=sys.stderr)
    return 1 if report.failed else 0

"""``xnatpic info``: the tree of a ParaVision study with its key parameters."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.summary import study_summary

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``info`` subcommand."""
    p = subparsers.add_parser("info", help="show the scans of a ParaVision study",
                              description="Print the study tree: scans, methods, dimensions, "
                              "frame groups and key acquisition parameters.")
    p.add_argument("source", type=Path, help="study, scan or reco folder, or a .zip of one")
    p.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    return p


def _fmt(values: list[float], unit: str) -> str:
    if len(values) > 6:
        return f"{len(values)} values {values[0]}…{values[-1]} {unit}"
    return " ".join(f"{v:g}" for v in values) + f" {unit}"


def _reco_line(reco: dict[str, Any]) -> str:
    if not reco.get("image"):
        why = escape(str(reco.get("reason") or reco.get("error")))
        return f"reco {reco['reco']}: [yellow]skipped[/] {why}"
    groups = " × ".join(f"{g['axis']} {g['size']}" for g in reco["frame_groups"])
    parts = [f"reco {reco['reco']}: {reco['matrix'][0]}×{reco['matrix'][1]} ({reco['dim']}D, "
             f"{reco['word_type']}), {reco['images']} images {escape('[' + groups + ']')}"]
    for key, label, unit in (("echo_times_ms", "TE", "ms"), ("repetition_times_ms", "TR", "ms"),
                             ("inversion_times_ms", "TI", "ms"), ("b_values", "b", "s/mm²"),
                             ("saturation_offsets_ppm", "offsets", "ppm")):
        if key in reco:
            parts.append(f"{label} {_fmt(reco[key], unit)}")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Print the summary of a study."""
    with open_dataset(args.source) as study:
        summary = study_summary(study)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    subject = summary["subject"]
    title = f"[bold]{summary['path']}[/]"
    if subject:
        title += "  " + ", ".join(f"{k}={v}" for k, v in subject.items())
    tree = Tree(title)
    for scan in summary["scans"]:
        node = tree.add(f"[bold]scan {scan['scan']}[/] {scan.get('method', '')} "
                        f"{scan.get('protocol', '')}".rstrip())
        for reco in scan["recos"]:
            node.add(_reco_line(reco))
        if "reason" in scan:
            node.add(f"[yellow]skipped[/] {scan['reason']}")
    Console(width=160).print(tree)
    return 0

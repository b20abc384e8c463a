"""``xnatpic commands``: lint Container Service commands, generate image labels, lock versions.

Examples
--------
``xnatpic commands lint commands/*.json image:{image:mri2dicom}``
(``image:NAME`` is linted as XNAT imports a label: the image name replaces each command's
``image`` and a refused command is dropped silently; ``--image NAME`` lints files as POSTed
with ``?image=NAME``; ``--label-of NAME`` lints files as the label of image NAME);
``xnatpic commands label commands/mri2dicom.json`` prints the label JSON array;
``--dockerfile containers/mri2dicom/Dockerfile`` rewrites its generated LABEL block
(``--check`` only compares). ``xnatpic commands lock commands`` records versions.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from xnatpic.cli.examples import with_images
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.xnat import labels
from xnatpic.xnat.errors import CommandFileError
from xnatpic.xnat.lint import CITATIONS, RULES, Finding, lint_commands
from xnatpic.xnat.schema import LoadedCommand, load_commands

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``xnatpic commands`` and its sub-actions."""
    parser = subparsers.add_parser(
        "commands", help=SUMMARIES["commands"],
        description=with_images(__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    lint = actions.add_parser("lint", help="check commands against XNAT's rules")
    lint.add_argument("paths", nargs="*", metavar="PATH",
                      help="command.json, JSON array of commands, or image:NAME")
    lint.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    lint.add_argument("--rules", action="store_true", help="list every rule code and exit")
    how = lint.add_mutually_exclusive_group()
    how.add_argument("--image", metavar="NAME",
                     help="lint as POST /xapi/commands?image=NAME (replaces each image)")
    how.add_argument("--label-of", metavar="NAME",
                     help="lint the files as the org.nrg.commands label of image NAME")

    label = actions.add_parser("label", help="print or write the org.nrg.commands label")
    label.add_argument("command_file", type=Path, metavar="COMMAND.json")
    label.add_argument("--dockerfile", type=Path,
                       help="rewrite this Dockerfile's generated LABEL block")
    label.add_argument("--check", action="store_true",
                       help="with --dockerfile: fail when the label drifted, change nothing")

    lock = actions.add_parser("lock", help="record versions and hashes in versions.lock")
    lock.add_argument("directory", type=Path, nargs="?", default=Path("commands"))
    lock.add_argument("--check", action="store_true",
                      help="fail when a command changed without a new version")
    return parser


def _lint(args: argparse.Namespace) -> int:
    if args.rules:
        for code, text in RULES.items():
            print(f"{code}\t{text}\t{CITATIONS[code]}")
        return 0
    if not args.paths:
        print("xnatpic commands lint: give at least one PATH", file=sys.stderr)
        return 2
    commands: list[LoadedCommand] = []
    findings: list[Finding] = []
    for path in args.paths:
        try:
            loaded = load_commands(path)
        except CommandFileError as exc:
            findings.append(Finding("E001", str(exc), path))
            continue
        if args.label_of:
            loaded = [replace(item, image=args.label_of) for item in loaded]
        commands.extend(loaded)
    findings.extend(lint_commands(commands, image=args.image))
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if args.json:
        report = {
            "commands": len(commands),
            "errors": errors,
            "warnings": warnings,
            "findings": [f.as_dict() for f in findings],
        }
        print(json.dumps(report, indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"{len(commands)} command(s): {errors} error(s), {warnings} warning(s)",
              file=sys.stderr)
    return 1 if errors else 0


def _label(args: argparse.Namespace) -> int:
    if args.dockerfile is None:
        if args.check:
            print("xnatpic commands label: --check needs --dockerfile", file=sys.stderr)
            return 2
        print(labels.label_text(labels.read_command_file(args.command_file)))
        return 0
    if args.check:
        labels.check_dockerfile(args.dockerfile, args.command_file)
        return 0
    changed = labels.update_dockerfile(args.dockerfile, args.command_file)
    state = "updated" if changed else "up to date"
    print(f"{args.dockerfile}: label {state}", file=sys.stderr)
    return 0


def _lock(args: argparse.Namespace) -> int:
    if args.check:
        problems = labels.check_lock(args.directory)
        problems.extend(labels.check_history(args.directory))
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    path = labels.update_lock(args.directory)
    print(f"{path}: written", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``xnatpic commands ACTION``."""
    if args.action == "lint":
        return _lint(args)
    if args.action == "label":
        return _label(args)
    return _lock(args)

"""``xnatpic launch``: run a Container Service command locally on archived sessions.

One session::

    xnatpic launch commands/mri2dicom.json --wrapper xnatpic-mri2dicom-session \\
        --session ARCHIVE/PRECLIN/arc001/mouse1_d0 --param format=enhanced

Every session of a project, two at a time (a bulk launch; ``--project`` accepts
``ARCHIVE/<project>``, its ``arc001`` folder or a folder of sessions)::

    xnatpic launch commands/mri2dicom.json --project ARCHIVE/PRECLIN --jobs 2

A project-context wrapper (root input a ``Project``, context ``xnat:projectData``) is
launched ONCE on the project, as XNAT does; ``--project`` must then be the project
folder ``ARCHIVE/<project>`` (or its ``arc001``), mounted read-only::

    xnatpic launch commands/project-summary.json --project ARCHIVE/PRECLIN

Inputs, command line, environment, mounts and outputs follow the Container Service
(see :mod:`xnatpic.xnat.resolve` and :mod:`xnatpic.xnat.launcher`). Outputs are stored in
the session folder (RESOURCES/<label>/ or SCANS/<id>/<label>/), or for a project launch in
ARCHIVE/<project>/RESOURCES/<label>/, only when the container exits 0, each on its own;
logs and a launch.json stay in ``--build-dir``. The step runs as your uid:gid (``--user``)
and reads subject/session metadata as on XNAT, through XNAT_HOST/XNAT_USER/XNAT_PASS, here
answered from ARCHIVE/.xnatpic/ by a server on 127.0.0.1 for the launch.

``--runtime local`` runs the step without its image: the ENTRYPOINT of
containers/<step>/Dockerfile mapped onto this clone's pipelines/ and this Python.

A map step that finds no suitable scan in a session exits 3: that session is "not
applicable" (yellow in the table, ``not_applicable`` in the report), not a failure; one whose
noise gate finds the data cannot give a map exits 4: "not enough signal" (orange,
``not_enough_signal``). XNAT shows both Failed. Exit status: 0 when every launch completed
or did not apply, 1 when any failed, 3 when the step applied to no session, 4 when some
session had not enough signal (and none failed), 2 on usage errors (a missing command file,
a --param that names no input).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from xnatpic.cli.console import make_console
from xnatpic.cli.errors import UsageError
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.step_output import launch_exit_status
from xnatpic.xnat.archive import find_sessions
from xnatpic.xnat.bulk import bulk_launch, report
from xnatpic.xnat.errors import CommandFileError, LaunchError
from xnatpic.xnat.launcher import LaunchOptions, LaunchResult, launch, launch_project
from xnatpic.xnat.lint import lint_commands
from xnatpic.xnat.resolve import find_wrapper, wrapper_root_type
from xnatpic.xnat.schema import load_commands
from xnatpic.xnat.swarm import task_summary

__all__ = ["add_parser", "check_params", "exit_status", "parse_params", "run",
           "select_command"]

_log = logging.getLogger(__name__)

#: Lint findings that say nothing about a local launch (shown with -v).
_LOCAL_QUIET = frozenset({"W104"})


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``xnatpic launch``."""
    parser = subparsers.add_parser(
        "launch", help=SUMMARIES["launch"],
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", metavar="COMMAND.json",
                        help="command.json, a JSON array of commands, or image:NAME")
    parser.add_argument("--wrapper", help="wrapper name (default: the only one)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--session", type=Path, help="one session folder (archive layout)")
    where.add_argument("--project", type=Path,
                       help="a project folder: one launch per session (bulk), or one launch "
                            "on the project for a project-context wrapper")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a wrapper or command input (repeatable)")
    parser.add_argument("--runtime", choices=("auto", "docker", "podman", "local", "swarm"),
                        default="auto", help="auto: docker with an engine, else podman; "
                        "docker and swarm go through the Docker Engine API (DOCKER_HOST), "
                        "swarm as one service per job like XNAT's Swarm back end")
    parser.add_argument("--image-override", metavar="IMAGE",
                        help="run this image instead of the command's")
    parser.add_argument("--entrypoint", metavar="CMD",
                        help="--runtime local: program given the command line (default: "
                             "the step's ENTRYPOINT mapped onto this clone's pipelines/ and "
                             "this Python)")
    parser.add_argument("--build-dir", type=Path, default=Path("xnatpic-launches"),
                        help="where each launch keeps its logs (outputs are removed once "
                             "stored; a failed launch keeps them)")
    parser.add_argument("--network", help="container network (default host: the step "
                                          "reaches the metadata server on 127.0.0.1)")
    parser.add_argument("--user", metavar="UID:GID",
                        help="run the container as this user (XNAT's 'container user'; "
                             "default: yours, who owns the output folders)")
    parser.add_argument("--xnat-from-env", action="store_true",
                        help="give the step XNAT_HOST/XNAT_USER/XNAT_PASS from this "
                             "environment (a real XNAT) instead of serving the archive's "
                             "metadata locally")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep each launch's output folders in --build-dir after they "
                             "are stored")
    parser.add_argument("--timeout", type=float, help="seconds before a launch is stopped")
    parser.add_argument("--no-limits", action="store_true",
                        help="do not apply the command's memory/CPU limits")
    parser.add_argument("--jobs", type=int, default=1,
                        help="--project bulk launch: launches at once")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    return parser


def parse_params(items: list[str]) -> dict[str, str]:
    """Turn ``["a=1", "b=x=y"]`` into ``{"a": "1", "b": "x=y"}``.

    Raises
    ------
    CommandFileError
        When an item has no ``=``.
    """
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandFileError(f"--param {item!r}: expected NAME=VALUE")
        params[name] = value
    return params


def select_command(spec: str, wrapper: str | None) -> dict[str, Any]:
    """Load ``spec``, refuse it when it has lint errors, return the command with ``wrapper``.

    Raises
    ------
    CommandFileError
        When the file cannot be read, has lint errors (as XNAT would refuse to save it),
        or no command has the wrapper.
    """
    if not spec.startswith("image:") and not Path(spec).exists():
        raise UsageError(f"{spec}: no such file")
    loaded = load_commands(spec)
    findings = lint_commands(loaded)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        details = "; ".join(str(f) for f in errors[:5])
        raise CommandFileError(f"{spec}: {len(errors)} lint error(s), XNAT would refuse this "
                               f"command: {details}")
    for finding in findings:  # W104 (no registry) matters on Swarm/Kubernetes, not here
        _log.log(logging.INFO if finding.code in _LOCAL_QUIET else logging.WARNING,
                 "%s", finding)
    candidates = [c.data for c in loaded if wrapper is None or any(
        w.get("name") == wrapper for w in c.data.get("xnat", []))]
    if not candidates:
        raise CommandFileError(f"{spec}: no command has a wrapper named {wrapper!r}")
    if len(candidates) > 1:
        names = [c.get("name") for c in candidates]
        raise CommandFileError(f"{spec}: several commands {names} match; give --wrapper")
    return candidates[0]


def check_params(command: dict[str, Any], wrapper: dict[str, Any],
                 params: dict[str, str]) -> None:
    """Refuse a ``--param`` that names no input of the command or the wrapper.

    XNAT ignores such a launch parameter (the REST launch of ``xnatpic xnat launch`` keeps
    that); on the local command line it is a typo, so it is a usage error.

    Raises
    ------
    UsageError
        Naming the unknown parameters and the inputs there are.
    """
    known = {str(i.get("name")) for i in command.get("inputs", [])}
    for key in ("external-inputs", "derived-inputs"):
        known |= {str(i.get("name")) for i in wrapper.get(key, [])}
    unknown = sorted(set(params) - known)
    if unknown:
        raise UsageError(f"--param {', '.join(unknown)}: no input of {command.get('name')} "
                         f"({wrapper.get('name')}) has this name; its inputs are "
                         f"{', '.join(sorted(known))}")


def _check_build_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LaunchError(f"--build-dir {folder}: cannot create it: {exc.strerror}") from exc
    if not os.access(folder, os.W_OK):
        raise LaunchError(f"--build-dir {folder}: not writable; choose a folder you can "
                          "write")


def _options(args: argparse.Namespace) -> LaunchOptions:
    return LaunchOptions(
        runtime=args.runtime, image_override=args.image_override,
        entrypoint=shlex.split(args.entrypoint) if args.entrypoint else None,
        build_root=args.build_dir, network=args.network, timeout=args.timeout,
        limits=not args.no_limits, user=args.user, prune=not args.keep_outputs,
        xnat_env=({k: os.environ.get(k, "") for k in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS")}
                  if args.xnat_from_env else None),
    )


_OUTCOME_STYLE = {"complete": "green", "not applicable": "yellow",
                  "not enough signal": "dark_orange", "failed": "red"}


def _table(results: list[LaunchResult]) -> Table:
    table = Table(title="xnatpic launch")
    engine = any(r.task for r in results)  # docker/swarm: the engine's task states
    for column in ("session / project", "status", "exit", "seconds", "stored / reason",
                   *(("task",) if engine else ())):
        table.add_column(column)
    for r in results:
        error = (r.error or "").split(";")[0]
        if r.warnings:
            error = (error + " " if error else "") + f"({len(r.warnings)} output warning(s))"
        stored = ", ".join(Path(p).name for p in r.stored)
        detail = stored if r.ok else "; ".join(x for x in (error[:70], stored) if x)
        shown = r.status if r.outcome in ("complete", "failed") else r.outcome
        label = Path(r.session_dir).name  # the folder the user names, then XNAT's id
        where = label if label == r.session else f"{label} ({r.session})"
        table.add_row(where, f"[{_OUTCOME_STYLE[r.outcome]}]{shown}[/]",
                      str(r.exit_code), f"{r.seconds:.1f}", detail,
                      *((task_summary(r.task) if r.task else "",) if engine else ()))
    counts = report(results)
    table.caption = (f"{counts['succeeded']} complete, {counts['not_applicable']} not "
                     f"applicable, {counts['not_enough_signal']} not enough signal, "
                     f"{counts['failed']} failed")
    return table


def _write_report(args: argparse.Namespace, data: dict[str, Any]) -> Path:
    path = args.report
    if path is None:
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        path = args.build_dir / f"report-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def run(args: argparse.Namespace) -> int:
    """Run ``xnatpic launch``."""
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    try:
        params = parse_params(args.param)
    except CommandFileError as exc:
        raise UsageError(str(exc)) from exc
    command = select_command(args.command, args.wrapper)
    wrapper = find_wrapper(command, args.wrapper)
    check_params(command, wrapper, params)
    _check_build_dir(args.build_dir)
    options = _options(args)
    console = make_console(stderr=True)
    root_type = wrapper_root_type(wrapper)
    if args.session is not None:
        results = [launch(command, args.wrapper, args.session, params, options)]
    elif root_type == "Project":
        results = [launch_project(command, args.wrapper, args.project, params, options)]
    else:
        # only a project launch shows progress: a single launch does not pay the import
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        sessions = find_sessions(args.project)
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(f"{command.get('name')}", total=len(sessions), failed=0)
            failed = 0

            def done(result: LaunchResult) -> None:
                nonlocal failed
                failed += result.outcome == "failed"
                progress.update(task, advance=1, failed=failed)

            results = bulk_launch(command, args.wrapper, sessions, params, options,
                                  jobs=args.jobs, on_done=done)
    data = report(results, command=command.get("name"), version=command.get("version"),
                  wrapper=results[0].wrapper if results else args.wrapper, params=params)
    path = _write_report(args, data)
    console.print(_table(results))
    for result in results:
        if result.outcome == "failed":
            console.print(f"[red]{result.session_dir}: {result.status}: {result.error}[/]",
                          highlight=False)
        elif result.outcome != "complete":  # not applicable, not enough signal
            console.print(f"[{_OUTCOME_STYLE[result.outcome]}]{result.session_dir}: "
                          f"{result.error}[/]", highlight=False)
        for warning in result.warnings:
            console.print(f"[yellow]{result.session_dir}: {warning}[/]", highlight=False)
    kept = "kept" if args.keep_outputs else "removed once stored"
    print(f"report: {path}\nlogs: {args.build_dir}/ (one folder per launch; outputs {kept})",
          file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2))
    return exit_status(results)


def exit_status(results: list[LaunchResult]) -> int:
    """1 when any launch failed; 3 (``NOT_APPLICABLE_EXIT``) when the step applied to none
    of the sessions; 4 (``NOT_ENOUGH_SIGNAL_EXIT``) when some session's data could not give
    a map; 0 otherwise (:func:`~xnatpic.step_output.launch_exit_status`)."""
    return launch_exit_status(r.outcome for r in results)

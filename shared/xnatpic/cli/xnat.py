"""``xnatpic xnat``: register commands on a real XNAT and launch them there.

Credentials: XNAT_HOST, XNAT_USER and XNAT_PASS in the environment, or a ``~/.netrc``
entry for the host; never on the command line.

    xnatpic xnat register commands/mri2dicom.json --project PRECLIN
    xnatpic xnat register xnatpic-mri2dicom:0.1.0          # reads the image label
    xnatpic xnat launch --project PRECLIN --wrapper xnatpic-mri2dicom-session \\
        --session XNAT_E00001 --wait
    xnatpic xnat bulk-launch --project PRECLIN --wrapper xnatpic-mri2dicom-session \\
        --where scan-type=MSME --param format=enhanced
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xnatpic.cli.launch import parse_params
from xnatpic.xnat.errors import CommandFileError, XnatRequestError
from xnatpic.xnat.lint import lint_commands
from xnatpic.xnat.rest import WrapperRef, XnatClient, is_terminal, load_credentials
from xnatpic.xnat.schema import load_commands

__all__ = ["add_parser", "poll_workflows", "run", "select_sessions"]

#: --where keys answered from a session's scans, and the field of XNAT's scan listing.
_SCAN_KEYS = {"scan-type": "type", "series-description": "series_description",
              "quality": "quality", "scan-id": "ID"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``xnatpic xnat`` and its actions."""
    parser = subparsers.add_parser(
        "xnat", help="register commands on XNAT and launch them there", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="XNAT address (default: XNAT_HOST)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    reg = actions.add_parser("register", help="add commands and enable their wrappers")
    reg.add_argument("source", metavar="IMAGE|COMMAND.json")
    reg.add_argument("--project", action="append", default=[],
                     help="also enable the wrappers for this project (repeatable)")
    reg.add_argument("--no-enable", action="store_true", help="only add the commands")

    one = actions.add_parser("launch", help="launch a wrapper on one session")
    one.add_argument("--project", required=True)
    one.add_argument("--wrapper", required=True, help="wrapper name or id")
    one.add_argument("--session", required=True, help="session id (XNAT_E...) or URI")
    one.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    one.add_argument("--wait", action="store_true", help="poll the workflow until it ends")
    _poll_options(one)

    bulk = actions.add_parser("bulk-launch", help="launch a wrapper on many sessions")
    bulk.add_argument("--project", required=True)
    bulk.add_argument("--wrapper", required=True, help="wrapper name or id")
    bulk.add_argument("--session", action="append", default=[],
                      help="only these session ids (default: every session of the project)")
    bulk.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                      help="keep sessions where KEY matches VALUE (glob); KEY is a session "
                           f"field (label, xsiType, date) or {sorted(_SCAN_KEYS)} (any scan)")
    bulk.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    bulk.add_argument("--no-wait", action="store_true", help="do not poll the workflows")
    bulk.add_argument("--report", type=Path, help="write the JSON report here")
    bulk.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    _poll_options(bulk)
    return parser


def _poll_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=24 * 3600.0,
                        help="stop polling after this many seconds")


def _client(args: argparse.Namespace) -> XnatClient:
    return XnatClient(load_credentials(args.host))


def _register(args: argparse.Namespace, console: Console) -> int:
    spec = args.source if Path(args.source).is_file() else f"image:{args.source}"
    loaded = load_commands(spec)
    errors = [f for f in lint_commands(loaded) if f.severity == "error"]
    if errors:
        raise CommandFileError(f"{args.source}: {len(errors)} lint error(s); XNAT would "
                               f"refuse it: {'; '.join(str(f) for f in errors[:5])}")
    client = _client(args)
    for item in loaded:
        command = item.data
        command_id = client.add_command(command)
        console.print(f"added {command['name']} {command.get('version', '')} as command "
                      f"{command_id}", highlight=False)
        if args.no_enable:
            continue
        for wrapper in command.get("xnat", []):
            client.enable_wrapper(command_id, wrapper["name"])
            for project in args.project:
                client.enable_wrapper(command_id, wrapper["name"], project)
            where = " and for " + ", ".join(args.project) if args.project else ""
            console.print(f"  enabled {wrapper['name']} site-wide{where}", highlight=False)
    return 0


def poll_workflows(client: XnatClient, workflows: dict[str, str], *, interval: float,
                   timeout: float, console: Console) -> dict[str, str]:
    """Poll ``GET /xapi/workflows/{id}`` until every workflow ends or ``timeout`` passes.

    Parameters
    ----------
    workflows : dict
        Session -> workflow id.

    Returns
    -------
    dict
        Session -> last status seen.
    """
    status = {s: "Queued" for s in workflows}
    deadline = time.monotonic() + timeout
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("XNAT workflows", total=len(workflows), failed=0)
        while True:
            for session, wf in workflows.items():
                if not is_terminal(status[session]):
                    status[session] = str(client.workflow(wf).get("status", "Unknown"))
            done = [s for s in status.values() if is_terminal(s)]
            failed = sum(not s.startswith("Complete") for s in done)
            progress.update(task, completed=len(done), failed=failed)
            if len(done) == len(status) or time.monotonic() >= deadline:
                return status
            time.sleep(interval)


def _launch_one(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    ref = client.find_wrapper(args.wrapper)
    answer = client.launch(args.project, ref, args.session, parse_params(args.param))
    if answer.get("status") not in (None, "success"):
        console.print(f"[red]launch on {args.session} failed: {answer.get('message')}[/]")
        return 1
    workflow = answer.get("workflow-id")
    console.print(f"launched {ref.name} on {args.session}: workflow {workflow}",
                  highlight=False)
    if args.wait and workflow:
        final = poll_workflows(client, {args.session: str(workflow)}, interval=args.poll,
                               timeout=args.timeout, console=console)[args.session]
        console.print(f"{args.session}: {final}", highlight=False)
        return 0 if final.startswith("Complete") else 1
    return 0


def _matches(row: dict[str, Any], key: str, pattern: str) -> bool:
    value = row.get(key)
    return value is not None and fnmatch.fnmatchcase(str(value), pattern)


def select_sessions(client: XnatClient, project: str, ids: list[str], where: list[str]
                    ) -> list[str]:
    """Return the ids of the project's sessions that pass every ``--where KEY=VALUE``.

    Raises
    ------
    XnatRequestError
        On a malformed ``--where`` or when nothing is left to launch.
    """
    rows = client.project_sessions(project)
    if ids:
        known = {r["ID"] for r in rows}
        missing = [i for i in ids if i not in known]
        if missing:
            raise XnatRequestError(f"project {project} has no session(s) {missing}")
        rows = [r for r in rows if r["ID"] in ids]
    for clause in where:
        key, sep, pattern = clause.partition("=")
        if not sep or not key:
            raise XnatRequestError(f"--where {clause!r}: expected KEY=VALUE")
        if key in _SCAN_KEYS:
            field = _SCAN_KEYS[key]
            rows = [r for r in rows if any(_matches(s, field, pattern)
                                           for s in client.session_scans(r["ID"]))]
        else:
            rows = [r for r in rows if _matches(r, key, pattern)]
    if not rows:
        raise XnatRequestError(f"no session of project {project} is left to launch on "
                               f"(--where {where or 'none'})")
    return [r["ID"] for r in rows]


def _session_of(item: dict[str, Any], ref: WrapperRef) -> str:
    params = item.get("params") or {}
    value = str(params.get(ref.root, item.get(ref.root, item.get("session", "?"))))
    return value.rsplit("/", 1)[-1]


def _bulk(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    ref = client.find_wrapper(args.wrapper)
    sessions = select_sessions(client, args.project, args.session, args.where)
    console.print(f"bulk launch of {ref.name} on {len(sessions)} session(s) of "
                  f"{args.project}", highlight=False)
    answer = client.bulk_launch(args.project, ref, sessions, parse_params(args.param))
    status: dict[str, str] = {}
    messages: dict[str, str] = {}
    workflows: dict[str, str] = {}
    for item in answer.get("successes", []):
        session = _session_of(item, ref)
        workflow = item.get("workflow-id")
        status[session] = "Queued" if workflow else "Launched"
        if workflow:
            workflows[session] = str(workflow)
    for item in answer.get("failures", []):
        session = _session_of(item, ref)
        status[session] = "Failed (launch)"
        messages[session] = str(item.get("message", ""))
    for session in sessions:
        status.setdefault(session, "Unknown (not in XNAT's answer)")
    if workflows and not args.no_wait:
        status.update(poll_workflows(client, workflows, interval=args.poll,
                                     timeout=args.timeout, console=console))
    table = Table(title=f"{ref.name} on {args.project}")
    for column in ("session", "workflow", "status", "message"):
        table.add_column(column)
    for session in sessions:
        ok = status[session].startswith("Complete") or (
            args.no_wait and not status[session].startswith(("Failed", "Unknown")))
        style = "green" if ok else "red"
        table.add_row(session, workflows.get(session, ""), f"[{style}]{status[session]}[/]",
                      messages.get(session, ""))
    console.print(table)
    failed = [s for s in sessions if status[s].startswith(("Failed", "Killed", "Unknown"))
              or (not args.no_wait and not status[s].startswith("Complete"))]
    report = {
        "project": args.project, "wrapper": ref.name, "wrapper-id": ref.wrapper_id,
        "sessions": len(sessions), "failed": len(failed),
        "results": [{"session": s, "workflow-id": workflows.get(s), "status": status[s],
                     "message": messages.get(s)} for s in sessions],
    }
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        console.print(f"report: {args.report}", highlight=False)
    if args.json:
        print(json.dumps(report, indent=2))
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Run ``xnatpic xnat ACTION``."""
    console = Console(stderr=True)
    if args.action == "register":
        return _register(args, console)
    if args.action == "launch":
        return _launch_one(args, console)
    if args.action == "bulk-launch":
        return _bulk(args, console)
    print(f"xnatpic xnat: unknown action {args.action}", file=sys.stderr)
    return 2

"""``xnatpic xnat``: register commands on a real XNAT and launch them there.

Credentials: XNAT_HOST, XNAT_USER and XNAT_PASS in the environment, or a ``~/.netrc``
entry for the host; never on the command line.

    xnatpic xnat register commands/mri2dicom.json --project PRECLIN \\
        --image registry.example.org/xnatpic/{image:mri2dicom}
    xnatpic xnat register {image:mri2dicom}          # reads the image label
    xnatpic xnat launch --project PRECLIN --wrapper xnatpic-mri2dicom-session \\
        --session XNAT_E00001 --wait
    xnatpic xnat launch --project PRECLIN --wrapper xnatpic-project-summary-project
    xnatpic xnat bulk-launch --project PRECLIN --wrapper xnatpic-mri2dicom-session \\
        --where scan-type=MSME --param format=enhanced

A bulk launch is followed through the workflows XNAT creates for its jobs (found by the
bulk launch id, their ``jobid``) until each ends; the final table lists every session,
including the jobs XNAT refused or never queued.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from xnatpic.cli.examples import with_images
from xnatpic.cli.launch import parse_params
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.step_output import launch_exit_status
from xnatpic.xnat.errors import CommandFileError, XnatRequestError
from xnatpic.xnat.lint import lint_commands
from xnatpic.xnat.remote_bulk import BulkJob, BulkTracker
from xnatpic.xnat.rest import (
    TO_BE_ASSIGNED,
    WrapperRef,
    XnatClient,
    is_terminal,
    load_credentials,
    root_value,
)
from xnatpic.xnat.schema import load_commands

__all__ = ["add_parser", "follow_bulk", "poll_workflow", "run", "select_sessions"]

#: --where keys answered from a session's scans, and the field of XNAT's scan listing.
_SCAN_KEYS = {"scan-type": "type", "series-description": "series_description",
              "quality": "quality", "scan-id": "ID"}

#: Failed polls in a row after which a bulk launch stops being followed.
_MAX_POLL_ERRORS = 5


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``xnatpic xnat`` and its actions."""
    parser = subparsers.add_parser(
        "xnat", help=SUMMARIES["xnat"],
        description=with_images(__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="XNAT address (default: XNAT_HOST)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    reg = actions.add_parser("register", help="add commands and enable their wrappers")
    reg.add_argument("source", metavar="IMAGE|COMMAND.json")
    reg.add_argument("--image", metavar="NAME",
                     help=with_images("the image XNAT runs (e.g. registry.example.org/"
                                      "xnatpic/{image:mri2dicom}), sent as POST "
                                      "/xapi/commands?image=NAME ")
                          + "in place of the command's own")
    reg.add_argument("--project", action="append", default=[],
                     help="also enable the wrappers for this project (repeatable)")
    reg.add_argument("--no-enable", action="store_true", help="only add the commands")

    one = actions.add_parser("launch", help="launch a wrapper on one session or project")
    one.add_argument("--project", required=True)
    one.add_argument("--wrapper", required=True, help="wrapper name or id")
    one.add_argument("--session", "--target", dest="target",
                     help="id or archive URI of the root object (session id XNAT_E...; "
                          "default for a project-rooted wrapper: --project)")
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
    bulk.add_argument("--no-wait", action="store_true", help="do not follow the workflows")
    bulk.add_argument("--resolve-timeout", type=float, default=600.0,
                      help="seconds XNAT may take to create a job's workflow before the job "
                           "counts as never queued")
    bulk.add_argument("--report", type=Path, help="write the JSON report here")
    bulk.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    _poll_options(bulk)
    return parser


def _poll_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=24 * 3600.0,
                        help="stop polling after this many seconds")


#: Clients opened by this command; their XNAT sessions are ended when it returns.
_OPEN: list[XnatClient] = []


def _client(args: argparse.Namespace) -> XnatClient:
    client = XnatClient(load_credentials(args.host))
    _OPEN.append(client)
    return client


# -- register --------------------------------------------------------------------------------
def _register(args: argparse.Namespace, console: Console) -> int:
    spec = args.source if Path(args.source).is_file() else f"image:{args.source}"
    # Commands read from an image label are POSTed to /xapi/commands like a file's, so
    # they are linted as a POST (with the ?image= override), not as a label import.
    loaded = [dataclasses.replace(item, image=None) for item in load_commands(spec)]
    errors = [f for f in lint_commands(loaded, image=args.image) if f.severity == "error"]
    if errors:
        raise CommandFileError(f"{args.source}: {len(errors)} lint error(s); XNAT would "
                               f"refuse it: {'; '.join(str(f) for f in errors[:5])}")
    client = _client(args)
    for item in loaded:
        command = item.data
        command_id = client.add_command(command, image=args.image)
        image = f" (image {args.image})" if args.image else ""
        console.print(f"added {command['name']} {command.get('version', '')} as command "
                      f"{command_id}{image}", highlight=False)
        if args.no_enable:
            continue
        for wrapper in command.get("xnat", []):
            client.enable_wrapper(command_id, wrapper["name"])
            for project in args.project:
                client.enable_wrapper(command_id, wrapper["name"], project)
            where = " and for " + ", ".join(args.project) if args.project else ""
            console.print(f"  enabled {wrapper['name']} site-wide{where}", highlight=False)
    return 0


# -- one launch ------------------------------------------------------------------------------
def poll_workflow(client: XnatClient, workflow: str, *, interval: float, timeout: float,
                  console: Console) -> dict[str, Any]:
    """Poll ``GET /xapi/workflows/{id}`` until the workflow ends or ``timeout`` passes;
    return the last answer."""
    deadline = time.monotonic() + timeout
    with console.status(f"workflow {workflow}") as spinner:
        while True:
            answer = client.workflow(workflow)
            status = str(answer.get("status") or "Unknown")
            spinner.update(f"workflow {workflow}: {status}")
            if is_terminal(status) or time.monotonic() >= deadline:
                return answer
            time.sleep(interval)


def _launch_one(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    ref = client.find_wrapper(args.wrapper)
    target = args.target
    if not target:
        if ref.root_type.lower() != "project":
            raise XnatRequestError(f"wrapper {ref.name} runs on a {ref.root_type}: give "
                                   "--session (its id or archive URI)")
        target = args.project
    report = client.launch(args.project, ref, target, parse_params(args.param))
    if report.get("status") != "success":
        console.print(f"[red]launch of {ref.name} on {target} failed: "
                      f"{report.get('message') or 'no reason given'}[/]", highlight=False)
        return 1
    workflow = str(report.get("workflow-id") or "")
    console.print(f"launched {ref.name} on {root_value(target, ref.root_type)}: workflow "
                  f"{workflow or '?'}", highlight=False)
    if not args.wait:
        return 0
    if not workflow.isdigit():
        console.print(f"[red]XNAT named no workflow ({workflow or 'none'}): cannot wait[/]",
                      highlight=False)
        return 1
    final = poll_workflow(client, workflow, interval=args.poll, timeout=args.timeout,
                          console=console)
    status = str(final.get("status") or "Unknown")
    details = f" ({final['details']})" if final.get("details") else ""
    console.print(f"{target}: {status}{details}", highlight=False)
    return 0 if status.startswith("Complete") else 1


# -- bulk launch -----------------------------------------------------------------------------
def _matches(row: dict[str, Any], key: str, pattern: str) -> bool:
    value = row.get(key)
    return value is not None and fnmatch.fnmatchcase(str(value), pattern)


def select_sessions(client: XnatClient, project: str, ids: list[str], where: list[str]
                    ) -> list[dict[str, Any]]:
    """Return the rows (``ID``, ``label``, ``xsiType``...) of the project's sessions that
    pass every ``--where KEY=VALUE``, restricted to ``ids`` when given.

    Raises
    ------
    XnatRequestError
        On a malformed ``--where``, an unknown session id, or when nothing is left.
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
    return rows


def _jobs_from_report(answer: dict[str, Any], ref: WrapperRef, rows: list[dict[str, Any]]
                      ) -> tuple[list[BulkJob], list[BulkJob]]:
    """(queued jobs, all jobs in the order of ``rows``) from a bulk launch report."""
    by_uri = {root_value(str(r["ID"]), ref.root_type): r for r in rows}
    jobs = {str(r["ID"]): BulkJob(str(r["ID"]), str(r.get("label") or ""),
                                  str(r.get("xsiType") or ""),
                                  status="Unknown (not in XNAT's answer)") for r in rows}
    queued: list[BulkJob] = []
    for kind in ("successes", "failures"):
        for item in answer.get(kind) or []:
            params = item.get("params") if isinstance(item, dict) else None
            value = str((params or {}).get(ref.root, ""))
            row = by_uri.get(value) or by_uri.get(root_value(value, ref.root_type))
            if row is None:
                continue
            job = jobs[str(row["ID"])]
            if kind == "failures":
                job.status = "Failed (not queued)"
                job.details = str(item.get("message") or "")
                continue
            workflow = str(item.get("workflow-id") or TO_BE_ASSIGNED)
            job.status = "Queued"
            job.workflow = workflow if workflow.isdigit() else None
            queued.append(job)
    return queued, list(jobs.values())


def follow_bulk(tracker: BulkTracker, *, interval: float, timeout: float,
                console: Console) -> None:
    """Poll until every job of ``tracker`` ends, ``timeout`` passes or XNAT stops
    answering (after a few failed polls in a row), showing progress."""
    deadline = time.monotonic() + timeout
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
               TextColumn("{task.fields[waiting]} awaiting a workflow"), TimeElapsedColumn())
    errors = 0
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("XNAT jobs", total=len(tracker.jobs), failed=0,
                                 waiting=len(tracker.jobs))
        while True:
            try:
                tracker.poll()
                errors = 0
            except XnatRequestError as exc:
                errors += 1
                console.print(f"[yellow]poll {errors}/{_MAX_POLL_ERRORS} failed: {exc}[/]",
                              highlight=False)
                if errors >= _MAX_POLL_ERRORS:
                    tracker.give_up(f"stopped following: XNAT did not answer ({exc})")
                    return
            done = [j for j in tracker.jobs if j.done]
            progress.update(task, completed=len(done), waiting=tracker.waiting,
                            failed=sum(not j.ok for j in done))
            if tracker.done:
                return
            if time.monotonic() >= deadline:
                tracker.give_up(f"still running after --timeout {timeout:g} s")
                return
            time.sleep(interval)


def _table(title: str, jobs: list[BulkJob], *, no_wait: bool) -> Table:
    table = Table(title=title)
    for column in ("session", "label", "workflow", "status", "message"):
        table.add_column(column)
    for job in jobs:
        ok = job.ok or (no_wait and job.status == "Queued")
        style = ("yellow" if job.not_applicable else "dark_orange" if job.stated
                 else "green" if ok else "red")
        table.add_row(job.target, job.label, job.workflow or "", f"[{style}]{job.status}[/]",
                      job.details)
    return table


def _bulk(args: argparse.Namespace, console: Console) -> int:
    client = _client(args)
    ref = client.find_wrapper(args.wrapper)
    if ref.root_type.lower() != "session":
        raise XnatRequestError(f"bulk-launch runs a wrapper on sessions; {ref.name} runs on "
                               f"a {ref.root_type or 'root of unknown type'}: use "
                               "'xnatpic xnat launch'")
    rows = select_sessions(client, args.project, args.session, args.where)
    console.print(f"bulk launch of {ref.name} on {len(rows)} session(s) of "
                  f"{args.project}", highlight=False)
    answer = client.bulk_launch(args.project, ref, [str(r["ID"]) for r in rows],
                                parse_params(args.param))
    bulk_id = str(answer.get("bulk-launch-id") or "")
    queued, jobs = _jobs_from_report(answer, ref, rows)
    console.print(f"XNAT queued {len(queued)} of {len(rows)} job(s) (bulk launch "
                  f"{bulk_id or '?'})", highlight=False)
    if queued and not args.no_wait:
        if not bulk_id:
            raise XnatRequestError("XNAT's bulk launch report has no bulk-launch-id: its "
                                   "jobs cannot be followed (use --no-wait)")
        tracker = BulkTracker(client, ref, bulk_id, queued,
                              resolve_timeout=args.resolve_timeout)
        follow_bulk(tracker, interval=args.poll, timeout=args.timeout, console=console)
    console.print(_table(f"{ref.name} on {args.project}", jobs, no_wait=args.no_wait))
    failed = [j for j in jobs if not (j.ok or (args.no_wait and j.status == "Queued"))]
    report = {
        "project": args.project, "wrapper": ref.name, "wrapper-id": ref.wrapper_id,
        "bulk-launch-id": bulk_id or None, "sessions": len(jobs), "failed": len(failed),
        "not-applicable": sum(j.not_applicable for j in jobs),
        "not-enough-signal": sum(j.outcome == "not enough signal" for j in jobs),
        "results": [j.as_dict() for j in jobs],
    }
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        console.print(f"report: {args.report}", highlight=False)
    if args.json:
        print(json.dumps(report, indent=2))
    if failed:
        return 1
    # as 'xnatpic launch' (3: the step applied to none; 4: some had not enough signal)
    return launch_exit_status(j.outcome for j in jobs if j.outcome != "unfinished")


def run(args: argparse.Namespace) -> int:
    """Run ``xnatpic xnat ACTION``."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        if args.action == "register":
            return _register(args, console)
        if args.action == "launch":
            return _launch_one(args, console)
        if args.action == "bulk-launch":
            return _bulk(args, console)
    finally:
        while _OPEN:
            _OPEN.pop().close()
    print(f"xnatpic xnat: unknown action {args.action}", file=sys.stderr)
    return 2

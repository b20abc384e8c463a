"""``xnatpic upload``: studies into XNAT (its REST API), a local archive or a DICOM node."""

# ruff: noqa: E402  (the lean start below comes before the imports that load numpy, pydicom)

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

from xnatpic.lean_start import freeze_imports, lean_step_start

# A process started for the upload loads numpy with one BLAS thread and pydicom without its
# download packages, as a step's does (xnatpic.lean_start; nothing when already loaded).
FRESH = lean_step_start()

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from xnatpic.cli.console import make_console
from xnatpic.cli.summaries import SUMMARIES
from xnatpic.conversion import require_deidentify_salt
from xnatpic.errors import XnatpicError
from xnatpic.strictness import add_strict_option
from xnatpic.upload import (
    ArchiveTarget,
    Callbacks,
    DicomNodeTarget,
    RetryPolicy,
    SessionPlan,
    SessionResult,
    UploadReport,
    load_metadata,
    parse_dicom_node,
    upload_sessions,
)
from xnatpic.upload.discover import Problem, discover
from xnatpic.upload.errors import ProjectNotFoundError
from xnatpic.upload.labels import DEFAULT_SUBJECT_TEMPLATE
from xnatpic.upload.planning import plan_sources
from xnatpic.upload.prepare import RAW_RESOURCE
from xnatpic.upload.reuse import Converted
from xnatpic.upload.runner import session_state

__all__ = ["add_parser", "run"]

_STYLE = {"uploaded": "green", "complete": "cyan", "skipped": "yellow", "failed": "red"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``upload`` subcommand."""
    p = subparsers.add_parser(
        "upload",
        help=SUMMARIES["upload"],
        description="Find ParaVision studies (folders, zips) and DICOM studies below SRC, "
        "convert and send them: to an XNAT server (--server or XNAT_HOST; credentials from "
        "XNAT_USER/XNAT_PASS or ~/.netrc, never on the command line), to a local archive "
        "(--archive, the default without a server) or to a DICOM node. Re-running skips "
        "complete sessions and finishes partial ones. Every study found is a row of the "
        "table and the report: uploaded, complete, skipped (with the reason) or failed "
        "(with the error); one study that cannot be read fails alone. Exit 0 when no study "
        "failed, 1 when any failed, 2 on usage errors.",
    )
    p.add_argument("sources", nargs="+", type=Path, metavar="SRC",
                   help="folders searched recursively, study folders or zips")
    p.add_argument("--project", required=True,
                   help="XNAT project id (created, private, when missing on a server unless "
                   "--no-create-project; a folder of the archive with --archive)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", help="XNAT address, e.g. https://xnat.example.org "
                       "(default: XNAT_HOST)")
    where.add_argument("--archive", type=Path,
                       help="local archive folder in XNAT's layout (default: ./archive when "
                       "neither --server nor XNAT_HOST is given)")
    p.add_argument("--dicom-node", metavar="AE@host:port",
                   help="C-STORE the DICOM to this node (instead of XNAT)")
    p.add_argument("--jobs", type=int, default=1, help="sessions uploaded in parallel")
    p.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    p.add_argument("--metadata", type=Path,
                   help="CSV or JSON of subject/session fields keyed by study folder, session "
                   "label or animal id")
    p.add_argument("--deidentify", action="store_true",
                   help="convert with the de-identification profile, keyed by the secret salt "
                   "in XNATPIC_DEIDENTIFY_SALT (required, 16+ characters); the raw "
                   "ParaVision data (which names the animal and operator) is then not "
                   "uploaded; DICOM carry the pseudonymised labels for XNAT's routing")
    p.add_argument("--subject-template", default=None,
                   help=f"subject label from {{field}}s (default: {DEFAULT_SUBJECT_TEMPLATE}; "
                   "with --deidentify {pseudonym})".replace("%", "%%"))
    p.add_argument("--session-template", default=None,
                   help="session label from {field}s (default: study name and date; with "
                   "--deidentify {pseudonym}_{shifted_date}, the only fields allowed then "
                   "being {pseudonym}, {shifted_date}, {study_pseudonym} and {time})")
    p.add_argument("--no-raw", action="store_true",
                   help="do not upload the raw ParaVision study (resource PARAVISION)")
    p.add_argument("--no-create-project", action="store_true",
                   help="refuse a project that does not exist instead of creating it")
    p.add_argument("--insecure", action="store_true",
                   help="do not verify HTTPS certificates (test servers only)")
    p.add_argument("--retries", type=int, default=5, help="attempts per step (default 5)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    p.add_argument("--batch-mb", type=float, default=64.0,
                   help="scans are imported in zips of about this size (default 64; 0: one "
                   "scan per import)")
    p.add_argument("--converted", type=Path, metavar="DIR",
                   help="send the DICOM `xnatpic convert SRC -o DIR` wrote instead of "
                   "converting SRC again (one ParaVision study); refused, naming the file and "
                   "the problem, unless it is all of this study, unchanged since, in classic "
                   "DICOM by this xnatpic version without --deidentify (the routing text is "
                   "added as the upload's own conversion writes it)")
    p.add_argument("--conversion-report", type=Path, metavar="FILE",
                   help="with --converted: the report `xnatpic convert --report` wrote "
                   "(default: DIR/conversion-report.json)")
    p.add_argument("--work", type=Path, help="keep converted DICOM and zips here")
    p.add_argument("--report", type=Path,
                   help="JSON report (default: ./xnatpic-upload-report.json)")
    add_strict_option(p)
    return p


def _plan_table(plans: list[SessionPlan], destination: str, states: list[str],
                problems: list[Problem], project: str) -> Table:
    table = Table(title=f"xnatpic upload plan → {destination}")
    for column in ("source", "kind", "subject", "session", "fields", "raw", "action"):
        table.add_column(column)
    rows: list[tuple[str, ...]] = []
    for plan, state in zip(plans, states, strict=True):
        fields = ", ".join(f"{k}={v}" for k, v in {**plan.subject_fields,
                                                   **plan.session_fields}.items())
        raw = (f"yes ({RAW_RESOURCE[plan.source.kind]})"
               if plan.raw and plan.source.kind in RAW_RESOURCE else "no")
        rows.append((str(plan.source.path), plan.source.kind, plan.subject, plan.session,
                     fields, raw, state))
    for problem in problems:
        style = _STYLE[problem.status]
        rows.append((str(problem.path), problem.kind, "", "", "", "",
                     f"[{style}]{problem.status}: {escape(problem.reason)}[/]"))
    for row in sorted(rows):
        table.add_row(*row)
    caption = f"{len(plans)} session(s) in project {project}"
    if problems:
        caption += ", " + ", ".join(f"{n} {status}" for status in ("skipped", "failed")
                                    if (n := sum(p.status == status for p in problems)))
    table.caption = caption
    return table


def _result_table(report: UploadReport) -> Table:
    table = Table(title=f"xnatpic upload → {report.destination}")
    for column in ("subject", "session", "status", "scans sent", "already there", "MB",
                   "seconds", "detail"):
        table.add_column(column)
    for r in report.results:
        table.add_row(r.subject or "-", r.session or Path(r.source).name,
                      f"[{_STYLE[r.status]}]{r.status}[/]",
                      str(r.scans_sent), str(r.scans_present), f"{r.bytes_sent / 1e6:.1f}",
                      f"{r.seconds:.1f}", escape(r.error or ""))
    table.caption = ", ".join(f"{n} {k}" for k, n in report.counts().items())
    return table


def _states(plans: list[SessionPlan], target: object, err: Console) -> list[str]:
    """What the upload would do with each session (the destination is only read)."""
    if isinstance(target, ArchiveTarget) and not target.root.exists():
        return ["upload (new)"] * len(plans)
    try:
        if plans and not isinstance(target, ArchiveTarget):  # (which would create it)
            if hasattr(target, "create_project"):  # a server
                target.create_project = False  # a dry run changes nothing
            target.check_project(plans[0].project)  # type: ignore[attr-defined]
        return [session_state(target, p) for p in plans]  # type: ignore[arg-type]
    except ProjectNotFoundError:
        return ["upload (new project)"] * len(plans)
    except XnatpicError as exc:
        err.print(f"[yellow]xnatpic upload: cannot ask the destination: {exc}[/]")
        return ["unknown"] * len(plans)
    finally:
        target.close()  # type: ignore[attr-defined]


def _target(args: argparse.Namespace, err: Console) -> tuple[object, str] | None:
    if args.dicom_node:
        node = parse_dicom_node(args.dicom_node)
        return DicomNodeTarget(node, timeout=args.timeout), f"DICOM node {args.dicom_node}"
    server = args.server or (None if args.archive else os.environ.get("XNAT_HOST"))
    if server:
        if "://" not in server:
            server = f"https://{server}"
        from xnatpic.upload.server import ServerTarget

        return (ServerTarget(server, verify=not args.insecure, timeout=args.timeout,
                             create_project=not args.no_create_project), server)
    archive = args.archive or Path("archive")
    return ArchiveTarget(archive), f"archive {archive.absolute()}"  # not "archive archive"


def run(args: argparse.Namespace) -> int:
    """Plan, then upload with progress bars; see :func:`xnatpic.upload.upload_sessions`."""
    if FRESH:
        freeze_imports()  # the imports are never freed: out of the collector's passes
    err = make_console(stderr=True)
    if args.jobs < 1 or args.retries < 1:
        err.print("xnatpic upload: error: --jobs and --retries must be at least 1")
        return 2
    if args.conversion_report and not args.converted:
        err.print("xnatpic upload: error: --conversion-report goes with --converted")
        return 2
    if args.converted and args.deidentify:
        err.print("xnatpic upload: error: --converted with --deidentify: a de-identified "
                  "upload converts with its own pseudonyms; leave out --converted")
        return 2
    salt = require_deidentify_salt() if args.deidentify else ""
    found = discover(args.sources)
    meta = load_metadata(args.metadata)
    planned = plan_sources(found.sources, args.project, metadata=meta,
                           subject_template=args.subject_template,
                           session_template=args.session_template,
                           raw=not (args.no_raw or args.deidentify),
                           deidentify=args.deidentify, salt=salt)
    plans, problems = planned.plans, [*found.problems, *planned.problems]
    for key in meta.unused():
        err.print(f"[yellow]xnatpic upload: metadata row {key!r} matches no study[/]")
    target, destination = _target(args, err)  # type: ignore[misc]
    failing = any(p.status == "failed" for p in problems)
    if args.dry_run:
        states = _states(plans, target, err)
        if args.json:
            rows = [{**p.to_dict(), "action": s} for p, s in zip(plans, states, strict=True)]
            for plan, row in zip(plans, rows, strict=False):
                if plan.deidentified:  # the source's StudyInstanceUID identifies the study
                    row["study_uid"] = plan.study_uid  # the de-identified one, once known
            rows += [{"source": str(p.path), "kind": p.kind, "project": args.project,
                      "action": p.status, "reason": p.reason} for p in problems]
            print(json.dumps({"destination": destination,
                              "sessions": sorted(rows, key=lambda r: r["source"])}, indent=2))
        else:
            make_console().print(_plan_table(plans, destination, states, problems, args.project))
        return 1 if failing else 0
    if plans:
        report = _upload(plans, target, destination, args, err)
    else:
        target.close()  # type: ignore[attr-defined]
        report = UploadReport(destination, args.project)
    report.add_problems(problems)
    path = args.report or Path("xnatpic-upload-report.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    err.print(_result_table(report))
    err.print(f"report: {path}")
    for failure in report.failed:
        if failure.session:
            print(f"xnatpic upload: {failure.subject}/{failure.session} failed: "
                  f"{failure.error}", file=sys.stderr)
        else:  # a study that could not be planned: its error names it
            print(f"xnatpic upload: failed: {failure.error}", file=sys.stderr)
    return 1 if report.failed else 0


def _upload(plans: list[SessionPlan], target: object, destination: str,
            args: argparse.Namespace, err: Console) -> UploadReport:
    lock = threading.Lock()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as progress:
        overall = progress.add_task("[bold]sessions", total=len(plans))
        tasks: dict[str, TaskID] = {}

        def start(plan: SessionPlan, total: int) -> None:
            with lock:
                tasks[plan.key] = progress.add_task(f"  {plan.session}", total=total)

        def advance(plan: SessionPlan, nbytes: int) -> None:
            with lock:
                if plan.key in tasks:
                    progress.advance(tasks[plan.key], nbytes)

        def done(result: SessionResult) -> None:
            with lock:
                key = f"{result.subject}/{result.session}"
                if key in tasks:
                    progress.remove_task(tasks.pop(key))
                progress.advance(overall)

        return upload_sessions(
            plans, target, jobs=args.jobs, work_dir=args.work, deidentify=args.deidentify,  # type: ignore[arg-type]
            policy=RetryPolicy(attempts=args.retries), callbacks=Callbacks(start, advance, done),
            keep_work=args.work is not None, destination=destination,
            batch_bytes=int(args.batch_mb * 1e6),
            converted=Converted.of(args.converted, args.conversion_report)
            if args.converted else None)

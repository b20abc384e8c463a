"""``make demo``, last part: the phantom's maps in one click, as XNAT would run them.

Usage::

    python pipelines/demo.py DEMO_OUT

Expects the phantom study in ``DEMO_OUT/phantom/`` (``xnatpic phantom``) and its
conversion in ``DEMO_OUT/dicom/`` with its report ``DEMO_OUT/report.json`` (``xnatpic
convert DEMO_OUT/phantom -o DEMO_OUT/dicom --report DEMO_OUT/report.json``, as ``make
demo`` runs it). Stores the study in XNAT's archive layout with ``xnatpic upload
DEMO_OUT/phantom --project DEMO --archive DEMO_OUT/archive --converted DEMO_OUT/dicom
--conversion-report DEMO_OUT/report.json`` (the path the README shows: the scans that
conversion wrote, given XNAT's routing text, under ``SCANS/<series>/DICOM/``, the raw
study as the PARAVISION resource, the session and its scans recorded in
``DEMO_OUT/archive/.xnatpic/DEMO.json``; the upload checks the conversion is of this
study and unchanged, and names it in ``DEMO_OUT/upload-report.json``), launches the one-click
session-maps step on the session with ``xnatpic launch commands/session-maps.json
--runtime local`` (every map the scans support, each stored as its step's resource) and
prints where each HTML report and the session index are. Exit 1 when the launch or a map
fails.

Both commands run in this process (:func:`xnatpic.cli.main.main`, what the ``xnatpic``
program runs), their output captured and shown when they fail: one interpreter start
and one set of imports instead of three.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from xnatpic.cli.main import main as xnatpic_main

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "DEMO"
#: The one-click step and the resource holding its summary and the session index.
SESSION_STEP = "session-maps"
SUMMARY_RESOURCE = "SESSION_MAPS"


@dataclass
class Ran:
    """What one ``xnatpic`` command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def _xnatpic(*args: str) -> Ran:
    """Run ``xnatpic ARGS`` in this process, its stdout and stderr captured.

    :func:`xnatpic.cli.main.main` turns every error into one line on stderr and a non-zero
    status, as the ``xnatpic`` program does; a usage error (argparse's exit) is the same.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = xnatpic_main(list(args))
        except SystemExit as exc:  # argparse refusing the arguments
            code = exc.code if isinstance(exc.code, int) else 2
    return Ran(code, out.getvalue(), err.getvalue())


def build_session(phantom: Path, archive: Path, converted: Path | None = None,
                  conversion_report: Path | None = None) -> Path:
    """Store the phantom study in ``archive`` with ``xnatpic upload --archive``, sending
    the conversion in ``converted`` (its report ``conversion_report``) when given instead
    of converting again; return the session folder."""
    if not phantom.is_dir():
        raise SystemExit(f"demo: no phantom study at {phantom}; run xnatpic phantom first")
    reuse: list[str] = []
    if converted is not None:
        reuse = ["--converted", str(converted)]
        if conversion_report is not None:
            reuse += ["--conversion-report", str(conversion_report)]
    proc = _xnatpic("upload", str(phantom), "--project", PROJECT, "--archive", str(archive),
                    "--report", str(archive.parent / "upload-report.json"), *reuse)
    if proc.returncode != 0:
        raise SystemExit(f"demo: xnatpic upload failed:\n{proc.stderr[-2000:]}")
    sessions = sorted(p for p in (archive / PROJECT / "arc001").iterdir() if p.is_dir())
    if len(sessions) != 1:
        raise SystemExit(f"demo: expected one session in {archive / PROJECT}, found "
                         f"{[p.name for p in sessions]}")
    return sessions[0]


def _medians(run: Path) -> str:
    """The median of each primary map of a run (``stats.json``)."""
    stats = json.loads((run / "stats.json").read_text())
    return ", ".join(f"{name} {entry['whole']['median']:.4g} {entry['unit']}"
                     for name, entry in stats["maps"].items()
                     if entry.get("role") == "primary"
                     and (entry.get("whole") or {}).get("median") is not None) or "-"


def main(argv: list[str] | None = None) -> int:
    """Store the session, launch session-maps, print the reports; 1 when something failed."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the demo output folder (holds phantom/, "
                        "dicom/ and report.json)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    session = build_session(out / "phantom", out / "archive", out / "dicom",
                            out / "report.json")
    proc = _xnatpic("launch", str(ROOT / "commands" / f"{SESSION_STEP}.json"), "--session",
                    str(session), "--runtime", "local", "--build-dir", str(out / "launches"))
    summary_file = session / "RESOURCES" / SUMMARY_RESOURCE / "session-maps.json"
    if proc.returncode != 0 or not summary_file.is_file():
        print(f"demo: {SESSION_STEP} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
              file=sys.stderr)
        return 1
    steps = json.loads(summary_file.read_text())["steps"]
    print(f"\nMaps of the phantom (session {session}):")
    for step, entry in steps.items():
        if not entry["runs"]:
            print(f"  {step:10s} {entry['status']}")
            continue
        for name in entry["runs"]:
            run = session / "RESOURCES" / entry["resource"] / name
            print(f"  {step:10s} {run / 'report.html'}\n             {entry['status']}; "
                  f"median: {_medians(run)}")
    index = session / "RESOURCES" / SUMMARY_RESOURCE / "index.html"
    print(f"\nSession index: {index if index.is_file() else 'not written'}")
    failed = [step for step, entry in steps.items() if entry["status"] == "failed"]
    if failed:
        print(f"demo: failed steps: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

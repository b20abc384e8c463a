"""``make demo``: the phantom study converted, stored and mapped in one click, as XNAT would.

Usage::

    python pipelines/demo.py DEMO_OUT

Runs, in this order, the ``xnatpic`` commands a user runs (each printed as ``$ xnatpic
...`` before it runs, with its own output):

1. ``xnatpic phantom DEMO_OUT/phantom --snr 100 --seed 0``: the phantom ParaVision study;
2. ``xnatpic info DEMO_OUT/phantom``: what it holds;
3. ``xnatpic convert DEMO_OUT/phantom -o DEMO_OUT/dicom --report DEMO_OUT/report.json``;
4. ``xnatpic upload DEMO_OUT/phantom --project DEMO --archive DEMO_OUT/archive --converted
   DEMO_OUT/dicom --conversion-report DEMO_OUT/report.json``: the study in XNAT's archive
   layout (the path the README shows), sending the conversion of step 3 (checked to be of
   this study and unchanged, given XNAT's routing text) instead of converting again: scans
   under ``SCANS/<series>/DICOM/``, the raw study as the PARAVISION resource, the session
   and its scans recorded in ``DEMO_OUT/archive/.xnatpic/DEMO.json``, the conversion used
   named in ``DEMO_OUT/upload-report.json``; its table is shown only when it fails;
5. ``xnatpic launch commands/session-maps.json --session SESSION --runtime local``: the
   one-click session-maps step (every map the scans support, each stored as its step's
   resource); then prints where each HTML report and the session index are.

``DEMO_OUT/phantom`` must not exist yet (``make demo`` empties ``DEMO_OUT`` first). Exit 1
when a step or a map fails, naming it.

Every command runs in this process (:func:`xnatpic.cli.main.main`, what the ``xnatpic``
program runs, with the same arguments): one interpreter start and one set of imports
instead of five.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
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


def _xnatpic(*args: str, capture: bool = True) -> Ran:
    """Run ``xnatpic ARGS`` in this process (printed first), its stdout and stderr
    captured (``capture``) or shown as they come.

    :func:`xnatpic.cli.main.main` turns every error into one line on stderr and a non-zero
    status, as the ``xnatpic`` program does; a usage error (argparse's exit) is the same.
    """
    print(f"$ xnatpic {shlex.join(args)}", flush=True)
    out, err = io.StringIO(), io.StringIO()
    with (contextlib.redirect_stdout(out) if capture else contextlib.nullcontext(),
          contextlib.redirect_stderr(err) if capture else contextlib.nullcontext()):
        try:
            code = xnatpic_main(list(args))
        except SystemExit as exc:  # argparse refusing the arguments
            code = exc.code if isinstance(exc.code, int) else 2
    sys.stdout.flush()
    return Ran(code, out.getvalue(), err.getvalue())


def _step(*args: str) -> None:
    """Run ``xnatpic ARGS`` with its output shown.

    Raises
    ------
    SystemExit
        When it fails (exit 1, naming the command).
    """
    code = _xnatpic(*args, capture=False).returncode
    if code != 0:
        raise SystemExit(f"demo: xnatpic {args[0]} failed (exit {code})")


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
    parser.add_argument("out", type=Path, help="the demo output folder (phantom/, dicom/, "
                        "report.json, archive/ are written into it)")
    args = parser.parse_args(argv)
    out = args.out
    phantom = out / "phantom"
    _step("phantom", str(phantom), "--snr", "100", "--seed", "0")
    _step("info", str(phantom))
    _step("convert", str(phantom), "-o", str(out / "dicom"), "--report",
          str(out / "report.json"))
    out = out.resolve()
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

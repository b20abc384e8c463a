"""``make demo``, last part: the phantom's maps through every map step, as XNAT would run them.

Usage::

    python pipelines/demo.py DEMO_OUT

Expects the phantom study in ``DEMO_OUT/phantom/`` (``xnatpic phantom``). Stores it in
XNAT's archive layout with ``xnatpic upload DEMO_OUT/phantom --project DEMO --archive
DEMO_OUT/archive`` (the path the README shows: converted scans under
``SCANS/<series>/DICOM/``, the raw study as the PARAVISION resource, the session and its
scans recorded in ``DEMO_OUT/archive/.xnatpic/DEMO.json``), runs each map step on the
session with ``xnatpic launch commands/<step>.json --runtime local`` and prints where each
HTML report is. Exit 1 when a step fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "DEMO"
STEPS = {"t2map": "T2MAP", "t2starmap": "T2STARMAP", "t1map": "T1MAP", "adcmap": "ADCMAP",
         "cest": "CESTMAP"}


def _xnatpic(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "xnatpic"), *args]
    return subprocess.run(command, check=False, capture_output=True, text=True)


def build_session(phantom: Path, archive: Path) -> Path:
    """Store the phantom study in ``archive`` with ``xnatpic upload --archive``; return the
    session folder."""
    if not phantom.is_dir():
        raise SystemExit(f"demo: no phantom study at {phantom}; run xnatpic phantom first")
    proc = _xnatpic("upload", str(phantom), "--project", PROJECT, "--archive", str(archive),
                    "--report", str(archive.parent / "upload-report.json"))
    if proc.returncode != 0:
        raise SystemExit(f"demo: xnatpic upload failed:\n{proc.stderr[-2000:]}")
    sessions = sorted(p for p in (archive / PROJECT / "arc001").iterdir() if p.is_dir())
    if len(sessions) != 1:
        raise SystemExit(f"demo: expected one session in {archive / PROJECT}, found "
                         f"{[p.name for p in sessions]}")
    return sessions[0]


def main(argv: list[str] | None = None) -> int:
    """Store the session, launch each step, print the reports; 1 when a step failed."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the demo output folder (holds phantom/)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    session = build_session(out / "phantom", out / "archive")
    failed = []
    reports = []
    for step, label in STEPS.items():
        proc = _xnatpic("launch", str(ROOT / "commands" / f"{step}.json"), "--session",
                        str(session), "--runtime", "local", "--build-dir",
                        str(out / "launches"))
        report = session / "RESOURCES" / label / "report.html"
        if proc.returncode != 0 or not report.is_file():
            failed.append(step)
            print(f"demo: {step} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                  file=sys.stderr)
            continue
        reports.append((step, report))
    print(f"\nMaps of the phantom (session {session}):")
    for step, report in reports:
        stats = json.loads((report.parent / "stats.json").read_text())
        medians = ", ".join(
            f"{name} {entry['whole']['median']:.4g} {entry['unit']}"
            for name, entry in stats["maps"].items() if entry["whole"]["median"] is not None)
        print(f"  {step:10s} {report}\n             median: {medians}")
    if failed:
        print(f"demo: failed steps: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

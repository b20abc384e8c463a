"""``make demo``, last part: the phantom's maps through every map step, as XNAT would run them.

Usage::

    python pipelines/demo.py DEMO_OUT

Expects ``DEMO_OUT/dicom/`` (``xnatpic convert`` of the phantom, one folder per scan).
Builds the session ``DEMO_OUT/archive/DEMO/arc001/phantom/`` in XNAT's archive layout
(``SCANS/<scan>/DICOM/*.dcm``; the session and its scans recorded in
``DEMO_OUT/archive/.xnatpic/DEMO.json``, as XNAT keeps them in its database), runs each
map step on it with ``xnatpic launch commands/<step>.json --runtime local`` and prints
where each HTML report is. Exit 1 when a step fails.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from xnatpic.xnat.metadata import update_project

ROOT = Path(__file__).resolve().parents[1]
STEPS = {"t2map": "T2MAP", "t2starmap": "T2STARMAP", "t1map": "T1MAP", "adcmap": "ADCMAP",
         "cest": "CESTMAP"}


def build_session(dicom: Path, archive: Path) -> Path:
    """Copy every converted scan into ``archive/DEMO/arc001/phantom/SCANS/<id>/DICOM``."""
    session = archive / "DEMO" / "arc001" / "phantom"
    if session.exists():
        shutil.rmtree(session)
    scans = sorted((p for p in dicom.glob("*/*/*") if p.is_dir() and p.name.isdigit()),
                   key=lambda p: int(p.name))
    if not scans:
        raise SystemExit(f"demo: no converted scans under {dicom}; run xnatpic convert first")
    for folder in scans:
        target = session / "SCANS" / folder.name / "DICOM"
        target.mkdir(parents=True)
        for path in folder.glob("*.dcm"):
            shutil.copy2(path, target / path.name)
    with update_project(archive, "DEMO") as meta:  # what XNAT keeps in its database
        meta.ensure_experiment("phantom", "phantom", xsiType="xnat:mrSessionData")
        for folder in scans:
            meta.set_scan("phantom", folder.name, xsiType="xnat:mrScanData", modality="MR")
    return session


def main(argv: list[str] | None = None) -> int:
    """Build the session, launch each step, print the reports; 1 when a step failed."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the demo output folder (holds dicom/)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    session = build_session(out / "dicom", out / "archive")
    xnatpic = Path(sys.executable).parent / "xnatpic"
    failed = []
    reports = []
    for step, label in STEPS.items():
        script = ROOT / "pipelines" / step / "run.py"
        entrypoint = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
        proc = subprocess.run(
            [str(xnatpic), "launch", str(ROOT / "commands" / f"{step}.json"), "--session",
             str(session), "--runtime", "local", "--entrypoint", entrypoint, "--build-dir",
             str(out / "launches")],
            check=False, capture_output=True, text=True)
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

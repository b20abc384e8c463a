"""One-click session analysis: every map the session's scans support, in one process.

::

    pipelines/session_maps/run.py --input /input --output /output [--steps t2map,...]
                                  [--threshold F] [--snr-floor F]

Each map step of :data:`MAP_STEPS` runs as its own process would
(:func:`xnatpic.analysis.runner.execute`, the step's default options), sharing the
imports, the scan index (:mod:`xnatpic.analysis.scan_index`, headers read once) and the
series read by consecutive maps (:func:`xnatpic.analysis.inputs.shared_reads`: the FAIR
scan of t1map and perfusion is read once). Step ``S`` writes ``OUTPUT/S/maps/<run-key>/``,
exactly what the single step writes in ``OUTPUT/maps/``; the command stores each as the
single step's resource (``T2MAP``, ``T1MAP``...). A step that finds no scan is "not
applicable" and writes nothing; a map that fails leaves nothing and never stops the
others.

``OUTPUT/session/`` (resource :data:`~xnatpic.analysis.scan_index.INDEX_RESOURCE`) holds
``session-maps.json`` (status and message of every step), the session's scan index
``scan-index.json`` (read by every later step from ``/input/RESOURCES/SESSION_MAPS/``)
and the session index of every map run (``index.html``, ``index.json``).

Exit 0 when at least one map was written (the stderr ends with one line per step that
failed and a summary line); 3 (not applicable) when no map applies to the session; 1
when every map that applies failed, or the input or output cannot be used. XNAT stores
outputs only after exit 0 (ContainerFinalizeServiceImpl.java:253-260), so exit 0 keeps
the maps that worked.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnatpic.analysis.errors import NoScanError
from xnatpic.analysis.inputs import release_unused_reads, shared_reads
from xnatpic.analysis.mask import SNR_FLOOR
from xnatpic.analysis.runner import EXIT_NOT_ENOUGH_SIGNAL, OUTPUT_FOLDER, build_parser, execute
from xnatpic.analysis.scan_index import INDEX_NAME
from xnatpic.analysis.selection import session_index
from xnatpic.errors import XnatpicError
from xnatpic.step_output import (
    NOT_APPLICABLE_EXIT,
    NOT_APPLICABLE_MARK,
    check_output_writable,
)

__all__ = ["MAP_STEPS", "SUMMARY_FOLDER", "SUMMARY_NAME", "main", "run_session"]

_log = logging.getLogger("xnatpic.analysis")

#: Map step -> the resource label its command stores it as (commands/<step>.json). The
#: order puts perfusion right after t1map: both read the FAIR scan, read once.
MAP_STEPS: dict[str, str] = {
    "t2map": "T2MAP", "t2starmap": "T2STARMAP", "t1map": "T1MAP",
    "perfusion": "PERFUSIONMAP", "adcmap": "ADCMAP", "cest": "CESTMAP",
}
#: Folder under --output stored as the INDEX_RESOURCE resource.
SUMMARY_FOLDER = "session"
SUMMARY_NAME = "session-maps.json"

#: Step exit code -> status in session-maps.json.
_STATUS = {1: "failed", NOT_APPLICABLE_EXIT: "not applicable",
           EXIT_NOT_ENOUGH_SIGNAL: "not enough signal"}
#: Order of the statuses in the last stderr line: maps written first.
_ORDER = ("complete", "mostly failed", "not enough signal", "failed", "not applicable")


def _steps(text: str) -> list[str]:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in MAP_STEPS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown map step(s) {', '.join(unknown)}; choose from {', '.join(MAP_STEPS)}")
    return names or list(MAP_STEPS)


def build_session_parser() -> argparse.ArgumentParser:
    """The argument parser of the session-maps step."""
    p = argparse.ArgumentParser(prog="session-maps", description=(
        "Every map the session's scans support (" + ", ".join(MAP_STEPS) + "), in one run"))
    p.add_argument("--input", type=Path, default=Path("/input"),
                   help="the session (archive layout: SCANS/<id>/<resource>/)")
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--steps", type=_steps, default=list(MAP_STEPS),
                   help="comma-separated map steps to run (blank: all)")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="mask threshold of every map (fraction of the 99th percentile; 0: Otsu)")
    p.add_argument("--snr-floor", type=float, default=SNR_FLOOR,
                   help=f"noise gate of every map (default {SNR_FLOOR:g}; 0: no gate)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of a map that fails on an unexpected error")
    return p


def _run_folders(step_out: Path) -> list[str]:
    maps = step_out / OUTPUT_FOLDER
    return sorted(p.name for p in maps.iterdir() if p.is_dir()) if maps.is_dir() else []


def _one_step(step: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one map step; its status entry. Never raises (one map never stops the others)."""
    argv = ["--input", str(args.input), "--output", str(args.output / step),
            "--threshold", repr(args.threshold), "--snr-floor", repr(args.snr_floor)]
    step_args = build_parser(step).parse_args(argv)
    start = time.monotonic()
    try:
        code, line, summary = execute(step, step_args, argv)
    except Exception as exc:
        _log.debug("%s failed", step, exc_info=True)
        if args.debug:
            raise
        shutil.rmtree(args.output / step, ignore_errors=True)
        code, line, summary = 1, f"{step}: error: unexpected {type(exc).__name__}: {exc} " \
                                 "(--debug shows the traceback)", None
    status = _STATUS.get(code, "failed") if code else str(
        (summary or {}).get("outcome") or "complete")
    if code == NOT_APPLICABLE_EXIT:
        message = line.split(NOT_APPLICABLE_MARK, 1)[-1]
    else:
        message = line.split(": ", 2)[-1] if line else str((summary or {}).get(
            "outcome_reason") or "")
    entry = {"status": status, "exit": code, "message": message,
             "resource": MAP_STEPS[step], "runs": _run_folders(args.output / step),
             "seconds": round(time.monotonic() - start, 3)}
    if line:
        sys.stderr.write(line + "\n")
    _log.info("%s: %s%s", step, status, f" ({', '.join(entry['runs'])})" if entry["runs"]
              else "")
    return entry


def _write_session_index(session: Path, output: Path, steps: dict[str, dict[str, Any]],
                         summary: Path) -> Path:
    """The session index (every run of every map resource, earlier and new) in
    ``summary``: the new runs are laid over the session's resources in a staging copy of
    the archive layout (links only), as XNAT will hold them once stored; the runs'
    reports, statistics and previews are copied beside the page
    (:func:`~xnatpic.analysis.session_index.write_self_contained_index`), so its links stay
    inside SESSION_MAPS wherever XNAT serves it."""
    from xnatpic.analysis.session_index import write_self_contained_index

    with tempfile.TemporaryDirectory(prefix="xnatpic-session-") as tmp:
        staging = Path(tmp) / session.name
        resources = staging / "RESOURCES"
        for label in MAP_STEPS.values():
            old = session / "RESOURCES" / label
            if old.is_dir():
                for run in old.iterdir():
                    if run.is_dir():
                        (resources / label).mkdir(parents=True, exist_ok=True)
                        (resources / label / run.name).symlink_to(run.resolve())
        for step, entry in steps.items():
            for run in entry["runs"]:
                target = resources / entry["resource"] / run
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink():
                    target.unlink()  # a new run replaces the stored one of that key
                target.symlink_to((output / step / OUTPUT_FOLDER / run).resolve())
        roistats = session / "RESOURCES" / "ROISTATS"
        if roistats.is_dir():
            resources.mkdir(parents=True, exist_ok=True)
            (resources / "ROISTATS").symlink_to(roistats.resolve())
        staging.mkdir(parents=True, exist_ok=True)  # no run anywhere: nothing made it yet
        project = (session.parent.parent.name
                   if session.parent.name.startswith("arc") else None)
        return write_self_contained_index(staging, summary, project=project)


def run_session(args: argparse.Namespace) -> tuple[int, str]:
    """Run the map steps of ``args.steps`` on the session; (exit code, last stderr line)."""
    session = args.input
    check_output_writable(args.output)  # first, as every step (one line naming the fix)
    if not (session / "SCANS").is_dir():
        raise NoScanError(f"{session}: no SCANS folder; mount the session (archive layout "
                          "SCANS/<id>/<resource>/) at the input")
    index = session_index(session)
    _log.info("scan index: %d scans (%d read, %d from the stored index)", len(index.entries),
              len(index.read), len(index.reused))
    steps: dict[str, dict[str, Any]] = {}
    with shared_reads():
        for step in args.steps:
            steps[step] = _one_step(step, args)
            release_unused_reads()
    summary = args.output / SUMMARY_FOLDER
    summary.mkdir(parents=True, exist_ok=True)
    index.write(summary / INDEX_NAME)
    (summary / SUMMARY_NAME).write_text(json.dumps(
        {"session": session.name, "steps": steps}, indent=1) + "\n", encoding="utf-8")
    page = _write_session_index(session, args.output, steps, summary)
    statuses = sorted({e["status"] for e in steps.values()},
                      key=lambda s: (_ORDER.index(s) if s in _ORDER else len(_ORDER), s))
    counts = "; ".join(
        f"{status}: {', '.join(s for s, e in steps.items() if e['status'] == status)}"
        for status in statuses)
    written = [s for s, e in steps.items() if e["runs"]]
    if not written:
        applicable = [s for s, e in steps.items() if e["status"] != "not applicable"]
        if not applicable:
            return NOT_APPLICABLE_EXIT, (f"session-maps{NOT_APPLICABLE_MARK}no scan of "
                                         f"{session} fits any of {', '.join(args.steps)}")
        return 1, f"session-maps: error: every map that applies failed ({counts})"
    where = f"; session index {page}" if page else ""
    return 0, f"session-maps: {counts}{where}"


def main(argv: Sequence[str] | None = None) -> int:
    """The session-maps step's command line; see the module docstring for exit codes."""
    args = build_session_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="session-maps: %(levelname)s %(message)s", stream=sys.stderr,
                        force=True)
    try:
        code, line = run_session(args)
    except XnatpicError as exc:  # no SCANS folder, an output it cannot write
        sys.stderr.write(f"session-maps: error: {exc}\n")
        return 1
    sys.stderr.write(line + "\n")
    return code

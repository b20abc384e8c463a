"""project-summary step: every session's ROI statistics of a project in one table.

Run by the image's ENTRYPOINT with the command line of ``commands/project-summary.json``::

    run.py --input /input --output /output [--project P]

``INPUT`` is the project mounted in archive layout (``arc001/<session>/``; also an
archive root holding ``<project>/arc001/`` or a folder of sessions). Writes
``OUTPUT/summary/summary.csv`` (project, subject, session, group, timepoint, resource,
map, roi, mean, sd, median, q1, q3, n, n_excluded, units, flag, source),
``summary.html``, ``plots/<map>_<roi>.png`` (ROI means per group) and ``provenance.json``.
Sessions without ROISTATS contribute their maps' whole-map stats.json. Subject, group and
timepoint are read from XNAT's REST API with XNAT_HOST/XNAT_USER/XNAT_PASS and
``--project`` (the Container Service sets the variables; ``xnatpic launch`` points them at
the local archive's metadata); without them they are empty.

Exit 0 on success, 1 when no session has any statistics; the reason is the last line
on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from xnatpic.errors import XnatpicError
from xnatpic.provenance import now, write_step_provenance
from xnatpic.roi.errors import RoiError
from xnatpic.roi.report import plot_groups, write_csv, write_html
from xnatpic.roi.summary import gather_project
from xnatpic.step_output import check_output_writable
from xnatpic.xnat.archive import find_sessions
from xnatpic.xnat.project_fields import fetch_project_metadata, xnat_available

_log = logging.getLogger("project-summary")

STEP = "project-summary"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line built by the Container Service."""
    p = argparse.ArgumentParser(prog=STEP, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/input"))
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--project", help="project id (default: the folder above arc001)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    return p.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the step; return its exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"{STEP} %(levelname)s: %(message)s")
    args = parse_args(argv)
    started = now()
    out = args.output / "summary"
    try:
        check_output_writable(args.output)
        sessions = find_sessions(args.input)
        extra = None
        if args.project and xnat_available():
            try:
                extra = fetch_project_metadata(args.project)
            except XnatpicError as exc:  # metadata is optional: the summary goes on
                _log.warning("subject/group/timepoint not read from XNAT: %s", exc)
        rows, empty = gather_project(sessions, extra)
        if not rows:
            raise RoiError(f"{args.input}: none of {len(sessions)} session(s) has ROISTATS "
                           "or map stats.json; run the map and roi-stats steps first")
        if args.project:
            for row in rows:
                row["project"] = row["project"] or args.project
        project = args.project or rows[0]["project"] or args.input.resolve().name
        write_csv(rows, out / "summary.csv")
        plots = [] if args.no_plots else plot_groups(rows, out / "plots")
        write_html(out / "summary.html", project=project, rows=rows, plots=plots, empty=empty)
    except XnatpicError as exc:
        print(f"{STEP}: error: {exc}", file=sys.stderr, flush=True)  # the last line
        return 1
    write_step_provenance(
        out / "provenance.json", STEP, args, started,
        sessions=[s.name for s in sessions],
        **{"sessions-without-statistics": empty},
        rows=len(rows), plots=[p.name for p in plots],
    )
    _log.info("done: %d row(s) from %d session(s), %d plot(s)", len(rows),
              len(sessions) - len(empty), len(plots))
    return 0


if __name__ == "__main__":
    sys.exit(run())

"""project-summary step: the study summary of a project, by group and timepoint.

Run by the image's ENTRYPOINT with the command line of ``commands/project-summary.json``::

    run.py --input /input --output /output [--project P] [--include byproducts,spectra]
           [--no-plots]

``INPUT`` is the project mounted in archive layout (``arc001/<session>/``; also an
archive root holding ``<project>/arc001/`` or a folder of sessions). Per session, every
run of every map step (``RESOURCES/<LABEL>/<run-key>/``) is read with its step, method and
source scan; ROI statistics come from ROISTATS, whole-map ones from the run's stats.json.
A value is compared only with values of the same map, unit, step, method and ROI; fit
by-products (R_squared, S0, M0...) and spectra (CEST Z frames) stay out of the
comparisons unless ``--include`` names them. Writes into ``OUTPUT/summary/``:

* ``summary.csv``: one row per session × run × map × ROI (every role, with its ``role``);
* ``animals.csv``: one row per map × ROI × group × timepoint × animal (its value);
* ``groups.csv``: per map × ROI × group × timepoint: n animals, mean, SD, median, range;
* ``comparisons.csv``: the tests between groups at each timepoint, with effect sizes;
* ``summary.json`` (the same tables), ``summary.html`` (plots and tables, links to every
  session's index page ``sessions/<session>/index.html``), ``plots/*.png``,
  ``provenance.json``.

Subject, group and timepoint are read from XNAT's REST API with XNAT_HOST/XNAT_USER/
XNAT_PASS and ``--project`` (the Container Service sets the variables; ``xnatpic launch``
points them at the local archive's metadata); without them they are empty.

Exit 0 on success, 1 when no session has any statistics or an input is unreadable; the
reason is the last line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnatpic.analysis.session_index import write_self_contained_index
from xnatpic.errors import XnatpicError
from xnatpic.provenance import now, write_step_provenance
from xnatpic.roi.errors import RoiError
from xnatpic.roi.summary import SUMMARY_COLUMNS, gather_project, natural_key, session_runs
from xnatpic.roi.summary_output import write_csv, write_html, write_json
from xnatpic.roi.summary_stats import (
    ANIMAL_COLUMNS,
    COMPARISON_COLUMNS,
    GROUP_COLUMNS,
    animal_values,
    compare_groups,
    group_statistics,
)
from xnatpic.step_output import check_output_writable
from xnatpic.xnat.archive import find_sessions
from xnatpic.xnat.project_fields import fetch_project_metadata, xnat_available

_log = logging.getLogger("project-summary")

STEP = "project-summary"
#: ``--include`` words -> map roles.
INCLUDE = {"byproducts": "byproduct", "spectra": "spectrum"}


def _include(text: str) -> tuple[str, ...]:
    words = {w.strip().lower() for w in (text or "").split(",") if w.strip()}
    unknown = words - set(INCLUDE)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {', '.join(sorted(unknown))}: give byproducts and/or spectra")
    return tuple(sorted({"primary"} | {INCLUDE[w] for w in words}))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line built by the Container Service."""
    p = argparse.ArgumentParser(prog=STEP, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/input"))
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--project", help="project id (default: the folder above arc001)")
    p.add_argument("--include", type=_include, default=_include(""),
                   help="also compare: byproducts (R_squared, S0, M0...), spectra (CEST Z "
                        "frames); comma-separated")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--debug", action="store_true", help="traceback on errors")
    return p.parse_args(argv)


def _session_index(session_dir: Path, out: Path) -> str:
    """The session's index page in ``out`` (``sessions/<session>/index.html``), with its
    runs' reports, statistics and previews copied beside it so every link stays inside
    the summary resource; its link from the summary."""
    page = write_self_contained_index(session_dir, out)
    return page.relative_to(out.parent.parent).as_posix()


def _sessions(gathered, out: Path) -> list[dict[str, Any]]:
    meta = {r["session"]: r for r in gathered.rows}
    table = []
    for label, folder in sorted(gathered.session_dirs.items(), key=lambda kv: natural_key(kv[0])):
        row = meta.get(label, {})
        runs = session_runs(folder)
        table.append({
            "session": label, "subject": row.get("subject", ""), "group": row.get("group", ""),
            "timepoint": row.get("timepoint", ""),
            "runs": ", ".join(f"{r.resource}/{r.run_key}".rstrip("/") + f" ({r.step}"
                              + (f" {r.method}" if r.method else "") + ")" for r in runs),
            "index": _session_index(folder, out / "sessions" / label),
        })
    return table


def _notes(animals: list[dict[str, Any]], skipped: list[str], empty: list[str]) -> list[str]:
    notes = [f"ROI statistics not used, their map run unknown: {s}" for s in skipped]
    notes += [f"{a['animal']} has {a['n_values']} values of {a['map']} in {a['roi']} at "
              f"{a['timepoint']} ({a['sessions']}): their mean is used"
              for a in animals if a["n_values"] > 1]
    if empty:
        notes.append(f"Sessions without statistics: {', '.join(empty)}")
    return notes


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
        gathered = gather_project(sessions, extra)
        rows = gathered.rows
        if not rows:
            raise RoiError(f"{args.input}: none of {len(sessions)} session(s) has ROISTATS "
                           "or map stats.json; run the map and roi-stats steps first")
        project = args.project or rows[0]["project"] or args.input.resolve().name
        for row in rows:
            row["project"] = row["project"] or project
        compared = [r for r in rows if r["role"] in args.include]
        words = {role: word for word, role in INCLUDE.items()}
        left_out: dict[str, set[str]] = {}
        for r in rows:
            if r["role"] not in args.include:
                left_out.setdefault(words[r["role"]], set()).add(r["map"])
        animals = animal_values(compared)
        groups = group_statistics(animals)
        comparisons = compare_groups(animals)
        write_csv(rows, out / "summary.csv", SUMMARY_COLUMNS)
        write_csv(animals, out / "animals.csv", ANIMAL_COLUMNS)
        write_csv(groups, out / "groups.csv", GROUP_COLUMNS)
        write_csv(comparisons, out / "comparisons.csv", COMPARISON_COLUMNS)
        write_json(out / "summary.json", project=project, included_roles=list(args.include),
                   rows=rows, animals=animals, groups=groups, comparisons=comparisons)
        if args.no_plots:
            plots = {}
        else:
            from xnatpic.roi.summary_plots import plot_summary  # matplotlib only when drawing

            plots = plot_summary(animals, out / "plots")
        sessions_table = _sessions(gathered, out)
        write_html(out / "summary.html", project=project, sessions=sessions_table,
                   groups=groups, comparisons=comparisons, animals=animals, plots=plots,
                   left_out={k: sorted(v) for k, v in left_out.items()},
                   notes=_notes(animals, gathered.skipped, gathered.empty))
    except XnatpicError as exc:
        if args.debug:
            raise
        print(f"{STEP}: error: {exc}", file=sys.stderr, flush=True)  # the last line
        return 1
    write_step_provenance(
        out / "provenance.json", STEP, args, started,
        sessions=[s.name for s in sessions],
        **{"sessions-without-statistics": gathered.empty},
        rows=len(rows), animals=len({a["animal"] for a in animals}),
        plots=sorted(p.name for p in plots.values()),
    )
    _log.info("done: %d row(s) from %d session(s), %d group statistic(s), %d comparison(s), "
              "%d plot(s)", len(rows), len(sessions) - len(gathered.empty), len(groups),
              len(comparisons), len(plots))
    return 0


if __name__ == "__main__":
    sys.exit(run())

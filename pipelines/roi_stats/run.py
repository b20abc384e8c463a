"""roi-stats step: statistics of a session's parametric maps in ROIs.

Run by the image's ENTRYPOINT with the command line of ``commands/roi-stats.json``::

    run.py --input /input --output /output --mask MASKS|auto [--maps T2MAP,ADCMAP] \\
        [--roi-collection LABEL [--roi-dir /roi]] [--auto-scan ID] [--session-label L]

1. finds the map runs (``INPUT/RESOURCES/*MAP/<run-key>/nifti/*.nii.gz``, or those listed);
2. takes the ROIs of an ROI collection assessor (``--roi-collection``: the assessor's files
   mounted at ``--roi-dir``, resource SEG or RTSTRUCT), or the masks of
   ``INPUT/RESOURCES/<mask>/`` (DICOM SEG, RTSTRUCT, NIfTI label map), or (``auto``) a
   foreground mask of each run's anatomical source image (the scan named in its
   provenance.json; never a map);
3. maps every mask onto every map's grid (world coordinates; a mask from another frame of
   reference is refused) and writes ``OUTPUT/roistats/<mask>/roi_stats.csv``,
   ``roi_stats.json`` and ``provenance.json`` (``<mask>``: ``auto``, the resource or the
   ROI collection label), one row per map and ROI naming its source file, map file, step,
   method and run.

Exit 0 on success (flagged ROIs, e.g. all voxels failed, are reported, not fatal), 1 on
error; the reason is the last line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnatpic.errors import XnatpicError
from xnatpic.provenance import now, write_step_provenance
from xnatpic.roi.analysis import CSV_COLUMNS, MaskChoice, format_value, session_roi_stats
from xnatpic.step_output import check_output_writable

_log = logging.getLogger("roi-stats")

STEP = "roi-stats"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line built by the Container Service."""
    p = argparse.ArgumentParser(prog=STEP, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/input"))
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--mask", default="auto",
                   help="session resource holding SEG/RTSTRUCT/NIfTI masks, or 'auto'")
    p.add_argument("--maps", help="comma-separated map resource labels (default: all *MAP)")
    p.add_argument("--roi-collection", help="label of the ROI collection assessor whose files "
                                            "are mounted at --roi-dir (overrides --mask)")
    p.add_argument("--roi-dir", type=Path, default=Path("/roi"),
                   help="the ROI collection assessor's folder (default /roi)")
    p.add_argument("--auto-scan", help="auto: scan whose image is thresholded (default: "
                                       "each map run's source scan)")
    p.add_argument("--session-label", help="session label (default: the input folder name)")
    return p.parse_args(argv)


def safe_key(name: str) -> str:
    """A folder name from a mask or ROI collection label.

    >>> safe_key("tumour d0/v2")
    'tumour_d0_v2'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "mask"


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def run(argv: Sequence[str] | None = None) -> int:
    """Run the step; return its exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"{STEP} %(levelname)s: %(message)s")
    args = parse_args(argv)
    started = now()
    label = args.session_label or args.input.resolve().name
    maps = [m.strip() for m in (args.maps or "").split(",") if m.strip()] or None
    if args.roi_collection:
        choice = MaskChoice("roi-collection", args.roi_collection.strip(), args.roi_dir)
    elif args.mask.strip().lower() == "auto":
        choice = MaskChoice("auto", auto_scan=(args.auto_scan or "").strip())
    else:
        choice = MaskChoice("resource", args.mask.strip())
    try:
        check_output_writable(args.output)
        result = session_roi_stats(args.input, session_label=label, map_labels=maps,
                                   mask=choice)
    except XnatpicError as exc:
        print(f"{STEP}: error: {exc}", file=sys.stderr, flush=True)  # the last line
        return 1
    out = args.output / "roistats" / safe_key(choice.key)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "roi_stats.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for row in result.rows:
            writer.writerow([format_value(row[c]) for c in CSV_COLUMNS])
    rows = [{k: _json_safe(v) for k, v in row.items()} for row in result.rows]
    (out / "roi_stats.json").write_text(json.dumps(
        {"session": label, "mask": {"kind": choice.kind, "name": choice.name},
         "rows": rows, "flagged": [r for r in rows if r["flag"]]},
        indent=2) + "\n", encoding="utf-8")
    # the mount folders (/input, /output, /roi; host folders in a local run) say nothing
    # about the result: the session, maps and masks are named relative to them below
    settings = argparse.Namespace(**{k: v for k, v in vars(args).items()
                                     if k not in ("input", "output", "roi_dir")})
    write_step_provenance(
        out / "provenance.json", STEP, settings, started,
        mask={"kind": choice.kind, "name": choice.name}, maps=result.maps,
        masks=result.masks,
        statistics="finite voxels only; sd with ddof=1; quartiles by linear "
                   "interpolation; NaN/inf voxels counted in n_excluded",
    )
    _log.info("done: %d row(s) (%d map(s), %d mask source(s)), %d flagged", len(result.rows),
              len(result.maps), len(result.masks), len(result.flagged))
    return 0


if __name__ == "__main__":
    sys.exit(run())

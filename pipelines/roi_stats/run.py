"""roi-stats step: statistics of a session's parametric maps in ROIs.

Run by the image's ENTRYPOINT with the command line of ``commands/roi-stats.json``::

    run.py --input /input --output /output --mask MASKS|auto \\
        [--maps T2MAP,ADCMAP] [--auto-image T2MAP/maps/M0.nii.gz] [--session-label L]

1. finds the map resources (``INPUT/RESOURCES/*MAP/maps/*.nii.gz``, or those listed);
2. reads the masks of ``INPUT/RESOURCES/<mask>/`` (DICOM SEG, RTSTRUCT, NIfTI label map)
   or makes an Otsu foreground mask (``auto``);
3. maps every mask onto every map's grid (world coordinates; a mask from another frame of
   reference is refused) and writes ``OUTPUT/roistats/roi_stats.csv``,
   ``roi_stats.json`` and ``provenance.json``.

Exit 0 on success (flagged ROIs, e.g. all voxels failed, are reported, not fatal), 1 on
error; the reason is the last line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnatpic.errors import XnatpicError
from xnatpic.provenance import now, write_step_provenance
from xnatpic.roi.analysis import CSV_COLUMNS, format_value, session_roi_stats
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
    p.add_argument("--auto-image", help="auto: RESOURCE/path.nii.gz to threshold "
                                        "(default: the first map)")
    p.add_argument("--session-label", help="session label (default: the input folder name)")
    return p.parse_args(argv)


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
    try:
        check_output_writable(args.output)
        result = session_roi_stats(args.input, session_label=label, map_labels=maps,
                                   mask=args.mask, auto_image=args.auto_image)
    except XnatpicError as exc:
        print(f"{STEP}: error: {exc}", file=sys.stderr, flush=True)  # the last line
        return 1
    out = args.output / "roistats"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "roi_stats.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for row in result.rows:
            writer.writerow([format_value(row[c]) for c in CSV_COLUMNS])
    rows = [{k: _json_safe(v) for k, v in row.items()} for row in result.rows]
    (out / "roi_stats.json").write_text(json.dumps(
        {"session": label, "rows": rows, "flagged": [r for r in rows if r["flag"]]},
        indent=2) + "\n", encoding="utf-8")
    write_step_provenance(
        out / "provenance.json", STEP, args, started, maps=result.maps, masks=result.masks,
        statistics="finite voxels only; sd with ddof=1; quartiles by linear "
                   "interpolation; NaN/inf voxels counted in n_excluded",
    )
    _log.info("done: %d row(s) (%d map(s), %d mask source(s)), %d flagged", len(result.rows),
              len(result.maps), len(result.masks), len(result.flagged))
    return 0


if __name__ == "__main__":
    sys.exit(run())

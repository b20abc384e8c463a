"""bli-quant step: total flux and average radiance per ROI of a session's IVIS images.

Run by the image's ENTRYPOINT with the command line of ``commands/bli-quant.json``::

    run.py --input /input --output /output
        [--rois living_image_or_auto|living_image|auto|collection] [--roi-resource ROI]
        [--resource IVIS] [--session-label L]

1. finds the IVIS Living Image click/sequence folders under ``INPUT/RESOURCES/<resource>``
   (the raw folder the uploader archives), else anywhere under ``INPUT``;
2. per click: ROIs drawn in Living Image (AnalyzedClickInfo.txt) or automatic ones
   (:mod:`xnatpic.optical.rois`), or an ROI collection (SEG/RTSTRUCT/NIfTI drawn on the
   converted photograph or signal, matched to its click by FrameOfReferenceUID); total
   flux (p/s) and average radiance (p/s/cm²/sr);
3. writes ``OUTPUT/blimap/bli_quant.csv`` (one row per click and ROI), ``stats.json``
   (rows as project-summary reads them from a ``*MAP`` resource: map ``total_flux`` with
   the flux in ``mean``, map ``average_radiance`` with its statistics), an overlay PNG per
   click and ``provenance.json``.

Exit 0 on success, 1 on error; the reason is the last line on stderr.
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

from xnatpic.confine import confined
from xnatpic.errors import XnatpicError
from xnatpic.optical import find_ivis_studies, open_ivis
from xnatpic.optical.dicom import frame_of_reference_uid, ivis_study_uid
from xnatpic.optical.dicom_read import read_ivis_dicom
from xnatpic.optical.overlay import render_overlay
from xnatpic.optical.quant import RoiMeasure, quantify
from xnatpic.optical.rois import read_collection
from xnatpic.provenance import now, write_step_provenance
from xnatpic.step_output import NOT_APPLICABLE_EXIT, NOT_APPLICABLE_MARK, check_output_writable

_log = logging.getLogger("bli-quant")

STEP = "bli-quant"
ROI_CHOICES = ("living_image_or_auto", "living_image", "auto", "collection")
CSV_COLUMNS = ("session", "click", "acquired", "animal", "group", "timepoint", "view", "roi",
               "roi_source", "n_pixels", "area_cm2", "total_name", "total", "total_unit",
               "mean_name", "mean", "sd", "median", "q1", "q3", "max", "mean_unit")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line built by the Container Service."""
    p = argparse.ArgumentParser(prog=STEP, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/input"))
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--rois", choices=ROI_CHOICES, default="living_image_or_auto",
                   help="Living Image ROIs when drawn, else automatic (default); or only one; "
                        "collection: the masks of --roi-resource")
    p.add_argument("--roi-resource", default="ROI",
                   help="with --rois collection: session resource holding DICOM SEG, "
                        "RTSTRUCT or NIfTI label maps (default ROI)")
    p.add_argument("--resource", default="IVIS",
                   help="session resource holding the raw IVIS folders (default IVIS)")
    p.add_argument("--session-label", help="session label (default: the input folder name)")
    return p.parse_args(argv)


def _folders(root: Path, resource: str) -> list[Path]:
    base = confined(root / "RESOURCES", resource, what="resource")  # issue 16
    found = list(find_ivis_studies(base)) if base.is_dir() else []
    return found or list(find_ivis_studies(root))


def _clicks(folders: list[Path]) -> list[tuple[Any, str]]:
    """(click, its FrameOfReferenceUID) of the raw IVIS folders."""
    clicks = []
    for folder in folders:
        study = open_ivis(folder)
        for acq in study.acquisitions:
            clicks.append((acq, frame_of_reference_uid(ivis_study_uid(study),
                                                       acq.click_number)))
    return clicks


def _dicom_clicks(root: Path, rois: str) -> list[tuple[Any, str]]:
    """(click, FrameOfReferenceUID) of the session's converted IVIS series: a de-identified
    session has no raw folder. Living Image's ROIs are not in the DICOM."""
    files = [p for p in sorted((root / "SCANS").rglob("*")) if p.is_file()] \
        if (root / "SCANS").is_dir() else [p for p in sorted(root.rglob("*.dcm"))]
    clicks = [(acq, acq.frame_of_reference) for acq in read_ivis_dicom(files)]
    if not clicks:
        raise NotApplicable(f"{root}: no IVIS Living Image folder (ClickInfo.txt or "
                            "AnalyzedClickInfo.txt) and no IVIS series converted by xnatpic "
                            "in the session")
    if rois == "living_image":
        raise XnatpicError(f"{root}: only converted DICOM (no raw IVIS folder, e.g. a "
                           "de-identified session): Living Image's ROIs are not in it; use "
                           "--rois auto or collection")
    return clicks


class NotApplicable(XnatpicError):
    """The session holds no IVIS data: nothing for this step to do (exit 3)."""


def _stats_entries(m: RoiMeasure, roi_name: str) -> list[dict[str, Any]]:
    def safe(value: float) -> float | None:
        return None if isinstance(value, float) and math.isnan(value) else value

    return [
        {"map": m.total_name, "roi": roi_name, "mean": safe(m.total), "n": m.n_pixels,
         "n_excluded": 0, "units": m.total_unit},
        {"map": m.mean_name, "roi": roi_name, "mean": safe(m.mean), "sd": safe(m.sd),
         "median": safe(m.median), "q1": safe(m.q1), "q3": safe(m.q3), "n": m.n_pixels,
         "n_excluded": 0, "units": m.mean_unit},
    ]


def run(argv: Sequence[str] | None = None) -> int:
    """Run the step; return its exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"{STEP} %(levelname)s: %(message)s")
    args = parse_args(argv)
    started = now()
    label = args.session_label or args.input.resolve().name
    out = args.output / "blimap"
    rows: list[dict[str, Any]] = []
    stats: list[dict[str, Any]] = []
    overlays: list[str] = []
    clicks: list[tuple[Any, str]] = []
    try:
        check_output_writable(args.output)
        folders = _folders(args.input, args.resource)
        clicks = _clicks(folders) if folders else _dicom_clicks(args.input, args.rois)
        out.mkdir(parents=True, exist_ok=True)
        masks = (read_collection(confined(args.input / "RESOURCES", args.roi_resource,
                                          what="roi resource"))
                 if args.rois == "collection" else [])
        frames: set[str] = set()
        several = len(clicks) > 1
        for acq, frame in clicks:
            frames.add(frame)
            measures, rois, signal = quantify(acq, rois=args.rois, collection=masks,
                                              frame_of_reference=frame)
            png = out / f"overlay_{re.sub(r'[^A-Za-z0-9_.-]+', '_', acq.click_number)}.png"
            render_overlay(acq, signal, rois, measures, png)
            overlays.append(png.name)
            labels = acq.labels
            for m in measures:
                roi_name = f"{acq.click_number} {m.roi}" if several else m.roi
                stats += _stats_entries(m, roi_name)
                rows.append({**m.as_dict(), "session": label,
                             "acquired": acq.acquired.isoformat() if acq.acquired else "",
                             "animal": labels.animal, "group": labels.get("Group"),
                             "timepoint": labels.get("Time Point"),
                             "view": labels.get("View")})
            _log.info("%s: %d ROI(s)", acq.click_number, len(measures))
        foreign = [m.source for m in masks
                   if m.frame_of_reference_uid and m.frame_of_reference_uid not in frames]
        if foreign:
            raise XnatpicError(f"{', '.join(foreign)}: drawn in a frame of reference of no "
                               "acquisition of this session (another session's images?)")
    except NotApplicable as exc:  # a session of another modality, as a map step on IVIS
        print(f"{STEP}{NOT_APPLICABLE_MARK}{exc}", file=sys.stderr, flush=True)
        return NOT_APPLICABLE_EXIT
    except XnatpicError as exc:
        print(f"{STEP}: error: {exc}", file=sys.stderr, flush=True)  # the last line
        return 1
    with (out / "bli_quant.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    write_step_provenance(
        out / "provenance.json", STEP, args, started, folders=[str(f) for f in folders],
        source="raw IVIS folders" if folders else "converted IVIS DICOM series",
        overlays=overlays,
        definitions="total flux = 4π sr × Σ radiance × pixel area (p/s); average radiance "
                    "= mean over the ROI's pixels (p/s/cm²/sr); signal = (counts − dark) × "
                    "Calibration Value Per Count; ROIs: " + args.rois)
    _log.info("done: %d row(s) from %d click(s)", len(rows), len(clicks))
    return 0


if __name__ == "__main__":
    sys.exit(run())

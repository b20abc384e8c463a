"""Everything a step writes for its maps.

Layout of the output folder (stored as one session resource, e.g. ``T2MAP``)::

    OUT/report.html              one page: outcome, previews, statistics and statuses
    OUT/stats.json, stats.csv    whole-map and per-slice statistics over the mask, with the
                                 fraction of voxels in each status
    OUT/provenance.json          xnatpic version, step, parameters, input UIDs
    OUT/nifti/<map>.nii.gz       every map (and mask.nii.gz) on the source geometry
    OUT/nifti/<map>_status.nii.gz  per-voxel status codes of each primary map
                                 (:class:`xnatpic.models.results.VoxelStatus`: 0 outside
                                 the mask, 1 fitted, 2 long, 3 short, 4 no signal, >= 5
                                 failed with the reason)

When the step's outcome is "not enough signal" only the mask, the status maps, the report,
the statistics (fractions, no location statistics) and the provenance are written.
    OUT/dicom/<map>/*.dcm        primary maps as derived MR Image Storage series
    OUT/png/<map>.png            previews of the primary maps (and <map>_status.png)
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from xnatpic import __version__
from xnatpic.analysis.dicom_maps import write_dicom_map
from xnatpic.analysis.inputs import AnalysisSeries
from xnatpic.analysis.maps import MapImage, StepResult
from xnatpic.analysis.previews import write_preview, write_status_preview
from xnatpic.analysis.report import write_html_report
from xnatpic.analysis.stats import STAT_KEYS, map_statistics
from xnatpic.models.results import VOXEL_STATUS_NAMES

__all__ = ["write_nifti", "write_outputs"]

_log = logging.getLogger(__name__)


def write_nifti(values: np.ndarray, series: AnalysisSeries, path: Path,
                dtype: type = np.float32) -> Path:
    """Write a map (X, Y, Z[, C]) with the RAS affine of ``series`` (qform and sform)."""
    image = nib.Nifti1Image(np.asarray(values, dtype=dtype), series.affine)
    image.set_qform(series.affine, code=1)
    image.set_sform(series.affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


def _series_uids(series: AnalysisSeries) -> dict[str, Any]:
    return {
        "series_instance_uid": series.series_instance_uid,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "sop_instance_uids": sorted({u for row in series.sop_instance_uids for u in row}),
        "source": str(series.source),
        "description": series.description,
    }


def _csv(path: Path, stats: dict[str, dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["map", "unit", "slice", *STAT_KEYS])
        for name, entry in stats.items():
            rows = [("all", entry["whole"])] + [(s["slice"] + 1, s) for s in entry["slices"]]
            for label, s in rows:
                writer.writerow([name, entry["unit"], label,
                                 *("" if s[k] is None else s[k] for k in STAT_KEYS)])


def _noise_line(noise: dict[str, Any]) -> str:
    sigma = noise.get("sigma")
    snr = noise.get("median_snr")
    return (f"sigma {'unknown' if sigma is None else f'{sigma:.4g}'} ({noise.get('method')}); "
            f"median SNR {'-' if snr is None else f'{snr:.3g}'}; SNR floor "
            f"{noise.get('snr_floor')}; {100 * (noise.get('signal_fraction') or 0):.1f} % of "
            f"the mask above it; gate {noise.get('gate')}")


def _drop_location(entry: dict[str, Any]) -> None:
    """No headline number when the data cannot support the map: keep counts and fractions."""
    for part in [entry["whole"], *entry["slices"]]:
        for key in ("mean", "sd", "median", "q1", "q3", "iqr", "min", "max"):
            part[key] = None


def write_outputs(result: StepResult, out: Path, *, scans: dict[str, str],
                  argv: list[str] | None = None) -> dict[str, Any]:
    """Write NIfTI, DICOM, PNG, HTML, statistics and provenance of a step's maps.

    Parameters
    ----------
    result : StepResult
        The maps.
    out : Path
        Output folder (created).
    scans : dict
        Role -> scan id of the inputs (``{"source": "2"}``, ``{"cest": "7", "wassr": "8"}``).
    argv : list of str, optional
        The step's command line, kept in the provenance.

    Returns
    -------
    dict
        The statistics written to ``stats.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    series = result.series[0]
    complete = result.outcome == "complete"
    write_nifti(result.mask.astype(np.float32), series, out / "nifti" / "mask.nii.gz")
    stats: dict[str, dict[str, Any]] = {}
    sections = []
    base_number = int(series.header.get("SeriesNumber", 0) or 0) * 100
    primary: list[MapImage] = [m for m in result.maps if m.primary]
    if complete:
        for image in result.maps:
            write_nifti(image.values, series, out / "nifti" / f"{image.name}.nii.gz")
    for index, image in enumerate(primary, start=1):
        entry = {"unit": image.unit, "description": image.description,
                 **map_statistics(image.values, result.mask, image.status)}
        status_png = None
        if image.status is not None:
            write_nifti(image.status, series, out / "nifti" / f"{image.name}_status.nii.gz",
                        dtype=np.uint8)
            status_png = write_status_preview(
                image.status, out / "png" / f"{image.name}_status.png",
                title=f"{image.name} voxel status ({result.step})")
        png = None
        if complete:
            write_dicom_map(image, series, out / "dicom" / image.name,
                            series_number=base_number + index, step=result.step,
                            salt=json.dumps(result.parameters, sort_keys=True, default=str))
            png = write_preview(image.values, out / "png" / f"{image.name}.png",
                                title=f"{image.name} ({result.step}, scan "
                                      f"{', '.join(scans.values())})", unit=image.unit)
        else:
            _drop_location(entry)
        stats[image.name] = entry
        sections.append({"name": image.name, "unit": image.unit,
                         "description": image.description, "stats": entry, "png": png,
                         "status_png": status_png})
    summary = {"step": result.step, "scans": scans, "outcome": result.outcome,
               "outcome_reason": result.outcome_reason, "noise": result.noise,
               "mask_voxels": int(result.mask.sum()),
               "failed_voxels": int(result.failed.sum()), "maps": stats,
               "status_codes": {int(c): name for c, name in VOXEL_STATUS_NAMES.items()}}
    (out / "stats.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _csv(out / "stats.csv", stats)
    meta = {"outcome": result.outcome + (f": {result.outcome_reason}"
                                          if result.outcome_reason else ""),
            "scans": ", ".join(f"{role}: {sid}" for role, sid in scans.items()),
            "series": "; ".join(f"{s.description} ({s.series_instance_uid})"
                                for s in result.series),
            "mask": f"{int(result.mask.sum())} voxels, {int(result.failed.sum())} failed",
            **({"model": str(result.parameters["model"])}
               if result.parameters.get("model") else {}),
            **({"why this model": str(result.parameters["model_reason"])}
               if result.parameters.get("model_reason") else {}),
            **({"noise": _noise_line(result.noise)} if result.noise else {}),
            "parameters": json.dumps(result.parameters, default=str)[:600],
            "xnatpic": __version__}
    write_html_report(out / "report.html", title=f"xnatpic {result.step}", meta=meta,
                      sections=sections)
    provenance = {
        "xnatpic_version": __version__, "step": result.step,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command_line": argv, "parameters": result.parameters, "scans": scans,
        "inputs": [_series_uids(s) for s in result.series],
        "outputs": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    _log.info("wrote %s", out)
    return summary

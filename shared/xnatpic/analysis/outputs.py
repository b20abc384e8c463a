"""Everything a step writes for its maps: one folder per run.

Layout of the output folder OUT (stored as one session resource, e.g. ``T1MAP``; a later
run on another scan or with another method adds its folder to the same resource, as
Container Service's ``insertResources`` merges into an existing label)::

    OUT/<run-key>/               run-key = <method>-scan<source scan id>, lower case
                                 (:func:`xnatpic.analysis.run_info.run_key`), e.g.
                                 vtr-scan11, ir-scan13, nlls-scan2
        report.html              one page: subject, session, outcome, parameters,
                                 previews, statistics and statuses
        stats.json, stats.csv    statistics over the mask of every map, each with its
                                 ``unit`` and ``role`` (primary, byproduct, spectrum);
                                 slices numbered from 1; in stats.json a primary map's
                                 ``preview_figure`` and ``status_preview_figure``
                                 (colour bar, legend: :meth:`Preview.describe
                                 <xnatpic.analysis.previews.Preview.describe>`)
        provenance.json          step, method, run_key, scans (``source`` first), session
                                 (label, subject), parameters, input UIDs; relative paths
        nifti/<map>.nii.gz       every map (and mask.nii.gz) on the source geometry
        nifti/<map>_status.nii.gz  per-voxel status codes of each primary map
                                 (:class:`xnatpic.models.results.VoxelStatus`: 0 outside
                                 the mask, 1 fitted, 2 long, 3 short, 4 no signal, >= 5
                                 failed with the reason)
        dicom/<map>/*.dcm        primary maps as derived MR Image Storage series
        png/<map>.png            previews of the primary maps with the voxel status
                                 painted over (and <map>_status.png); zspectrum.svg
                                 (CEST, a plot), V1_direction.png (DTI)

Outcome of a run (``stats.json`` ``outcome``, the report's banner, the step's stderr):
``complete``; ``mostly failed`` when a primary map is valid (fitted within its
measurable range) in fewer than :data:`VALID_FRACTION_MIN` of the mask voxels — the
maps are written and the exit is 0, with a warning; ``not enough signal`` when the noise
gate finds that the data cannot support the map: only the mask, the status maps, the
report, the statistics (fractions, no location statistics) and the provenance are
written.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic import __version__
from xnatpic.analysis.dicom_maps import write_dicom_map
from xnatpic.analysis.inputs import AnalysisSeries
from xnatpic.analysis.maps import MapImage, StepResult
from xnatpic.analysis.previews import (
    write_direction_preview,
    write_preview,
    write_status_preview,
    write_zspectrum_plot,
)
from xnatpic.analysis.report import write_html_report
from xnatpic.analysis.run_info import PathScrubber, run_key, session_identity, tidy
from xnatpic.analysis.stats import STAT_KEYS, Region, map_statistics
from xnatpic.models._blocks import threads_setting
from xnatpic.models.results import VOXEL_STATUS_NAMES, VoxelStatus
from xnatpic.nifti.file import write_nifti_array

__all__ = ["MOSTLY_FAILED", "VALID_FRACTION_MIN", "write_nifti", "write_outputs"]

_log = logging.getLogger(__name__)


class _InOrder(Executor):
    """An executor that runs each call when it is submitted (its error raised there): the
    files of a run written one after the other, where a second CPU is not available to
    the process."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _file_writer() -> Executor:
    """The executor of a run's NIfTI files and previews: one thread when the fits would
    use two threads or more (:func:`~xnatpic.models._blocks.threads_setting`: the CPUs
    this process may use, container limit included, that are idle, or
    ``XNATPIC_THREADS``), else :class:`_InOrder`: threads sharing one busy CPU switch more
    than they save (measured: 12 ms saved of 44 on an idle second CPU, 7 ms lost on a
    busy one)."""
    if threads_setting() > 1:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")
    return _InOrder()


#: A primary map valid (fitted within range) in fewer of the mask voxels than this is
#: "mostly failed".
VALID_FRACTION_MIN = 0.5
#: The outcome of such a run.
MOSTLY_FAILED = "mostly failed"

#: What each step makes, for titles.
STEP_TITLES = {"t2map": "T2 map", "t2starmap": "T2* map", "t1map": "T1 map",
               "adcmap": "ADC / DTI maps", "cest": "CEST maps", "perfusion": "Perfusion map"}

#: How slices are numbered in stats.json (said there).
SLICE_NUMBERING = ("1-based: slice 1 is the first slice along the NIfTI z axis, as in the "
                   "report, the CSV and the previews")

_LOCATION = ("mean", "sd", "median", "q1", "q3", "iqr", "min", "max")


def write_nifti(values: np.ndarray, series: AnalysisSeries, path: Path,
                dtype: type = np.float32) -> Path:
    """Write a map (X, Y, Z[, C]) as ``dtype`` with the RAS affine of ``series`` (sform
    and qform, code 1), units mm and s, gzip-compressed: the converter's NIfTI writer
    (:func:`xnatpic.nifti.file.write_nifti_array`)."""
    return write_nifti_array(np.asarray(values, dtype=dtype), series.affine, path,
                             descrip=f"xnatpic {__version__}")


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
        writer.writerow(["map", "role", "unit", "slice", *STAT_KEYS])
        for name, entry in stats.items():
            if "whole" not in entry:
                continue
            rows = [("all", entry["whole"])] + [(s["slice"], s) for s in entry["slices"]]
            for label, s in rows:
                writer.writerow([name, entry["role"], entry["unit"], label,
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
        for key in _LOCATION:
            part[key] = None


def _spectrum_entry(image: MapImage, valid: np.ndarray,
                    offsets: list[float]) -> dict[str, Any]:
    """Mean and SD over ``valid`` voxels of a spectrum (X, Y, Z, N) at each offset (a
    voxel without a value at some offset, e.g. shifted past the sampled range by the B0
    correction, counts at the others)."""
    values = np.asarray(image.values, dtype=np.float64)[valid]
    values = values[np.isfinite(values).any(axis=1)]
    n = int(values.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.isfinite(values).sum(axis=0)
        mean = np.where(counts > 0, np.nanmean(values, axis=0) if n else np.nan, np.nan)
        sd = np.where(counts > 1, np.nanstd(values, axis=0, ddof=1) if n else np.nan,
                      np.nan)
    return {"unit": image.unit, "role": image.role, "description": image.description,
            "offsets_ppm": offsets, "n_voxels": n,
            "n_voxels_per_offset": counts.tolist() if n else None,
            "mean": mean.tolist() if n else None, "sd": sd.tolist() if n > 1 else None}


def _valid_fraction(entry: dict[str, Any]) -> float | None:
    return entry["whole"].get("fraction_fitted")


def _outcome(result: StepResult, stats: dict[str, dict[str, Any]]
             ) -> tuple[str, str, float | None]:
    """(outcome, reason, lowest valid fraction of the primary maps)."""
    fractions = {name: _valid_fraction(entry) for name, entry in stats.items()
                 if entry["role"] == "primary" and "whole" in entry}
    known = {k: v for k, v in fractions.items() if v is not None}
    lowest = min(known.values()) if known else None
    if result.outcome != "complete":
        return result.outcome, result.outcome_reason, lowest
    low = {k: v for k, v in known.items() if v < VALID_FRACTION_MIN}
    if low:
        detail = ", ".join(f"{name} valid in {100 * v:.0f} %" for name, v in low.items())
        return (MOSTLY_FAILED, f"{detail} of the {int(result.mask.sum())} mask voxels "
                f"(fitted within the measurable range; at least "
                f"{100 * VALID_FRACTION_MIN:.0f} % expected): the values describe the "
                "minority of voxels that fitted; see the status maps", lowest)
    return "complete", "", lowest


def _banner(outcome: str, reason: str, lowest: float | None) -> tuple[str, str]:
    if outcome == "complete":
        valid = "" if lowest is None else f"; {100 * lowest:.1f} % of the mask valid"
        return "complete", f"Complete{valid}"
    return "warning", f"{outcome.capitalize()}: {reason}"


def _session_line(session: dict[str, str]) -> str:
    if not session:
        return "subject and session unknown (not in the DICOM routing or headers)"
    return (f"subject {session.get('subject', 'unknown')} · session "
            f"{session.get('label', 'unknown')}")


def _figures(result: StepResult, png: Path, stats: dict[str, dict[str, Any]], title: str,
             valid: np.ndarray) -> list[tuple[str, Path]]:
    """The Z-spectrum plot (CEST) and the V1 direction map (DTI)."""
    figures: list[tuple[str, Path]] = []
    curves = {f"{label}, {stats[name]['n_voxels']} voxels": (
        np.asarray(stats[name]["mean"], dtype=float),
        np.nan_to_num(np.asarray(stats[name]["sd"] or np.zeros(len(stats[name]["mean"])),
                                 dtype=float)))
        for name, label in (("Z", "measured"), ("Z_B0corrected", "B0-corrected"))
        if name in stats and stats[name].get("mean")}
    if curves:
        offsets = np.asarray(result.parameters["offsets_ppm"], dtype=float)
        figures.append(("Z-spectrum", write_zspectrum_plot(
            offsets, curves, png / "zspectrum.svg",
            title=f"{title}: Z-spectrum over the fitted mask voxels")))
    by_name = {m.name: m for m in result.maps}
    if "V1" in by_name and "FA" in by_name:
        fa = np.where(valid, by_name["FA"].values, np.nan)
        figures.append(("Principal diffusion direction (V1)", write_direction_preview(
            by_name["V1"].values, fa, png / "V1_direction.png",
            title=f"{title}: V1 colour by direction")))
    return figures


def _submit_files(pool: Executor, result: StepResult, run: Path, title: str
                  ) -> dict[tuple[str, str], Future]:
    """Submit every preview and NIfTI file of a run to ``pool``, the previews first (the
    report waits for them): futures by (map name, ``status_png``, ``png``, ``nifti`` or
    ``status_nifti``; the mask as ``mask``)."""
    series = result.series[0]
    complete = result.outcome == "complete"
    primary = [m for m in result.maps if m.primary]
    files: dict[tuple[str, str], Future] = {}
    for image in primary:
        if image.status is not None:
            files[image.name, "status_png"] = pool.submit(
                write_status_preview, image.status, run / "png" / f"{image.name}_status.png",
                title=f"{image.name} voxel status ({title})")
        if complete:
            files[image.name, "png"] = pool.submit(
                write_preview, image.values, run / "png" / f"{image.name}.png",
                title=f"{image.name} ({title})", unit=image.unit, status=image.status,
                signed=image.name.startswith(("MTRasym", "B0"))
                and not image.name.endswith("_precision"),
                fences=image.name.startswith("ratio_"))
    nifti = run / "nifti"
    files["mask", "nifti"] = pool.submit(write_nifti, result.mask.astype(np.float32), series,
                                         nifti / "mask.nii.gz")
    if complete:
        for image in result.maps:
            files[image.name, "nifti"] = pool.submit(write_nifti, image.values, series,
                                                     nifti / f"{image.name}.nii.gz")
    for image in primary:
        if image.status is not None:
            files[image.name, "status_nifti"] = pool.submit(
                write_nifti, image.status, series, nifti / f"{image.name}_status.nii.gz",
                dtype=np.uint8)
    return files


def _statistics_and_dicom(result: StepResult, run: Path, files: dict[tuple[str, str], Future],
                          primary: list[MapImage], valid: np.ndarray
                          ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The statistics of every map (a spectrum's over ``valid``) and the report's section
    of each primary map (its description not yet scrubbed), the DICOM maps written;
    waits for ``files``."""
    series = result.series[0]
    complete = result.outcome == "complete"
    stats: dict[str, dict[str, Any]] = {}
    region = Region.of(result.mask)  # found once for every map
    offsets = list(result.parameters.get("offsets_ppm") or [])
    for image in result.maps:
        if image.role == "spectrum":
            stats[image.name] = _spectrum_entry(image, valid, offsets)
        elif not image.primary:
            entry: dict[str, Any] = {"unit": image.unit, "role": image.role,
                                     "description": image.description}
            if image.values.ndim == 3:
                entry.update(map_statistics(image.values, region))
            else:
                entry["components"] = int(image.values.shape[3])
            stats[image.name] = entry
        else:
            stats[image.name] = {"unit": image.unit, "role": image.role,
                                 "description": image.description,
                                 **map_statistics(image.values, region, image.status)}
    base_number = int(series.header.get("SeriesNumber", 0) or 0) * 100
    if complete:  # before waiting for the previews
        salt = json.dumps(result.parameters, sort_keys=True, default=str)
        for index, image in enumerate(primary, start=1):
            write_dicom_map(image, series, run / "dicom" / image.name,
                            series_number=base_number + index, step=result.step, salt=salt)
    sections = []
    for image in primary:
        entry = stats[image.name]
        entry["valid_fraction"] = entry["whole"].get("fraction_fitted")
        status_png = None
        if image.status is not None:
            status_png = files[image.name, "status_png"].result()
            entry["status_preview_figure"] = status_png.describe()
        png = None
        if complete:
            entry["dicom"] = f"dicom/{image.name}"
            entry["preview"] = f"png/{image.name}.png"
            png = files[image.name, "png"].result()
            entry["preview_figure"] = png.describe()
        else:
            _drop_location(entry)
        sections.append({"name": image.name, "unit": image.unit,
                         "description": image.description, "stats": entry,
                         "png": png, "status_png": status_png})
    for future in files.values():  # every file written (or its error raised)
        future.result()
    return stats, sections


def write_outputs(result: StepResult, out: Path, *, scans: dict[str, str],
                  argv: list[str] | None = None, input_root: Path | None = None,
                  output_root: Path | None = None) -> dict[str, Any]:
    """Write NIfTI, DICOM, PNG, HTML, statistics and provenance of one run of a step.

    Parameters
    ----------
    result : StepResult
        The maps.
    out : Path
        Output folder; the run goes to ``out/<run-key>/`` (replaced if present).
    scans : dict
        Role -> scan id of the inputs (``{"source": "2"}``, ``{"cest": "7", "wassr":
        "8"}``); ``source`` (added from the first role when absent) keys the run.
    argv : list of str, optional
        The step's command line, kept in the provenance (mount paths replaced).
    input_root, output_root : Path, optional
        The mounted session and output folder: their host paths become ``/input``,
        ``/output`` or relative paths in the report and provenance.

    Returns
    -------
    dict
        The statistics written to ``stats.json`` (with ``run_key``).
    """
    scans = {"source": next(iter(scans.values())), **scans} if "source" not in scans \
        else scans
    key = run_key(result.step, result.parameters, scans)
    run = out / key
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    scrub = PathScrubber(input_root, output_root)
    series = result.series[0]
    session = session_identity(series.header, input_root)
    complete = result.outcome == "complete"
    title = f"{STEP_TITLES.get(result.step, result.step)}, scan {scans['source']}"
    primary: list[MapImage] = [m for m in result.maps if m.primary]
    headline = next((m.status for m in primary if m.status is not None), None)
    valid = result.mask if headline is None else headline == VoxelStatus.FITTED
    # the NIfTI files and previews are made (compressed) in a thread while this one
    # computes the statistics and writes the DICOM maps; each file is the same either way
    with _file_writer() as pool:
        files = _submit_files(pool, result, run, title)
        stats, sections = _statistics_and_dicom(result, run, files, primary, valid)
    outcome, reason, lowest = _outcome(result, stats)
    for section in sections:
        section["description"] = scrub.text(section["description"])
    figures = _figures(result, run / "png", stats, title, valid) if complete else []
    summary = {"step": result.step, "method": key.rsplit("-scan", 1)[0], "run_key": key,
               "scans": scans, "session": session, "outcome": outcome,
               "outcome_reason": scrub.text(reason), "valid_fraction": lowest,
               "valid_fraction_threshold": VALID_FRACTION_MIN,
               "noise": result.noise, "mask_voxels": int(result.mask.sum()),
               "failed_voxels": int(result.failed.sum()),
               "slice_numbering": SLICE_NUMBERING, "maps": stats,
               "status_codes": {int(c): name for c, name in VOXEL_STATUS_NAMES.items()}}
    summary = tidy(scrub(summary))
    (run / "stats.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n",
                                    encoding="utf-8")
    _csv(run / "stats.csv", summary["maps"])
    parameters = tidy(scrub(result.parameters))
    meta = {"run": key, "scans": ", ".join(f"{role}: {sid}" for role, sid in scans.items()),
            "series": "; ".join(f"{s.description} ({s.series_instance_uid})"
                                for s in result.series),
            "mask": f"{int(result.mask.sum())} voxels, {int(result.failed.sum())} failed",
            **({"model": str(parameters["model"])} if parameters.get("model") else {}),
            **({"why this model": str(parameters["model_reason"])}
               if parameters.get("model_reason") else {}),
            **({"noise": _noise_line(result.noise)} if result.noise else {}),
            "xnatpic": __version__}
    write_html_report(run / "report.html", title=f"{title} ({key})",
                      subtitle=_session_line(session),
                      outcome=_banner(outcome, summary["outcome_reason"], lowest),
                      meta=meta, parameters=parameters, sections=sections, figures=figures)
    provenance = {
        "xnatpic_version": __version__, "step": result.step, "method": summary["method"],
        "run_key": key, "session": session,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command_line": argv, "parameters": result.parameters, "scans": scans,
        "inputs": [_series_uids(s) for s in result.series],
        "outputs": sorted(p.relative_to(run).as_posix() for p in run.rglob("*")
                          if p.is_file()),
    }
    (run / "provenance.json").write_text(
        json.dumps(tidy(scrub(provenance)), indent=2, allow_nan=False) + "\n",
        encoding="utf-8")
    _log.info("wrote %s", run)
    return summary

"""A study summarised as plain data: scans, methods, dimensions, frame groups, key parameters."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnatpic.errors import XnatpicError
from xnatpic.paravision.dataset import Reco, Scan, Study
from xnatpic.paravision.jcamp import ParameterSet
from xnatpic.paravision.series import classify_reco, load_series

__all__ = ["study_summary"]


def _text(params: ParameterSet | None, name: str) -> str | None:
    return None if params is None else params.text(name)


def _distinct(values: list[float | None]) -> list[float]:
    return sorted({round(v, 4) for v in values if v is not None})


#: Plane named by the subject axis the slice normal is closest to (x: left-right,
#: y: anterior-posterior, z: head-foot of the subject, as ParaVision orients them).
_PLANES = ("sagittal", "coronal", "axial")


def _planes(images: list[Any]) -> list[str]:
    """The distinct imaging planes of a series, in order of appearance (one per package;
    ``oblique`` when the normal is more than 1 degree off the nearest axis)."""
    planes: list[str] = []
    for image in images:
        normal = np.abs(np.asarray(image.orientation, dtype=float)[2])
        axis = int(np.argmax(normal))
        plane = _PLANES[axis] if normal[axis] > np.cos(np.radians(1.0)) else (
            f"oblique ({_PLANES[axis]})")
        if plane not in planes:
            planes.append(plane)
    return planes


def _reco_summary(reco: Reco) -> dict[str, Any]:
    info: dict[str, Any] = {"reco": reco.number}
    try:
        reason = classify_reco(reco)
        if reason is not None:
            info["image"] = False
            info["reason"] = reason
            return info
        series = load_series(reco)
    except XnatpicError as exc:
        info["image"] = False
        info["error"] = str(exc)
        return info
    images = series.images
    info.update({
        "image": True,
        "word_type": series.stack.dtype.name,
        "dim": series.geometry.dim,
        "matrix": [series.rows, series.columns],
        "pixel_spacing_mm": [round(v, 6) for v in series.pixel_spacing],
        "slice_thickness_mm": round(series.slice_thickness, 6),
        "frames": series.stack.frame_count,
        "images": len(images),
        "frame_groups": [{"id": g.id, "axis": g.name, "size": g.size, "comment": g.comment}
                         for g in series.layout.groups],
        "slice_packages": series.package_count,
        "orientation": _planes(images),
        "echo_times_ms": _distinct([im.echo_time for im in images]),
        "repetition_times_ms": _distinct([im.repetition_time for im in images]),
        "inversion_times_ms": _distinct([im.inversion_time for im in images]),
        "flip_angles_deg": _distinct([im.flip_angle for im in images]),
        "b_values": _distinct([im.diffusion.b_value if im.diffusion else None for im in images]),
        "saturation_offsets_ppm": _distinct([im.saturation_offset_ppm for im in images]),
    })
    return {k: v for k, v in info.items() if v not in ([], None)}


def _scan_summary(scan: Scan) -> dict[str, Any]:
    info: dict[str, Any] = {"scan": scan.id}
    try:
        info["method"] = _text(scan.method, "Method") or _text(scan.acqp, "ACQ_method")
        info["protocol"] = _text(scan.acqp, "ACQ_scan_name") or _text(scan.acqp,
                                                                       "ACQ_protocol_name")
    except XnatpicError as exc:
        info["error"] = str(exc)
    info["recos"] = [_reco_summary(r) for r in scan.recos]
    if not scan.recos:
        info["reason"] = "no reconstruction (pdata) in this scan"
    return {k: v for k, v in info.items() if v is not None}


def study_summary(study: Study) -> dict[str, Any]:
    """Summarise a study for ``xnatpic info``.

    Returns
    -------
    dict
        ``path``, ``subject`` (id, name, species/type, sex, weight when present),
        ``scans``: per scan its method, protocol and per reco the matrix, frame groups
        and distinct TE/TR/TI/flip/b/saturation offsets, or why it is not an image.
    """
    subject = study.subject
    subject_info = {}
    if subject is not None:
        for key, name in (("id", "SUBJECT_id"), ("name", "SUBJECT_name_string"),
                          ("study", "SUBJECT_study_name"), ("type", "SUBJECT_type"),
                          ("sex", "SUBJECT_sex"), ("weight", "SUBJECT_weight"),
                          ("position", "SUBJECT_position")):
            value = _text(subject, name)
            if value:
                subject_info[key] = value
    return {
        "path": str(study.source or study.path),
        "subject": subject_info,
        "scans": [_scan_summary(s) for s in study.scans],
    }

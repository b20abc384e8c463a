"""The JSON sidecar of a series: every ParaVision parameter of its reco, so nothing is lost.

``<package>.paravision.json`` holds the identity of the output series, how its frames map
to the 2dseq, and the full ``subject``, ``acqp``, ``method``, ``visu_pars`` and ``reco``
parameter sets (with their header records) serialised to JSON: numpy arrays become
(nested) lists, structs become lists, non-finite floats become the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``. With de-identification, identifying parameters are
allow-listed and cleaned (see :mod:`xnatpic.dicom.deidentify_sidecar`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

import xnatpic
from xnatpic.dicom.context import SeriesContext
from xnatpic.dicom.deidentify import DeidentifyProfile
from xnatpic.dicom.deidentify_sidecar import deidentified_headers, deidentified_parameters
from xnatpic.dicom.deidentify_text import clean_text, identity_tokens
from xnatpic.errors import ConversionError
from xnatpic.paravision.jcamp import ParameterSet

__all__ = ["SIDECAR_FORMAT", "jsonable", "sidecar_document", "write_sidecar"]

SIDECAR_FORMAT = "xnatpic-paravision-sidecar/1"
#: Sidecar key → ParaVision file, in the order they are written.
FILES: tuple[tuple[str, str], ...] = (
    ("subject", "subject"), ("acqp", "acqp"), ("method", "method"),
    ("visu_pars", "visu"), ("reco", "reco"),
)


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def jsonable(value: Any) -> Any:
    """``value`` as JSON-serialisable Python (numpy → lists, tuples → lists)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # already JSON numbers (the common, large case)
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def _relative(path: str | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def _parameters(file: str, params: ParameterSet, root: Path,
                profile: DeidentifyProfile | None, tokens: frozenset[str]) -> dict:
    values = {name: jsonable(value) for name, value in params.items()}
    if profile is None:
        return {"file": _relative(params.path, root), "headers": dict(params.headers),
                "parameters": values}
    return {"file": Path(params.path or file).name,
            "headers": deidentified_headers(dict(params.headers), tokens),
            "parameters": deidentified_parameters(file, values, profile, tokens)}


def sidecar_document(ctx: SeriesContext, files: list[Path], indices: list[int]) -> dict:
    """The sidecar of one output series as a JSON-ready dict."""
    reco = ctx.series.reco
    root = reco.scan.study.path
    deidentify = ctx.deidentify is not None
    by_index = {im.index: im for im in ctx.images}
    tokens = identity_tokens(ctx.parameter_sets) if deidentify else frozenset()
    frames = [
        {"number": number, "image_index": index, "frame": by_index[index].frame,
         "slice_in_frame": by_index[index].slice_in_frame, "axes": by_index[index].axes}
        for number, index in enumerate(indices, 1)
    ]
    document: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "xnatpic_version": xnatpic.__version__,
        "scan": reco.scan.id,
        "reco": reco.number,
        "package": ctx.package,
        "study_instance_uid": ctx.uids.study,
        "series_instance_uid": ctx.uids.series,
        "sop_class_uid": ctx.series_value("sop_class_uid"),
        "deidentified": deidentify,
        "pixel_encoding": ctx.pixels.reason,
        "files": [f.name for f in files],
        "frames": frames,
        "frame_groups": [{"id": g.id, "axis": g.name, "size": g.size,
                          "comment": clean_text(g.comment or "", tokens) if deidentify
                          else g.comment}
                         for g in ctx.series.layout.groups],
        "parameters": {},
    }
    for key, file in FILES:
        params = ctx.parameter_sets[file]
        if params is not None:
            document["parameters"][key] = _parameters(file, params, root, ctx.deidentify,
                                                      tokens)
    return document


def write_sidecar(ctx: SeriesContext, path: Path, files: list[Path],
                  indices: list[int]) -> Path:
    """Write the sidecar of a series to ``path``.

    Raises
    ------
    ConversionError
        When the file cannot be written.
    """
    document = sidecar_document(ctx, files, indices)
    try:
        path.write_text(json.dumps(document, ensure_ascii=False, allow_nan=False)
                        + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConversionError(f"{ctx.where}: writing the sidecar {path} failed: {exc}") from exc
    return path

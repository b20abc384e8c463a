"""Acquisition parameters from the converter's ParaVision sidecar, when it is present.

The converter writes ``<n>.paravision.json`` beside a scan's DICOM files with the
ParaVision method and visu_pars parameters (``parameters.method.parameters``). DICOM has
no attribute for the refocusing pulse of a multi-echo spin echo, so the nominal angle is
read from there (``RefPulse1``: ``(duration, bandwidth, flip angle, ...)``). Foreign DICOM
has no sidecar: the value is then unknown (None), which the EPG fit does not need.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

__all__ = ["method_parameter", "nominal_refocusing_angle"]

_log = logging.getLogger(__name__)


def method_parameter(folder: Path, name: str) -> object | None:
    """The ParaVision method parameter ``name`` from a sidecar in ``folder`` or in another
    resource of the same scan (``SCANS/<id>/*/``), or None."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.paravision.json")) + sorted(
        p for p in folder.parent.glob("*/*.paravision.json") if p.parent != folder)
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            _log.warning("%s: unreadable ParaVision sidecar (%s); ignored", path, exc)
            continue
        params = (data.get("parameters", {}).get("method", {}) or {}).get("parameters", {})
        if name in params:
            return params[name]
    return None


def nominal_refocusing_angle(folder: Path) -> float | None:
    """The nominal refocusing angle in degrees (``RefPulse1``'s flip angle), or None."""
    pulse = method_parameter(folder, "RefPulse1")
    if isinstance(pulse, list) and len(pulse) > 2:
        try:
            return float(pulse[2])
        except (TypeError, ValueError):
            return None
    return None

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

from pydicom.dataset import Dataset

__all__ = ["echo_train_duration", "method_parameter", "nominal_refocusing_angle"]

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


def _first(ds: Dataset, keyword: str) -> object | None:
    """The first value of ``keyword`` in ``ds`` or its nested sequences (enhanced MR)."""
    if keyword in ds:
        return ds.get(keyword)
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found = _first(item, keyword)
                if found is not None:
                    return found
    return None


def echo_train_duration(folder: Path, header: Dataset) -> tuple[float, str]:
    """Excitation-to-last-echo time (ms) of a RARE readout and where it came from.

    ParaVision sidecar: ``PVM_RareFactor x PVM_EchoTime`` (the echo spacing). DICOM alone:
    ``EchoTrainLength x EchoTime``, which is the train when the effective echo is the
    first one (RARE-VTR's default encoding) and too long otherwise. ``(0.0, reason)`` when
    neither is known.
    """
    rare = method_parameter(folder, "PVM_RareFactor")
    esp = method_parameter(folder, "PVM_EchoTime")
    try:
        if rare is not None and esp is not None:
            return float(rare) * float(esp), (
                f"ParaVision sidecar: RARE factor {float(rare):g} x echo spacing "
                f"{float(esp):g} ms")
        etl, te = _first(header, "EchoTrainLength"), _first(header, "EchoTime")
        if etl is not None and te is not None:
            return float(etl) * float(te), (
                f"DICOM: EchoTrainLength {float(etl):g} x EchoTime {float(te):g} ms "
                "(assumes the first echo is the effective one)")
    except (TypeError, ValueError) as exc:
        _log.warning("%s: echo-train duration unreadable (%s); nominal TR used", folder, exc)
    return 0.0, "unknown (no RARE factor or echo train length): nominal TR used"

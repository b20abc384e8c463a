"""Per-frame acquisition parameters: TE, TR, TI, flip angle, diffusion and CEST offsets.

Each function returns one value per 2dseq frame (None where unknown), using the frame
groups to decide which element of a parameter array belongs to which frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xnatpic.paravision.framegroups import FrameLayout
from xnatpic.paravision.jcamp import ParameterSet

__all__ = [
    "DiffusionEncoding",
    "diffusion_per_frame",
    "imaging_frequency_mhz",
    "saturation_offsets_hz",
    "scalar_per_frame",
]

#: Offsets whose magnitude is at least this many ppm are far off resonance (M0 frames).
M0_THRESHOLD_PPM = 20.0


def _first_float(value: Any) -> float | None:
    if value is None:
        return None
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    return float(arr[0]) if arr.size else None


def scalar_per_frame(layout: FrameLayout, params: ParameterSet | None,
                     name: str) -> list[float | None]:
    """One float per frame for a scalar-per-element parameter (e.g. VisuAcqEchoTime)."""
    none: list[float | None] = [None] * layout.frame_count
    if params is None:
        return none
    values = layout.per_frame(params, name)
    if values is None:
        return none
    return [_first_float(v) for v in values]


def imaging_frequency_mhz(visu: ParameterSet, method: ParameterSet | None,
                          acqp: ParameterSet | None) -> float | None:
    """The proton imaging frequency f0 in MHz (VisuAcqImagingFrequency, PVM_FrqWork, BF1)."""
    for params, name in ((visu, "VisuAcqImagingFrequency"), (method, "PVM_FrqWork"),
                         (acqp, "BF1"), (acqp, "SFO1")):
        if params is not None and name in params:
            f0 = _first_float(params[name])
            if f0 and f0 > 0:
                return f0
    return None


def _offset_list_hz(method: ParameterSet, f0_mhz: float | None) -> np.ndarray | None:
    if "PVM_SatTransFreqValues" in method and str(method.get("PVM_SatTransOnOff", "On")) != "Off":
        values = np.atleast_1d(np.asarray(method["PVM_SatTransFreqValues"], dtype=np.float64))
        unit = str(method.get("PVM_SatTransFreqUnit", "unit_hz"))
        if unit == "unit_ppm":
            if f0_mhz is None:
                return None
            return values * f0_mhz
        return values
    for name in ("PVM_ppgFreqList1", "SatFreqList", "PVM_MagTransFreqList"):
        if name in method:
            values = np.atleast_1d(np.asarray(method[name], dtype=np.float64))
            if values.size > 1:
                return values
    if str(method.get("PVM_MagTransOnOff", "Off")) == "On" and "PVM_MagTransOffset" in method:
        return np.atleast_1d(np.asarray(method["PVM_MagTransOffset"], dtype=np.float64))
    return None


def saturation_offsets_hz(layout: FrameLayout, method: ParameterSet | None,
                          f0_mhz: float | None) -> list[float | None]:
    """CEST/MT saturation offset of every frame in Hz (None without saturation).

    The offset list (PVM_SatTransFreqValues in Hz or ppm, user lists such as
    PVM_ppgFreqList1 in Hz, or the single PVM_MagTransOffset) runs along the
    repetition-like axes (everything but slice, echo and complex); when those hold a
    multiple of the list's length the list repeats (pv6-acidocest scan 4: 44 offsets,
    176 repetitions).
    """
    none: list[float | None] = [None] * layout.frame_count
    if method is None:
        return none
    offsets = _offset_list_hz(method, f0_mhz)
    if offsets is None or offsets.size == 0:
        return none
    if offsets.size == 1:
        return [float(offsets[0])] * layout.frame_count
    axes = [k for k, g in enumerate(layout.groups) if g.name not in ("slice", "echo", "complex")]
    if not axes:
        return none
    sizes = [layout.groups[k].size for k in axes]
    total = int(np.prod(sizes))
    if total % offsets.size != 0:
        return none
    linear = np.ravel_multi_index(tuple(layout.indices[:, k] for k in axes), sizes, order="F")
    return [float(offsets[i % offsets.size]) for i in linear]


@dataclass(frozen=True)
class DiffusionEncoding:
    """Diffusion weighting of one frame.

    Attributes
    ----------
    b_value : float
        Effective b-value in s/mm².
    direction_logical : numpy.ndarray or None
        Unit gradient direction in the (read, phase, slice) gradient frame; None for
        frames without a diffusion gradient (the A0 images).
    b_matrix : numpy.ndarray or None
        3×3 b-matrix in s/mm² as ParaVision reports it in VisuAcqDiffusionBMatrix.
    """

    b_value: float
    direction_logical: np.ndarray | None
    b_matrix: np.ndarray | None


def diffusion_per_frame(layout: FrameLayout, visu: ParameterSet,
                        method: ParameterSet | None) -> list[DiffusionEncoding | None]:
    """Diffusion encoding of every frame, along the FG_DIFFUSION axis."""
    none: list[DiffusionEncoding | None] = [None] * layout.frame_count
    group = layout.group("diffusion")
    if group is None or method is None or "PVM_DwEffBval" not in method:
        return none
    bvals = np.atleast_1d(np.asarray(method["PVM_DwEffBval"], dtype=np.float64))
    grads = method.get("PVM_DwGradVec")
    grads = None if grads is None else np.asarray(grads, dtype=np.float64).reshape(-1, 3)
    bmat = visu.get("VisuAcqDiffusionBMatrix")
    bmat = None if bmat is None else np.asarray(bmat, dtype=np.float64).reshape(-1, 3, 3)
    encodings: list[DiffusionEncoding | None] = []
    for frame in range(layout.frame_count):
        k = layout.index(frame, "diffusion")
        if k is None or k >= bvals.size:
            encodings.append(None)
            continue
        direction = None
        if grads is not None and k < len(grads):
            norm = float(np.linalg.norm(grads[k]))
            if norm > 1e-9:
                direction = grads[k] / norm
        matrix = bmat[k] if bmat is not None and k < len(bmat) else None
        encodings.append(DiffusionEncoding(float(bvals[k]), direction, matrix))
    return encodings

"""Per-frame acquisition parameters: TE, TR, TI, flip angle, diffusion, CEST offsets and
the inversion timing of FAIR scans (slice delay after the inversion, readout, mode).

Each function returns one value per 2dseq frame (None where unknown), using the frame
groups to decide which element of a parameter array belongs to which frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from xnatpic.paravision.framegroups import FrameLayout
from xnatpic.paravision.jcamp import ParameterSet

__all__ = [
    "DiffusionEncoding",
    "InversionTiming",
    "diffusion_per_frame",
    "imaging_frequency_mhz",
    "inversion_timing",
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
    if str(method.get("PVM_SatTransOnOff", "On")) != "Off" and "PVM_SatTransFreqValues" not in \
            method and "PVM_SatTransFL" in method:
        # The module's derived frequency list (Hz) without the user's values.
        values = np.atleast_1d(np.asarray(method["PVM_SatTransFL"], dtype=np.float64))
        if values.size > 1:
            return values
    if "PVM_SatTransFreqValues" in method and str(method.get("PVM_SatTransOnOff", "On")) != "Off":
        values = np.atleast_1d(np.asarray(method["PVM_SatTransFreqValues"], dtype=np.float64))
        unit = str(method.get("PVM_SatTransFreqUnit", "unit_hz"))
        if unit == "unit_ppm":
            if f0_mhz is None:
                return None
            return values * f0_mhz
        return values
    # CestArray: PV5 custom CEST methods (cESTFISP_SSprep_gate), in Hz as their
    # "VCEST= x Hz" frame comments.
    for name in ("PVM_ppgFreqList1", "SatFreqList", "PVM_MagTransFreqList", "CestArray"):
        if name in method:
            values = np.atleast_1d(np.asarray(method[name], dtype=np.float64))
            if values.size > 1:
                return values
    if str(method.get("PVM_MagTransOnOff", "Off")) == "On" and "PVM_MagTransOffset" in method:
        return np.atleast_1d(np.asarray(method["PVM_MagTransOffset"], dtype=np.float64))
    return None


#: A saturation offset written in a frame comment: ``VCEST= -1000.0Hz`` (Pagel's PV5 CEST
#: methods put it in ACQ_movie_descr, ParaVision copies it to VisuFGElemComment).
_COMMENT_OFFSET = re.compile(
    r"\bV?CEST\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(Hz|ppm)\b",
    re.IGNORECASE)


def _comment_offset_hz(comment: Any, f0_mhz: float | None) -> float | None:
    match = _COMMENT_OFFSET.search(str(comment or ""))
    if match is None:
        return None
    value = float(match.group(1))
    if match.group(2).lower() == "ppm":
        return None if f0_mhz is None else value * f0_mhz
    return value


def _comment_offsets_hz(comments: Any, f0_mhz: float | None) -> np.ndarray | None:
    """Offsets of a list of comments, when every comment holds one."""
    if comments is None:
        return None
    values = [_comment_offset_hz(c, f0_mhz) for c in np.atleast_1d(np.asarray(
        comments, dtype=object)).ravel()]
    if not values or any(v is None for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


def saturation_offsets_hz(layout: FrameLayout, method: ParameterSet | None,
                          f0_mhz: float | None, *, visu: ParameterSet | None = None,
                          acqp: ParameterSet | None = None) -> list[float | None]:
    """CEST/MT saturation offset of every frame in Hz (None without saturation).

    The offset list (PVM_SatTransFreqValues in Hz or ppm, user lists such as
    PVM_ppgFreqList1 or a PV5 custom method's CestArray in Hz, or the single
    PVM_MagTransOffset) runs along the repetition-like axes (everything but slice, echo
    and complex); when those hold a multiple of the list's length the list repeats
    (pv6-acidocest scan 4: 44 offsets, 176 repetitions). Without such a list, the frame
    comments ``VCEST= x Hz`` are used: VisuFGElemComment per frame (``visu``), else
    ACQ_movie_descr as a list (``acqp``).
    """
    none: list[float | None] = [None] * layout.frame_count
    offsets = None if method is None else _offset_list_hz(method, f0_mhz)
    if (offsets is None or offsets.size == 0) and visu is not None:
        per_frame = layout.per_frame(visu, "VisuFGElemComment")
        values = _comment_offsets_hz(per_frame, f0_mhz)
        if values is not None and values.size == layout.frame_count:
            return [float(v) for v in values]
    if (offsets is None or offsets.size == 0) and acqp is not None:
        offsets = _comment_offsets_hz(acqp.get("ACQ_movie_descr"), f0_mhz)
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


#: PVM_FairMode (single-mode FAIR scans) → inversion mode written to DICOM.
FAIR_MODES: dict[str, str] = {"SELECTIVE": "SELECTIVE", "NONSELECTIVE": "NONSELECTIVE"}
#: Words of VisuFGElemComment (FG_IRMODE elements) → inversion mode; the longest match wins.
_FAIR_COMMENTS: dict[str, str] = {"non-selective": "NONSELECTIVE", "nonselective": "NONSELECTIVE",
                                  "selective": "SELECTIVE"}


@dataclass(frozen=True)
class InversionTiming:
    """When a frame's slice was excited after its inversion, and how it was read.

    Attributes
    ----------
    slice_delay : float or None
        ms from the excitation of the first slice read after the inversion to this
        slice's excitation (acquisition position × slice period); the effective inversion
        time is the protocol TI plus this delay. None when unknown.
    readout : float or None
        ms from the excitation to the end of the slice's echo train (echo train length ×
        echo spacing).
    mode : str or None
        FAIR inversion: ``SELECTIVE`` (slab around the slices) or ``NONSELECTIVE``.
    """

    slice_delay: float | None
    readout: float | None
    mode: str | None


def _floats(params: ParameterSet | None, name: str) -> np.ndarray | None:
    if params is None or name not in params:
        return None
    values = np.atleast_1d(np.asarray(params[name], dtype=np.float64)).ravel()
    return values if values.size else None


def _readout_ms(method: ParameterSet | None, acqp: ParameterSet | None) -> float | None:
    for params, train, spacing in ((acqp, "ACQ_rare_factor", "ACQ_inter_echo_time"),
                                   (method, "PVM_RareFactor", "PVM_EchoTime")):
        n, dt = _floats(params, train), _floats(params, spacing)
        if n is not None and dt is not None and n[0] >= 1 and dt[0] > 0:
            return float(n[0] * dt[0])
    return None


def _slice_period(method: ParameterSet, n_slices: int) -> float | None:
    """(MultiRepTime − TI − RecoveryTime) / slices: the slice period of a FAIR scan.

    ParaVision's FAIR methods invert once, wait TI, read every slice, then wait
    RecoveryTime; MultiRepTime is that whole cycle per TI. The per-shot overhead outside
    the slice loop (a few ms) is spread over the slices, so the period is slightly long.
    """
    tr = _floats(method, "MultiRepTime")
    ti = _floats(method, "PVM_FairTIR_Arr")
    recovery = _floats(method, "RecoveryTime")
    if tr is None or ti is None or recovery is None or tr.size != ti.size or n_slices < 1:
        return None
    periods = (tr - ti - recovery[0]) / n_slices
    if np.any(periods <= 0) or np.ptp(periods) > 1e-3 * np.mean(periods):
        return None
    return float(np.mean(periods))


def _fair_mode(layout: FrameLayout, visu: ParameterSet, method: ParameterSet,
               frame: int, comments: list[Any] | None) -> str | None:
    if layout.group("ir_mode") is not None and comments is not None:
        text = str(comments[frame]).lower()
        keys = sorted((k for k in _FAIR_COMMENTS if k in text), key=len, reverse=True)
        if keys:
            return _FAIR_COMMENTS[keys[0]]
    return FAIR_MODES.get(str(method.get("PVM_FairMode", "")).upper())


def inversion_timing(layout: FrameLayout, visu: ParameterSet, method: ParameterSet | None,
                     acqp: ParameterSet | None) -> list[InversionTiming | None]:
    """Per-frame inversion timing of a FAIR scan (None for every frame of other scans).

    The slice order is PVM_ObjOrderList (else ACQ_obj_order): the slice at acquisition
    position p is excited p × the slice period after the first one (pv6 scan 13: 9
    slices in the order 0 2 4 6 8 1 3 5 7, 63.2 ms apart).
    """
    none: list[InversionTiming | None] = [None] * layout.frame_count
    if method is None or "PVM_FairTIR_Arr" not in method:
        return none
    order = _floats(method, "PVM_ObjOrderList")
    if order is None:
        order = _floats(acqp, "ACQ_obj_order")
    slices = layout.group("slice")
    n_slices = 1 if slices is None else slices.size
    period = None
    if order is not None and order.size == n_slices:
        period = _slice_period(method, n_slices)
    position = {int(s): p for p, s in enumerate(order)} if order is not None else {}
    readout = _readout_ms(method, acqp)
    comments = layout.per_frame(visu, "VisuFGElemComment")
    out: list[InversionTiming | None] = []
    for frame in range(layout.frame_count):
        k = layout.index(frame, "slice") or 0
        delay = None
        if n_slices == 1:
            delay = 0.0
        elif period is not None and k in position:
            delay = position[k] * period
        out.append(InversionTiming(delay, readout,
                                   _fair_mode(layout, visu, method, frame, comments)))
    return out

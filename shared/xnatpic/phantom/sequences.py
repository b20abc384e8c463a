"""Sequence adapters: from a protocol row to its signal, its ParaVision parameters, its truth.

:data:`SEQUENCES` maps ``Protocol.model`` to a function returning an :class:`Encoding`:
the number of elements of the scan's non-slice frame group, the function computing the
noiseless signal from the truth maps, and the sequence-specific parameters of
``method``, ``acqp`` and ``visu_pars`` (``visu`` holds the per-element arrays named in
``VisuGroupDepVals``), plus the JSON description of the encoding for ``truth.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from xnatpic.paravision.jcamp_writer import Strings, Text, Word
from xnatpic.phantom import signals
from xnatpic.phantom.geometry import SlicePack
from xnatpic.phantom.protocols import FREQUENCY_MHZ, Protocol

__all__ = ["SEQUENCES", "Encoding", "encoding_for"]

SignalFunction = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass
class Encoding:
    """What a sequence adds to the common description of a scan.

    Attributes
    ----------
    n : int
        Elements of the non-slice frame group (1 for a slice-only scan).
    signal : callable
        ``signal(maps) -> array (*voxels, n)``, the noiseless signal.
    formula : str
        Key of :data:`xnatpic.phantom.signals.FORMULAE`.
    method, acqp, visu : dict
        Parameters for those files (``visu``: the per-element arrays and acquisition
        parameters such as VisuAcqEchoTime).
    truth : dict
        JSON-ready description of the encoding.
    """

    n: int
    signal: SignalFunction
    formula: str
    method: dict[str, Any] = field(default_factory=dict)
    acqp: dict[str, Any] = field(default_factory=dict)
    visu: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)


def _arr(values: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=float))


def _timing(proto: Protocol, te: Any, tr: Any) -> tuple[dict, dict, dict]:
    """Method, acqp and visu records of echo and repetition times."""
    te_arr, tr_arr = _arr(te), _arr(tr)
    method = {
        "PVM_EchoTime": float(te_arr[0]),
        "EffectiveTE": te_arr,
        "PVM_RepetitionTime": float(tr_arr[0]),
        "PVM_NEchoImages": int(te_arr.size),
    }
    if proto.rare_factor > 1:
        method["PVM_RareFactor"] = proto.rare_factor
    acqp = {
        "NECHOES": int(te_arr.size) * proto.rare_factor,
        "ACQ_n_echo_images": int(te_arr.size),
        "ACQ_echo_time": te_arr,
        "ACQ_inter_echo_time": _arr(te_arr[1] - te_arr[0] if te_arr.size > 1 else te_arr[0]),
        "ACQ_repetition_time": tr_arr,
    }
    visu = {"VisuAcqEchoTime": te_arr, "VisuAcqRepetitionTime": tr_arr}
    return method, acqp, visu


def _spin_echo(proto: Protocol, geom: SlicePack) -> Encoding:
    method, acqp, visu = _timing(proto, proto.te, proto.tr)
    method["NEchoes"] = len(proto.te)
    fn = partial(signals.spin_echo, te=_arr(proto.te), tr=proto.tr[0])
    return Encoding(len(proto.te), fn, "spin_echo", method, acqp, visu,
                    {"TE_ms": list(proto.te), "TR_ms": proto.tr[0]})  # fmt: skip


def _saturation_recovery(proto: Protocol, geom: SlicePack) -> Encoding:
    method, acqp, visu = _timing(proto, proto.te, proto.tr)
    method["MultiRepTime"] = _arr(proto.tr)
    acqp["ACQ_n_movie_frames"] = len(proto.tr)
    visu["VisuFGElemComment"] = Strings([f"VTR={t:8.1f}ms" for t in proto.tr])
    fn = partial(signals.saturation_recovery, tr=_arr(proto.tr), te=proto.te[0],
                 echo_train=proto.rare_factor * proto.te[0])
    return Encoding(len(proto.tr), fn, "saturation_recovery", method, acqp, visu,
                    {"TR_ms": list(proto.tr), "TE_ms": proto.te[0]})  # fmt: skip


def interlaced_order(n_slices: int) -> np.ndarray:
    """Slices in acquisition order (PVM_ObjOrderList of an interlaced pack: even, then odd)."""
    return np.r_[np.arange(0, n_slices, 2), np.arange(1, n_slices, 2)]


def _inversion_recovery(proto: Protocol, geom: SlicePack) -> Encoding:
    ti = _arr(proto.extra["ti"])
    recovery = float(proto.extra["recovery_time"])
    # each slice is excited and read by its echo train in turn: the slice period is the
    # train, and MultiRepTime = TI + slices x period + RecoveryTime (what a reader infers)
    readout = proto.te[0] * proto.rare_factor
    multi_tr = ti + recovery + geom.n_slices * readout
    position = np.argsort(interlaced_order(geom.n_slices))
    slice_delays = position * readout
    method, acqp, visu = _timing(proto, proto.te, [float(multi_tr.max())])
    method.update({
        "RecoveryTime": recovery,
        "MultiRepTime": multi_tr,
        "PVM_FairMode": Word("NONSELECTIVE"),
        "PVM_FairTIR_Mode": Word("USER_TIR"),
        "PVM_FairTIR_NExp": int(ti.size),
        "PVM_FairTIR_Arr": ti,
    })  # fmt: skip
    acqp.update({"ACQ_repetition_time": multi_tr, "ACQ_inversion_time": ti,
                 "ACQ_n_movie_frames": int(ti.size)})  # fmt: skip
    visu["VisuAcqInversionTime"] = ti
    del visu["VisuAcqRepetitionTime"]  # FAIR_RARE has none in visu_pars: TRs are MultiRepTime
    fn = partial(signals.inversion_recovery, ti=ti, te=proto.te[0], tr=multi_tr,
                 readout=readout, slice_delays=slice_delays)
    return Encoding(int(ti.size), fn, "inversion_recovery", method, acqp, visu,
                    {"TI_ms": ti.tolist(), "TE_ms": proto.te[0],
                     "recovery_time_ms": recovery, "TR_ms": multi_tr.tolist(),
                     "readout_ms": readout,
                     "slice_delays_ms": slice_delays.tolist()})  # fmt: skip


def _gradient_echo(proto: Protocol, geom: SlicePack) -> Encoding:
    method, acqp, visu = _timing(proto, proto.te, proto.tr)
    method.update({"NEchoes": len(proto.te), "EchoSpacing": proto.te[1] - proto.te[0]})
    fn = partial(signals.gradient_echo, te=_arr(proto.te), tr=proto.tr[0], flip_deg=proto.flip)
    return Encoding(len(proto.te), fn, "gradient_echo", method, acqp, visu,
                    {"TE_ms": list(proto.te), "TR_ms": proto.tr[0],
                     "flip_deg": proto.flip})  # fmt: skip


def _diffusion(proto: Protocol, geom: SlicePack) -> Encoding:
    x = proto.extra
    dirs = np.asarray(x["directions"], dtype=float)  # gradient frame (read, phase, slice)
    bvals = _arr(x["bvalues"])
    n_a0 = int(x["a0_images"])
    grad = [np.zeros(3)] * n_a0 + [d for d in dirs for _ in bvals]
    b_nominal = np.array([0.0] * n_a0 + [b for _ in dirs for b in bvals])
    grad_unit = np.array(grad)
    b_eff = np.where(b_nominal > 0, b_nominal + float(x["imaging_b"]), 0.0)
    grad_vec = grad_unit * np.sqrt(b_nominal / float(x["max_bval"]))[:, None]
    subject = grad_unit @ geom.orientation  # rows: g_subject = orientationᵀ · g_grad
    bmat_grad = b_eff[:, None, None] * np.einsum("ni,nj->nij", grad_unit, grad_unit)
    bmat_subj = b_eff[:, None, None] * np.einsum("ni,nj->nij", subject, subject)
    comments = [f"A0 {k + 1} B {b_eff[k]:.0f}" for k in range(n_a0)]
    comments += [f"Dir {d + 1} B {b_eff[n_a0 + d * bvals.size + i]:.0f}"
                 for d in range(len(dirs)) for i in range(bvals.size)]  # fmt: skip
    method, acqp, visu = _timing(proto, proto.te, proto.tr)
    method.update({
        "PVM_DiffPrepMode": Text("SpinEcho", None),
        "PVM_DwMeasMode": Text("DW_Contrast", None),
        "PVM_DwDirectScale": Word("No"),
        "PVM_DwGradDur": _arr(x["delta_ms"]),
        "PVM_DwGradSep": _arr(x["big_delta_ms"]),
        "PVM_DwNDiffDir": len(dirs),
        "PVM_DwNDiffExpEach": int(bvals.size),
        "PVM_DwAoImages": n_a0,
        "PVM_DwDir": dirs,
        "PVM_DwMaxBval": float(x["max_bval"]),
        "PVM_DwBvalEach": bvals,
        "PVM_DwNDiffExp": int(b_eff.size),
        "PVM_DwBMat": bmat_grad,
        "PVM_DwEffBval": b_eff,
        "PVM_DwGradVec": grad_vec,
        "PVM_DwGradRead": grad_vec[:, 0].copy(),
        "PVM_DwGradPhase": grad_vec[:, 1].copy(),
        "PVM_DwGradSlice": grad_vec[:, 2].copy(),
    })  # fmt: skip
    visu["VisuFGElemComment"] = Strings(comments)
    visu["VisuAcqDiffusionBMatrix"] = bmat_subj.reshape(-1, 9)
    fn = partial(signals.diffusion_weighted, bmatrix=bmat_subj, tr=proto.tr[0], te=proto.te[0])
    truth = {
        "order": "A0 images first, then for each direction each b-value (b fastest)",
        "b_nominal_s_mm2": b_nominal.tolist(),
        "b_effective_s_mm2": b_eff.tolist(),
        "direction_gradient_frame": grad_unit.tolist(),
        "direction_subject_frame": subject.tolist(),
        "PVM_DwGradVec_rule": "unit direction (read, phase, slice) "
        "× sqrt(b_nominal/PVM_DwMaxBval)",
        "gradient_to_subject": "g_subject = VisuCoreOrientationᵀ · g_gradient "
        "(= PVM_SPackArrGradOrientᵀ · g_gradient)",
        "TE_ms": proto.te[0],
        "TR_ms": proto.tr[0],
    }
    return Encoding(int(b_eff.size), fn, "diffusion", method, acqp, visu, truth)


def _block_pulse(length_ms: float, b1_ut: float) -> tuple:
    """A PV6 pulse struct (length ms, bandwidth Hz, flip angle deg, ..., shape) of a block
    pulse, as PVM_MagTransPulse1 in the corpus' CEST scan: flip = 360·γ̄·B1·T."""
    flip = 360.0 * 42.577478518 * b1_ut * length_ms / 1000.0
    return (length_ms, 1280.0 / length_ms, flip, Word("No"), 3, 1280, 1, 1, 0, 50, 0.0,
            "bp32.exc")  # fmt: skip


def _z_spectrum(proto: Protocol, geom: SlicePack) -> Encoding:
    x = proto.extra
    values = _arr(x["offsets"])
    ppm = values if x["unit"] == "unit_ppm" else values / FREQUENCY_MHZ
    hz = np.round(ppm * FREQUENCY_MHZ, 6)
    module_ms = x["n_pulses"] * (x["pulse_ms"] + x["interpulse_ms"])
    method, acqp, visu = _timing(proto, proto.te, proto.tr)
    method.update({
        "PVM_NRepetitions": int(values.size),
        "PVM_SatTransOnOff": Word("On"),
        "PVM_SatTransPulseAmpl_uT": float(x["b1_uT"]),
        "PVM_SatTransNPulses": int(x["n_pulses"]),
        "PVM_SatTransPulseEnum": Text("bp32", None),
        "PVM_SatTransPulse": _block_pulse(float(x["pulse_ms"]), float(x["b1_uT"])),
        "PVM_SatTransInterPulseDelay": float(x["interpulse_ms"]),
        "PVM_SatTransModuleTime": float(module_ms),
        "PVM_SatTransFreqUnit": Word(x["unit"]),
        "PVM_NSatFreq": int(values.size),
        "PVM_SatTransFreqValues": values,
        "PVM_SatTransFL": hz,
        "PVM_SatTransRepetitions": int(values.size),
        "PVM_StP0": float(x["pulse_ms"]) * 1000.0,
    })  # fmt: skip
    fn = partial(signals.z_spectrum, offsets_ppm=ppm, water_amplitude=x["water_amplitude"],
                 water_fwhm_ppm=x["water_fwhm_ppm"], pool_scale=x["pool_scale"],
                 tr=proto.tr[0], te=proto.te[0])  # fmt: skip
    truth = {
        "offsets_written": values.tolist(),
        "offset_unit": x["unit"],
        "offsets_ppm": ppm.tolist(),
        "offsets_hz": hz.tolist(),
        "m0_reference_frames": [int(i) for i in np.flatnonzero(np.abs(ppm) > 50)],
        "b1_uT": x["b1_uT"],
        "water_amplitude": x["water_amplitude"],
        "water_fwhm_ppm": x["water_fwhm_ppm"],
        "pool_scale": x["pool_scale"],
        "TE_ms": proto.te[0],
        "TR_ms": proto.tr[0],
    }
    return Encoding(int(values.size), fn, "z_spectrum", method, acqp, visu, truth)


#: Sequence adapter of each ``Protocol.model``.
SEQUENCES: dict[str, Callable[[Protocol, SlicePack], Encoding]] = {
    "spin_echo": _spin_echo,
    "saturation_recovery": _saturation_recovery,
    "inversion_recovery": _inversion_recovery,
    "gradient_echo": _gradient_echo,
    "diffusion": _diffusion,
    "z_spectrum": _z_spectrum,
}


def encoding_for(proto: Protocol, geom: SlicePack) -> Encoding:
    """Return the :class:`Encoding` of a protocol on its slice pack.

    Raises
    ------
    KeyError
        When ``proto.model`` has no adapter in :data:`SEQUENCES`.
    """
    try:
        adapter = SEQUENCES[proto.model]
    except KeyError:
        message = f"scan {proto.scan}: no sequence adapter for model {proto.model!r}"
        raise KeyError(message) from None
    return adapter(proto, geom)

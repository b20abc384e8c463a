"""The phantom study's scans, as one table of acquisition protocols.

Each row of :data:`PROTOCOLS` is one ParaVision scan (experiment number, method, timing,
frame layout, storage). The sequence-specific parts (which signal equation, which method
parameters) are looked up by ``Protocol.model`` in :mod:`xnatpic.phantom.sequences`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FREQUENCY_MHZ",
    "PROTOCOLS",
    "FrameGroup",
    "Protocol",
    "jones6_directions",
    "protocol_by_scan",
]

#: Working (water) frequency in MHz: 1H at 7.05 T. BF1 = PVM_FrqWork[0] = this.
FREQUENCY_MHZ = 300.3


@dataclass(frozen=True)
class FrameGroup:
    """The non-slice frame group of a scan (``VisuFGOrderDesc`` entry).

    Parameters
    ----------
    fg_id : str
        ParaVision group id (``FG_ECHO``, ``FG_MOVIE``...).
    comment : str
        Group comment (third field of the struct).
    dependents : tuple of str
        visu_pars arrays with one value per element of the group (``VisuGroupDepVals``).
    fastest : bool
        True when the group varies faster than FG_SLICE on disk (MSME, MGE).
    """

    fg_id: str
    comment: str
    dependents: tuple[str, ...]
    fastest: bool = False


@dataclass(frozen=True)
class Protocol:
    """One scan of the phantom study.

    Parameters
    ----------
    scan : int
        Experiment number (scan folder name).
    name : str
        Protocol name (``ACQ_protocol_name``, ``VisuAcquisitionProtocol``).
    method : str
        ParaVision method (``Bruker:MSME``...).
    pulprog : str
        Pulse program file name.
    model : str
        Key of the sequence adapter in :data:`xnatpic.phantom.sequences.SEQUENCES`.
    geometry : str
        Key of the slice pack in :data:`xnatpic.phantom.geometry.GEOMETRIES`.
    group : FrameGroup or None
        The non-slice frame group, or None for a slice-only scan.
    repetitions : bool
        True when the group is the repetition loop (NR), False when it is inside NI.
    te, tr : tuple of float
        Echo and repetition times in ms (several for multi-echo / variable-TR scans).
    flip : float
        Excitation flip angle in degrees.
    word_type : str
        ``VisuCoreWordType`` of the 2dseq.
    scaling : {"global", "per_frame", "per_frame_offset"}
        How stored integers map to values: one slope for all frames, one slope per frame,
        or per-frame slope and offset using the whole signed range.
    averages, rare_factor : int
        NA and the echo train length.
    extra : dict
        Sequence-specific settings (TIs, diffusion encoding, saturation offsets...).
    """

    scan: int
    name: str
    method: str
    pulprog: str
    model: str
    geometry: str
    group: FrameGroup | None
    repetitions: bool
    te: tuple[float, ...]
    tr: tuple[float, ...]
    flip: float = 90.0
    word_type: str = "_16BIT_SGN_INT"
    scaling: str = "global"
    averages: int = 1
    rare_factor: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def jones6_directions() -> np.ndarray:
    """Six non-collinear unit directions, in the gradient (read, phase, slice) frame.

    The classic 6-direction scheme (Jones et al. 1999, Magn Reson Med 42:515,
    doi:10.1002/(SICI)1522-2594(199909)42:3<515::AID-MRM14>3.0.CO;2-Q).
    """
    dirs = np.array(
        [[1, 0, 1], [-1, 0, 1], [0, 1, 1], [0, 1, -1], [1, 1, 0], [-1, 1, 0]], dtype=float
    )
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


_ECHO = FrameGroup("FG_ECHO", "", ("VisuAcqEchoTime",), fastest=True)
_VTR = FrameGroup("FG_MOVIE", "vtr", ("VisuFGElemComment", "VisuAcqRepetitionTime"))
_IR = FrameGroup("FG_MOVIE", "Non-selective Inversion", ("VisuAcqInversionTime",))
_DIFF = FrameGroup("FG_DIFFUSION", "diffusion", ("VisuFGElemComment", "VisuAcqDiffusionBMatrix"))
_CYCLE = FrameGroup("FG_CYCLE", "", ())

_CEST_OFFSETS_PPM = (-300.0, *np.round(np.arange(-6.0, 6.0001, 0.25), 4).tolist())
_WASSR_OFFSETS_HZ = (
    -30030.0,
    *np.round(np.arange(-1.0, 1.0001, 0.1) * FREQUENCY_MHZ, 3).tolist(),
)

#: The scans of the phantom study, in acquisition order.
PROTOCOLS: tuple[Protocol, ...] = (
    Protocol(1, "Localizer_RARE", "Bruker:RARE", "RARE.ppg", "spin_echo", "coronal", None,
             repetitions=False, te=(33.0,), tr=(2500.0,), rare_factor=8),
    Protocol(2, "T2map_MSME", "Bruker:MSME", "MSME.ppg", "spin_echo", "axial", _ECHO,
             repetitions=False, te=tuple(10.0 * (i + 1) for i in range(12)), tr=(3000.0,),
             scaling="per_frame"),
    Protocol(3, "T1map_RARE_VTR", "Bruker:RAREVTR", "RAREVTR.ppg", "saturation_recovery",
             "axial", _VTR, repetitions=True, te=(8.0,),
             tr=(6000.0, 3000.0, 1500.0, 800.0, 400.0, 200.0, 100.0),
             scaling="per_frame_offset", rare_factor=2),
    Protocol(4, "T1map_IR_RARE", "Bruker:FAIR_RARE", "FAIR_RARE.ppg", "inversion_recovery",
             "axial", _IR, repetitions=True, te=(8.0,), tr=(10000.0,), rare_factor=4,
             extra={"ti": (25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6000.0),
                    "recovery_time": 10000.0}),
    Protocol(5, "T2star_MGE", "Bruker:MGE", "MGE.ppg", "gradient_echo", "axial", _ECHO,
             repetitions=False, te=tuple(2.5 + 4.0 * i for i in range(10)), tr=(1500.0,),
             flip=30.0, word_type="_32BIT_FLOAT"),
    Protocol(6, "DTI_EPI_2shell", "Bruker:DtiEpi", "DtiEpi.ppg", "diffusion", "oblique", _DIFF,
             repetitions=False, te=(25.0,), tr=(3000.0,), scaling="per_frame", averages=2,
             extra={"a0_images": 2, "directions": jones6_directions(),
                    "bvalues": (500.0, 1000.0), "imaging_b": 2.5, "max_bval": 4800.0,
                    "delta_ms": 4.0, "big_delta_ms": 12.0}),
    Protocol(7, "CEST_RARE", "Bruker:RARE", "RARE.ppg", "z_spectrum", "axial", _CYCLE,
             repetitions=True, te=(6.0,), tr=(5000.0,), rare_factor=16,
             extra={"offsets": _CEST_OFFSETS_PPM, "unit": "unit_ppm", "b1_uT": 1.5,
                    "n_pulses": 10, "pulse_ms": 100.0, "interpulse_ms": 10.0,
                    "water_amplitude": 0.95, "water_fwhm_ppm": 1.6, "pool_scale": 1.0}),
    Protocol(8, "WASSR_RARE", "Bruker:RARE", "RARE.ppg", "z_spectrum", "axial", _CYCLE,
             repetitions=True, te=(6.0,), tr=(5000.0,), rare_factor=16,
             extra={"offsets": _WASSR_OFFSETS_HZ, "unit": "unit_hz", "b1_uT": 0.1,
                    "n_pulses": 1, "pulse_ms": 200.0, "interpulse_ms": 0.0,
                    "water_amplitude": 0.9, "water_fwhm_ppm": 0.3, "pool_scale": 0.0}),
)  # fmt: skip


def protocol_by_scan(scan: int) -> Protocol:
    """Return the protocol of experiment number ``scan``.

    Raises
    ------
    KeyError
        When the study has no such scan.
    """
    for proto in PROTOCOLS:
        if proto.scan == scan:
            return proto
    raise KeyError(f"the phantom study has no scan {scan}")

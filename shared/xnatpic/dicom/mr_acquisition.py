"""MR acquisition descriptors derived from ParaVision parameters.

ScanningSequence, SequenceVariant, ScanOptions, MRAcquisitionType, the phase-encoding
direction and acquisition matrix, the field strength and the CEST/MT saturation module:
each needs several parameters, so they are functions of the conversion context (used by
:mod:`xnatpic.dicom.derived` and :mod:`xnatpic.dicom.derived_enhanced`). Enumerations are
tables at the top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from xnatpic.dicom.transforms import text

if TYPE_CHECKING:
    from xnatpic.dicom.context import SeriesContext

__all__ = [
    "ECHO_SEQUENCE_TYPES",
    "GYROMAGNETIC_MHZ_PER_T",
    "METHOD_SEQUENCES",
    "SATURATION_MODULES",
    "acquired_sizes",
    "acquisition_dimension",
    "acquisition_matrix",
    "field_strength",
    "has_inversion",
    "has_saturation",
    "phase_direction",
    "saturation",
    "scan_options",
    "scanning_sequence",
    "sequence_variant",
]

#: |γ|/2π in MHz/T of the nuclei ParaVision images (MagneticFieldStrength = f0 / γ).
GYROMAGNETIC_MHZ_PER_T: dict[str, float] = {
    "1H": 42.577478518, "2H": 6.536, "3He": 32.434, "13C": 10.7084, "15N": 4.3173,
    "17O": 5.7743, "19F": 40.078, "23Na": 11.262, "31P": 17.235, "129Xe": 11.777,
}

#: Method name (without ``Bruker:``/``User:``, case-insensitive substring) → DICOM
#: ScanningSequence (PS3.3 C.8.3.1). The longest matching key wins.
METHOD_SEQUENCES: dict[str, tuple[str, ...]] = {
    "flash": ("GR",),
    "fisp": ("GR",),
    "mge": ("GR",),
    "fieldmap": ("GR",),
    "ute": ("GR",),
    "zte": ("GR",),
    "intragate": ("GR",),
    "fl2d": ("GR",),
    "rare": ("SE",),
    "msme": ("SE",),
    "mdeft": ("GR", "IR"),
    "dtiepi": ("EP", "SE"),
    "epi": ("EP",),
    "spiral": ("GR",),
    "dtistandard": ("SE",),
}
#: VisuAcqEchoSequenceType → ScanningSequence for methods not in METHOD_SEQUENCES
#: ("Both" is ParaVision's answer for hybrid sequences: Research Mode).
ECHO_SEQUENCE_TYPES: dict[str, tuple[str, ...]] = {
    "GradientEcho": ("GR",),
    "SpinEcho": ("SE",),
    "Both": ("RM",),
}
#: VisuAcqSpoiling values that mean a spoiled sequence (SequenceVariant SP).
_SPOILED = ("GradientSpoiled", "RFSpoiled", "RFAndGradientSpoiled", "Both")


def _image_values(ctx: SeriesContext, attribute: str) -> list[Any]:
    return [getattr(im, attribute) for im in ctx.images]


def _visu_yes(ctx: SeriesContext, name: str) -> bool:
    return str(ctx.param("visu", name) or "").lower() in ("yes", "on")


def _method_name(ctx: SeriesContext) -> str:
    name = text(ctx.param("visu", "VisuAcqSequenceName")) or text(
        ctx.param("acqp", "ACQ_method")) or text(ctx.param("method", "Method")) or ""
    return name.split(":", 1)[-1].split("(")[0].strip().lower()


def has_inversion(ctx: SeriesContext) -> bool:
    return any(t is not None and t > 0 for t in _image_values(ctx, "inversion_time"))


def has_saturation(ctx: SeriesContext) -> bool:
    return any(v is not None for v in _image_values(ctx, "saturation_offset_hz"))


def scanning_sequence(ctx: SeriesContext) -> list[str]:
    """ScanningSequence from the method name, the echo type, EPI and inversion flags."""
    method = _method_name(ctx)
    keys = sorted((k for k in METHOD_SEQUENCES if k in method), key=len, reverse=True)
    echo = str(ctx.param("visu", "VisuAcqEchoSequenceType") or "")
    if keys:
        values = list(METHOD_SEQUENCES[keys[0]])
        if values == ["EP"] and echo in ("GradientEcho", "SpinEcho"):
            values += list(ECHO_SEQUENCE_TYPES[echo])
    else:
        values = list(ECHO_SEQUENCE_TYPES.get(echo, ("RM",)))
    if _visu_yes(ctx, "VisuAcqIsEpiSequence") and "EP" not in values:
        values.append("EP")
    if has_inversion(ctx) and "IR" not in values:
        values.append("IR")
    return values


def sequence_variant(ctx: SeriesContext) -> list[str]:
    values = []
    etl = ctx.param("visu", "VisuAcqEchoTrainLength")
    if etl is not None and int(np.atleast_1d(etl)[0]) > 1:
        values.append("SK")
    if _visu_yes(ctx, "VisuAcqMagnetizationTransfer") or has_saturation(ctx):
        values.append("MTC")
    if str(ctx.param("visu", "VisuAcqSpoiling") or "") in _SPOILED:
        values.append("SP")
    if has_inversion(ctx):
        values.append("MP")
    return values or ["NONE"]


def scan_options(ctx: SeriesContext) -> list[str] | None:
    values = []
    flow = str(ctx.param("visu", "VisuAcqFlowCompensation") or "FlowNone")
    if flow not in ("FlowNone", "No", "None"):
        values.append("FC")
    if _visu_yes(ctx, "VisuCardiacSynchUsed"):
        values.append("CG")
    if _visu_yes(ctx, "VisuRespSynchUsed"):
        values.append("RG")
    fourier = ctx.param("visu", "VisuAcqPartialFourier")
    if fourier is not None:
        fourier = np.atleast_1d(np.asarray(fourier, dtype=np.float64))
        if fourier.size > 1 and fourier[1] < 1:
            values.append("PFP")
        if fourier.size and fourier[0] < 1:
            values.append("PFF")
    suppression = str(ctx.param("visu", "VisuAcqSpectralSuppression") or "NoSuppression")
    if suppression not in ("NoSuppression", "No"):
        values.append("FS")
    return values or None


def acquisition_dimension(ctx: SeriesContext) -> str:
    spatial = text(ctx.param("method", "PVM_SpatDimEnum"))
    if spatial in ("2D", "3D"):
        return spatial
    dim = ctx.param("acqp", "ACQ_dim")
    if dim is not None and int(np.atleast_1d(dim)[0]) == 3:
        return "3D"
    return "3D" if ctx.series.geometry.dim == 3 else "2D"


def transposed(ctx: SeriesContext) -> bool:
    value = ctx.param("visu", "VisuCoreTransposition")
    if value is None:
        return False
    flags = np.atleast_1d(np.asarray(value)).ravel()
    return bool(flags[ctx.images[0].frame % flags.size]) if flags.size else False


def gradient_encodings(ctx: SeriesContext) -> list[str]:
    value = ctx.param("visu", "VisuAcqGradEncoding")
    encodings = ["read_enc", "phase_enc"] if value is None else [
        str(v) for v in np.atleast_1d(value)]
    if transposed(ctx) and len(encodings) >= 2:
        encodings[0], encodings[1] = encodings[1], encodings[0]
    return encodings


#: VisuAcqImagePhaseEncDir (PV 5, per frame) → InPlanePhaseEncodingDirection.
PHASE_ENCODING_DIRECTIONS: dict[str, str] = {"col_dir": "COL", "row_dir": "ROW"}


def phase_direction(ctx: SeriesContext) -> str | None:
    explicit = ctx.param("visu", "VisuAcqImagePhaseEncDir")
    if explicit is not None:
        values = [str(v) for v in np.atleast_1d(explicit).ravel()]
        value = values[ctx.images[0].frame % len(values)] if values else ""
        if value in PHASE_ENCODING_DIRECTIONS:
            return PHASE_ENCODING_DIRECTIONS[value]
    encodings = gradient_encodings(ctx)
    if encodings and encodings[0] == "phase_enc":
        return "ROW"
    if len(encodings) > 1 and encodings[1] == "phase_enc":
        return "COL"
    return None


def acquired_sizes(ctx: SeriesContext) -> tuple[int, int] | None:
    """(frequency, phase) acquired matrix, from VisuAcqSize (read, phase order)."""
    size = ctx.param("visu", "VisuAcqSize")
    if size is None:
        return None
    size = np.atleast_1d(np.asarray(size, dtype=np.float64)).ravel()
    if size.size < 2:
        return None
    return round(size[0]), round(size[1])


def acquisition_matrix(ctx: SeriesContext) -> list[int] | None:
    direction, sizes = phase_direction(ctx), acquired_sizes(ctx)
    if direction is None or sizes is None:
        return None
    frequency, phase = sizes
    # frequency rows \ frequency columns \ phase rows \ phase columns (C.8.3.1)
    return [frequency, 0, 0, phase] if direction == "ROW" else [0, frequency, phase, 0]


def field_strength(ctx: SeriesContext) -> float | None:
    """B0 = f0 / γ of the imaged nucleus (VisuMagneticFieldStrength is preferred)."""
    f0 = ctx.series.imaging_frequency
    nucleus = text(ctx.param("visu", "VisuAcqImagedNucleus")) or text(
        ctx.param("acqp", "NUC1")) or "1H"
    gamma = GYROMAGNETIC_MHZ_PER_T.get(nucleus)
    if f0 is None or gamma is None:
        return None
    return round(f0 / gamma, 4)


#: CEST/MT saturation modules: (prefix, on/off switch, parameter per quantity).
SATURATION_MODULES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("PVM_SatTrans", "PVM_SatTransOnOff", {
        "amplitude_ut": "PVM_SatTransPulseAmpl_uT",
        "pulse_count": "PVM_SatTransNPulses",
        "interpulse_delay": "PVM_SatTransInterPulseDelay",
        "module_time": "PVM_SatTransModuleTime",
        "pulse_shape": "PVM_SatTransPulseEnum",
        "pulse": "PVM_SatTransPulse",
    }),
    ("PVM_MagTrans", "PVM_MagTransOnOff", {
        "amplitude_ut": "PVM_MagTransPower",
        "pulse_count": "PVM_MagTransPulsNumb",
        "interpulse_delay": "PVM_MagTransInterDelay",
        "module_time": "PVM_MagTransModuleTime",
        "pulse_shape": "PVM_MagTransPulse1Enum",
        "pulse": "PVM_MagTransPulse1",
    }),
)
#: Position of length (ms), bandwidth (Hz) and flip angle (deg) in a pulse struct.
_PULSE_FIELDS = {"pulse_length": 0, "pulse_bandwidth": 1, "pulse_flip_angle": 2}


def saturation_module(ctx: SeriesContext) -> tuple[str, dict[str, str]] | None:
    for prefix, switch, names in SATURATION_MODULES:
        if str(ctx.param("method", switch) or "").lower() == "on":
            return prefix, names
    return None


def saturation(quantity: str) -> Callable[[SeriesContext], Any]:
    def value(ctx: SeriesContext) -> Any:
        module = saturation_module(ctx)
        if module is None:
            return None
        prefix, names = module
        if quantity == "module":
            return prefix
        if quantity in _PULSE_FIELDS:
            pulse = ctx.param("method", names["pulse"])
            if not isinstance(pulse, tuple):
                return None
            numbers = [v for v in pulse if isinstance(v, int | float)]
            if isinstance(pulse[0], str):  # a leading file name: numbers start after it
                numbers = [v for v in pulse[1:] if isinstance(v, int | float)]
            index = _PULSE_FIELDS[quantity]
            return numbers[index] if index < len(numbers) else None
        return ctx.param("method", names[quantity])

    return value

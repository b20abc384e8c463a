"""Values the tables read that no single ParaVision parameter holds.

``series:NAME`` sources resolve through :data:`SERIES_VALUES` (computed once per output
series), ``image:NAME`` through :data:`IMAGE_VALUES` (per image or frame), and the 1C/2C
conditions through :data:`CONDITIONS`. Each function returns a raw value (or None) that
the row's transform then turns into the DICOM value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

import xnatpic
from xnatpic.dicom.transforms import text

if TYPE_CHECKING:
    from xnatpic.dicom.context import Frame, SeriesContext

__all__ = [
    "CONDITIONS",
    "ECHO_SEQUENCE_TYPES",
    "IMAGE_VALUES",
    "METHOD_SEQUENCES",
    "SERIES_VALUES",
    "scanning_sequence",
]

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
#: Larmor frequency of 1H in MHz/T (for MagneticFieldStrength = f0 / γ).
PROTON_GYROMAGNETIC_MHZ_PER_T = 42.577478518

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
#: VisuAcqEchoSequenceType → Enhanced MR EchoPulseSequence (C.8.13.4).
ECHO_PULSE_SEQUENCE: dict[str, str] = {
    "GradientEcho": "GRADIENT",
    "SpinEcho": "SPIN",
    "Both": "BOTH",
}
#: VisuAcqSpoiling values that mean a spoiled sequence (SequenceVariant SP).
_SPOILED = ("GradientSpoiled", "RFSpoiled", "RFAndGradientSpoiled", "Both")


def _values(ctx: SeriesContext, attribute: str) -> list[Any]:
    return [getattr(im, attribute) for im in ctx.images]


def _yes(ctx: SeriesContext, name: str) -> bool:
    return str(ctx.param("visu", name) or "").lower() in ("yes", "on")


def _method_name(ctx: SeriesContext) -> str:
    name = text(ctx.param("visu", "VisuAcqSequenceName")) or text(
        ctx.param("acqp", "ACQ_method")) or text(ctx.param("method", "Method")) or ""
    return name.split(":", 1)[-1].split("(")[0].strip().lower()


def _has_inversion(ctx: SeriesContext) -> bool:
    return any(t is not None and t > 0 for t in _values(ctx, "inversion_time"))


def _has_saturation(ctx: SeriesContext) -> bool:
    return any(v is not None for v in _values(ctx, "saturation_offset_hz"))


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
    if _yes(ctx, "VisuAcqIsEpiSequence") and "EP" not in values:
        values.append("EP")
    if _has_inversion(ctx) and "IR" not in values:
        values.append("IR")
    return values


def _sequence_variant(ctx: SeriesContext) -> list[str]:
    values = []
    etl = ctx.param("visu", "VisuAcqEchoTrainLength")
    if etl is not None and int(np.atleast_1d(etl)[0]) > 1:
        values.append("SK")
    if _yes(ctx, "VisuAcqMagnetizationTransfer") or _has_saturation(ctx):
        values.append("MTC")
    if str(ctx.param("visu", "VisuAcqSpoiling") or "") in _SPOILED:
        values.append("SP")
    if _has_inversion(ctx):
        values.append("MP")
    return values or ["NONE"]


def _scan_options(ctx: SeriesContext) -> list[str] | None:
    values = []
    flow = str(ctx.param("visu", "VisuAcqFlowCompensation") or "FlowNone")
    if flow not in ("FlowNone", "No", "None"):
        values.append("FC")
    if _yes(ctx, "VisuCardiacSynchUsed"):
        values.append("CG")
    if _yes(ctx, "VisuRespSynchUsed"):
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


def _acquisition_dimension(ctx: SeriesContext) -> str:
    spatial = text(ctx.param("method", "PVM_SpatDimEnum"))
    if spatial in ("2D", "3D"):
        return spatial
    dim = ctx.param("acqp", "ACQ_dim")
    if dim is not None and int(np.atleast_1d(dim)[0]) == 3:
        return "3D"
    return "3D" if ctx.series.geometry.dim == 3 else "2D"


def _transposed(ctx: SeriesContext) -> bool:
    value = ctx.param("visu", "VisuCoreTransposition")
    if value is None:
        return False
    flags = np.atleast_1d(np.asarray(value)).ravel()
    return bool(flags[ctx.images[0].frame % flags.size]) if flags.size else False


def _encodings(ctx: SeriesContext) -> list[str]:
    value = ctx.param("visu", "VisuAcqGradEncoding")
    encodings = ["read_enc", "phase_enc"] if value is None else [
        str(v) for v in np.atleast_1d(value)]
    if _transposed(ctx) and len(encodings) >= 2:
        encodings[0], encodings[1] = encodings[1], encodings[0]
    return encodings


def _phase_direction(ctx: SeriesContext) -> str | None:
    encodings = _encodings(ctx)
    if encodings and encodings[0] == "phase_enc":
        return "ROW"
    if len(encodings) > 1 and encodings[1] == "phase_enc":
        return "COL"
    return None


def _acquired_sizes(ctx: SeriesContext) -> tuple[int, int] | None:
    """(frequency, phase) acquired matrix, from VisuAcqSize (read, phase order)."""
    size = ctx.param("visu", "VisuAcqSize")
    if size is None:
        return None
    size = np.atleast_1d(np.asarray(size, dtype=np.float64)).ravel()
    if size.size < 2:
        return None
    return round(size[0]), round(size[1])


def _acquisition_matrix(ctx: SeriesContext) -> list[int] | None:
    direction, sizes = _phase_direction(ctx), _acquired_sizes(ctx)
    if direction is None or sizes is None:
        return None
    frequency, phase = sizes
    # frequency rows \ frequency columns \ phase rows \ phase columns (C.8.3.1)
    return [frequency, 0, 0, phase] if direction == "ROW" else [0, frequency, phase, 0]


def _field_strength(ctx: SeriesContext) -> float | None:
    f0 = ctx.series.imaging_frequency
    nucleus = text(ctx.param("visu", "VisuAcqImagedNucleus")) or "1H"
    if f0 is None or nucleus != "1H":
        base = ctx.param("acqp", "BF1")
        if base is None:
            return None
        f0 = float(np.atleast_1d(base)[0])  # BF1 is the 1H base frequency of the system
    return round(f0 / PROTON_GYROMAGNETIC_MHZ_PER_T, 4)


def _software_versions(ctx: SeriesContext) -> list[str]:
    creator = text(ctx.param("visu", "VisuCreator")) or "ParaVision"
    version = text(ctx.param("visu", "VisuAcqSoftwareVersion")) or text(
        ctx.param("visu", "VisuCreatorVersion")) or text(ctx.param("acqp", "ACQ_sw_version"))
    values = [f"{creator} {version}" if version else creator]
    return [*values, f"xnatpic {xnatpic.__version__}"]


def _series_number(ctx: SeriesContext) -> int:
    def number(file: str, name: str, fallback: str) -> int:
        value = ctx.param(file, name)
        if value is not None:
            return int(np.atleast_1d(value)[0])
        digits = "".join(c for c in fallback if c.isdigit())
        return int(digits) if digits else 0

    reco = ctx.series.reco
    experiment = number("visu", "VisuExperimentNumber", reco.scan.id)
    processing = number("visu", "VisuProcessingNumber", reco.number)
    if ctx.series.package_count > 1:
        return experiment * 10000 + processing * 100 + ctx.package + 1
    return experiment * 10000 + processing


def _temporal_positions(ctx: SeriesContext) -> int | None:
    count = len({im.repetition for im in ctx.images})
    return count if count > 1 else None


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _slice_ranks(ctx: SeriesContext) -> dict[int, int]:
    """Image index → 1-based rank of its slice position along the package's normal."""
    normal = ctx.images[0].orientation[2]
    heights = {im.index: round(float(np.dot(im.position, normal)), 4) for im in ctx.images}
    ranks = {h: k for k, h in enumerate(sorted(set(heights.values())), 1)}
    return {index: ranks[h] for index, h in heights.items()}


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


def _saturation_module(ctx: SeriesContext) -> tuple[str, dict[str, str]] | None:
    for prefix, switch, names in SATURATION_MODULES:
        if str(ctx.param("method", switch) or "").lower() == "on":
            return prefix, names
    return None


def _saturation(quantity: str) -> Callable[[SeriesContext], Any]:
    def value(ctx: SeriesContext) -> Any:
        module = _saturation_module(ctx)
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


def _rescaled(ctx: SeriesContext) -> bool:
    """False when every image is written with the identity rescale (slope 1, offset 0)."""
    return ctx.pixels.requantise or any(
        im.slope != 1 or im.intercept != 0 for im in ctx.images)


def _image_type(ctx: SeriesContext) -> list[str]:
    derived = ctx.series.layout.group("isa") is not None
    first = "DERIVED" if derived else "ORIGINAL"
    if ctx.enhanced:
        return [first, "PRIMARY", "VOLUME" if _acquisition_dimension(ctx) == "3D" else "OTHER",
                "NONE"]
    return [first, "PRIMARY", "OTHER"]


#: ``series:NAME`` → function of the context.
SERIES_VALUES: dict[str, Callable[[SeriesContext], Any]] = {
    "study_uid": lambda c: c.uids.study,
    "series_uid": lambda c: c.uids.series,
    "frame_of_reference_uid": lambda c: c.uids.frame_of_reference,
    "sop_class_uid": lambda c: ENHANCED_MR_IMAGE_STORAGE if c.enhanced else MR_IMAGE_STORAGE,
    "series_number": _series_number,
    "image_type": _image_type,
    "pixel_spacing": lambda c: list(c.series.pixel_spacing),
    "slice_thickness": lambda c: _nan_to_none(c.series.slice_thickness),
    "spacing_between_slices": lambda c: c.series.spacing_between_slices(c.package),
    "rows": lambda c: c.series.rows,
    "columns": lambda c: c.series.columns,
    "pixel_representation": lambda c: c.pixels.pixel_representation,
    "scanning_sequence": scanning_sequence,
    "sequence_variant": _sequence_variant,
    "scan_options": _scan_options,
    "mr_acquisition_type": _acquisition_dimension,
    "field_strength_from_f0": _field_strength,
    "imaging_frequency": lambda c: c.series.imaging_frequency,
    "software_versions": _software_versions,
    "phase_encoding_direction": _phase_direction,
    "acquisition_matrix": _acquisition_matrix,
    "temporal_positions": _temporal_positions,
    "frame_count": lambda c: len(c.images),
    "dimension_organization_uid": lambda c: c.uids.instance(0),
    "slice_ranks": _slice_ranks,
    "rescaled": _rescaled,
    "scan_id": lambda c: c.series.reco.scan.id,
    "reco_number": lambda c: c.series.reco.number,
    "package": lambda c: c.package,
    "pixel_encoding": lambda c: c.pixels.reason,
    "saturation_module": _saturation("module"),
    "saturation_amplitude_ut": _saturation("amplitude_ut"),
    "saturation_pulse_count": _saturation("pulse_count"),
    "saturation_interpulse_delay": _saturation("interpulse_delay"),
    "saturation_module_time": _saturation("module_time"),
    "saturation_pulse_shape": _saturation("pulse_shape"),
    "saturation_pulse_length": _saturation("pulse_length"),
    "saturation_pulse_bandwidth": _saturation("pulse_bandwidth"),
    "saturation_pulse_flip_angle": _saturation("pulse_flip_angle"),
}


def _diffusion_direction(ctx: SeriesContext, frame: Frame) -> list[float] | None:
    direction = ctx.series.diffusion_direction_patient(frame.image)
    return None if direction is None else [float(v) for v in direction]


def _directionality(ctx: SeriesContext, frame: Frame) -> str | None:
    diffusion = frame.image.diffusion
    if diffusion is None:
        return None
    return "DIRECTIONAL" if diffusion.direction_logical is not None else "NONE"


def _b_matrix(ctx: SeriesContext, frame: Frame) -> list[float] | None:
    diffusion = frame.image.diffusion
    if diffusion is None or diffusion.b_matrix is None:
        return None
    m = np.asarray(diffusion.b_matrix, dtype=np.float64)
    return [float(m[0, 0]), float(m[0, 1]), float(m[0, 2]), float(m[1, 1]), float(m[1, 2]),
            float(m[2, 2])]


def _window(frame: Frame) -> tuple[float, float] | None:
    pixels = frame.encoded.pixels
    if pixels.size == 0:
        return None
    low = float(pixels.min()) * frame.encoded.slope + frame.encoded.intercept
    high = float(pixels.max()) * frame.encoded.slope + frame.encoded.intercept
    low, high = min(low, high), max(low, high)
    if high - low < 1:  # Window Width must be ≥ 1 (C.11.2.1.2)
        return None
    return (low + high) / 2, high - low


def _slice_location(ctx: SeriesContext, frame: Frame) -> float:
    return float(np.dot(frame.image.position, frame.image.orientation[2]))


def _diffusion_b(ctx: SeriesContext, frame: Frame) -> float | None:
    d = frame.image.diffusion
    return None if d is None else d.b_value


#: ``image:NAME`` → function of the context and the frame.
IMAGE_VALUES: dict[str, Callable[[SeriesContext, Frame], Any]] = {
    "number": lambda c, f: f.number,
    "sop_instance_uid": lambda c, f: c.uids.instance(f.number),
    "position": lambda c, f: [float(v) for v in f.image.position],
    "orientation": lambda c, f: [float(v) for v in f.image.orientation[:2].ravel()],
    "slice_location": _slice_location,
    "echo_time": lambda c, f: f.image.echo_time,
    "echo_number": lambda c, f: f.image.echo_number,
    "repetition_time": lambda c, f: f.image.repetition_time,
    "inversion_time": lambda c, f: f.image.inversion_time,
    "flip_angle": lambda c, f: f.image.flip_angle,
    "temporal_position": lambda c, f: f.image.repetition + 1,
    "comment": lambda c, f: f.image.comment,
    "rescale_slope": lambda c, f: f.encoded.slope,
    "rescale_intercept": lambda c, f: f.encoded.intercept,
    "window_center": lambda c, f: (w := _window(f)) and w[0],
    "window_width": lambda c, f: (w := _window(f)) and w[1],
    "diffusion_b_value": _diffusion_b,
    "diffusion_directionality": _directionality,
    "diffusion_orientation": _diffusion_direction,
    "diffusion_b_matrix": _b_matrix,
    "complex_component": lambda c, f: f.image.complex_component,
    "stack_position": lambda c, f: c.series_value("slice_ranks")[f.image.index],
    "frame": lambda c, f: f.image.frame,
    "slice_in_frame": lambda c, f: (f.image.slice_in_frame if c.series.geometry.dim == 3
                                    else None),
    "frame_group_indices": lambda c, f: [f"{k}={v}" for k, v in f.image.axes.items()],
    "repetition": lambda c, f: f.image.repetition,
    "visu_slope": lambda c, f: f.image.slope if c.pixels.requantise else None,
    "visu_offset": lambda c, f: f.image.intercept if c.pixels.requantise else None,
    "saturation_offset_hz": lambda c, f: f.image.saturation_offset_hz,
    "saturation_offset_ppm": lambda c, f: f.image.saturation_offset_ppm,
    "is_m0": lambda c, f: (None if f.image.saturation_offset_ppm is None
                           else ("YES" if f.image.is_m0 else "NO")),
    "diffusion_logical": lambda c, f: (
        None if f.image.diffusion is None or f.image.diffusion.direction_logical is None
        else [float(v) for v in f.image.diffusion.direction_logical]),
}


def _animal(ctx: SeriesContext, frame: Frame | None) -> bool:
    kind = text(ctx.param("visu", "VisuSubjectType")) or text(ctx.param("subject",
                                                                        "SUBJECT_type"))
    return kind != "Human"


#: Condition name → predicate (for 1C/2C rows).
CONDITIONS: dict[str, Callable[[SeriesContext, Any], bool]] = {
    "animal": _animal,
    "inversion_recovery": lambda c, f: "IR" in c.series_value("scanning_sequence"),
    "responsible_person": lambda c, f: _animal(c, f) and c.value(
        "visu:VisuStudyReferringPhysician", f) not in (None, ""),
    # MR series are temporally related; the body part is unknown, so Laterality is
    # written empty (dciodvfy requires it for animals).
    "temporally_related": lambda c, f: True,
    # ParaVision text may hold any character: every file declares UTF-8 (ISO_IR 192).
    "utf8_text": lambda c, f: True,
    "rescaled": lambda c, f: c.series_value("rescaled"),
    "laterality_unknown": lambda c, f: True,
    "not_epi_single_shot": lambda c, f: not ("EP" in c.series_value("scanning_sequence")
                                             and "SK" not in c.series_value("sequence_variant")),
    "diffusion": lambda c, f: f.image.diffusion is not None,
    "directional_diffusion": lambda c, f: (f.image.diffusion is not None
                                           and f.image.diffusion.direction_logical is not None),
    "b_matrix": lambda c, f: (f.image.diffusion is not None
                              and f.image.diffusion.b_matrix is not None),
}

"""Values the tables read that no single ParaVision parameter holds.

``series:NAME`` sources resolve through :data:`SERIES_VALUES` (computed once per output
series), ``image:NAME`` through :data:`IMAGE_VALUES` (per image or frame), and the 1C/2C
conditions through :data:`CONDITIONS`. Each function returns a raw value (or None) that
the row's transform then turns into the DICOM value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

import xnatpic
from xnatpic.dicom.mr_acquisition import (
    acquisition_dimension,
    acquisition_matrix,
    field_strength,
    phase_direction,
    saturation,
    scan_options,
    scanning_sequence,
    sequence_variant,
)
from xnatpic.dicom.transforms import da, parse_pv_datetime, text

if TYPE_CHECKING:
    from xnatpic.dicom.context import Frame, SeriesContext

__all__ = [
    "CONDITIONS",
    "ENHANCED_MR_IMAGE_STORAGE",
    "IMAGE_VALUES",
    "MR_IMAGE_STORAGE",
    "SERIES_VALUES",
]

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def _software_versions(ctx: SeriesContext) -> list[str]:
    creator = text(ctx.param("visu", "VisuCreator")) or "ParaVision"
    version = text(ctx.param("visu", "VisuCreatorVersion")) or text(
        ctx.param("visu", "VisuAcqSoftwareVersion")) or text(ctx.param("acqp", "ACQ_sw_version"))
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


def _rescaled(ctx: SeriesContext) -> bool:
    """False when every image is written with the identity rescale (slope 1, offset 0)."""
    return ctx.pixels.requantise or any(
        im.slope != 1 or im.intercept != 0 for im in ctx.images)


#: VisuCoreDataUnits → RescaleType, the unit of the rescaled values (PS3.3 C.11.1.1.2:
#: a free LO code beyond the defined terms); anything else stays "US" (unspecified).
RESCALE_UNITS: dict[str, str] = {"Hz": "HZ"}


def _rescale_type(ctx: SeriesContext) -> str:
    """RescaleType from the unit ParaVision gives the stored values (``HZ`` for a field
    map), else ``US``."""
    units = ctx.param("visu", "VisuCoreDataUnits")
    values = {str(v).strip() for v in np.atleast_1d(np.asarray(units, dtype=object)).ravel()
              } if units is not None else set()
    return RESCALE_UNITS.get(values.pop(), "US") if len(values) == 1 else "US"


def age_string(days: int) -> str | None:
    """An age in days as AS (PS3.5 6.2): the finest of ``nnnD``, ``nnnW``, ``nnnM``
    (30.4375 days), ``nnnY`` (365.25 days) that fits three digits, whole units; None
    when negative."""
    if days < 0:
        return None
    for unit, length in (("D", 1.0), ("W", 7.0), ("M", 30.4375), ("Y", 365.25)):
        count = int(days // length)
        if count <= 999:
            return f"{count:03d}{unit}"
    return None


def _patient_age(ctx: SeriesContext) -> str | None:
    """PatientAge from the animal's birth date and the study date (both as ParaVision
    records them; de-identification shifts both alike, so the age is the same)."""
    def first(*sources: tuple[str, str]) -> str | None:
        return next((d for d in (da(ctx.param(f, n)) for f, n in sources) if d), None)

    birth = first(("visu", "VisuSubjectBirthDate"), ("subject", "SUBJECT_dbirth"))
    study = first(("visu", "VisuStudyDate"), ("subject", "SUBJECT_date"))
    if birth is None or study is None:
        return None
    days = (datetime.strptime(study, "%Y%m%d") - datetime.strptime(birth, "%Y%m%d")).days
    return age_string(days)


def _image_flavor(ctx: SeriesContext) -> str:
    """Enhanced ImageType value 3 (C.8.16.1.3): LOCALIZER, DYNAMIC or VOLUME."""
    protocol = (text(ctx.param("visu", "VisuAcquisitionProtocol")) or "").lower()
    if ctx.series.package_count > 1 or "localizer" in protocol or "pilot" in protocol:
        return "LOCALIZER"
    if len({im.repetition for im in ctx.images}) > 1:
        return "DYNAMIC"
    return "VOLUME"


def _image_type(ctx: SeriesContext) -> list[str]:
    derived = ctx.series.layout.group("isa") is not None
    first = "DERIVED" if derived else "ORIGINAL"
    if ctx.enhanced:
        return [first, "PRIMARY", _image_flavor(ctx), "NONE"]
    return [first, "PRIMARY", "OTHER"]


#: ``series:NAME`` → function of the context.
SERIES_VALUES: dict[str, Callable[[SeriesContext], Any]] = {
    "study_uid": lambda c: c.uids.study,
    "series_uid": lambda c: c.uids.series,
    "frame_of_reference_uid": lambda c: c.uids.frame_of_reference,
    "sop_class_uid": lambda c: ENHANCED_MR_IMAGE_STORAGE if c.enhanced else MR_IMAGE_STORAGE,
    "series_number": _series_number,
    "patient_age": _patient_age,
    "image_type": _image_type,
    "pixel_spacing": lambda c: list(c.series.pixel_spacing),
    "slice_thickness": lambda c: _nan_to_none(c.series.slice_thickness),
    "spacing_between_slices": lambda c: c.series.spacing_between_slices(c.package),
    "rows": lambda c: c.series.rows,
    "columns": lambda c: c.series.columns,
    "pixel_representation": lambda c: c.pixels.pixel_representation,
    "scanning_sequence": scanning_sequence,
    "sequence_variant": sequence_variant,
    "scan_options": scan_options,
    "mr_acquisition_type": acquisition_dimension,
    "field_strength_from_f0": field_strength,
    "imaging_frequency": lambda c: c.series.imaging_frequency,
    "software_versions": _software_versions,
    "phase_encoding_direction": phase_direction,
    "phase_encoding_direction_enhanced": lambda c: {"COL": "COLUMN", "ROW": "ROW"}.get(
        phase_direction(c) or ""),
    "acquisition_matrix": acquisition_matrix,
    "temporal_positions": _temporal_positions,
    "frame_count": lambda c: len(c.images),
    "dimension_organization_uid": lambda c: c.uids.instance(0),
    "slice_ranks": _slice_ranks,
    "rescaled": _rescaled,
    "rescale_type": _rescale_type,
    "image_laterality": lambda c: None if c.enhanced else "U",
    "scan_id": lambda c: c.series.reco.scan.id,
    "reco_number": lambda c: c.series.reco.number,
    "package": lambda c: c.package,
    "pixel_encoding": lambda c: c.pixels.reason,
    "saturation_module": saturation("module"),
    "saturation_amplitude_ut": saturation("amplitude_ut"),
    "saturation_pulse_count": saturation("pulse_count"),
    "saturation_interpulse_delay": saturation("interpulse_delay"),
    "saturation_module_time": saturation("module_time"),
    "saturation_pulse_shape": saturation("pulse_shape"),
    "saturation_pulse_length": saturation("pulse_length"),
    "saturation_pulse_bandwidth": saturation("pulse_bandwidth"),
    "saturation_pulse_flip_angle": saturation("pulse_flip_angle"),
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
def _acquisition_datetime(ctx: SeriesContext, frame: Frame) -> str | None:
    """VisuAcqDate moved on by the frame's repetition start, in ParaVision's format."""
    offset = frame.image.acquisition_offset
    start = parse_pv_datetime(ctx.param("visu", "VisuAcqDate"))
    if offset is None or start is None:
        return None
    moment, zone = start
    moment += timedelta(seconds=offset)
    return (moment.strftime("%Y-%m-%dT%H:%M:%S") + f",{moment.microsecond:06d}"
            + (zone or ""))


IMAGE_VALUES: dict[str, Callable[[SeriesContext, Frame], Any]] = {
    "acquisition_datetime": _acquisition_datetime,
    "number": lambda c, f: f.number,
    "sop_instance_uid": lambda c, f: c.uids.instance(f.number),
    "position": lambda c, f: [float(v) for v in f.image.position],
    "orientation": lambda c, f: [float(v) for v in f.image.orientation[:2].ravel()],
    "slice_location": _slice_location,
    "echo_time": lambda c, f: f.image.echo_time,
    "echo_number": lambda c, f: f.image.echo_number,
    "repetition_time": lambda c, f: f.image.repetition_time,
    # Inversion to this slice's excitation (PS3.3 C.8.3.1): the protocol TI plus the
    # slice's delay in the acquisition order (FAIR: all slices read after one inversion).
    "inversion_time": lambda c, f: f.image.effective_inversion_time,
    "nominal_inversion_time": lambda c, f: (f.image.inversion_time
                                            if f.image.inversion is not None else None),
    "inversion_slice_delay": lambda c, f: (None if f.image.inversion is None
                                           else f.image.inversion.slice_delay),
    "readout_duration": lambda c, f: (None if f.image.inversion is None
                                      else f.image.inversion.readout),
    "inversion_mode": lambda c, f: (None if f.image.inversion is None
                                    else f.image.inversion.mode),
    "flip_angle": lambda c, f: f.image.flip_angle,
    "temporal_position": lambda c, f: f.image.repetition + 1,
    "comment": lambda c, f: (None if c.deidentify is not None
                             and not c.deidentify.keep_descriptions else f.image.comment),
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
    "slice_in_frame": lambda c, f: (f.image.slice_in_frame if c.series.geometry.dim == 3
                                    else None),
    "frame_group_indices": lambda c, f: [f"{k}={v}" for k, v in f.image.axes.items()],
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
    "responsible_person": lambda c, f: _animal(c, f) and any(
        text(c.value(s, f)) for s in ("visu:VisuStudyReferringPhysician",
                                      "subject:SUBJECT_referral")),
    # The images of an MR series are temporally related (ContentDate/Time required).
    "temporally_related": lambda c, f: True,
    # ParaVision text may hold any character: every file declares UTF-8 (ISO_IR 192).
    "utf8_text": lambda c, f: True,
    "rescaled": lambda c, f: c.series_value("rescaled"),
    "not_epi_single_shot": lambda c, f: not ("EP" in c.series_value("scanning_sequence")
                                             and "SK" not in c.series_value("sequence_variant")),
    # RepetitionTime (2C): required unless single-shot EPI, "may be present otherwise"
    # (PS3.3 C.8.3.1): written whenever known (the FieldMap, flagged EPI by ParaVision).
    "repetition_time_known_or_required": lambda c, f: (
        not ("EP" in c.series_value("scanning_sequence")
             and "SK" not in c.series_value("sequence_variant"))
        or any(c.value(s, f) is not None for s in ("image:repetition_time",
                                                   "method:PVM_RepetitionTime"))),
    "diffusion": lambda c, f: f.image.diffusion is not None,
    "directional_diffusion": lambda c, f: (f.image.diffusion is not None
                                           and f.image.diffusion.direction_logical is not None),
    "b_matrix": lambda c, f: (f.image.diffusion is not None
                              and f.image.diffusion.b_matrix is not None),
}

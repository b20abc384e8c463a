"""Values only the Enhanced MR tables need (pulse sequence flags, coils, frame types...).

Registered like :mod:`xnatpic.dicom.derived`; :mod:`xnatpic.dicom.context` merges both.
Enumerations are tables at the top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset

from xnatpic.dicom.codes import code_item
from xnatpic.dicom.dimensions import (
    FRAME_DIMENSION,
    chosen_dimensions,
    frame_indices,
    index_items,
    organization_items,
)
from xnatpic.dicom.mr_acquisition import acquired_sizes, acquisition_dimension, has_inversion
from xnatpic.dicom.transforms import text

if TYPE_CHECKING:
    from xnatpic.dicom.context import Frame, SeriesContext

__all__ = ["CONDITIONS", "IMAGE_VALUES", "SERIES_CONDITIONS", "SERIES_VALUES"]

#: VisuAcqEchoSequenceType → EchoPulseSequence (C.8.13.4).
ECHO_PULSE_SEQUENCE: dict[str, str] = {
    "GradientEcho": "GRADIENT", "SpinEcho": "SPIN", "Both": "BOTH",
}
#: VisuAcqSpectralSuppression → SpectrallySelectedSuppression.
SPECTRAL_SUPPRESSION: dict[str, str] = {
    "NoSuppression": "NONE", "FatSuppression": "FAT", "WaterSuppression": "WATER",
    "FatAndWaterSuppression": "FAT_AND_WATER",
}
#: VisuAcqKSpaceTraversal → GeometryOfKSpaceTraversal.
K_SPACE_TRAVERSAL: dict[str, str] = {
    "RectilinearTraversal": "RECTILINEAR", "RadialTraversal": "RADIAL",
    "SpiralTraversal": "SPIRAL",
}
#: VisuAcqEncodingOrder (phase dimension) → RectilinearPhaseEncodeReordering.
ENCODING_ORDER: dict[str, str] = {
    "LinearEncoding": "LINEAR", "CenteredEncoding": "CENTRIC",
    "CenterOutEncoding": "CENTRIC", "SegmentedEncoding": "SEGMENTED",
}
#: VisuAcqKSpaceFiltering → KSpaceFiltering (unlisted filters: USER_DEFINED).
K_SPACE_FILTERS: dict[str, str] = {
    "NO_WDW": "NONE", "DICOM_NONE": "NONE", "NONE": "NONE", "GAUSS_WDW": "GAUSSIAN",
    "HANNING_WDW": "HANNING", "HAMMING_WDW": "HAMMING", "TUKEY_WDW": "TUKEY",
    "COSINE_WDW": "COSINE", "SINE_WDW": "COSINE", "LORENTZ_WDW": "LORENTZIAN",
}
#: VisuCoil*Type → ReceiveCoilType / TransmitCoilType (array coils are surface arrays;
#: MULTICOIL would need a coil element definition ParaVision does not give).
COIL_TYPES: dict[str, str] = {
    "VOLUME_COIL": "VOLUME", "SURFACE_COIL": "SURFACE", "ARRAY_COIL": "SURFACE",
    "BODY_COIL": "BODY",
}
#: AnatomicRegionSequence of every frame: the body part is not recorded by ParaVision.
WHOLE_BODY = ("38266002", "SCT", "Entire body")
#: Values ParaVision does not record but the MR Timing macro requires for ORIGINAL
#: images (dciodvfy 2022): placeholders, not measurements.
PLACEHOLDERS: dict[str, Any] = {
    "sar_definition": "IEC_WHOLE_BODY",
    "sar_value": 0.0,
    "operating_modes": (("STATIC FIELD", "IEC_NORMAL"), ("RF", "IEC_NORMAL"),
                        ("GRADIENT", "IEC_NORMAL")),
}


def _visu(ctx: SeriesContext, name: str) -> Any:
    return ctx.param("visu", name)


def _first_text(value: Any) -> str | None:
    if isinstance(value, np.ndarray):
        return str(value.ravel()[0]) if value.size else None
    return text(value)


def _mapped(name: str, table: dict[str, str], default: str | None,
            index: int = 0) -> Callable[[SeriesContext], str | None]:
    def value(ctx: SeriesContext) -> str | None:
        raw = _visu(ctx, name)
        if isinstance(raw, np.ndarray) and raw.size > index:
            raw = str(raw.ravel()[index])
        key = _first_text(raw)
        return default if key is None else table.get(key, default)

    return value


def _flag(ctx: SeriesContext, name: str) -> str:
    return "YES" if str(_visu(ctx, name) or "").lower() in ("yes", "on") else "NO"


def _echo_train(ctx: SeriesContext) -> int:
    value = _visu(ctx, "VisuAcqEchoTrainLength")
    return int(np.atleast_1d(value)[0]) if value is not None else 1


def _echo_type(ctx: SeriesContext) -> str:
    return ECHO_PULSE_SEQUENCE.get(str(_visu(ctx, "VisuAcqEchoSequenceType") or ""), "BOTH")


def _rf_echo_train(ctx: SeriesContext) -> int:
    if _flag(ctx, "VisuAcqIsEpiSequence") == "YES":
        return 0 if _echo_type(ctx) == "GRADIENT" else 1
    return 0 if _echo_type(ctx) == "GRADIENT" else _echo_train(ctx)


def _gradient_echo_train(ctx: SeriesContext) -> int:
    if _flag(ctx, "VisuAcqIsEpiSequence") == "YES" or _echo_type(ctx) == "GRADIENT":
        return _echo_train(ctx)
    return 0


def _segmented(ctx: SeriesContext) -> str:
    etl = _echo_train(ctx)
    steps = _visu(ctx, "VisuAcqPhaseEncSteps")
    if etl <= 1:
        return "SINGLE"
    if steps is not None and etl >= int(np.atleast_1d(steps)[0]):
        return "FULL"
    return "PARTIAL"


def _pair(ctx: SeriesContext, name: str) -> np.ndarray | None:
    value = _visu(ctx, name)
    if value is None:
        return None
    return np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()


def _partial_fourier(ctx: SeriesContext) -> str:
    fourier = _pair(ctx, "VisuAcqPartialFourier")
    return "YES" if fourier is not None and np.any(fourier < 1) else "NO"


def _partial_fourier_direction(ctx: SeriesContext) -> str | None:
    fourier = _pair(ctx, "VisuAcqPartialFourier")
    if fourier is None or not np.any(fourier < 1):
        return None
    flags = fourier < 1
    if flags.size > 1 and flags[0] and flags[1]:
        return "COMBINATION"
    return "FREQUENCY" if flags[0] else ("SLICE_SELECT" if flags.size > 2 and flags[2]
                                         else "PHASE")


def _parallel(ctx: SeriesContext) -> float | None:
    factors = _pair(ctx, "VisuAcqParallelReductionFactor")
    return None if factors is None else float(np.prod(factors))


def _oversampling(ctx: SeriesContext) -> str:
    anti_alias = _pair(ctx, "VisuAcqAntiAlias")
    if anti_alias is None or anti_alias.size < 2 or anti_alias[1] <= 1:
        return "NONE"
    return "3D" if acquisition_dimension(ctx) == "3D" else "2D"


def _percent_sampling(ctx: SeriesContext) -> float:
    fourier = _pair(ctx, "VisuAcqPartialFourier")
    return 100.0 * (float(np.prod(fourier[:2])) if fourier is not None else 1.0)


def _percent_phase_fov(ctx: SeriesContext) -> float:
    return 100.0  # ParaVision reconstructs the full phase field of view


def _phase_steps_out_of_plane(ctx: SeriesContext) -> int | None:
    size = _pair(ctx, "VisuAcqSize")
    if acquisition_dimension(ctx) != "3D":
        return None
    if size is not None and size.size > 2:
        return int(size[2])
    return ctx.series.geometry.slices_per_frame


def _coil_name(prefix: str) -> Callable[[SeriesContext], str]:
    def value(ctx: SeriesContext) -> str:
        return text(_visu(ctx, f"VisuCoil{prefix}Name")) or "UNKNOWN"
    return value


def _coil_type(prefix: str) -> Callable[[SeriesContext], str]:
    def value(ctx: SeriesContext) -> str:
        return COIL_TYPES.get(str(_visu(ctx, f"VisuCoil{prefix}Type") or ""), "VOLUME")
    return value


def _sar_items(ctx: SeriesContext) -> list[Dataset]:
    item = Dataset()
    item.SpecificAbsorptionRateDefinition = PLACEHOLDERS["sar_definition"]
    item.SpecificAbsorptionRateValue = PLACEHOLDERS["sar_value"]
    return [item]


def _operating_mode_items(ctx: SeriesContext) -> list[Dataset]:
    items = []
    for kind, mode in PLACEHOLDERS["operating_modes"]:
        item = Dataset()
        item.OperatingModeType = kind
        item.OperatingMode = mode
        items.append(item)
    return items


def _frame_contrast(ctx: SeriesContext, frame: Frame) -> str:
    return "DIFFUSION" if frame.image.diffusion is not None else "UNKNOWN"


def _mixed(values: set[str]) -> str:
    return values.pop() if len(values) == 1 else "MIXED"


def _frame_duration_ms(ctx: SeriesContext) -> float | None:
    scan_time = _pair(ctx, "VisuAcqScanTime")
    if scan_time is None or scan_time[0] <= 0:
        return None
    return float(scan_time[0]) / max(1, len({im.repetition for im in ctx.images}))


SERIES_VALUES: dict[str, Callable[[SeriesContext], Any]] = {
    "instance_uid": lambda c: c.uids.instance(1),
    "echo_pulse_sequence": _echo_type,
    "multiple_spin_echo": lambda c: ("YES" if _echo_type(c) != "GRADIENT" and len(
        {im.echo_number for im in c.images}) > 1 else "NO"),
    "multi_planar_excitation": lambda c: ("YES" if acquisition_dimension(c) == "2D" and len(
        {round(float(np.dot(im.position, im.orientation[2])), 4) for im in c.images}) > 1
        else "NO"),
    "time_of_flight": lambda c: _flag(c, "VisuAcqHasTimeOfFlightContrast"),
    "epi": lambda c: _flag(c, "VisuAcqIsEpiSequence"),
    "spectral_suppression": _mapped("VisuAcqSpectralSuppression", SPECTRAL_SUPPRESSION, "NONE"),
    "oversampling_phase": _oversampling,
    "k_space_traversal": _mapped("VisuAcqKSpaceTraversal", K_SPACE_TRAVERSAL, "RECTILINEAR"),
    "phase_reordering": _mapped("VisuAcqEncodingOrder", ENCODING_ORDER, "LINEAR", 1),
    "segmented_k_space": _segmented,
    "k_space_filtering": _mapped("VisuAcqKSpaceFiltering", K_SPACE_FILTERS, "NONE"),
    "rf_echo_train": _rf_echo_train,
    "gradient_echo_train": _gradient_echo_train,
    "frequency_steps": lambda c: (s := acquired_sizes(c)) and s[0],
    "phase_steps": lambda c: (s := acquired_sizes(c)) and s[1],
    "phase_steps_out_of_plane": _phase_steps_out_of_plane,
    "percent_sampling": _percent_sampling,
    "percent_phase_fov": _percent_phase_fov,
    "inversion_recovery": lambda c: "YES" if has_inversion(c) else "NO",
    "flow_compensation": lambda c: ("NONE" if str(_visu(c, "VisuAcqFlowCompensation")
                                                  or "FlowNone") in ("FlowNone", "No")
                                    else "OTHER"),
    "spoiling": lambda c: ("NONE" if str(_visu(c, "VisuAcqSpoiling") or "NoSpoiling")
                           in ("NoSpoiling", "No") else "RF_AND_GRADIENT"
                           if "RF" in str(_visu(c, "VisuAcqSpoiling")) else "GRADIENT"),
    "partial_fourier": _partial_fourier,
    "partial_fourier_direction": _partial_fourier_direction,
    "parallel_acquisition": lambda c: "YES" if (_parallel(c) or 1) > 1 else "NO",
    "magnetization_transfer": lambda c: (
        "OFF_RESONANCE" if _flag(c, "VisuAcqMagnetizationTransfer") == "YES" or any(
            im.saturation_offset_hz is not None for im in c.images) else "NONE"),
    "blood_signal_nulling": lambda c: _flag(c, "VisuAcqBloodSignalNulling"),
    "receive_coil_name": _coil_name("Receive"),
    "receive_coil_type": _coil_type("Receive"),
    "receive_coil_quadrature": lambda c: _flag(c, "VisuCoilReceiveIsQuadrature"),
    "transmit_coil_name": _coil_name("Transmit"),
    "transmit_coil_type": _coil_type("Transmit"),
    "anatomic_region": lambda c: [code_item(*WHOLE_BODY)],
    "acquisition_contrast": lambda c: _mixed(
        {"DIFFUSION" if im.diffusion is not None else "UNKNOWN" for im in c.images}),
    "complex_component": lambda c: _mixed({im.complex_component for im in c.images}),
    "frame_duration_ms": _frame_duration_ms,
    "sar_items": _sar_items,
    "operating_mode_items": _operating_mode_items,
    "dimensions": chosen_dimensions,
    "dimension_indices": frame_indices,
    "dimension_index_items": index_items,
    "dimension_organization_items": organization_items,
}


def _gradient_items(ctx: SeriesContext, frame: Frame) -> list[Dataset] | None:
    direction = ctx.series.diffusion_direction_patient(frame.image)
    if direction is None:
        return None
    item = Dataset()
    item.DiffusionGradientOrientation = [float(v) for v in direction]
    return [item]


IMAGE_VALUES: dict[str, Callable[[SeriesContext, Frame], Any]] = {
    "frame_type": lambda c, f: c.series_value("image_type"),
    "frame_index": lambda c, f: (f.image.frame if not c.enhanced or any(
        d.label == FRAME_DIMENSION.label for d, _ in c.series_value("dimensions"))
        else None),
    "frame_contrast": _frame_contrast,
    "diffusion_b_value_or_zero": lambda c, f: (0.0 if f.image.diffusion is None
                                               else f.image.diffusion.b_value),
    "diffusion_directionality_or_none": lambda c, f: (
        "NONE" if f.image.diffusion is None or f.image.diffusion.direction_logical is None
        else "DIRECTIONAL"),
    "diffusion_gradient_items": _gradient_items,
    "temporal_position_index": lambda c, f: (f.image.repetition + 1
                                             if c.series_value("temporal_positions")
                                             else None),
    "dimension_index_values": lambda c, f: c.series_value("dimension_indices")[f.number - 1],
}

CONDITIONS: dict[str, Callable[[SeriesContext, Any], bool]] = {
    "dimension_index": lambda c, f: True,  # every enhanced series has a Dimension Index
    "spin_echo": lambda c, f: (c.series_value("image_type")[0] == "ORIGINAL"
                               and _echo_type(c) != "GRADIENT"),
    "original": lambda c, f: c.series_value("image_type")[0] == "ORIGINAL",
    "three_d": lambda c, f: acquisition_dimension(c) == "3D",
    "rectilinear": lambda c, f: c.series_value("k_space_traversal") == "RECTILINEAR",
    "partial_fourier": lambda c, f: _partial_fourier(c) == "YES",
    "parallel": lambda c, f: (_parallel(c) or 1) > 1,
    "has_window": lambda c, f: c.value("image:window_center", f) is not None,
    "directional": lambda c, f: (f.image.diffusion is not None
                                 and f.image.diffusion.direction_logical is not None),
}
#: Conditions (here and in :data:`xnatpic.dicom.derived.CONDITIONS`) that do not depend on
#: the frame: a row without ``image:`` sources under one of them is evaluated once per
#: series, not per frame.
SERIES_CONDITIONS: frozenset[str] = frozenset({
    "dimension_index", "spin_echo", "original", "three_d", "rectilinear", "partial_fourier",
    "parallel", "animal", "inversion_recovery", "temporally_related", "utf8_text",
    "rescaled", "not_epi_single_shot",
})

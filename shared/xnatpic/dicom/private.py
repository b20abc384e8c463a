"""The xnatpic private block: ParaVision values with no standard DICOM home.

Private creator ``XNATPIC 1.0`` reserves block 0x10 of group 0x0029, so element ``xx``
of the table below is written as (0029,10xx). Every element is documented in
``docs/private-tags.md`` (a test checks that the document and this table agree). In
classic files the elements are at the top level; in enhanced files the per-frame ones
sit in a private per-frame functional group, (0029,1040) ``XNATPIC Frame Sequence``,
whose item carries the same creator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from xnatpic.dicom.engine import IMAGE_PREFIX, Resolver, resolve

__all__ = [
    "CREATOR",
    "FRAME_SEQUENCE",
    "GROUP",
    "PRIVATE_ELEMENTS",
    "PrivateElement",
    "add_creator",
    "apply_private",
    "private_tag",
    "private_values",
]

GROUP = 0x0029
CREATOR = "XNATPIC 1.0"
#: Block 0x10: elements (0029,10xx), creator in (0029,0010).
BLOCK = 0x10
#: Offset of the private per-frame functional group sequence (enhanced files).
FRAME_SEQUENCE = 0x40


@dataclass(frozen=True)
class PrivateElement:
    """One element of the private block.

    Attributes
    ----------
    offset : int
        Element offset in the block: the tag is (0029,10xx).
    vr : str
        Value representation.
    name : str
        Name used in ``docs/private-tags.md``.
    sources : tuple of str
        Sources in fallback order (as in :class:`xnatpic.dicom.engine.Row`).
    transform : str
        Transform name.
    identifying : bool
        True when the value identifies the study (removed by de-identification).
    classic_only : bool
        Not written in enhanced files, where a standard attribute holds the value.
    """

    offset: int
    vr: str
    name: str
    sources: tuple[str, ...]
    transform: str = "identity"
    identifying: bool = False
    classic_only: bool = False

    @property
    def tag(self) -> int:
        """The private tag (0029,10xx)."""
        return private_tag(self.offset)

    @property
    def per_image(self) -> bool:
        """True when the value depends on the image."""
        return any(s.startswith(IMAGE_PREFIX) for s in self.sources)


def private_tag(offset: int) -> int:
    """Tag of element ``offset`` of the xnatpic block."""
    return (GROUP << 16) | (BLOCK << 8) | offset


P = PrivateElement
#: The private block, by offset. Times in ms, frequencies in Hz, b-values in s/mm².
#: Values already in standard attributes are not repeated (the repetition index is
#: TemporalPositionIdentifier − 1, the b-value and patient-frame gradient direction are
#: DiffusionBValue and DiffusionGradientOrientation).
PRIVATE_ELEMENTS: tuple[PrivateElement, ...] = (
    P(0x00, "LO", "ParaVision scan", ("series:scan_id",), "text"),
    P(0x01, "LO", "ParaVision reco", ("series:reco_number",), "text"),
    P(0x02, "LO", "ParaVision method", ("acqp:ACQ_method", "visu:VisuAcqSequenceName",
                                        "method:Method"), "text"),
    P(0x03, "UI", "ParaVision VisuUid", ("visu:VisuUid",), "text", identifying=True),
    P(0x04, "LT", "Pixel encoding", ("series:pixel_encoding",), "text"),
    P(0x05, "IS", "Slice package", ("series:package",), "integer"),
    P(0x10, "IS", "2dseq frame index", ("image:frame_index",), "integer"),
    P(0x11, "IS", "Slice in frame", ("image:slice_in_frame",), "integer"),
    P(0x12, "LO", "Frame group indices", ("image:frame_group_indices",), "text_list",
      classic_only=True),
    P(0x14, "FD", "VisuCoreDataSlope", ("image:visu_slope",), "ds"),
    P(0x15, "FD", "VisuCoreDataOffs", ("image:visu_offset",), "ds"),
    P(0x20, "FD", "Saturation offset Hz", ("image:saturation_offset_hz",), "ds"),
    P(0x21, "FD", "Saturation offset ppm", ("image:saturation_offset_ppm",), "ds"),
    P(0x22, "CS", "M0 reference frame", ("image:is_m0",), "yes_no"),
    P(0x23, "LO", "Saturation module", ("series:saturation_module",), "text"),
    P(0x24, "FD", "Saturation pulse amplitude uT", ("series:saturation_amplitude_ut",), "ds"),
    P(0x25, "IS", "Saturation pulse count", ("series:saturation_pulse_count",), "integer"),
    P(0x26, "FD", "Saturation inter-pulse delay", ("series:saturation_interpulse_delay",),
      "ds"),
    P(0x27, "FD", "Saturation module duration", ("series:saturation_module_time",), "ds"),
    P(0x28, "LO", "Saturation pulse shape", ("series:saturation_pulse_shape",), "text"),
    P(0x29, "FD", "Saturation pulse length", ("series:saturation_pulse_length",), "ds"),
    P(0x2A, "FD", "Saturation pulse bandwidth", ("series:saturation_pulse_bandwidth",), "ds"),
    P(0x2B, "FD", "Saturation pulse flip angle", ("series:saturation_pulse_flip_angle",),
      "ds"),
    P(0x32, "FD", "Diffusion direction gradient frame", ("image:diffusion_logical",),
      "ds_list"),
    P(0x33, "FD", "Diffusion b-matrix", ("image:diffusion_b_matrix",), "ds_list"),
    P(0x34, "FD", "Nominal inversion time", ("image:nominal_inversion_time",), "ds"),
    P(0x35, "FD", "Slice delay after inversion", ("image:inversion_slice_delay",), "ds"),
    P(0x36, "FD", "Readout duration", ("image:readout_duration",), "ds"),
    P(0x37, "CS", "Inversion mode", ("image:inversion_mode",), "text"),
)


def add_creator(ds: Dataset) -> None:
    """Reserve the xnatpic block in ``ds`` ((0029,0010) = ``XNATPIC 1.0``)."""
    ds[(GROUP << 16) | BLOCK] = DataElement((GROUP << 16) | BLOCK, "LO", CREATOR)


def private_values(ctx: Resolver, image: object = None, *, per_image: bool | None = None,
                   enhanced: bool = False) -> list[tuple[int, str, object]]:
    """(tag, VR, value) of the private elements that have a value.

    Parameters
    ----------
    ctx : Resolver
        The conversion context.
    image : Frame or None
        The image for per-image elements.
    per_image : bool or None
        Only the per-image elements (True), only the per-series ones (False), or all.
    enhanced : bool
        Leave out the elements a standard enhanced attribute already holds.
    """
    values = []
    for element in _selected(per_image, enhanced):
        value = resolve(element.sources, element.transform, ctx, image)
        if value is not None:
            values.append((element.tag, element.vr, value))
    return values


@cache
def _selected(per_image: bool | None, enhanced: bool) -> tuple[PrivateElement, ...]:
    """The elements :func:`private_values` evaluates (chosen once, not per image)."""
    return tuple(e for e in PRIVATE_ELEMENTS
                 if (per_image is None or e.per_image == per_image)
                 and not (enhanced and e.classic_only))


def apply_private(ds: Dataset, ctx: Resolver, image: object = None, *,
                  per_image: bool | None = None, enhanced: bool = False) -> int:
    """Write the private elements that have a value (see :func:`private_values`).

    The creator element is added when anything is written; returns how many were.
    """
    values = private_values(ctx, image, per_image=per_image, enhanced=enhanced)
    if values and ((GROUP << 16) | BLOCK) not in ds:
        add_creator(ds)
    for tag, vr, value in values:
        ds[tag] = DataElement(tag, vr, value)
    return len(values)


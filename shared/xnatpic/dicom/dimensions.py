"""The Multi-frame Dimension module of enhanced series: which axes vary, frame indices.

:data:`DIMENSIONS` lists the candidate axes in order (slice, echo, repetition, diffusion
b-value, diffusion direction, saturation offset, complex component). An axis becomes a
dimension when its value varies across the frames of the series; each frame's index
along it is the 1-based rank of its value among the distinct values. When the chosen
axes do not tell every frame apart (e.g. FAIR's selective/non-selective axis), the
2dseq frame index (a private element) is added as a last dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from xnatpic.dicom.private import CREATOR, FRAME_SEQUENCE, private_tag

if TYPE_CHECKING:
    from xnatpic.dicom.context import SeriesContext
    from xnatpic.paravision.series import Image

__all__ = [
    "DIMENSIONS",
    "FRAME_DIMENSION",
    "Dimension",
    "chosen_dimensions",
    "frame_indices",
    "index_items",
    "organization_items",
]


@dataclass(frozen=True)
class Dimension:
    """One candidate axis of the Dimension Index.

    Attributes
    ----------
    label : str
        DimensionDescriptionLabel.
    pointer : str or int
        Keyword (or private tag) of the attribute the index refers to.
    group : str or int
        Keyword (or private tag) of the functional group sequence holding it.
    key : callable
        (context, image) → the value ranked to give the index (None sorts first).
    """

    label: str
    pointer: str | int
    group: str | int
    key: Callable[[SeriesContext, Image], Any]

    @property
    def private(self) -> bool:
        """True when the dimension points into the xnatpic private block."""
        return isinstance(self.pointer, int)


def _direction(ctx: SeriesContext, image: Image) -> tuple | None:
    direction = ctx.series.diffusion_direction_patient(image)
    return None if direction is None else tuple(np.round(direction, 6))


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("Slice", "InStackPositionNumber", "FrameContentSequence",
              lambda c, im: c.series_value("slice_ranks")[im.index]),
    Dimension("Echo", "EffectiveEchoTime", "MREchoSequence", lambda c, im: im.echo_time),
    Dimension("Repetition", "TemporalPositionIndex", "FrameContentSequence",
              lambda c, im: im.repetition),
    Dimension("Diffusion b-value", "DiffusionBValue", "MRDiffusionSequence",
              lambda c, im: None if im.diffusion is None else im.diffusion.b_value),
    Dimension("Diffusion direction", "DiffusionGradientOrientation", "MRDiffusionSequence",
              _direction),
    Dimension("Saturation offset", private_tag(0x20), private_tag(FRAME_SEQUENCE),
              lambda c, im: im.saturation_offset_hz),
    Dimension("Complex component", "ComplexImageComponent", "MRImageFrameTypeSequence",
              lambda c, im: im.complex_component),
)
#: Added when the chosen dimensions leave frames with the same index values.
FRAME_DIMENSION = Dimension("2dseq frame", private_tag(0x10), private_tag(FRAME_SEQUENCE),
                            lambda c, im: (im.frame, im.slice_in_frame))


def _sort_key(value: Any) -> tuple:
    return (value is not None, value if value is not None else 0)


def _ranks(ctx: SeriesContext, dimension: Dimension) -> list[int]:
    values = [dimension.key(ctx, im) for im in ctx.images]
    distinct = sorted(set(values), key=_sort_key)
    rank = {v: k for k, v in enumerate(distinct, 1)}
    return [rank[v] for v in values]


def chosen_dimensions(ctx: SeriesContext) -> list[tuple[Dimension, list[int]]]:
    """The dimensions of the series with the index of every frame along each."""
    chosen = []
    for dimension in DIMENSIONS:
        ranks = _ranks(ctx, dimension)
        if len(set(ranks)) > 1:
            chosen.append((dimension, ranks))
    if not chosen:  # one frame, or all frames alike: the slice axis still organises them
        chosen.append((DIMENSIONS[0], _ranks(ctx, DIMENSIONS[0])))
    tuples = list(zip(*(ranks for _, ranks in chosen), strict=True))
    if len(set(tuples)) < len(tuples):
        chosen.append((FRAME_DIMENSION, _ranks(ctx, FRAME_DIMENSION)))
    return chosen


def frame_indices(ctx: SeriesContext) -> list[list[int]]:
    """DimensionIndexValues of every frame, in frame order."""
    chosen = ctx.series_value("dimensions")
    return [list(values) for values in zip(*(ranks for _, ranks in chosen), strict=True)]


def _tag(value: str | int) -> Tag:
    return Tag(tag_for_keyword(value) if isinstance(value, str) else value)


def index_items(ctx: SeriesContext) -> list[Dataset]:
    """DimensionIndexSequence items."""
    uid = ctx.series_value("dimension_organization_uid")
    items = []
    for dimension, _ in ctx.series_value("dimensions"):
        item = Dataset()
        item.DimensionOrganizationUID = uid
        item.DimensionIndexPointer = _tag(dimension.pointer)
        item.FunctionalGroupPointer = _tag(dimension.group)
        if dimension.private:
            item.DimensionIndexPrivateCreator = CREATOR
            item.FunctionalGroupPrivateCreator = CREATOR
        item.DimensionDescriptionLabel = dimension.label
        items.append(item)
    return items


def organization_items(ctx: SeriesContext) -> list[Dataset]:
    """DimensionOrganizationSequence: one organisation."""
    item = Dataset()
    item.DimensionOrganizationUID = ctx.series_value("dimension_organization_uid")
    return [item]

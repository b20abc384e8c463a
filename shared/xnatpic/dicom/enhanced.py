"""Enhanced MR Image Storage: one multi-frame file per series.

Top-level modules come from :data:`~xnatpic.dicom.enhanced_modules.ENHANCED_MR_IOD`.
Each functional-group macro is evaluated per frame; a macro whose item is the same for
every frame (and may be shared) goes to SharedFunctionalGroupsSequence, the others to
each item of PerFrameFunctionalGroupsSequence. Macros without per-frame sources are
evaluated once. The per-frame private elements go in the private ``XNATPIC Frame
Sequence`` of each frame (docs/private-tags.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from xnatpic.dicom.classic import series_template
from xnatpic.dicom.context import Frame, SeriesContext
from xnatpic.dicom.deidentify import deidentify_dataset
from xnatpic.dicom.engine import Module, element, evaluate_rows, image_rows
from xnatpic.dicom.enhanced_modules import ENHANCED_MR_IOD, FUNCTIONAL_GROUPS, PER_FRAME_ONLY
from xnatpic.dicom.part10 import write_dataset
from xnatpic.dicom.private import add_creator, apply_private, frame_sequence
from xnatpic.dicom.routing import apply_routing
from xnatpic.output_names import series_stem

__all__ = ["functional_groups", "write_enhanced"]

_PIXEL_DATA = 0x7FE00010


Values = list[tuple[str, Any]]


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Dataset):
        return ("dataset", id(value))
    return value


def _macro_values(ctx: SeriesContext, macro: Module, frames: list[Frame]) -> list[Values]:
    if not image_rows(macro):
        values = evaluate_rows(macro.rows, ctx, module=macro)
        return [values] * len(frames)
    return [evaluate_rows(macro.rows, ctx, frame, module=macro) for frame in frames]


class _ElementCache:
    """Build each distinct (keyword, value) DataElement once; items may share them."""

    def __init__(self) -> None:
        self.elements: dict[tuple, DataElement] = {}

    def item(self, values: Values) -> Dataset:
        item = Dataset()
        for keyword, value in values:
            key = (keyword, _hashable(value))
            elem = self.elements.get(key)
            if elem is None:
                elem = self.elements[key] = element(keyword, value)
            item[elem.tag] = elem
        return item


def functional_groups(ctx: SeriesContext, frames: list[Frame]) -> tuple[Dataset, list[Dataset]]:
    """The shared functional groups item and one per-frame item per frame."""
    shared = Dataset()
    per_frame = [Dataset() for _ in frames]
    cache = _ElementCache()
    for macro in FUNCTIONAL_GROUPS:
        values = _macro_values(ctx, macro, frames)
        if any(not v for v in values):
            continue  # an optional macro without a value for every frame is left out
        keys = [tuple((k, _hashable(v)) for k, v in frame_values) for frame_values in values]
        if macro.sequence not in PER_FRAME_ONLY and all(k == keys[0] for k in keys[1:]):
            shared[macro.sequence] = element(macro.sequence, [cache.item(values[0])])
            continue
        for group, frame_values in zip(per_frame, values, strict=True):
            group[macro.sequence] = element(macro.sequence, [cache.item(frame_values)])
    for group, frame in zip(per_frame, frames, strict=True):
        item = Dataset()
        if apply_private(item, ctx, frame, per_image=True, enhanced=True):
            add_creator(group)
            sequence = frame_sequence(item)
            group[sequence.tag] = sequence
    return shared, per_frame


def write_enhanced(ctx: SeriesContext, out_dir: Path) -> tuple[list[Path], list[int]]:
    """Write the series as one Enhanced MR Image Storage file.

    Returns
    -------
    files : list of Path
        ``[<stem>.dcm]`` (:mod:`xnatpic.output_names`).
    image_indices : list of int
        The series image index (:attr:`Image.index`) of each frame, in frame order.
    """
    ds = series_template(ctx, ENHANCED_MR_IOD, deidentify=False)
    data = ctx.series.stack.stored()
    frames = [Frame(image, number, ctx.pixels.encode(ctx.series, image, data))
              for number, image in enumerate(ctx.images, 1)]
    shared, per_frame = functional_groups(ctx, frames)
    ds["SharedFunctionalGroupsSequence"] = element("SharedFunctionalGroupsSequence", [shared])
    ds["PerFrameFunctionalGroupsSequence"] = DataElement(
        0x52009230, "SQ", Sequence(per_frame))
    deidentify_dataset(ds, ctx)  # no-op without a profile; dates in frames shift too
    apply_routing(ds, ctx.routing)
    ds[_PIXEL_DATA] = DataElement(
        _PIXEL_DATA, "OW", b"".join(f.encoded.pixels.tobytes() for f in frames))
    path = out_dir / f"{series_stem(ctx.series, ctx.package, ctx.deidentify)}.dcm"
    write_dataset(ds, path, ctx.where)
    return [path], [image.index for image in ctx.images]

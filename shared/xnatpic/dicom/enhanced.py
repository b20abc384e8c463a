"""Enhanced MR Image Storage: one multi-frame file per series.

Top-level modules come from :data:`~xnatpic.dicom.enhanced_modules.ENHANCED_MR_IOD`.
Each functional-group macro is evaluated per frame; a macro whose item is the same for
every frame (and may be shared) goes to SharedFunctionalGroupsSequence, the others to
each item of PerFrameFunctionalGroupsSequence. Macros without per-frame sources are
evaluated once. The per-frame private elements go in the private ``XNATPIC Frame
Sequence`` of each frame (docs/private-tags.md).

Memory stays flat in the size of the reco: the frames are encoded one at a time, first
to evaluate the functional groups (rescale, window), then again while the pixel data is
streamed to the file behind the dataset written without it (Pixel Data is the last
element, of known length), each frame read from the 2dseq on its own so no more than one
frame of it is resident.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from xnatpic.dicom.classic import series_template
from xnatpic.dicom.context import Frame, SeriesContext
from xnatpic.dicom.deidentify import deidentify_dataset
from xnatpic.dicom.engine import element, evaluate_rows, image_rows
from xnatpic.dicom.enhanced_modules import ENHANCED_MR_IOD, FUNCTIONAL_GROUPS, PER_FRAME_ONLY
from xnatpic.dicom.part10 import write_dataset
from xnatpic.dicom.private import add_creator, apply_private, frame_sequence
from xnatpic.dicom.routing import apply_routing
from xnatpic.errors import ConversionError
from xnatpic.output_names import series_stem

__all__ = ["functional_groups", "write_enhanced"]

_PIXEL_DATA = 0x7FE00010
#: (7FE0,0010) OW, Explicit VR Little Endian: tag, VR, 2 reserved bytes; the 4-byte
#: length follows.
_PIXEL_DATA_HEADER = struct.pack("<HH2sH", 0x7FE0, 0x0010, b"OW", 0)


Values = list[tuple[str, Any]]


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Dataset):
        return ("dataset", id(value))
    return value


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


def _key(values: Values) -> tuple:
    return tuple((k, _hashable(v)) for k, v in values)


def _all_equal(frames_values: list[Values]) -> bool:
    """Whether every frame has the same values (compared one frame at a time)."""
    first = _key(frames_values[0])
    return all(_key(v) == first for v in frames_values[1:])


def _frames(ctx: SeriesContext) -> Iterator[Frame]:
    """The frames of the series in order, each encoded from its own read of the 2dseq.

    Nothing is kept between frames: a frame's pixels are freed when the next is made.
    """
    for number, image in enumerate(ctx.images, 1):
        yield Frame(image, number, ctx.pixels.encode(ctx.series, image))


def functional_groups(ctx: SeriesContext, frames: Iterable[Frame]
                      ) -> tuple[Dataset, list[Dataset]]:
    """The shared functional groups item and one per-frame item per frame.

    ``frames`` is consumed once, frame by frame (it may be a generator): only the
    evaluated values are kept, not the pixels.
    """
    per_image = [m for m in FUNCTIONAL_GROUPS if image_rows(m)]
    values: dict[str, list[Values]] = {m.sequence: [] for m in per_image}
    private: list[Dataset | None] = []
    for frame in frames:
        for macro in per_image:
            values[macro.sequence].append(evaluate_rows(macro.rows, ctx, frame, module=macro))
        item = Dataset()
        private.append(item if apply_private(item, ctx, frame, per_image=True,
                                             enhanced=True) else None)
    count = len(private)
    for macro in FUNCTIONAL_GROUPS:
        if not image_rows(macro):
            values[macro.sequence] = [evaluate_rows(macro.rows, ctx, module=macro)] * count
    shared = Dataset()
    per_frame = [Dataset() for _ in range(count)]
    cache = _ElementCache()
    for macro in FUNCTIONAL_GROUPS:
        macro_values = values.pop(macro.sequence)  # freed once its items are built
        if any(not v for v in macro_values):
            continue  # an optional macro without a value for every frame is left out
        if macro.sequence not in PER_FRAME_ONLY and _all_equal(macro_values):
            shared[macro.sequence] = element(macro.sequence, [cache.item(macro_values[0])])
            continue
        for group, frame_values in zip(per_frame, macro_values, strict=True):
            group[macro.sequence] = element(macro.sequence, [cache.item(frame_values)])
    for group, item in zip(per_frame, private, strict=True):
        if item is not None:
            add_creator(group)
            sequence = frame_sequence(item)
            group[sequence.tag] = sequence
    return shared, per_frame


def _append_pixel_data(ctx: SeriesContext, path: Path) -> None:
    """Append Pixel Data (known length) to the file, streaming one frame at a time.

    Raises
    ------
    ConversionError
        When the file cannot be written, or the frames do not fill the declared length.
    """
    frame_bytes = ctx.series.rows * ctx.series.columns * ctx.pixels.dtype.itemsize
    length = frame_bytes * len(ctx.images)
    if length >= 0xFFFFFFFF:
        raise ConversionError(f"{ctx.where}: {length} bytes of pixel data exceed the "
                              "4 GiB an Enhanced MR file can hold (PS3.5 7.1.2)")
    written = 0
    try:
        with open(path, "ab") as fp:
            fp.write(_PIXEL_DATA_HEADER + struct.pack("<I", length))
            for frame in _frames(ctx):
                written += fp.write(frame.encoded.pixels.astype(ctx.pixels.dtype,
                                                                copy=False).tobytes())
    except OSError as exc:
        raise ConversionError(f"{ctx.where}: writing {path} failed: {exc}") from exc
    if written != length:
        raise ConversionError(f"{ctx.where}: {path}: wrote {written} bytes of pixel data, "
                              f"{length} declared")


def write_enhanced(ctx: SeriesContext, out_dir: Path) -> tuple[list[Path], list[int]]:
    """Write the series as one Enhanced MR Image Storage file.

    The dataset is written without Pixel Data, then the pixel data is appended frame by
    frame (:func:`_append_pixel_data`).

    Returns
    -------
    files : list of Path
        ``[<stem>.dcm]`` (:mod:`xnatpic.output_names`).
    image_indices : list of int
        The series image index (:attr:`Image.index`) of each frame, in frame order.
    """
    ds = series_template(ctx, ENHANCED_MR_IOD, deidentify=False)
    shared, per_frame = functional_groups(ctx, _frames(ctx))
    ds["SharedFunctionalGroupsSequence"] = element("SharedFunctionalGroupsSequence", [shared])
    ds["PerFrameFunctionalGroupsSequence"] = DataElement(
        0x52009230, "SQ", Sequence(per_frame))
    deidentify_dataset(ds, ctx)  # no-op without a profile; dates in frames shift too
    apply_routing(ds, ctx.routing)
    if any(elem.tag >= _PIXEL_DATA for elem in ds):
        raise ConversionError(f"{ctx.where}: element at or after Pixel Data in the dataset; "
                              "pixel data must come last to be appended")
    path = out_dir / f"{series_stem(ctx.series, ctx.package, ctx.deidentify)}.dcm"
    write_dataset(ds, path, ctx.where)
    _append_pixel_data(ctx, path)
    return [path], [image.index for image in ctx.images]

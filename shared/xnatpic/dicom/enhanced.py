"""Enhanced MR Image Storage: one multi-frame file per series.

Top-level modules come from :data:`~xnatpic.dicom.enhanced_modules.ENHANCED_MR_IOD`.
Each functional-group macro is evaluated per frame; a macro whose item is the same for
every frame (and may be shared) goes to SharedFunctionalGroupsSequence, the others to
each item of PerFrameFunctionalGroupsSequence. Macros without per-frame sources are
evaluated once. The per-frame private elements go in the private ``XNATPIC Frame
Sequence`` of each frame (docs/private-tags.md).

The functional groups are encoded straight to bytes (:func:`functional_groups`): the
rows of a macro that do not depend on the frame are evaluated once per series, each
frame's item is encoded once from its values (each distinct element once, no pydicom
Dataset per frame) and the two sequences are handed to
:func:`~xnatpic.dicom.part10.write_dataset` already encoded. The output is byte for byte
what pydicom writes for the same dataset (tests/dicom/test_part10_encoding.py).

Memory stays flat in the size of the reco: the frames are encoded one at a time, first
to evaluate the functional groups (rescale, window), then again while the pixel data is
streamed to the file behind the dataset written without it (Pixel Data is the last
element, of known length), each frame read from the 2dseq on its own so no more than one
frame of it is resident. A series of at most :data:`KEEP_PIXEL_BYTES` of pixel data
keeps its encoded frames from the first pass instead of reading and encoding them again.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from xnatpic.dicom.classic import series_template
from xnatpic.dicom.context import Frame, SeriesContext
from xnatpic.dicom.deidentify import deidentify_dataset, deidentify_values
from xnatpic.dicom.derived_enhanced import SERIES_CONDITIONS
from xnatpic.dicom.engine import Module, Row, encode, evaluate_rows, image_rows, tag_and_vr
from xnatpic.dicom.enhanced_modules import ENHANCED_MR_IOD, FUNCTIONAL_GROUPS, PER_FRAME_ONLY
from xnatpic.dicom.part10 import PIXEL_DATA, encode_sequence, encode_value, write_dataset
from xnatpic.dicom.part10 import encode as encode_part10
from xnatpic.dicom.private import (
    BLOCK,
    CREATOR,
    FRAME_SEQUENCE,
    GROUP,
    private_tag,
    private_values,
)
from xnatpic.dicom.routing import apply_routing
from xnatpic.errors import ConversionError
from xnatpic.output_names import series_stem

__all__ = ["KEEP_PIXEL_BYTES", "functional_groups", "write_enhanced"]

#: Pixel data (bytes) up to which a series keeps its encoded frames between the two passes
#: (functional groups, then Pixel Data) instead of reading and encoding each frame twice;
#: larger series stream (flat memory).
KEEP_PIXEL_BYTES = 8 * 2**20

_SHARED = 0x52009229
_PER_FRAME = 0x52009230
#: (7FE0,0010) OW, Explicit VR Little Endian: tag, VR, 2 reserved bytes; the 4-byte
#: length follows.
_PIXEL_DATA_HEADER = struct.pack("<HH2sH", 0x7FE0, 0x0010, b"OW", 0)


Values = list[tuple[str, Any]]


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _hashable(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Dataset):
        return ("dataset", id(value))
    return value


def _keys(frames_values: list[Values]) -> list[tuple]:
    """A comparable key of each frame's values (one key for a list repeated)."""
    keys: list[tuple] = []
    previous: Values | None = None
    for values in frames_values:
        if values is not previous:
            key = tuple((k, _hashable(v)) for k, v in values)
            previous = values
        keys.append(key)
    return keys


class _ItemEncoder:
    """Encode items from their (keyword, value) pairs, each distinct item and element once.

    The values encoded must stay alive while the encoder is used (Datasets in them are
    told apart by identity).
    """

    def __init__(self, ctx: SeriesContext) -> None:
        self.ctx = ctx
        self.items: dict[tuple, bytes] = {}
        self.elements: dict[tuple, tuple[int, bytes]] = {}

    def item(self, values: Values, key: tuple) -> bytes:
        """The item's elements in tag order, after the de-identification profile.

        ``key`` is the values' key (:func:`_keys`).
        """
        encoded = self.items.get(key)
        if encoded is not None:
            return encoded
        pairs = zip(values, key, strict=True)
        if self.ctx.deidentify is not None:
            values = deidentify_values(values, self.ctx)
            pairs = zip(values, _keys([values])[0], strict=True)
        parts: dict[int, bytes] = {}
        for (keyword, value), element_key in pairs:
            found = self.elements.get(element_key)
            if found is None:
                found = self.elements[element_key] = (tag_and_vr(keyword)[0],
                                                      encode(keyword, value))
            parts[found[0]] = found[1]
        encoded = self.items[key] = b"".join(parts[tag] for tag in sorted(parts))
        return encoded


_CREATOR_TAG = (GROUP << 16) | BLOCK
_CREATOR = encode_value(_CREATOR_TAG, "LO", CREATOR)
_FRAME_SEQUENCE = private_tag(FRAME_SEQUENCE)


def _private_item(values: list[tuple[int, str, Any]]) -> bytes:
    """The item of the private XNATPIC Frame Sequence (creator first)."""
    parts = {tag: encode_part10(tag, vr, value) for tag, vr, value in values}
    return _CREATOR + b"".join(parts[tag] for tag in sorted(parts))


def _frames(ctx: SeriesContext) -> Iterator[Frame]:
    """The frames of the series in order, each encoded from its own read of the 2dseq.

    Nothing is kept between frames: a frame's pixels are freed when the next is made.
    """
    for number, image in enumerate(ctx.images, 1):
        yield Frame(image, number, ctx.pixels.encode(ctx.series, image))


@cache
def _split_rows(macro: Module) -> tuple[tuple[Row, ...], tuple[Row, ...]]:
    """The rows of a macro evaluated once per series, and those evaluated per frame."""
    once = [not r.per_image and (r.condition is None or r.condition in SERIES_CONDITIONS)
            for r in macro.rows]
    return (tuple(r for r, o in zip(macro.rows, once, strict=True) if o),
            tuple(r for r, o in zip(macro.rows, once, strict=True) if not o))


def functional_groups(ctx: SeriesContext, frames: Iterable[Frame]) -> tuple[bytes, bytes]:
    """The SharedFunctionalGroupsSequence and PerFrameFunctionalGroupsSequence elements,
    encoded (Explicit VR Little Endian, defined lengths), de-identified by the profile.

    ``frames`` is consumed once, frame by frame (it may be a generator): only the
    evaluated values are kept, not the pixels. Each per-frame item is encoded to bytes
    once, its distinct elements once per series.
    """
    per_image = [m for m in FUNCTIONAL_GROUPS if image_rows(m)]
    values: dict[str, list[Values]] = {m.sequence: [] for m in per_image}
    once = {m.sequence: evaluate_rows(_split_rows(m)[0], ctx, module=m) for m in per_image}
    private: list[list[tuple[int, str, Any]]] = []
    for frame in frames:
        for macro in per_image:
            values[macro.sequence].append(once[macro.sequence] + evaluate_rows(
                _split_rows(macro)[1], ctx, frame, module=macro))
        private.append(private_values(ctx, frame, per_image=True, enhanced=True))
    count = len(private)
    for macro in FUNCTIONAL_GROUPS:
        if not image_rows(macro):
            values[macro.sequence] = [evaluate_rows(macro.rows, ctx, module=macro)] * count
    shared: dict[int, bytes] = {}
    per_frame: list[dict[int, bytes]] = [{} for _ in range(count)]
    for macro in FUNCTIONAL_GROUPS:
        macro_values = values.pop(macro.sequence)  # freed once its items are encoded
        if any(not v for v in macro_values):
            continue  # an optional macro without a value for every frame is left out
        tag = tag_and_vr(macro.sequence)[0]
        encoder = _ItemEncoder(ctx)
        keys = _keys(macro_values)
        if macro.sequence not in PER_FRAME_ONLY and all(k == keys[0] for k in keys):
            shared[tag] = encode_sequence(tag, [encoder.item(macro_values[0], keys[0])])
            continue
        for group, frame_values, key in zip(per_frame, macro_values, keys, strict=True):
            group[tag] = encode_sequence(tag, [encoder.item(frame_values, key)])
    for group, item in zip(per_frame, private, strict=True):
        if item:
            group[_CREATOR_TAG] = _CREATOR
            group[_FRAME_SEQUENCE] = encode_sequence(_FRAME_SEQUENCE, [_private_item(item)])
    return (encode_sequence(_SHARED, [b"".join(shared[t] for t in sorted(shared))]),
            encode_sequence(_PER_FRAME, (b"".join(g[t] for t in sorted(g))
                                         for g in per_frame)))


def _pixel_data_length(ctx: SeriesContext) -> int:
    """Bytes of Pixel Data of the series."""
    frame_bytes = ctx.series.rows * ctx.series.columns * ctx.pixels.dtype.itemsize
    return frame_bytes * len(ctx.images)


def _keeping(frames: Iterable[Frame], kept: list[np.ndarray]) -> Iterator[Frame]:
    """``frames``, each one's encoded pixels appended to ``kept`` as it passes."""
    for frame in frames:
        kept.append(frame.encoded.pixels)
        yield frame


def _append_pixel_data(ctx: SeriesContext, path: Path,
                       kept: list[np.ndarray] | None = None) -> None:
    """Append Pixel Data (known length) to the file, one frame at a time: ``kept`` (the
    encoded pixels of every frame, in order) or else each frame read and encoded again.

    Raises
    ------
    ConversionError
        When the file cannot be written, or the frames do not fill the declared length.
    """
    length = _pixel_data_length(ctx)
    if length >= 0xFFFFFFFF:
        raise ConversionError(f"{ctx.where}: {length} bytes of pixel data exceed the "
                              "4 GiB an Enhanced MR file can hold (PS3.5 7.1.2)")
    frames = kept if kept is not None else (frame.encoded.pixels for frame in _frames(ctx))
    written = 0
    try:
        with open(path, "ab") as fp:
            fp.write(_PIXEL_DATA_HEADER + struct.pack("<I", length))
            for pixels in frames:
                written += fp.write(pixels.astype(ctx.pixels.dtype, copy=False).tobytes())
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
    kept: list[np.ndarray] | None = None
    frames: Iterable[Frame] = _frames(ctx)
    if _pixel_data_length(ctx) <= KEEP_PIXEL_BYTES:
        kept = []
        frames = _keeping(frames, kept)
    encoded = dict(zip((_SHARED, _PER_FRAME), functional_groups(ctx, frames), strict=True))
    for tag in encoded:  # placeholders, written as the encoded bytes
        ds[tag] = DataElement(tag, "SQ", Sequence())
    deidentify_dataset(ds, ctx)  # no-op without a profile (the frames are done)
    apply_routing(ds, ctx.routing)
    if any(elem.tag >= PIXEL_DATA for elem in ds):
        raise ConversionError(f"{ctx.where}: element at or after Pixel Data in the dataset; "
                              "pixel data must come last to be appended")
    path = out_dir / f"{series_stem(ctx.series, ctx.package, ctx.deidentify)}.dcm"
    write_dataset(ds, path, ctx.where, encoded=encoded)
    _append_pixel_data(ctx, path, kept)
    return [path], [image.index for image in ctx.images]

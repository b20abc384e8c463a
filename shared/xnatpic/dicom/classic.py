"""Classic MR Image Storage: one file per image.

The series-level rows of every module are applied once into a template, which is
encoded once (:class:`~xnatpic.dicom.part10.EncodedDataset`); each image then encodes
only its per-image rows, private elements and pixels, and joins them with the template.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from xnatpic.dicom import part10
from xnatpic.dicom.context import Frame, SeriesContext
from xnatpic.dicom.deidentify import deidentify_dataset, deidentify_values
from xnatpic.dicom.engine import (
    Module,
    apply_rows,
    encode,
    evaluate_rows,
    image_rows,
    series_rows,
    tag_and_vr,
)
from xnatpic.dicom.modules import CLASSIC_MR_IOD
from xnatpic.dicom.part10 import PIXEL_DATA, EncodedDataset, write_part10
from xnatpic.dicom.private import BLOCK, CREATOR, GROUP, apply_private, private_values
from xnatpic.dicom.routing import apply_routing
from xnatpic.output_names import series_stem

__all__ = ["encoded_template", "image_dataset", "series_template", "write_classic"]



def series_template(ctx: SeriesContext, modules: tuple[Module, ...], *,
                    deidentify: bool = True) -> Dataset:
    """The series-level part of every image: all rows without ``image:`` sources.

    With ``deidentify`` (and a profile in the context) the profile is applied to it;
    the enhanced writer applies it later, to the whole dataset, instead.
    """
    template = Dataset()
    for module in modules:
        apply_rows(template, series_rows(module), ctx, module=module)
    apply_private(template, ctx, per_image=False)
    if deidentify:
        if ctx.deidentify is not None:
            deidentify_dataset(template, ctx)
        apply_routing(template, ctx.routing)
    return template


def encoded_template(ctx: SeriesContext) -> EncodedDataset:
    """:func:`series_template` of a classic series, encoded.

    Without de-identification or routing (which edit a pydicom dataset) the rows and
    private elements are encoded straight from their values, without building the
    dataset; the bytes are the same (tests/dicom/test_part10_encoding.py).
    """
    if ctx.deidentify is not None or ctx.routing is not None:
        return EncodedDataset(series_template(ctx, CLASSIC_MR_IOD), cache={})
    template = EncodedDataset(cache={})
    for module in CLASSIC_MR_IOD:
        for keyword, value in evaluate_rows(series_rows(module), ctx, module=module):
            template.set_raw(tag_and_vr(keyword)[0], encode(keyword, value))
    values = private_values(ctx, per_image=False)
    if values:
        creator = (GROUP << 16) | BLOCK
        template.set_raw(creator, part10.encode(creator, "LO", CREATOR))
    for tag, vr, value in values:
        template.set_raw(tag, part10.encode(tag, vr, value))
    return template


def image_dataset(ctx: SeriesContext, frame: Frame) -> Dataset:
    """The per-image elements of one classic image (without the template)."""
    own = Dataset()
    for module in CLASSIC_MR_IOD:
        rows = image_rows(module)
        if rows:
            apply_rows(own, rows, ctx, frame, module=module)
    apply_private(own, ctx, frame, per_image=True)
    own[PIXEL_DATA] = DataElement(PIXEL_DATA, "OW", frame.encoded.pixels.tobytes())
    return own


def write_classic(ctx: SeriesContext, out_dir: Path) -> tuple[list[Path], list[int]]:
    """Write one MR Image Storage file per image of the series.

    Returns
    -------
    files : list of Path
        ``<stem>_<number:05d>.dcm`` (:mod:`xnatpic.output_names`), in InstanceNumber
        order.
    image_indices : list of int
        The series image index (:attr:`Image.index`) of each file.
    """
    template = encoded_template(ctx)
    sop_class = ctx.series_value("sop_class_uid")
    per_image = [(m, image_rows(m)) for m in CLASSIC_MR_IOD if image_rows(m)]
    data = ctx.series.stack.stored()
    stem = series_stem(ctx.series, ctx.package, ctx.deidentify)
    files: list[Path] = []
    indices: list[int] = []
    for number, image in enumerate(ctx.images, 1):
        frame = Frame(image, number, ctx.pixels.encode(ctx.series, image, data))
        encoded = template.copy()
        sop_instance = ""
        for module, rows in per_image:
            # per-image dates and times shift (together) like the template's
            for keyword, value in deidentify_values(
                    evaluate_rows(rows, ctx, frame, module=module), ctx):
                tag, vr = tag_and_vr(keyword)
                encoded.set_value(tag, vr, value, partial(encode, keyword, value))
                if keyword == "SOPInstanceUID":
                    sop_instance = value
        for tag, vr, value in private_values(ctx, frame, per_image=True):
            encoded.set_value(tag, vr, value, partial(part10.encode, tag, vr, value))
        pixels = np.ascontiguousarray(frame.encoded.pixels)  # written from its buffer
        path = out_dir / f"{stem}_{number:05d}.dcm"
        write_part10(path, encoded, sop_class, sop_instance, ctx.where, memoryview(pixels))
        files.append(path)
        indices.append(image.index)
    return files, indices

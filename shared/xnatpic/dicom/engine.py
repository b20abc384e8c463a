"""The small engine that applies mapping tables to pydicom datasets.

A :class:`Module` is one DICOM module (or functional-group macro) as a table of
:class:`Row`\\ s: keyword, DICOM Type, source parameters in fallback order, and the name
of a transform in :data:`~xnatpic.dicom.transforms.TRANSFORMS`. For each row the engine
tries the sources in order, passes each value through the transform and keeps the first
that is not None, then applies the Type rules of PS3.5 7.4:

* Type 1 / 1C (condition true): no value is an error (:class:`ConversionError` naming
  the reco, the module, the attribute and the sources tried);
* Type 2 / 2C (condition true): no value gives an empty attribute;
* Type 3: no value omits the attribute;
* 1C / 2C whose condition is false: omitted.

Rows whose sources include ``image:`` values are per image (or per frame); the others
are per series, evaluated once into the series template. Values are coerced to their VR
(Decimal Strings formatted to 16 characters, text truncated to the VR's maximum length
with a log line) so no written value exceeds its VR.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import format_number_as_ds

from xnatpic.dicom import part10
from xnatpic.dicom.text_fit import fit_bytes, fits_bytes
from xnatpic.dicom.transforms import TRANSFORMS, text
from xnatpic.errors import ConversionError
from xnatpic.strictness import parameter_problem

__all__ = [
    "IMAGE_PREFIX",
    "TYPES",
    "Module",
    "Resolver",
    "Row",
    "apply_rows",
    "build_item",
    "element",
    "encode",
    "evaluate_rows",
    "image_rows",
    "resolve",
    "series_rows",
    "tag_and_vr",
]

_log = logging.getLogger(__name__)

#: DICOM attribute Types the tables may use.
TYPES = ("1", "1C", "2", "2C", "3")
#: Transforms reading a date or time: a present value they cannot read is a parameter
#: problem (xnatpic.strictness), not a silently empty attribute.
DATE_TRANSFORMS = frozenset({"da", "tm", "dt"})
#: Sources with this prefix depend on the image (or frame); their rows are per image.
IMAGE_PREFIX = "image:"

#: Maximum length of each text VR (PS3.5 Table 6.2-1), in encoded bytes; PN per component
#: group.
_MAX_LENGTH: dict[str, int] = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64,
    "LT": 10240, "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64, "UC": 2**32 - 2,
    "UT": 2**32 - 2,
}
_TEXT_VRS = frozenset(_MAX_LENGTH)


@dataclass(frozen=True)
class Row:
    """One attribute of a module table.

    Attributes
    ----------
    keyword : str
        pydicom keyword of the attribute.
    type : str
        DICOM Type: ``1``, ``1C``, ``2``, ``2C`` or ``3``.
    sources : tuple of str
        Where the value comes from, tried in order: ``visu:NAME``, ``method:NAME``,
        ``acqp:NAME``, ``subject:NAME``, ``reco:NAME`` (ParaVision parameters),
        ``series:NAME`` / ``image:NAME`` (values computed in
        :mod:`xnatpic.dicom.derived` and :mod:`xnatpic.dicom.derived_enhanced`) or
        ``const:VALUE``.
    transform : str
        Name of the transform applied to each source value.
    condition : str or None
        For 1C/2C rows: name of the condition (in
        :data:`xnatpic.dicom.context.CONDITIONS`) that makes the attribute required.
    """

    keyword: str
    type: str
    sources: tuple[str, ...]
    transform: str = "text"
    condition: str | None = None

    @property
    def per_image(self) -> bool:
        """True when a source depends on the image."""
        return any(s.startswith(IMAGE_PREFIX) for s in self.sources)


@dataclass(frozen=True)
class Module:
    """A DICOM module or functional-group macro as a table.

    Attributes
    ----------
    name : str
        Module name as in PS3.3.
    section : str
        PS3.3 section, e.g. ``C.7.1.1``.
    rows : tuple of Row
        The attributes.
    sequence : str or None
        For functional-group macros: the sequence whose single item holds the rows
        (e.g. ``PlanePositionSequence``).
    """

    name: str
    section: str
    rows: tuple[Row, ...]
    sequence: str | None = None


class Resolver(Protocol):
    """What the engine needs from a conversion context."""

    where: str

    def value(self, source: str, image: Any) -> Any:
        """The raw value of ``source`` (None when absent)."""

    def condition(self, name: str, image: Any) -> bool:
        """Whether condition ``name`` holds."""


@cache
def _tag_vr(keyword: str) -> tuple[int, str]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ConversionError(f"internal: {keyword!r} is not a DICOM keyword known to pydicom")
    return tag, dictionary_VR(tag)


def _coerce_text(keyword: str, vr: str, value: str) -> str:
    limit = _MAX_LENGTH[vr]
    # Limits count encoded bytes (UTF-8, ISO_IR 192): xnatpic.dicom.text_fit.
    if vr == "PN":
        groups = value.split("=")
        if all(fits_bytes(g, limit) for g in groups):
            return value
        _log.debug("%s (PN): a component longer than %d bytes, truncated", keyword, limit)
        return "=".join(fit_bytes(g, limit) for g in groups)
    if fits_bytes(value, limit):
        return value
    if vr in ("UI", "DA", "TM", "DT", "DS", "IS", "AS"):
        raise ConversionError(f"internal: {keyword} value {value!r} is too long for VR {vr}")
    # DEBUG, lengths only: the value may identify the animal or the study
    _log.debug("%s (%s): %d characters, truncated to %d bytes", keyword, vr, len(value),
               limit)
    return fit_bytes(value, limit).rstrip()


def _coerce(keyword: str, vr: str, value: Any) -> Any:
    if value is None or vr == "SQ":
        return value
    if vr == "DS":
        if isinstance(value, list | tuple):
            return [format_number_as_ds(float(v)) for v in value]
        return format_number_as_ds(float(value))
    if vr == "IS":
        return [int(v) for v in value] if isinstance(value, list | tuple) else int(value)
    if vr in _TEXT_VRS:
        if isinstance(value, list | tuple):
            return [_coerce_text(keyword, vr, str(v)) for v in value]
        return _coerce_text(keyword, vr, str(value))
    return value


def element(keyword: str, value: Any) -> DataElement:
    """A DataElement for ``keyword`` with ``value`` coerced to its VR (None → empty)."""
    tag, vr = _tag_vr(keyword)
    if vr == "SQ":
        return DataElement(tag, vr, Sequence(value or []))
    # _coerce already fits the value to its VR: pydicom's checks (warnings only) are skipped
    return DataElement(tag, vr, _coerce(keyword, vr, value), validation_mode=config.IGNORE)


def encode(keyword: str, value: Any) -> bytes:
    """:func:`element` encoded as Explicit VR Little Endian (see :mod:`xnatpic.dicom.part10`)."""
    tag, vr = _tag_vr(keyword)
    if vr == "SQ":
        return part10.encode_element(element(keyword, value))
    return part10.encode(tag, vr, _coerce(keyword, vr, value))


def resolve(sources: tuple[str, ...], transform_name: str, ctx: Resolver,
            image: Any = None) -> Any:
    """The first source value that the transform turns into a non-None value."""
    transform: Callable[[Any], Any] = TRANSFORMS[transform_name]
    unreadable: list[str] = []
    for source in sources:
        raw = ctx.value(source, image)
        if raw is None:
            continue
        value = transform(raw)
        if value is not None:
            return value
        if transform_name in DATE_TRANSFORMS and (text(raw) or "").strip():
            unreadable.append(f"{source} ({len(text(raw) or '')} characters)")
    if unreadable:
        # never the value: dates can identify the animal
        parameter_problem(f"{ctx.where}: {', '.join(unreadable)}: not a date or time "
                          "xnatpic can read; the attribute it fills is left empty")
    return None


def evaluate_rows(rows: Iterable[Row], ctx: Resolver, image: Any = None, *,
                  module: Module | None = None) -> list[tuple[str, Any]]:
    """(keyword, value) of every attribute to write, after the Type rules.

    The value is None for an empty (Type 2) attribute; omitted attributes are absent.

    Raises
    ------
    ConversionError
        When a Type 1 (or required 1C) attribute has no value.
    """
    values: list[tuple[str, Any]] = []
    for row in rows:
        if row.condition is not None and not ctx.condition(row.condition, image):
            continue
        value = resolve(row.sources, row.transform, ctx, image)
        if value is None:
            if row.type.startswith("1"):
                where = f"{module.name} (PS3.3 {module.section})" if module else "table"
                raise ConversionError(
                    f"{ctx.where}: {where}: {row.keyword} is Type {row.type} but none of "
                    f"its sources gave a value (tried {', '.join(row.sources)}); add the "
                    "missing parameter or report the dataset"
                )
            if row.type.startswith("2"):
                values.append((row.keyword, None))
            continue
        values.append((row.keyword, value))
    return values


def apply_rows(ds: Dataset, rows: Iterable[Row], ctx: Resolver, image: Any = None, *,
               module: Module | None = None) -> None:
    """Apply table rows to ``ds`` following the Type rules.

    Raises
    ------
    ConversionError
        When a Type 1 (or required 1C) attribute has no value.
    """
    for keyword, value in evaluate_rows(rows, ctx, image, module=module):
        ds[_tag_vr(keyword)[0]] = element(keyword, value)


def tag_and_vr(keyword: str) -> tuple[int, str]:
    """The tag and dictionary VR of a keyword (cached)."""
    return _tag_vr(keyword)


@cache
def series_rows(module: Module) -> tuple[Row, ...]:
    """The rows of ``module`` evaluated once per series."""
    return tuple(r for r in module.rows if not r.per_image)


@cache
def image_rows(module: Module) -> tuple[Row, ...]:
    """The rows of ``module`` evaluated per image (or frame)."""
    return tuple(r for r in module.rows if r.per_image)


def build_item(module: Module, ctx: Resolver, image: Any = None) -> Dataset:
    """The item of a functional-group macro for one frame (all rows evaluated)."""
    item = Dataset()
    apply_rows(item, module.rows, ctx, image, module=module)
    return item

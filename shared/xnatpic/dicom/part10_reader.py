"""Fast reading of native little-endian DICOM Part 10 files (the reverse of :mod:`part10`).

``pydicom.dcmread`` and its value conversion cost more than half a millisecond for a
14 KB classic MR file, most of it in general machinery the analysis steps do not need.
:func:`read_part10` parses the File Meta Information and the data set of an Explicit VR
Little Endian (1.2.840.10008.1.2.1) or Implicit VR Little Endian (1.2.840.10008.1.2)
file into a :class:`Part10Dataset`: where each element's header is (its VR and length
are read from it when the element is), sequences (defined or undefined length, nested)
parsed into items when first read. Values are
decoded when asked for, as pydicom decodes them (same strings, numbers, multi-values
and empty values; plain ``str``/``float``/``int``/``list`` instead of pydicom's
``UID``/``DSfloat``/``IS``/``MultiValue``, which compare equal).

Anything else raises :class:`NotHandled`, and the caller reads the file with pydicom:
another transfer syntax (big endian, deflated, encapsulated), a length running past its
end or another inconsistency, non-default pydicom value settings, and values this reader
does not decode (person names, attribute tags, text with ISO 2022 escapes or that does not
decode in its character set, ambiguous VRs other than Pixel Data's, numbers written in
forms pydicom converts with extra rules).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pydicom import config
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, private_dictionary_VR, tag_for_keyword
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import VR as _PYDICOM_VRS

from xnatpic.dicom.part10 import _BINARY_FORMATS, _LONG_VRS, PIXEL_DATA

__all__ = ["NotHandled", "Part10Dataset", "RawElement", "parse_part10", "read_part10"]


class NotHandled(Exception):
    """The file, or a value asked for, is not read by this reader: use pydicom."""


class RawElement(NamedTuple):
    """One element: its tag, VR and value (raw bytes from :meth:`Part10Dataset.get_item`,
    the decoded value from ``dataset[tag]``)."""

    tag: int
    VR: str | None
    value: Any


#: An element as parsed: the position of its header, or the items of an undefined-length
#: sequence (its VR, value and length are read from the header when it is read).
_Record = int | list

_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHL")  # also an item or delimiter header
_LENGTH = struct.Struct("<L")
_EXPLICIT_TAIL = struct.Struct("<2sH").unpack_from  # VR code and 2-byte length
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_CHARSET = 0x00080005
#: Where ``pydicom.dcmread(..., stop_before_pixels=True)`` stops.
_PIXEL_TAGS = frozenset({PIXEL_DATA, 0x7FE00009, 0x7FE00008})
#: VR codes as they appear in Explicit VR files.
_VRS = {str(vr).encode(): str(vr) for vr in _PYDICOM_VRS if len(str(vr)) == 2}
#: Explicit VR element header size by VR code (a 2-byte length, or 2 reserved bytes and a
#: 4-byte one).
_HEADER_SIZES = {code: 12 if vr in _LONG_VRS else 8 for code, vr in _VRS.items()}
_BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: VRs whose empty value pydicom gives as "" (PN, also text, is not decoded here).
_EMPTY_TEXT = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC",
                         "UI", "UR", "UT"})
#: Python codec of each SpecificCharacterSet value met (pydicom's first encoding).
_ENCODINGS: dict[Any, str] = {}
_DS_ITEM = re.compile(r" *[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)? *")
_IS_ITEM = re.compile(r" *[+-]?\d+ *")
#: VR by tag for Implicit VR files (None: private, resolved from its creator when read).
_IMPLICIT_VRS: dict[int, str | None] = {}
_TAGS: dict[str, int | None] = {}
_MISSING = object()


def read_part10(path: Path | str, *, stop_before_pixels: bool = False) -> Part10Dataset:
    """Parse a Part 10 file of a native little-endian transfer syntax.

    Parameters
    ----------
    path : Path or str
        The file.
    stop_before_pixels : bool
        Stop at Pixel Data (or Float / Double Float Pixel Data), as
        ``pydicom.dcmread(..., stop_before_pixels=True)`` does.

    Raises
    ------
    NotHandled
        When the file is not one this reader parses exactly (read it with pydicom).
    OSError
        When the file cannot be read.
    """
    with open(path, "rb") as fh:
        buf = fh.read()
    return parse_part10(buf, stop_before_pixels=stop_before_pixels)


def parse_part10(buf: bytes, *, stop_before_pixels: bool = False) -> Part10Dataset:
    """:func:`read_part10` on the bytes of a file."""
    if (config.use_DS_decimal or config.use_DS_numpy or config.use_IS_numpy
            or config.datetime_conversion or config.use_none_as_empty_text_VR_value
            or not config.replace_un_with_known_vr
            or config.settings.reading_validation_mode == config.RAISE):
        raise NotHandled("pydicom's value settings are not the defaults")
    if buf[128:132] != b"DICM":
        raise NotHandled("no DICM prefix")
    try:
        return _parse(buf, stop_before_pixels)
    except struct.error as exc:  # an element header past the end of the file
        raise NotHandled(f"truncated ({exc})") from exc


def _parse(buf: bytes, stop_before_pixels: bool) -> Part10Dataset:
    meta, pos = _parse_explicit(buf, 132, len(buf), frozenset(), before=0x00030000)
    if any(tag >> 16 != 2 for tag in meta):
        raise NotHandled("File Meta Information outside group 0002")
    file_meta = Part10Dataset(buf, meta, implicit=False)
    syntax = file_meta.get("TransferSyntaxUID")
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        raise NotHandled(f"transfer syntax {syntax}")
    stop = _PIXEL_TAGS if stop_before_pixels else frozenset()
    implicit = syntax == ImplicitVRLittleEndian
    if implicit:
        if len(buf) >= pos + 6 and buf[pos + 4:pos + 6] in _VRS:
            raise NotHandled("an Implicit VR file whose data set looks Explicit VR")
        elements, pos = _parse_implicit(buf, pos, len(buf), stop)
    else:
        elements, pos = _parse_explicit(buf, pos, len(buf), stop)
    dataset = Part10Dataset(buf, elements, implicit=implicit)
    dataset.file_meta = file_meta
    return dataset


def _parse_explicit(buf: bytes, pos: int, end: int, stop: frozenset[int], *,
                    before: int = 0xFFFE0000, in_item: bool = False
                    ) -> tuple[dict[int, _Record], int]:
    """Explicit VR elements from ``pos`` up to ``end``, a tag in ``stop``, a tag at or
    after ``before`` or (``in_item``) an item delimiter; returns them and the position
    after."""
    elements: dict[int, _Record] = {}
    header = _EXPLICIT_HEADER.unpack_from
    long_length = _LENGTH.unpack_from
    sizes = _HEADER_SIZES
    slow = min(before, min(stop, default=before))  # tags from which the checks below run
    while pos < end:
        # a header running past ``end`` runs past the value below, or past the buffer
        # (struct.error, a NotHandled for the callers of the parsers)
        g, e, code, length = header(buf, pos)
        tag = g << 16 | e
        if tag >= slow:
            if tag in stop:
                return elements, pos
            if tag >= before:
                if before != 0xFFFE0000:  # the end of the File Meta Information
                    return elements, pos
                if tag == _ITEM_END and in_item:
                    return elements, pos + 8
                raise NotHandled(f"unexpected ({g:04X},{e:04X}) at byte {pos}")
        size = sizes.get(code)
        if size is None:
            raise NotHandled(f"unknown VR {code!r} at byte {pos}")
        if size == 12:
            length = long_length(buf, pos + 8)[0]
            if length == _UNDEFINED:
                pos = _undefined(buf, elements, tag, _VRS[code], pos + 12, False)
                continue
        if pos + size + length > end:
            raise NotHandled(f"({g:04X},{e:04X}) of {length} bytes runs past the end")
        elements[tag] = pos
        pos += size + length
    if in_item:
        raise NotHandled("an undefined-length item has no delimiter")
    return elements, pos


def _parse_implicit(buf: bytes, pos: int, end: int, stop: frozenset[int], *,
                    in_item: bool = False) -> tuple[dict[int, _Record], int]:
    """:func:`_parse_explicit` for Implicit VR (VRs from pydicom's dictionary)."""
    elements: dict[int, _Record] = {}
    header = _IMPLICIT_HEADER.unpack_from
    known = _IMPLICIT_VRS
    while pos < end:
        if pos + 8 > end:
            raise NotHandled(f"element header at byte {pos} runs past the end")
        g, e, length = header(buf, pos)
        tag = g << 16 | e
        if g == 0xFFFE:
            if tag == _ITEM_END and in_item:
                return elements, pos + 8
            raise NotHandled(f"unexpected delimiter ({g:04X},{e:04X}) at byte {pos}")
        if tag in stop:
            return elements, pos
        if tag not in known:
            _implicit_vr(tag)
        if length == _UNDEFINED:
            pos = _undefined(buf, elements, tag, known[tag], pos + 8, True)
            continue
        if pos + 8 + length > end:
            raise NotHandled(f"({g:04X},{e:04X}) of {length} bytes runs past the end")
        elements[tag] = pos
        pos += 8 + length
    if in_item:
        raise NotHandled("an undefined-length item has no delimiter")
    return elements, pos


def _implicit_vr(tag: int) -> str | None:
    """The VR pydicom gives an Implicit VR element (None: private, decided when read)."""
    try:
        vr: str | None = str(dictionary_VR(tag))
    except KeyError:
        if tag >> 16 & 1:
            vr = "LO" if 0x10 <= tag & 0xFFFF <= 0xFF else None
        else:
            vr = "UL" if tag & 0xFFFF == 0 else "UN"
    _IMPLICIT_VRS[tag] = vr
    return vr


def _undefined(buf: bytes, elements: dict[int, _Record], tag: int, vr: str | None, pos: int,
               implicit: bool) -> int:
    """Store an element of undefined length whose value starts at ``pos`` (its items: only
    a sequence is read); returns the position after its delimiter."""
    if vr != "SQ":
        raise NotHandled(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} of undefined length")
    elements[tag], pos = _items(buf, pos, None, implicit)
    return pos


def _items(buf: bytes, pos: int, end: int | None, implicit: bool
           ) -> tuple[list[dict[int, _Record]], int]:
    """The items of a sequence value from ``pos`` to ``end`` (None: undefined length, up to
    its delimiter); returns them and the position after the sequence."""
    items = []
    limit = len(buf) if end is None else end
    parse = _parse_implicit if implicit else _parse_explicit
    while end is None or pos < end:
        if pos + 8 > limit:
            raise NotHandled(f"item header at byte {pos} runs past the end")
        g, e, length = _IMPLICIT_HEADER.unpack_from(buf, pos)
        tag = g << 16 | e
        pos += 8
        if tag == _SEQUENCE_END and end is None:
            return items, pos
        if tag != _ITEM:
            raise NotHandled(f"({g:04X},{e:04X}) where an item was expected")
        if length == _UNDEFINED:
            elements, pos = parse(buf, pos, limit, frozenset(), in_item=True)
        else:
            if pos + length > limit:
                raise NotHandled(f"item of {length} bytes at byte {pos} runs past the end")
            elements, _ = parse(buf, pos, pos + length, frozenset())
            pos += length
        items.append(elements)
    return items, pos


def _tag_of(key: int | str) -> int | None:
    """The tag of a keyword (None for an unknown one) or of an int."""
    if key.__class__ is str:
        tag = _TAGS.get(key, -1)
        if tag == -1:
            tag = _TAGS[key] = tag_for_keyword(key)
        return tag
    return int(key)


class Part10Dataset:
    """A read-only data set parsed by :func:`read_part10`.

    Offers the part of pydicom's ``Dataset`` interface the analysis readers use:
    ``keyword in ds`` (or a tag), ``ds.get(keyword, default)``, ``ds.Keyword``,
    ``ds[tag_or_keyword].value``, ``ds.get_item(tag_or_keyword)`` (the raw bytes),
    ``ds.keys()`` and ``ds.file_meta``; sequence values are lists of ``Part10Dataset``.
    """

    __slots__ = ("_buf", "_elements", "_implicit", "_parent", "_values", "file_meta")

    def __init__(self, buf: bytes, elements: dict[int, _Record], *, implicit: bool,
                 parent: Part10Dataset | None = None) -> None:
        self._buf = buf
        self._elements = elements
        self._implicit = implicit
        self._parent = parent
        self._values: dict[int, Any] = {}
        self.file_meta: Part10Dataset | None = None

    def __contains__(self, key: int | str) -> bool:
        tag = _TAGS.get(key)  # type: ignore[call-overload]
        return (_tag_of(key) if tag is None else tag) in self._elements

    def __len__(self) -> int:
        return len(self._elements)

    def keys(self) -> Iterator[int]:
        """The tags of the elements (in file order)."""
        return iter(self._elements)

    def __iter__(self) -> Iterator[int]:
        """The tags of the elements (in file order), as :meth:`keys`."""
        return iter(self._elements)

    def get(self, key: int | str, default: Any = None) -> Any:
        """The value of keyword ``key`` (an element for a tag, as pydicom), else
        ``default``."""
        if key.__class__ is not str:
            tag = int(key)
            return self._item(tag) if tag in self._elements else default
        tag = _TAGS.get(key)
        if tag is None:
            tag = _tag_of(key)
        if tag not in self._elements:
            return default
        value = self._values.get(tag, _MISSING)
        return self.value(tag) if value is _MISSING else value

    def __getattr__(self, name: str) -> Any:
        tag = _TAGS.get(name)
        if tag is None and name[:1].isupper():
            tag = _tag_of(name)
        if tag not in self._elements:
            raise AttributeError(f"the data set has no element {name!r}")
        value = self._values.get(tag, _MISSING)
        return self.value(tag) if value is _MISSING else value

    def __getitem__(self, key: int | str) -> RawElement:
        tag = _tag_of(key)
        if tag not in self._elements:
            raise KeyError(key)
        return self._item(tag)

    def _item(self, tag: int) -> RawElement:
        """The element ``tag`` (present) with its decoded value."""
        record = self._elements[tag]
        if record.__class__ is int and not self._implicit:  # the common case, inline
            vr = _VRS[self._buf[record + 4:record + 6]]
            if vr != "UN":
                return RawElement(tag, vr, self.value(tag))
        return RawElement(tag, self._element(tag)[0], self.value(tag))

    def get_item(self, key: int | str) -> RawElement | None:
        """The element with its raw value bytes (None when absent)."""
        tag = _tag_of(key)
        record = self._elements.get(tag)
        if record is None:
            return None
        if record.__class__ is int and not self._implicit:  # the common case, inline
            code, length = _EXPLICIT_TAIL(self._buf, record + 4)
            vr = _SHORT_VRS.get(code)
            if vr is not None:
                return RawElement(tag, vr, self._buf[record + 8:record + 8 + length])
        vr, start, length, _ = self._element(tag)
        return RawElement(tag, vr, self._buf[start:start + length])

    @property
    def is_implicit_vr(self) -> bool:
        """The data set is Implicit VR Little Endian (else Explicit)."""
        return self._implicit

    def span(self, key: int | str) -> tuple[int, int] | None:
        """Where the element ``key`` lies in the file: (offset of its header, offset after
        its value); None when it is absent or an undefined-length sequence (whose end
        is not recorded)."""
        record = self._elements.get(_tag_of(key))
        if record is None or record.__class__ is list:
            return None
        _, start, length, _ = self._element(_tag_of(key))
        return record, start + length

    @property
    def pixel_array(self) -> Any:
        """Never decoded here (pydicom's pixel handlers do it)."""
        raise NotHandled("pixel data that is not native little-endian grey scale")

    def value(self, tag: int) -> Any:
        """The decoded value of the element ``tag`` (KeyError when absent)."""
        value = self._values.get(tag, _MISSING)
        if value is not _MISSING:
            return value
        record = self._elements[tag]
        if record.__class__ is int and not self._implicit:  # the common case, inline
            code, length = _EXPLICIT_TAIL(self._buf, record + 4)
            decoder = _SHORT_DECODERS.get(code)
            if decoder is not None and length:
                value = self._values[tag] = decoder(self._buf[record + 8:record + 8 + length])
                return value
        vr, start, length, items = self._element(tag)
        if vr == "SQ":
            if items is None:
                try:
                    items, _ = _items(self._buf, start, start + length, self._implicit)
                except struct.error as exc:  # an item's header past the end of the file
                    raise NotHandled(f"truncated sequence ({exc})") from exc
            value = [Part10Dataset(self._buf, item, implicit=self._implicit, parent=self)
                     for item in items]
        elif length == 0:
            if vr == "PN":
                raise NotHandled("an empty person name")
            value = "" if vr in _EMPTY_TEXT else None
        else:
            decoder = _DECODERS.get(vr)
            raw = self._buf[start:start + length]
            value = decoder(raw) if decoder is not None else self._decode(tag, vr, raw)
        self._values[tag] = value
        return value

    def _element(self, tag: int) -> tuple[str, int, int, list | None]:
        """VR (as pydicom gives it), value start and length, and the items of an
        undefined-length sequence (else None) of the element ``tag``."""
        record = self._elements[tag]
        if record.__class__ is list:
            return "SQ", 0, 0, record
        if self._implicit:
            length = _IMPLICIT_HEADER.unpack_from(self._buf, record)[2]
            vr = _IMPLICIT_VRS[tag]
            start = record + 8
        else:
            code, length = _EXPLICIT_HEADER.unpack_from(self._buf, record)[2:]
            vr = _VRS[code]
            start = record + 8
            if vr in _LONG_VRS:
                length = _LENGTH.unpack_from(self._buf, record + 8)[0]
                start = record + 12
        if vr is None or vr == "UN":
            vr = self._unknown_vr(tag, length)
        return vr, start, length, None

    def _unknown_vr(self, tag: int, length: int) -> str:
        """The VR pydicom gives an Implicit VR private element or an Explicit 'UN' one."""
        element = tag & 0xFFFF
        if tag >> 16 & 1:
            if 0x10 <= element <= 0xFF:
                return "LO"
            creator_tag = (tag & 0xFFFF0000) | (element >> 8)
            if element & 0xFF00 and creator_tag in self._elements:
                try:
                    return str(private_dictionary_VR(tag, self.value(creator_tag)))
                except KeyError:
                    pass
            return "UN"
        if length < 0xFFFF:
            try:
                vr = str(dictionary_VR(tag))
            except KeyError:
                return "UN"
            if vr == "SQ":
                raise NotHandled("a sequence stored as UN")
            return vr
        return "UN"

    def _encoding(self) -> str:
        """The Python codec pydicom decodes this data set's text with (no escapes)."""
        if _CHARSET in self._elements:
            charset = self.value(_CHARSET)
        elif self._parent is not None:
            return self._parent._encoding()
        else:
            charset = None
        key = tuple(charset) if isinstance(charset, list) else charset
        if key not in _ENCODINGS:
            _ENCODINGS[key] = convert_encodings(charset)[0]
        return _ENCODINGS[key]

    def _decode(self, tag: int, vr: str, raw: bytes) -> Any:
        """Values :data:`_DECODERS` does not decode (text in the data set's character set,
        bytes)."""
        if vr in _BYTES_VRS or (tag == PIXEL_DATA and vr == "OB or OW"):
            return raw
        if vr in _CHARSET_TEXT:
            if b"\x1b" in raw:
                raise NotHandled(f"{vr} text with character set escapes")
            try:
                text = raw.decode(self._encoding())
            except (UnicodeError, LookupError) as exc:
                raise NotHandled(f"{vr} text pydicom decodes with replacements") from exc
            if vr in ("LO", "SH", "UC"):
                parts = [part.rstrip("\0 ") for part in text.split("\\")]
                return parts[0] if len(parts) == 1 else parts
            return text.rstrip("\0 ")
        raise NotHandled(f"values of VR {vr}")


def _multi(text: str) -> Any:
    """pydicom's ``multi_string``: trailing spaces and NULs removed, split on ``\\``."""
    parts = text.rstrip(" \0").split("\\")
    return parts[0] if len(parts) == 1 else parts


def _strings(raw: bytes) -> Any:
    return _multi(raw.decode("latin-1"))


def _number_list(pattern: re.Pattern[str], convert: Callable[[str], Any], text: str) -> Any:
    parts = text.rstrip(" \0").split("\\")
    if not all(pattern.fullmatch(part) for part in parts):
        raise NotHandled(f"number string {text!r} is not plain numbers")
    values = [convert(part) for part in parts]
    return values[0] if len(values) == 1 else values


def _ds(raw: bytes) -> Any:
    return _number_list(_DS_ITEM, float, raw.decode("latin-1").strip())


def _is(raw: bytes) -> Any:
    return _number_list(_IS_ITEM, int, raw.decode("latin-1"))


def _ae(raw: bytes) -> Any:
    parts = [part.strip() for part in raw.decode("latin-1").split("\\")]
    return parts[0] if len(parts) == 1 else parts


def _binary(fmt: str) -> Callable[[bytes], Any]:
    """A decoder of binary numbers in struct format ``fmt`` (pydicom's
    ``convert_numbers``: one number, or a list)."""
    one = struct.Struct(f"<{fmt}").unpack
    size = struct.calcsize(f"<{fmt}")

    def decode(raw: bytes) -> Any:
        if len(raw) == size:
            return one(raw)[0]
        if len(raw) % size:
            raise NotHandled(f"{len(raw)} bytes of binary numbers of {size} bytes")
        numbers = struct.unpack(f"<{len(raw) // size}{fmt}", raw)
        return numbers[0] if len(numbers) == 1 else list(numbers)

    return decode


def _ur(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip()


#: Decoders of the VRs whose text pydicom reads in its default encoding.
_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "AE": _ae, "AS": _strings, "CS": _strings, "DA": _strings, "DT": _strings,
    "TM": _strings, "UI": _strings, "DS": _ds, "IS": _is, "UR": _ur,
}
_DECODERS.update({vr: _binary(fmt) for vr, fmt in _BINARY_FORMATS.items()})
#: The VRs with a 2-byte length by code, and their decoders.
_SHORT_VRS = {code: vr for code, vr in _VRS.items() if vr not in _LONG_VRS}
_SHORT_DECODERS = {code: _DECODERS[vr] for code, vr in _VRS.items()
                   if vr in _DECODERS and vr not in _LONG_VRS}
#: Text VRs decoded in the data set's character set.
_CHARSET_TEXT = frozenset({"LO", "SH", "UC", "ST", "LT", "UT"})

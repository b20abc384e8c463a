"""JCAMP-DX writer for ParaVision parameter files (``acqp``, ``method``, ``visu_pars``...).

Writes the dialect ParaVision 6 writes: a header of ``##TITLE=``-style records, ``$$``
comment lines, one ``##$NAME=value`` record per parameter, array values on the lines after
a ``( d1, d2 )`` size record wrapped at 80 characters, ``<...>`` strings with a declared
buffer size, structs ``(7, <FG_ECHO>, <>, 0, 1)`` and ``##END=``.

Python values map to JCAMP-DX as follows:

======================================  ======================================================
value                                   written as
======================================  ======================================================
``int`` / ``float`` / numpy scalar      ``##$N=42`` / ``##$N=0.5`` (floats round-trip exactly;
                                        integral floats are written without ``.0`` as ParaVision
                                        does)
``bool``                                the enumeration word ``Yes`` / ``No``
:class:`Word` (a ``str`` subclass)      bare enumeration word: ``##$N=_16BIT_SGN_INT``
``str``                                 ``##$N=( 65 )`` then ``<text>`` (size 65, or longer)
:class:`Text`                           a string with an explicit size, or unsized with
                                        ``size=None``: ``##$N=<2016-07-18T12:44:12,538+0200>``
:class:`Strings`                        array of strings: ``##$N=( 2, 65 )`` then ``<mm> <mm>``
``numpy.ndarray`` (numbers)             ``##$N=( d1, d2 )`` then the values in C order
``numpy.ndarray`` (``str`` dtype)       array of enumeration words: ``( 2 )`` then
                                        ``spatial spatial``
``tuple``                               struct: ``##$N=(1, 1)``; nested tuples nest; inside a
                                        struct ``str`` is ``<text>``, :class:`Word` is bare and a
                                        numpy array is its values separated by spaces
``list`` of ``tuple``                   array of structs: ``##$N=( 2 )`` then ``(..) (..)``
======================================  ======================================================

Examples
--------
>>> import numpy as np
>>> print(format_jcamp({"VisuCoreSize": np.array([96, 64]), "VisuCoreDim": 2},
...                    title="Parameter List, ParaVision 6.0.1", owner="xnatpic"))
##TITLE=Parameter List, ParaVision 6.0.1
##JCAMPDX=4.24
##DATATYPE=Parameter Values
##ORIGIN=Bruker BioSpin MRI GmbH
##OWNER=xnatpic
##$VisuCoreSize=( 2 )
96 64
##$VisuCoreDim=2
##END=
<BLANKLINE>
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic.errors import ParaVisionError

__all__ = [
    "DEFAULT_STRING_SIZE",
    "DEFAULT_TITLE",
    "LINE_WIDTH",
    "Strings",
    "Text",
    "Word",
    "format_jcamp",
    "format_value",
    "write_jcamp",
]

#: Default ``##TITLE`` record.
DEFAULT_TITLE = "Parameter List, ParaVision 6.0.1"
#: Buffer size declared for plain ``str`` values (ParaVision's most common one).
DEFAULT_STRING_SIZE = 65
#: ParaVision wraps value lines to stay shorter than this many characters.
LINE_WIDTH = 80
_ESCAPES = (("\\", "\\\\"), ("<", "\\<"), (">", "\\>"))


class Word(str):
    """A bare JCAMP-DX enumeration word (``_16BIT_SGN_INT``, ``Yes``, ``MAGNITUDE_IMAGE``)."""

    __slots__ = ()


@dataclass(frozen=True)
class Text:
    """A ``<...>`` string with an explicit declared size.

    Parameters
    ----------
    text : str
        The string, without the angle brackets.
    size : int or None
        Declared buffer size written as ``( size )`` on the record line, or ``None`` for an
        unsized string on the record line itself (as ParaVision writes dates).
    """

    text: str
    size: int | None = DEFAULT_STRING_SIZE


@dataclass(frozen=True)
class Strings:
    """A 1-D array of ``<...>`` strings, written ``( n, size )`` then ``<a> <b> ...``.

    Parameters
    ----------
    values : sequence of str
        The strings.
    size : int
        Declared buffer size of each string.
    """

    values: tuple[str, ...]
    size: int = DEFAULT_STRING_SIZE

    def __init__(self, values: Iterable[str], size: int = DEFAULT_STRING_SIZE):
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "size", size)


def _format_number(value: Any, name: str) -> str:
    if isinstance(value, bool | np.bool_):
        return "Yes" if value else "No"
    if isinstance(value, int | np.integer):
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        raise ParaVisionError(
            f"parameter {name}: JCAMP-DX cannot hold the non-finite value {number!r}; "
            "replace it with a finite number before writing"
        )
    text = repr(number)
    if text.endswith(".0"):
        text = text[:-2]
    return text


def _quote(text: str, name: str) -> str:
    if "\n" in text or "\r" in text:
        raise ParaVisionError(f"parameter {name}: strings with line breaks are not supported")
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return f"<{text}>"


def _struct_item(item: Any, name: str) -> str:
    if isinstance(item, tuple):
        return "(" + ", ".join(_struct_item(x, name) for x in item) + ")"
    if isinstance(item, Word):
        return str(item)
    if isinstance(item, Text):
        return _quote(item.text, name)
    if isinstance(item, str):
        return _quote(item, name)
    if isinstance(item, np.ndarray):
        return " ".join(_scalar_token(x, name) for x in item.ravel())
    return _format_number(item, name)


def _scalar_token(item: Any, name: str) -> str:
    if isinstance(item, str | np.str_):
        return str(item)
    return _format_number(item, name)


def _check_word(word: str, name: str) -> str:
    if not word or any(ch.isspace() or ch in "<>()," for ch in word):
        raise ParaVisionError(
            f"parameter {name}: {word!r} is not a valid enumeration word "
            "(no spaces, brackets or commas); pass a str to write it as <text>"
        )
    return word


def _wrap(tokens: Sequence[str], width: int = LINE_WIDTH) -> list[str]:
    """Join tokens with single spaces into lines of at most ``width`` characters.

    Broken lines keep their trailing space, as ParaVision writes them (the space included,
    a line holds at most ``width - 2`` characters), so joining the lines back with or without a
    separator gives the same tokens.
    """
    lines: list[str] = []
    current = ""
    for token in tokens:
        if current and len(current) + len(token) + 1 > width - 2:
            lines.append(current)
            current = ""
        current += token + " "
    if current:
        lines.append(current[:-1])
    return lines


def _shape_record(shape: Sequence[int]) -> str:
    return "( " + ", ".join(str(int(d)) for d in shape) + " )"


def format_value(name: str, value: Any) -> list[str]:
    """Return the lines of one ``##$NAME=...`` record.

    Parameters
    ----------
    name : str
        Parameter name, without ``##$``.
    value : object
        A value of one of the types listed in the module docstring.

    Returns
    -------
    list of str
        The record line followed by its value lines.

    Raises
    ------
    ParaVisionError
        For values JCAMP-DX cannot hold (non-finite floats, strings with line breaks,
        enumeration words with spaces, empty arrays) or of an unsupported type.
    """
    head = f"##${name}="
    if isinstance(value, Word):
        return [head + _check_word(value, name)]
    if isinstance(value, Text):
        if value.size is None:
            return [head + _quote(value.text, name)]
        size = max(value.size, len(value.text) + 1)
        return [head + _shape_record([size]), _quote(value.text, name)]
    if isinstance(value, str):
        size = max(DEFAULT_STRING_SIZE, len(value) + 1)
        return [head + _shape_record([size]), _quote(value, name)]
    if isinstance(value, Strings):
        if not value.values:
            raise ParaVisionError(f"parameter {name}: empty string arrays cannot be written")
        size = max([value.size, *(len(v) + 1 for v in value.values)])
        tokens = [_quote(v, name) for v in value.values]
        return [head + _shape_record([len(tokens), size]), *_wrap(tokens)]
    if isinstance(value, tuple):
        return [head + _struct_item(value, name)]
    if isinstance(value, list):
        if not value or not all(isinstance(v, tuple) for v in value):
            raise ParaVisionError(
                f"parameter {name}: a list must hold one or more tuples (structs); "
                "use a numpy array for numbers"
            )
        tokens = [_struct_item(v, name) for v in value]
        return [head + _shape_record([len(tokens)]), *_wrap_structs(tokens)]
    if isinstance(value, np.ndarray):
        if value.size == 0:
            raise ParaVisionError(f"parameter {name}: empty arrays cannot be written")
        if value.dtype.kind in "US":
            tokens = [_check_word(str(v), name) for v in value.ravel()]
        elif value.dtype.kind in "biuf":
            tokens = [_format_number(v, name) for v in value.ravel()]
        else:
            raise ParaVisionError(f"parameter {name}: unsupported array dtype {value.dtype}")
        return [head + _shape_record(value.shape), *_wrap(tokens)]
    if isinstance(value, bool | int | float | np.integer | np.floating | np.bool_):
        return [head + _format_number(value, name)]
    raise ParaVisionError(f"parameter {name}: cannot write a value of type {type(value).__name__}")


def _wrap_structs(structs: Sequence[str]) -> list[str]:
    """Wrap struct tokens; a struct longer than a line is split at spaces outside strings."""
    tokens: list[str] = []
    for struct in structs:
        tokens.extend(_split_outside_strings(struct))
    return _wrap(tokens)


def _split_outside_strings(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    in_string = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "<":
            in_string = True
        elif ch == ">":
            in_string = False
        elif ch == " " and not in_string:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def format_jcamp(
    params: Mapping[str, Any],
    *,
    title: str = DEFAULT_TITLE,
    owner: str = "xnatpic",
    origin: str = "Bruker BioSpin MRI GmbH",
    comments: Sequence[str] = (),
    footer: Sequence[str] = (),
) -> str:
    """Format parameters as the text of a ParaVision JCAMP-DX parameter file.

    Parameters
    ----------
    params : mapping of str to value
        Parameters in file order; see the module docstring for the accepted types.
    title : str
        The ``##TITLE`` record.
    owner : str
        The ``##OWNER`` record.
    origin : str
        The ``##ORIGIN`` record.
    comments : sequence of str
        ``$$`` comment lines written after the header (without the ``$$ ``).
    footer : sequence of str
        ``$$`` comment lines written after ``##END=``.

    Returns
    -------
    str
        The file text, ending with a newline.

    Raises
    ------
    ParaVisionError
        When a value cannot be written (see :func:`format_value`).
    """
    lines = [
        f"##TITLE={title}",
        "##JCAMPDX=4.24",
        "##DATATYPE=Parameter Values",
        f"##ORIGIN={origin}",
        f"##OWNER={owner}",
    ]
    lines.extend(f"$$ {c}" for c in comments)
    for name, value in params.items():
        if not name or any(ch.isspace() or ch == "=" for ch in name):
            raise ParaVisionError(f"invalid parameter name {name!r}")
        lines.extend(format_value(name, value))
    lines.append("##END=")
    lines.extend(f"$$ {c}" for c in footer)
    return "\n".join(lines) + "\n"


def write_jcamp(path: str | os.PathLike[str], params: Mapping[str, Any], **kwargs: Any) -> Path:
    """Write parameters to ``path`` as a JCAMP-DX file (see :func:`format_jcamp`).

    Parameters
    ----------
    path : path-like
        Destination file; its parent folder must exist.
    params : mapping of str to value
        Parameters in file order.
    **kwargs
        Header options passed to :func:`format_jcamp` (``title``, ``owner``...).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    target = Path(path)
    target.write_text(format_jcamp(params, **kwargs), encoding="latin-1", newline="\n")
    return target

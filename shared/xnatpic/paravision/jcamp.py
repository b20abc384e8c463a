"""JCAMP-DX parameter files as written by ParaVision 5.1 to 360 (acqp, method, visu_pars...).

Syntax handled (JCAMP-DX 4.24 as Bruker uses it):

* header records ``##TITLE=...``, ``##JCAMPDX=...``, ``##END=`` (kept in ``headers``);
* parameters ``##$NAME=value``, their value continuing on the following lines until the
  next ``##`` record or ``$$`` comment line;
* scalars: integers, reals, bare words (enumerations such as ``_16BIT_SGN_INT``) and
  ``<...>`` strings;
* sized arrays ``##$NAME=( 9, 3 )`` followed by values, numeric arrays come back as numpy
  arrays of that shape, string arrays drop the declared character length;
* run-length groups ``@16*(0.9)`` (ParaVision 360);
* structs and lists of structs ``(7, <FG_ECHO>, <>, 0, 1) (9, <FG_SLICE>, <>, 1, 2)``,
  nested to any depth, as tuples;
* ``$$`` comment lines (including ``$$ @vis=`` lists), ignored.

Any malformed input raises :class:`~xnatpic.errors.JcampSyntaxError` naming the file and
line; nothing else escapes :func:`parse_jcamp`.
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from xnatpic.errors import JcampSyntaxError, MissingParameterError
from xnatpic.paravision.limits import (
    MAX_EXPANDED_ELEMENTS,
    MAX_JCAMP_BYTES,
    MAX_STRING_ARRAY_BYTES,
    MAX_STRUCT_DEPTH,
    decode_jcamp,
)

__all__ = ["ParameterSet", "parse_jcamp", "read_jcamp"]

#: A sized-array header: "( 9, 3 )". ParaVision always pads it with spaces, which is what
#: tells it apart from a struct such as "(1, 1)".
_SIZE_HEADER = re.compile(r"^\(\s+(\d+(?:\s*,\s*\d+)*)\s+\)$")
#: XWIN-NMR style range header of uxnmr.par and specpar: "(0..23)".
_RANGE_HEADER = re.compile(r"^\(\s*(\d+)\s*\.\.\s*(\d+)\s*\)$")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?(?:inf|nan)$", re.I)
#: Struct tokens: a string (with backslash escapes), punctuation, or an atom.
_STRUCT_TOKEN = re.compile(r"<(?:\\.|[^\\>])*>|[(),]|[^\s(),<>]+|[<>]")
_RUN_LENGTH = re.compile(r"@(\d+)\*\(([^()]*)\)")
#: Refuse declared sizes larger than this many elements: no real parameter comes close,
#: and a corrupt header must not allocate gigabytes (see xnatpic.paravision.limits).
_MAX_ELEMENTS = MAX_EXPANDED_ELEMENTS
_MAX_DEPTH = MAX_STRUCT_DEPTH
_UNESCAPE = re.compile(r"\\(.)", re.S)
_RECORD_NAME = re.compile(r"[A-Za-z0-9_.\- ]+")


class ParameterSet(dict[str, Any]):
    """The parameters of one JCAMP-DX file, by name, plus its header records.

    Attributes
    ----------
    headers : dict of str to str
        Header records such as ``TITLE`` and ``JCAMPDX``.
    path : str or None
        The file the parameters were read from.
    """

    def __init__(self, *args: Any, headers: dict[str, str] | None = None,
                 path: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers: dict[str, str] = dict(headers or {})
        self.path = path

    def require(self, name: str) -> Any:
        """Return parameter ``name`` or raise an error naming the file.

        Raises
        ------
        MissingParameterError
            When the parameter is absent.
        """
        try:
            return self[name]
        except KeyError:
            where = self.path or "parameter file"
            raise MissingParameterError(
                f"{where}: required parameter {name} is missing"
            ) from None

    def text(self, *names: str) -> str | None:
        """The first of ``names`` present with a non-empty value, as text.

        Arrays are joined with spaces (``VisuCoreDimDesc`` → ``"spatial spatial"``).
        """
        for name in names:
            value = self.get(name)
            if isinstance(value, np.ndarray):
                value = " ".join(map(str, value.ravel()))
            if value is not None and value != "":
                return str(value)
        return None

    @property
    def title(self) -> str:
        """The ``##TITLE`` header (e.g. ``Parameter List, ParaVision 6.0.1``)."""
        return self.headers.get("TITLE", "")


class _Record(NamedTuple):
    name: str
    is_parameter: bool
    text: str
    line: int


def read_jcamp(path: str | Path) -> ParameterSet:
    """Read and parse a JCAMP-DX parameter file.

    Parameters
    ----------
    path : str or Path
        The file (``acqp``, ``method``, ``visu_pars``, ``reco``, ``subject``...).

    Returns
    -------
    ParameterSet
        Parameters by name (without the ``$``), typed as described in :func:`parse_jcamp`.

    Raises
    ------
    JcampSyntaxError
        When the file cannot be parsed or read.
    """
    path = Path(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise JcampSyntaxError("cannot read: not a regular file", path=str(path))
        size = info.st_size
        if size > MAX_JCAMP_BYTES:
            raise JcampSyntaxError(f"{size} bytes, more than the {MAX_JCAMP_BYTES} a "
                                   "parameter file may have", path=str(path))
        raw = path.read_bytes()
    except OSError as exc:
        raise JcampSyntaxError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc
    return parse_jcamp(decode_jcamp(raw), path=str(path))


def parse_jcamp(text: str, *, path: str | None = None) -> ParameterSet:
    """Parse the text of a JCAMP-DX parameter file.

    Parameters
    ----------
    text : str
        The file's content.
    path : str, optional
        Shown in error messages.

    Returns
    -------
    ParameterSet
        Values are ``int``, ``float``, ``str`` (``<...>`` strings and bare words),
        numpy arrays of the declared shape (numbers, or ``str`` for string arrays),
        tuples for structs and lists of tuples for arrays of structs.

    Raises
    ------
    JcampSyntaxError
        On any malformed record.

    Examples
    --------
    >>> p = parse_jcamp("##TITLE=x\\n##$N=3\\n##$V=( 2, 2 )\\n1 2\\n3 4\\n##$S=<a b>\\n##END=\\n")
    >>> p["N"], p["V"].tolist(), p["S"]
    (3, [[1, 2], [3, 4]], 'a b')
    """
    params = ParameterSet(path=path)
    for record in _records(text, path):
        if not record.is_parameter:
            params.headers[record.name] = record.text.strip()
            continue
        try:
            params[record.name] = _parse_value(record.text)
        except JcampSyntaxError as exc:
            raise JcampSyntaxError(f"parameter {record.name}: {exc}", path=path,
                                   line=record.line) from None
        except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
            raise JcampSyntaxError(f"parameter {record.name}: {exc}", path=path,
                                   line=record.line) from None
    return params


def _records(text: str, path: str | None) -> Iterator[_Record]:
    """Split the text into records; continuation lines are joined with newlines."""
    current: list[str] | None = None
    name = ""
    is_parameter = False
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("##"):
            if current is not None:
                yield _Record(name, is_parameter, "\n".join(current), start)
            key, sep, value = line[2:].partition("=")
            if not sep:
                raise JcampSyntaxError(f"record without '=': {line[:60]!r}", path=path,
                                       line=number)
            is_parameter = key.startswith("$")
            name = key[1:] if is_parameter else key
            if not name or not _RECORD_NAME.fullmatch(name):
                raise JcampSyntaxError(f"invalid record name {key!r}", path=path, line=number)
            name = name.strip()
            if name == "END" and not is_parameter:
                current = None
                break
            current = [value]
            start = number
        elif line.startswith("$$"):
            if current is not None:
                yield _Record(name, is_parameter, "\n".join(current), start)
                current = None
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise JcampSyntaxError(
                f"text outside any record: {line[:60]!r} (expected a line starting with '##')",
                path=path, line=number,
            )
    if current is not None:
        yield _Record(name, is_parameter, "\n".join(current), start)


def _parse_value(text: str) -> Any:
    first, _, rest = text.partition("\n")
    first = first.strip()
    if first.startswith("("):  # both headers open with a parenthesis
        header = _SIZE_HEADER.match(first)
        if header:
            shape = tuple(int(d) for d in header.group(1).split(","))
            return _parse_sized(shape, rest)
        ranged = _RANGE_HEADER.match(first)
        if ranged:
            low, high = int(ranged.group(1)), int(ranged.group(2))
            if high < low:
                raise JcampSyntaxError(f"empty range header {first!r}")
            return _parse_sized((high - low + 1,), rest)
    body = text.strip()
    if body.startswith("("):
        return _parse_structs(body, single=True)
    return _parse_scalar_body(body)


def _parse_scalar_body(body: str) -> Any:
    if not body:
        return ""
    if body.startswith("<"):
        strings = _tokenize_strings(body)
        if len(strings) == 1:
            return strings[0]
        return _string_array(strings, (len(strings),))
    tokens = body.split()
    if len(tokens) == 1:
        return _atom(tokens[0])
    values = [_atom(t) for t in tokens]
    if all(isinstance(v, (int, float)) for v in values):
        return np.array(values)
    return _string_array(tokens, (len(tokens),))


def _string_array(strings: list[str], shape: tuple[int, ...]) -> np.ndarray:
    """``strings`` as an array of ``shape``: fixed-width while that stays small, else
    ``object`` (a fixed-width array costs count x longest x 4 bytes)."""
    widest = max((len(s) for s in strings), default=0)
    if len(strings) * max(widest, 1) * 4 <= MAX_STRING_ARRAY_BYTES:
        return np.array(strings, dtype=str).reshape(shape)
    out = np.empty(len(strings), dtype=object)
    out[:] = strings
    return out.reshape(shape)


def _parse_sized(shape: tuple[int, ...], text: str) -> Any:
    count = math.prod(shape) if shape else 0  # exact (no int64 wrap), no numpy call
    if count > _MAX_ELEMENTS:
        raise JcampSyntaxError(f"declared size {shape} is implausibly large")
    body = text.strip()
    if body.startswith("<"):
        strings = _tokenize_strings(body)
        # Character arrays declare the string length as their last dimension; string
        # arrays of ParaVision's adjustment files do not.
        outer = shape[:-1]
        n_outer = math.prod(outer)
        if len(strings) == 1 and n_outer == 1:
            return strings[0]
        if len(strings) == n_outer:
            return _string_array(strings, outer)
        if len(strings) == count:
            return _string_array(strings, shape)
        raise JcampSyntaxError(
            f"declared shape {shape} holds {n_outer} strings but {len(strings)} were found"
        )
    if body.startswith("("):
        structs = _parse_structs(body, single=False)
        if len(structs) != (shape[0] if shape else 0):
            raise JcampSyntaxError(
                f"declared {shape[0] if shape else 0} structs but {len(structs)} were found"
            )
        return structs
    tokens = _expand_run_length(body, count)
    if len(tokens) != count:
        raise JcampSyntaxError(f"declared shape {shape} needs {count} values, found {len(tokens)}")
    distinct = set(tokens)
    if all(_INT.match(t) for t in distinct):
        try:
            return np.array(tokens, dtype=np.int64).reshape(shape)
        except (OverflowError, ValueError):
            return np.array(tokens, dtype=np.float64).reshape(shape)
    if all(_FLOAT.match(t) for t in distinct):
        return np.array(tokens, dtype=np.float64).reshape(shape)
    return _string_array(tokens, shape)


def _expand_run_length(body: str, limit: int) -> list[str]:
    """The tokens of ``body`` with each ``@N*(v)`` group expanded to N references to the
    same value (8 bytes each), refused as soon as the total passes ``limit``."""
    if "@" not in body:
        return body.split()
    tokens: list[str] = []
    position = 0
    for match in _RUN_LENGTH.finditer(body):
        tokens += body[position:match.start()].split()
        n = int(match.group(1))
        if len(tokens) + n > limit:
            raise JcampSyntaxError(
                f"run-length group {match.group(0)[:40]!r} exceeds the declared size "
                f"({limit} values)"
            )
        value = match.group(2).split()
        if len(value) != 1:
            raise JcampSyntaxError(
                f"run-length group {match.group(0)[:40]!r} must repeat one value")
        tokens += value * n
        position = match.end()
    tokens += body[position:].split()
    if any("@" in t for t in tokens):
        raise JcampSyntaxError("malformed run-length group (expected '@N*(value)')")
    return tokens


def _atom(token: str) -> int | float | str:
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token)
    return token


# -- strings and structs --------------------------------------------------------------------

def _read_string(text: str, i: int) -> tuple[str, int]:
    """Read a ``<...>`` string starting at ``text[i] == '<'``; newlines inside are dropped.

    A backslash takes the next character as it is (ParaVision escapes '<' and '>'
    inside strings).
    """
    out: list[str] = []
    j, n = i + 1, len(text)
    while True:
        close = text.find(">", j)
        escape = text.find("\\", j, close if close >= 0 else n)
        if escape >= 0 and escape + 1 < n:
            out.append(text[j:escape])
            out.append(text[escape + 1])
            j = escape + 2
            continue
        if close < 0:
            raise JcampSyntaxError("unterminated string (missing '>')")
        out.append(text[j:close])
        return "".join(out).replace("\n", ""), close + 1


def _tokenize_strings(body: str) -> list[str]:
    strings: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch.isspace():
            i += 1
        elif ch == "<":
            s, i = _read_string(body, i)
            strings.append(s)
        else:
            raise JcampSyntaxError(f"unexpected {ch!r} between strings")
    return strings


def _parse_structs(body: str, *, single: bool) -> Any:
    """Parse ``(a, b c, (d, e)) (f, ...)`` into tuples (one, or a list of them)."""
    tokens = _STRUCT_TOKEN.findall(body)
    structs: list[tuple[Any, ...]] = []
    i = 0
    while i < len(tokens):
        if tokens[i] != "(":
            raise JcampSyntaxError(f"expected '(' to open a struct, found {tokens[i][:20]!r}")
        struct, i = _parse_tuple(tokens, i, 0)
        structs.append(struct)
    if single and len(structs) == 1:
        return structs[0]
    return structs


def _string_token(token: str) -> str:
    if token == "<":
        raise JcampSyntaxError("unterminated string (missing '>')")
    if token == ">":
        raise JcampSyntaxError("'>' without a matching '<'")
    inner = token[1:-1]
    if "\\" in inner:
        inner = _UNESCAPE.sub(r"\1", inner)
    return inner.replace("\n", "")


def _parse_tuple(tokens: list[str], i: int, depth: int) -> tuple[tuple[Any, ...], int]:
    if depth > _MAX_DEPTH:
        raise JcampSyntaxError("structs nested too deeply")
    i += 1  # skip "("
    fields: list[Any] = []
    items: list[Any] = []
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            sub, i = _parse_tuple(tokens, i, depth + 1)
            items.append(sub)
            continue
        if token in (",", ")"):
            fields.append(_field_value(items))
            items = []
            i += 1
            if token == ")":
                return tuple(fields), i
            continue
        items.append(_string_token(token) if token[0] in "<>" else _atom(token))
        i += 1
    raise JcampSyntaxError("unterminated struct (missing ')')")


def _field_value(items: list[Any]) -> Any:
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    if all(isinstance(v, (int, float)) for v in items):
        return np.array(items)
    return list(items)

"""Java's view of JSON values, as Jayway JsonPath 2.8.0 sees them inside a matcher.

Jayway compares filter values with Java types: numbers become ``BigDecimal`` built from the
Java ``toString`` of the parsed number, strings compare by UTF-16 code units, JSON literals
in a filter (``['a', b]``) are read by json-smart in permissive mode, quoted strings are
unescaped by Jayway's ``Utils.unescape`` and patterns are ``java.util.regex`` patterns.
This module re-implements those pieces in Python; :mod:`xnatpic.xnat.jsonpath` builds the
filter semantics on top of them. Sources (json-path 2.8.0): ``internal/filter/ValueNodes.java``,
``internal/Utils.java``, ``internal/filter/PatternFlag.java``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "JavaSyntaxError",
    "big_decimal",
    "compile_pattern",
    "java_equal",
    "java_trim",
    "number_text",
    "parse_permissive_json",
    "quoted_string",
    "unescape",
    "utf16_compare",
    "utf16_length",
]

# java.lang.Integer / Long ranges: Jackson and json-smart store integers in the smallest of
# Integer, Long, BigInteger; List.equals compares those classes strictly.
_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_BIG_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNESCAPES = {"\\": "\\", "'": "'", '"': '"', "r": "\r", "f": "\f", "t": "\t", "n": "\n",
              "b": "\b"}
# PatternFlag.java: the letters Jayway accepts after a /regex/.
PATTERN_FLAGS = "dixmsuU"


class JavaSyntaxError(ValueError):
    """A value the Java side would refuse (NumberFormatException, parse errors...)."""


def big_decimal(text: str) -> Decimal:
    """Parse ``text`` as ``new BigDecimal(text)`` does.

    Raises
    ------
    JavaSyntaxError
        When Java would throw NumberFormatException (Python's Decimal is more lenient: it
        accepts spaces, ``Infinity``, ``NaN`` and underscores).
    """
    if not _BIG_DECIMAL.fullmatch(text):
        raise JavaSyntaxError(f"not a Java BigDecimal: {text!r}")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already vetted it
        raise JavaSyntaxError(f"not a Java BigDecimal: {text!r}") from exc
    return value.copy_abs() if value.is_zero() else value


def _double_text(value: float) -> str:
    """``Double.toString(value)``: plain between 1e-3 and 1e7, else ``d.dddE±n``."""
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    shortest = Decimal(repr(value))
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = format(shortest.normalize(), "f")
        return text if "." in text else text + ".0"
    sign, digits, exponent = shortest.as_tuple()
    assert isinstance(exponent, int)
    figures = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) - 1 + exponent
    return f"{'-' if sign else ''}{figures[0]}.{figures[1:] or '0'}E{power}"


def number_text(value: int | float | Decimal) -> str:
    """The ``toString`` of the Java number Jackson or json-smart would hold for ``value``."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return _double_text(value)


def _number_class(value: int | float) -> str:
    if isinstance(value, float):
        return "Double"
    if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        return "Integer"
    if _LONG_RANGE[0] <= value <= _LONG_RANGE[1]:
        return "Long"
    return "BigInteger"


def java_equal(left: Any, right: Any) -> bool:
    """``left.equals(right)`` for values decoded from JSON (List, Map, boxed numbers...)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        if _number_class(left) != _number_class(right):
            return False
        if isinstance(left, float):  # Double.equals compares bits: 0.0 != -0.0
            return left == right and math.copysign(1, left) == math.copysign(1, right)
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(java_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(java_equal(v, right[k])
                                                   for k, v in left.items())
    if left is None or right is None:
        return left is right
    return type(left) is type(right) and left == right


def utf16_length(text: str) -> int:
    """``String.length()``: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def utf16_compare(left: str, right: str) -> int:
    """``String.compareTo`` (UTF-16 code unit order): negative, zero or positive."""
    a, b = left.encode("utf-16-be"), right.encode("utf-16-be")
    return (a > b) - (a < b)


def unescape(text: str) -> str:
    """Jayway's ``Utils.unescape``: backslash escapes of quoted filter strings.

    Raises
    ------
    JavaSyntaxError
        For a ``\\u`` escape whose four characters are not hexadecimal.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 == len(text):
            out.append("\\")
            break
        nxt = text[i + 1]
        if nxt == "u":
            code = text[i + 2:i + 6]
            if len(code) < 4:  # Java drops an unfinished \u escape at the end
                break
            if not re.fullmatch(r"[+-]?[0-9A-Fa-f]+", code):
                raise JavaSyntaxError(f"Unable to parse unicode value: {code}")
            out.append(chr(int(code, 16) & 0xFFFF))
            i += 6
            continue
        out.append(_UNESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


# Java's '.' stops at every line terminator, Python's at '\n' only (UNIX_LINES: Java too).
_JAVA_DOT = r"[^\n\r\x85\u2028\u2029]"


def _translate(pattern: str, *, java_dots: bool) -> str:
    """Rewrite Java-only regex syntax: ``\\Q...\\E`` quotes and, with ``java_dots``, each
    ``.`` outside a character class."""
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if pattern.startswith("\\Q", i):
                stop = pattern.find("\\E", i + 2)
                quoted = pattern[i + 2:] if stop == -1 else pattern[i + 2:stop]
                out.append(re.escape(quoted))
                i = len(pattern) if stop == -1 else stop + 2
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        out.append(_JAVA_DOT if ch == "." and java_dots and not depth else ch)
        i += 1
    return "".join(out)


def compile_pattern(pattern: str, flags: str) -> re.Pattern[str]:
    """Compile a Java regex with Jayway's flag letters as close as Python's ``re`` allows.

    Without ``U`` (UNICODE_CHARACTER_CLASS), Java's ``\\w``, ``\\d``, ``\\s`` and, without
    ``u``, case-insensitive matching are ASCII-only: ``re.ASCII`` gives the same. Without
    ``s`` (DOTALL) or ``d`` (UNIX_LINES), Java's ``.`` excludes ``\\r``, U+0085, U+2028 and
    U+2029 as well as ``\\n``.

    Raises
    ------
    re.error
        When Python cannot compile the pattern.
    """
    value = 0
    if "i" in flags:
        value |= re.IGNORECASE
    if "m" in flags:
        value |= re.MULTILINE
    if "s" in flags:
        value |= re.DOTALL
    if "x" in flags:
        value |= re.VERBOSE
    if "U" not in flags and "u" not in flags:
        value |= re.ASCII
    java_dots = "s" not in flags and "d" not in flags
    return re.compile(_translate(pattern, java_dots=java_dots), value)


class _PermissiveReader:
    """json-smart's ``JSONParser(MODE_PERMISSIVE)`` for the literals a filter can hold."""

    _STOP = ",:]}"

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> JavaSyntaxError:
        return JavaSyntaxError(f"{message} at {self.pos} in {self.text!r}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def document(self) -> Any:
        value = self.value()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("unexpected text after the value")
        return value

    def value(self) -> Any:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("unexpected end")
        ch = self.text[self.pos]
        if ch == "[":
            return self.array()
        if ch == "{":
            return self.object()
        if ch in "'\"":
            return self.string(ch)
        return self.bare()

    def array(self) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        self.skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            items.append(self.value())
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                self.skip()
                if self.text.startswith("]", self.pos):  # permissive: trailing comma
                    self.pos += 1
                    return items
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return items
            raise self.fail("expected ',' or ']'")

    def object(self) -> dict[str, Any]:
        self.pos += 1
        members: dict[str, Any] = {}
        self.skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return members
        while True:
            self.skip()
            key = self.value()
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise self.fail("expected ':'")
            self.pos += 1
            members[str(key)] = self.value()
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return members
            raise self.fail("expected ',' or '}'")

    def string(self, quote: str) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == quote:
                self.pos += 1
                return "".join(out)
            if ch == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                if nxt == "u":
                    code = self.text[self.pos + 2:self.pos + 6]
                    if not re.fullmatch(r"[0-9A-Fa-f]{4}", code):
                        raise self.fail("bad \\u escape")
                    out.append(chr(int(code, 16)))
                    self.pos += 6
                    continue
                out.append(_UNESCAPES.get(nxt, nxt) if nxt != "/" else "/")
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        raise self.fail("unterminated string")

    def bare(self) -> Any:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in self._STOP + "[{":
            self.pos += 1
        token = self.text[start:self.pos].strip()
        if not token:
            raise self.fail("expected a value")
        words = {"true": True, "false": False, "null": None}
        if token in words:
            return words[token]
        if re.fullmatch(r"-?[0-9]+", token):
            return int(token)
        if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", token):
            if len(token) > 18:
                return Decimal(token)
            return float(token)
        return token


def parse_permissive_json(text: str) -> Any:
    """Parse a filter's JSON literal (``[...]`` or ``{...}``) as json-smart permissive mode.

    Raises
    ------
    JavaSyntaxError
        When json-smart would refuse the text.
    """
    return _PermissiveReader(text).document()


def quoted_string(quoted: str) -> str:
    """A StringNode made with escape=true: strip one pair of quotes, then unescape.

    Raises
    ------
    JavaSyntaxError
        For a bad ``\\u`` escape.
    """
    inner = quoted
    if len(quoted) > 1 and quoted[0] == quoted[-1] and quoted[0] in "'\"":
        inner = quoted[1:-1]
    return unescape(inner)


def java_trim(text: str) -> str:
    """String.trim: strips every character up to U+0020."""
    start, stop = 0, len(text)
    while start < stop and text[start] <= " ":
        start += 1
    while stop > start and text[stop - 1] <= " ":
        stop -= 1
    return text[start:stop]

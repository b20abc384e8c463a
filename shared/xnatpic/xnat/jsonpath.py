"""Container Service matchers: JSONPath filters read and applied as Jayway JsonPath 2.8.0 does.

XNAT's Container Service applies a wrapper input's ``matcher`` as ``$.<children>[?(<matcher>)]``
to the parent's JSON, or as ``$[?(<matcher>)]`` to one object, with Jayway JsonPath over
Jackson and no options (container-service ``CommandResolutionServiceImpl.java:176-180``,
``:1954-1958``, ``:2107-2113``). XNAT 1.9 ships json-path 2.8.0. This module re-implements that
version's filter language; ``tests/xnat/test_jsonpath_jayway.py`` runs every matcher of the
test suite and of commands/, and several hundred generated ones, through the real library
and this module, and requires the same objects to be kept.

The reading follows Jayway's ``FilterCompiler`` character by character, quirks included:

- only the space character separates tokens; a path runs to the next space, relational
  operator character (``<>=~!``) or closing parenthesis, so ``@.a&&@.b`` is ONE path;
- ``||`` and ``&&`` bind as usual, ``!`` negates a parenthesised expression or a bare path;
  a ``!`` in front of a path that is then compared (``!@.a == 1``) is ignored;
- operators: ``== != === !== < <= > >= =~`` and the words ``in nin contains all size exists
  type matches empty subsetof anyof noneof`` (any case);
- literals: ``'...'`` and ``"..."`` (backslash escapes), numbers (BigDecimal), ``true``,
  ``false``, ``null``, ``/regex/flags`` (Java regex, full match, flags ``dixmsuU``), JSON
  arrays and objects read permissively (``[MSME, 'T1']`` is two strings);
- paths: ``@``, ``.key``, ``['key']``, ``[*]``, ``.*``, ``[N]``, ``[N,M]`` and nested
  ``[?(...)]`` filters.

And the evaluation follows ``EvaluatorFactory`` and ``ValueNodes``:

- a path that does not exist is UNDEFINED: every comparison with it is false, so ``!=``
  (``!==``) and ``nin`` are TRUE for an object without the key;
- a bare path (``@.quality``) tests existence: ``null``, ``false``, ``""`` and ``[]`` exist;
  with a wildcard (``@.resources[*].label``) every element must have the key;
- a path through a wildcard or filter yields a list;
- ``'5' == 5`` compares text, ``5 == '5'`` compares numbers; lists compare element by
  element with Java's ``equals`` (``1`` is not ``1.0``);
- an operand of the wrong kind (``in`` with no list on the right, ``anyof`` with no list on
  the left, ``empty`` without a boolean, any ``all``/``type``/``matches``) makes Jayway throw
  InvalidPathException, which rejects the object (the whole matcher is false for it);
- a list holding objects or lists on either side of ``in``, ``contains``, ``anyof``...
  makes Jayway throw JsonPathException, which aborts the whole read: here
  :class:`MatcherEvaluationError`.

Not supported (Jayway accepts them; :func:`parse` raises :class:`MatcherUnsupportedError`):
root paths ``$...`` inside a matcher (CS evaluates them against different documents), deep
scan ``..``, functions (``.length()``), slices ``[1:2]``, multi-property brackets
``['a','b']`` and a filter that closes before the matcher's end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xnatpic.xnat import jsonpath_java as java
from xnatpic.xnat.errors import MatcherSyntaxError

__all__ = [
    "WILDCARD",
    "And",
    "Compare",
    "Exists",
    "Expr",
    "Filter",
    "Indexes",
    "Literal",
    "MatcherEvaluationError",
    "MatcherUnsupportedError",
    "Not",
    "Or",
    "Path",
    "Properties",
    "Regex",
    "Truthy",
    "filter_objects",
    "matches",
    "parse",
]

# RelationalOperator.java, matched after upper-casing.
_OPERATORS = {
    ">=": ">=", "<=": "<=", "==": "==", "===": "===", "!=": "!=", "!==": "!==", "<": "<",
    ">": ">", "=~": "=~", "NIN": "nin", "IN": "in", "CONTAINS": "contains", "ALL": "all",
    "SIZE": "size", "EXISTS": "exists", "TYPE": "type", "MATCHES": "matches",
    "EMPTY": "empty", "SUBSETOF": "subsetof", "ANYOF": "anyof", "NONEOF": "noneof",
}
_OPERATOR_CHARS = "<>=~!"  # FilterCompiler.isRelationalOperatorChar


class MatcherUnsupportedError(MatcherSyntaxError):
    """A matcher Jayway accepts but that uses JSONPath this module does not evaluate."""


class MatcherEvaluationError(MatcherSyntaxError):
    """A matcher whose evaluation makes Jayway's whole read fail (JsonPathException).

    It derives from :class:`MatcherSyntaxError` so that callers reporting bad matchers
    report this too.
    """


class _Invalid(Exception):
    """Jayway's InvalidPathException while reading (caught in places, as Jayway does)."""


class _Broken(Exception):
    """Any other exception while reading: Jayway turns it into InvalidPathException."""


class _Rejected(Exception):
    """InvalidPathException while evaluating: Jayway rejects the object."""


# -- the expression tree ------------------------------------------------------------------
class _Wildcard:
    """The ``[*]`` / ``.*`` step."""

    def __repr__(self) -> str:
        return "WILDCARD"


WILDCARD = _Wildcard()


@dataclass(frozen=True)
class Indexes:
    """A ``[N,M,...]`` step (several indexes)."""

    values: tuple[int, ...]


@dataclass(frozen=True)
class Properties:
    """A ``['a','b']`` step: merged into one object at the end of a path, else each."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Filter:
    """A nested ``[?(...)]`` step."""

    expr: Expr


Step = str | int | Indexes | Properties | Filter | _Wildcard


def _definite(steps: tuple[Step, ...], i: int) -> bool:
    """PathToken.isTokenDefinite for step ``i``."""
    step = steps[i]
    return isinstance(step, str | int) or (isinstance(step, Properties) and i == len(steps) - 1)


@dataclass(frozen=True)
class Path:
    """A relative path ``@...``: ``steps`` holds keys (str), indexes (int) and the other steps."""

    steps: tuple[Step, ...]
    text: str = field(default="", compare=False)
    unsupported: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_multi(self) -> bool:
        """True when the path goes through a wildcard, several indexes, several properties
        (before its end) or a filter: it then yields a list."""
        return not all(_definite(self.steps, i) for i in range(len(self.steps)))


@dataclass(frozen=True)
class Literal:
    """A literal: ``kind`` is string, number (Decimal), boolean, null or json."""

    value: Any
    kind: str = ""
    text: str = field(default="", compare=False)
    error: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", _kind_of(self.value))


@dataclass(frozen=True)
class Regex:
    """A ``/pattern/flags`` literal (Java regex, applied as a full match)."""

    pattern: str
    flags: str

    def compiled(self) -> re.Pattern[str]:
        """Return the compiled pattern."""
        return java.compile_pattern(self.pattern, self.flags)


Operand = Path | Literal | Regex


@dataclass(frozen=True)
class Compare:
    """``left OP right``; ``op`` is a symbol (``==``) or a lower-case word (``in``)."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Exists:
    """A bare path: true when it exists (``should_exist``) or when it does not."""

    operand: Path
    should_exist: bool = True


Truthy = Exists  # the name this node had before it followed Jayway


@dataclass(frozen=True)
class Not:
    """``!(...)``."""

    expr: Expr


@dataclass(frozen=True)
class And:
    """``left && right``."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Or:
    """``left || right``."""

    left: Expr
    right: Expr


Expr = Compare | Exists | Not | And | Or


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


# -- reading: Jayway's CharacterIndex, FilterCompiler and PathCompiler ---------------------
class _Text:
    """A window ``[pos, end]`` on a text, with CharacterIndex's helpers."""

    def __init__(self, text: str, pos: int, end: int) -> None:
        self.text, self.pos, self.end = text, pos, end

    def ok(self, index: int | None = None) -> bool:
        index = self.pos if index is None else index
        return 0 <= index <= self.end

    def char(self, index: int | None = None) -> str:
        index = self.pos if index is None else index
        if not 0 <= index < len(self.text):
            raise _Broken(f"index {index} out of range")
        return self.text[index]

    def skip_blanks(self) -> _Text:
        while self.ok() and self.pos < self.end and self.text[self.pos] == " ":
            self.pos += 1
        return self

    def next_unescaped(self, start: int, target: str) -> int:
        index, escaped = start + 1, False
        while self.ok(index):
            ch = self.text[index]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == target:
                return index
            index += 1
        return -1

    def matching_close(self, start: int, opening: str, closing: str, *, strings: bool,
                       regex: bool) -> int:
        if self.char(start) != opening:
            raise _Invalid(f"expected {opening}")
        depth, index = 1, start + 1
        while self.ok(index):
            if strings and self.char(index) in "'\"":
                index = self.next_unescaped(index, self.char(index))
                if index == -1:
                    raise _Invalid("could not find the matching close quote")
                index += 1
            if regex and self.char(index) == "/":
                index = self.next_unescaped(index, "/")
                if index == -1:
                    raise _Invalid("could not find the matching close of a /regex/")
                index += 1
            if self.char(index) == opening:
                depth += 1
            if self.char(index) == closing:
                depth -= 1
                if depth == 0:
                    return index
            index += 1
        return -1

    def next_significant(self, start: int | None = None) -> tuple[int, str]:
        index = (self.pos if start is None else start) + 1
        while self.ok(index) and self.text[index] == " ":
            index += 1
        return (index, self.text[index]) if self.ok(index) else (-1, " ")

    def previous_significant(self, start: int | None = None) -> int:
        index = (self.pos if start is None else start) - 1
        while self.ok(index) and self.text[index] == " ":
            index -= 1
        return index if self.ok(index) else -1

    def read_char(self, expected: str) -> None:
        found = self.skip_blanks().char()
        if found != expected:
            rest = self.text[self.pos:self.end] if self.ok() else ""
            raise _Invalid(f"expected {expected!r}, found {rest or 'the end'!r}")
        self.pos += 1

    def take(self, token: str) -> bool:
        self.skip_blanks()
        if not self.ok(self.pos + len(token) - 1):
            return False
        if self.text[self.pos:self.pos + len(token)] != token:
            return False
        self.pos += len(token)
        return True


class _FilterReader:
    """FilterCompiler: reads ``[?(...)]``; positioned on ``(`` with ``end`` on ``)``."""

    def __init__(self, criteria: str) -> None:
        self.unsupported: list[str] = []
        t = _Text(criteria, 0, len(criteria) - 1)
        self._trim(t)
        if t.char() != "[" or criteria[t.end] != "]":
            raise _Invalid("a filter must start with '[' and end with ']'")
        t.pos, t.end = t.pos + 1, t.end - 1
        self._trim(t)
        if t.char() != "?":
            raise _Invalid("a filter must start with '[?'")
        t.pos += 1
        self._trim(t)
        if t.char() != "(" or criteria[t.end] != ")":
            raise _Invalid("a filter must start with '[?(' and end with ')]'")
        self.t = t

    @staticmethod
    def _trim(t: _Text) -> None:
        t.skip_blanks()
        while t.ok() and t.pos < t.end and t.text[t.end] == " ":
            t.end -= 1

    def read(self) -> Expr:
        expr = self.logical_or()
        self.t.skip_blanks()
        if self.t.ok():
            raise _Invalid(f"expected the end of the filter instead of "
                           f"{self.t.text[self.t.pos:self.t.end + 1]!r}")
        return expr

    def logical_or(self) -> Expr:
        expr = self.logical_and()
        while True:
            savepoint = self.t.pos
            if not self.t.take("||"):
                self.t.pos = savepoint
                return expr
            expr = Or(expr, self.logical_and())

    def logical_and(self) -> Expr:
        expr = self.operand()
        while True:
            savepoint = self.t.pos
            if not self.t.take("&&"):
                self.t.pos = savepoint
                return expr
            expr = And(expr, self.operand())

    def operand(self) -> Expr:
        t = self.t
        savepoint = t.skip_blanks().pos
        if t.skip_blanks().char() == "!":
            t.read_char("!")
            if t.skip_blanks().char() in "$@":
                t.pos = savepoint
            else:
                return Not(self.operand())
        if t.skip_blanks().char() == "(":
            t.read_char("(")
            expr = self.logical_or()
            t.read_char(")")
            return expr
        return self.expression()

    def expression(self) -> Expr:
        left, should_exist = self.value()
        savepoint = self.t.pos
        try:
            op = self.operator()
            right, _ = self.value()
            return Compare(op, left, right)
        except _Invalid:
            self.t.pos = savepoint
        if not isinstance(left, Path):
            raise _Invalid("expected a path")
        return Exists(left, should_exist)

    def operator(self) -> str:
        t = self.t
        begin = t.skip_blanks().pos
        if t.char() in _OPERATOR_CHARS:
            while t.ok() and t.char() in _OPERATOR_CHARS:
                t.pos += 1
        else:
            while t.ok() and t.char() != " ":
                t.pos += 1
        word = t.text[begin:t.pos].upper()
        if word not in _OPERATORS:
            raise _Invalid(f"filter operator {t.text[begin:t.pos]!r} is not supported")
        return _OPERATORS[word]

    def value(self) -> tuple[Operand, bool]:
        """Read a value; the flag is False for a path written after ``!``."""
        t = self.t
        ch = t.skip_blanks().char()
        if ch in "$@":
            return self.path()
        if ch == "!":
            t.pos += 1
            if t.skip_blanks().char() in "$@":
                return self.path()
            raise _Invalid("unexpected character: !")
        return self.literal(), True

    def literal(self) -> Literal | Regex:
        t = self.t
        ch = t.skip_blanks().char()
        if ch in "'\"":
            close = t.next_unescaped(t.pos, ch)
            if close == -1:
                raise _Invalid(f"string literal without its closing {ch}")
            quoted, t.pos = t.text[t.pos:close + 1], close + 1
            return Literal(_quoted_string(quoted), "string", quoted)
        if ch in "tf":
            last = t.pos + (3 if ch == "t" else 4)
            if not t.ok(last) or t.text[t.pos:last + 1] not in ("true", "false"):
                raise _Invalid("expected a boolean literal")
            word, t.pos = t.text[t.pos:last + 1], last + 1
            return Literal(word == "true", "boolean", word)
        if ch == "n":
            if not t.ok(t.pos + 3) or t.text[t.pos:t.pos + 4] != "null":
                raise _Invalid("expected null")
            t.pos += 4
            return Literal(None, "null", "null")
        if ch in "[{":
            close = t.matching_close(t.pos, ch, "]" if ch == "[" else "}", strings=True,
                                     regex=False)
            if close == -1:
                raise _Invalid(f"{ch} is not closed")
            raw, t.pos = t.text[t.pos:close + 1], close + 1
            return _json_literal(raw)
        if ch == "/":
            return self.pattern()
        begin = t.pos
        while t.ok() and (t.char().isdecimal() or t.char() in "-.eE"):
            t.pos += 1
        number = t.text[begin:t.pos]
        if not number:
            raise _Broken("expected a value: 'string', number, true, false, null, [list], "
                          f"/regex/ or a path, found {t.text[begin:t.end] or 'the end'!r}")
        try:
            return Literal(java.big_decimal(number), "number", number)
        except java.JavaSyntaxError as exc:
            raise _Broken(str(exc)) from exc

    def pattern(self) -> Regex:
        t = self.t
        begin = t.pos
        close = t.next_unescaped(t.pos, "/")
        if close == -1:
            raise _Invalid("/regex/ not closed")
        if t.ok(close + 1):
            stop = close + 1
            while t.ok(stop) and t.text[stop] in java.PATTERN_FLAGS:
                stop += 1
            close = stop - 1
        t.pos = close + 1
        source = t.text[begin:t.pos]
        first, last = source.index("/"), source.rindex("/")
        regex = Regex(source[first + 1:last], source[last + 1:])
        try:
            regex.compiled()
        except re.error as exc:
            raise _Broken(f"bad regex {source}: {exc}") from exc
        return regex

    def path(self) -> tuple[Path, bool]:
        t = self.t
        previous = t.previous_significant()
        negated = previous != -1 and t.text[previous] == "!"
        begin = t.pos
        t.pos += 1
        while t.ok():
            if t.char() == "[":
                close = t.matching_close(t.pos, "[", "]", strings=True, regex=False)
                if close == -1:
                    raise _Invalid("square brackets do not match")
                t.pos = close + 1
            closing = t.char() == ")" and not self._closes_function(begin)
            if not t.ok() or t.char() in _OPERATOR_CHARS or t.char() == " " or closing:
                break
            t.pos += 1
        path = _compile_path(t.text[begin:t.pos])
        self.unsupported += path.unsupported
        return path, not negated

    def _closes_function(self, lower: int) -> bool:
        t = self.t
        index = t.previous_significant()
        if index == -1 or t.text[index] != "(":
            return False
        index -= 1
        while t.ok(index) and index > lower:
            if t.text[index] == ".":
                return True
            index -= 1
        return False


def _quoted_string(quoted: str) -> str:
    """A StringNode made with escape=true: strip one pair of quotes, then unescape."""
    inner = quoted
    if len(quoted) > 1 and quoted[0] == quoted[-1] and quoted[0] in "'\"":
        inner = quoted[1:-1]
    try:
        return java.unescape(inner)
    except java.JavaSyntaxError as exc:
        raise _Broken(str(exc)) from exc


def _json_literal(raw: str) -> Literal:
    """A JsonNode: json-smart parses it when it is first used, failing only then."""
    try:
        return Literal(java.parse_permissive_json(raw), "json", raw)
    except java.JavaSyntaxError as exc:
        return Literal(None, "json", raw, str(exc))


class _PathReader:
    """PathCompiler for the paths of a filter (``@...``), the steps this module supports."""

    def __init__(self, text: str) -> None:
        self.t = _Text(text, 0, len(text) - 1)
        self.steps: list[Step] = []
        self.unsupported: list[str] = []

    def defer(self, what: str) -> None:
        """Note JSONPath Jayway reads but we do not evaluate; reading goes on, so that a
        matcher Jayway refuses is still reported as a syntax error."""
        self.unsupported.append(f"{self.t.text!r}: {what} are not supported")

    def read(self) -> Path:
        t = self.t
        while t.ok() and t.char() in " \t\r\n":
            t.pos += 1
        if t.text.endswith("."):
            raise _Invalid("a path must not end with '.'")
        if t.char() == "$":
            self.defer("root-document paths ($...) inside a matcher")
        elif t.char() != "@":
            raise _Invalid("a path must start with '$' or '@'")
        if t.pos < t.end:
            t.pos += 1
            if t.char() not in ".[":
                raise _Invalid(f"illegal character at {t.pos}: expected '.' or '['")
            self.token()
        return Path(tuple(self.steps), t.text, tuple(self.unsupported))

    def more(self) -> None:
        """PathCompiler's ``currentIsTail() || readNextToken()``."""
        if self.t.pos < self.t.end:
            self.token()

    def token(self) -> None:
        t = self.t
        ch = t.char()
        if ch == "[":
            for reader in (self.bracket_property, self.indexes, self.wildcard, self.filter):
                if reader():
                    return
            raise _Invalid(f"could not parse the token at {t.pos}")
        if ch == ".":
            if t.ok(t.pos + 1) and t.char(t.pos + 1) == ".":
                self.defer("deep scans (..)")
                t.pos += 2
            elif not t.ok(t.pos + 1):
                raise _Invalid("a path must not end with '.'")
            else:
                t.pos += 1
            if t.char() == ".":
                raise _Invalid(f"character '.' at {t.pos} is not valid")
            self.token()
            return
        if ch == "*":
            if not self.wildcard():
                raise _Invalid(f"could not parse the token at {t.pos}")
            return
        self.property()

    def property(self) -> None:
        t = self.t
        if t.char() in "[*. ":
            raise _Invalid(f"could not parse the token at {t.pos}")
        stop = t.pos
        while t.ok(stop):
            ch = t.text[stop]
            if ch == " ":
                raise _Invalid("use ['my prop'] for a property with blanks")
            if ch == "(":
                self.function(stop)
                return
            if ch in ".[":
                break
            stop += 1
        self.steps.append(t.text[t.pos:stop])
        t.pos = stop
        self.more()

    def function(self, opening: int) -> None:
        """``name(...)``: checked as Jayway does, then noted as unsupported."""
        t = self.t
        depth, index = 1, opening + 1
        while index < len(t.text) and depth:
            depth += {"(": 1, ")": -1}.get(t.text[index], 0)
            index += 1
        if depth:
            raise _Invalid(f"arguments to function {t.text[t.pos:opening]!r} are not closed "
                           "properly")
        self.defer("path functions (.length() ...)")
        if not t.ok(opening + 1):
            t.pos = opening
        elif t.text[opening + 1] != ")":
            t.pos = index
        else:
            t.pos = opening + 1
        self.more()

    def bracket_property(self) -> bool:
        t = self.t
        _, delimiter = t.next_significant()
        if delimiter not in "'\"":
            return False
        names: list[str] = []
        index = start = t.pos + 1
        stop = 0
        inside = escaped = after_comma = False
        while t.ok(index):
            ch = t.text[index]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "]" and not inside:
                if after_comma:
                    raise _Invalid("found an empty property")
                break
            elif ch == delimiter:
                if inside:
                    if t.next_significant(index)[1] not in "],":
                        raise _Invalid("properties must be separated by commas")
                    stop = index
                    try:
                        names.append(java.unescape(t.text[start:stop]))
                    except java.JavaSyntaxError as exc:
                        raise _Broken(str(exc)) from exc
                    inside = False
                else:
                    start, inside, after_comma = index + 1, True, False
            elif ch == "," and not inside:
                if after_comma:
                    raise _Invalid("found an empty property")
                after_comma = True
            index += 1
        if inside:
            raise _Invalid(f"property not closed: missing {delimiter}")
        close, _ = t.next_significant(stop)
        t.pos = close + 1
        self.steps.append(names[0] if len(names) == 1 else Properties(tuple(names)))
        self.more()
        return True

    def indexes(self) -> bool:
        t = self.t
        _, ch = t.next_significant()
        if not (ch.isdecimal() or ch in "-:"):
            return False
        close = t.text.find("]", t.pos + 1)
        if close == -1 or close > t.end:
            return False
        inner = t.text[t.pos + 1:close].strip()
        if inner == "*" or any(not (c.isdecimal() or c in ",-: ") for c in inner):
            return False
        if ":" in inner:
            self.defer("array slices")
            self.steps.append(WILDCARD)
            t.pos = close + 1
            self.more()
            return True
        values: list[int] = []
        for part in re.split(r"\s*,\s*", inner):
            if not re.fullmatch(r"-?[0-9]+", part) or not -(2**31) <= int(part) < 2**31:
                raise _Invalid(f"failed to parse the index {part!r}")
            values.append(int(part))
        self.steps.append(values[0] if len(values) == 1 else Indexes(tuple(values)))
        t.pos = close + 1
        self.more()
        return True

    def wildcard(self) -> bool:
        t = self.t
        in_bracket = t.char() == "["
        if in_bracket and t.next_significant()[1] != "*":
            return False
        if t.char() != "*" and not t.ok(t.pos + 1):
            return False
        if in_bracket:
            star, _ = t.next_significant()
            close, ch = t.next_significant(star)
            if ch != "]":
                raise _Invalid(f"expected the wildcard to end with ']' at {star + 1}")
            t.pos = close + 1
        else:
            t.pos += 1
        self.steps.append(WILDCARD)
        self.more()
        return True

    def filter(self) -> bool:
        t = self.t
        question, ch = t.next_significant()
        if ch != "?":
            return False
        opening, ch = t.next_significant(question)
        if ch != "(":
            return False
        close = t.matching_close(opening, "(", ")", strings=True, regex=True)
        if close == -1:
            return False
        bracket, ch = t.next_significant(close)
        if ch != "]":
            return False
        expr, unsupported = _read_filter(t.text[t.pos:bracket + 1])
        self.unsupported += unsupported
        self.steps.append(Filter(expr))
        t.pos = bracket + 1
        self.more()
        return True


def _compile_path(text: str) -> Path:
    """PathCompiler.compile: every failure becomes an InvalidPathException."""
    try:
        return _PathReader(text).read()
    except (_Invalid, _Broken) as exc:
        raise _Invalid(f"path {text!r}: {exc}") from exc


def _read_filter(criteria: str) -> tuple[Expr, list[str]]:
    """FilterCompiler.compile (every failure becomes an InvalidPathException), with the
    unsupported JSONPath its paths use."""
    reader = _FilterReader(criteria)
    try:
        return reader.read(), reader.unsupported
    except (_Invalid, _Broken) as exc:
        raise _Invalid(f"{exc} (at character {reader.t.pos - 2})") from exc


def _java_trim(text: str) -> str:
    """String.trim: strips every character up to U+0020."""
    start, stop = 0, len(text)
    while start < stop and text[start] <= " ":
        start += 1
    while stop > start and text[stop - 1] <= " ":
        stop -= 1
    return text[start:stop]


def parse(matcher: str) -> Expr:
    """Parse a matcher as Jayway reads ``$[?(<matcher>)]``.

    Parameters
    ----------
    matcher : str
        The filter expression, e.g. ``"@.scan-type == 'MSME' && 'DICOM' in
        @.resources[*].label"``. A full ``$[?(...)]`` wrapper is accepted too.

    Returns
    -------
    Expr
        The parsed expression tree.

    Raises
    ------
    MatcherUnsupportedError
        When the matcher is valid for Jayway but uses JSONPath this module does not
        evaluate (see the module docstring).
    MatcherSyntaxError
        When Jayway would refuse the matcher (InvalidPathException).
    """
    wrapped = re.fullmatch(r" *\$\[\?\((.*)\)\] *", matcher, re.DOTALL)
    body = wrapped.group(1) if wrapped else matcher
    if not body.strip():
        raise MatcherSyntaxError("matcher is empty")
    criteria = f"[?({body})]"
    try:
        whole = _Text(criteria, 0, len(criteria) - 1)
        close = whole.matching_close(2, "(", ")", strings=True, regex=True)
        if close == -1 or whole.next_significant(close)[1] != "]":
            raise _Invalid("the filter's parentheses do not match")
        if close != len(criteria) - 2:
            # Jayway reads the filter up to there, then the rest as further path steps
            bracket, _ = whole.next_significant(close)
            _read_filter(criteria[:bracket + 1])
            if len(criteria) - bracket - 1 > 1:
                _compile_path("@" + criteria[bracket + 1:])
            raise MatcherUnsupportedError("its parentheses close the filter before its end")
        expr, unsupported = _read_filter(criteria)
    except (_Invalid, _Broken) as exc:
        raise MatcherSyntaxError(f"matcher {matcher!r}: Jayway JsonPath refuses it: "
                                 f"{exc}") from None
    except MatcherUnsupportedError as exc:
        raise MatcherUnsupportedError(f"matcher {matcher!r}: {exc}") from None
    if unsupported:
        raise MatcherUnsupportedError(f"matcher {matcher!r}: {unsupported[0]}")
    return expr


# -- evaluation: Jayway's path tokens, ValueNodes and EvaluatorFactory ---------------------
class _PathNotFound(Exception):
    """Jayway's PathNotFoundException."""


@dataclass(frozen=True)
class _Node:
    """A ValueNode: kind is string, number, boolean, null, json, undefined, pattern, path."""

    kind: str
    value: Any = None
    parsed: bool = True  # JsonNode: False while it still holds the literal's text


_UNDEFINED = _Node("undefined")
_NULL = _Node("null")


def _walk(steps: tuple[Step, ...], i: int, model: Any, found: list[Any], strict: bool) -> None:
    """Evaluate path token ``i`` on ``model`` (PathToken.evaluate); ``strict`` is
    Option.REQUIRE_PROPERTIES (used by existence checks)."""
    if i == len(steps):
        found.append(model)
        return
    step, leaf = steps[i], i == len(steps) - 1
    upstream_definite = all(_definite(steps, j) for j in range(i))
    if isinstance(step, str):
        if not isinstance(model, dict):
            if upstream_definite:
                raise _PathNotFound(step)
            return
        if step not in model:
            if (leaf and not strict) or (not leaf and not upstream_definite and not strict):
                return
            raise _PathNotFound(step)
        _walk(steps, i + 1, model[step], found, strict)
    elif isinstance(step, Properties):
        if not isinstance(model, dict):
            if upstream_definite:
                raise _PathNotFound(step)
            return
        if leaf:  # the properties present, merged into one object
            merged = {name: model[name] for name in step.names if name in model}
            if strict and len(merged) < len(step.names):
                raise _PathNotFound(step)
            found.append(merged)
            return
        for name in step.names:
            if name in model:
                _walk(steps, i + 1, model[name], found, strict)
            elif strict:
                raise _PathNotFound(name)
    elif isinstance(step, int | Indexes):
        if not isinstance(model, list):
            if upstream_definite:
                raise _PathNotFound(step)
            return
        for index in (step,) if isinstance(step, int) else step.values:
            effective = index + len(model) if index < 0 else index
            if 0 <= effective < len(model):
                _walk(steps, i + 1, model[effective], found, strict)
    elif isinstance(step, _Wildcard):
        if isinstance(model, dict):
            for value in model.values():
                _walk(steps, i + 1, value, found, strict)
        elif isinstance(model, list):
            for value in model:
                try:
                    _walk(steps, i + 1, value, found, strict)
                except _PathNotFound:
                    if strict:
                        raise
    else:
        if isinstance(model, dict):
            if _accepts(step.expr, model):
                _walk(steps, i + 1, model, found, strict)
        elif isinstance(model, list):
            for value in model:
                if _accepts(step.expr, value):
                    _walk(steps, i + 1, value, found, strict)
        elif upstream_definite:
            raise _Rejected("a filter cannot be applied to a primitive")


def _path_exists(path: Path, item: Any) -> bool:
    found: list[Any] = []
    try:
        _walk(path.steps, 0, item, found, strict=True)
    except _PathNotFound:
        return False
    return bool(found) or path.is_multi


def _path_value(path: Path, item: Any) -> _Node:
    found: list[Any] = []
    try:
        _walk(path.steps, 0, item, found, strict=False)
    except _PathNotFound:
        return _UNDEFINED
    if path.is_multi:
        return _Node("json", found)
    if not found:
        return _UNDEFINED
    return _document_node(found[-1])


def _document_node(value: Any) -> _Node:
    """PathNode.evaluate: a value read from the document."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _Node("boolean", value)
    if isinstance(value, int | float | Decimal):
        return _Node("number", java.big_decimal(java.number_text(value)))
    if isinstance(value, str):
        return _Node("string", value)
    return _Node("json", value)


def _list_node(value: Any) -> _Node:
    """ValueNode.toValueNode: one element of a list used as a value list."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        stripped = _java_trim(value)
        if stripped[:1] in ("@", "$") and _compiles(stripped):
            return _Node("path", stripped)
        if len(stripped) > 1 and (stripped[0], stripped[-1]) in (("[", "]"), ("{", "}")):
            try:
                java.parse_permissive_json(stripped)
            except java.JavaSyntaxError:
                pass  # json-smart refuses it: the element stays a string
            else:
                return _Node("json", value, parsed=False)
        try:
            return _Node("string", _quoted_string(value))
        except _Broken as exc:
            raise MatcherEvaluationError(f"Jayway cannot unescape {value!r}: {exc}") from exc
    if isinstance(value, bool):
        return _Node("boolean", value)
    if isinstance(value, int | float | Decimal):
        return _Node("number", java.big_decimal(java.number_text(value)))
    raise MatcherEvaluationError(
        f"Jayway JsonPath cannot compare a list holding {type(value).__name__}s "
        "(objects or lists): 'Could not determine value type'"
    )


def _compiles(text: str) -> bool:
    """Whether PathCompiler compiles ``text`` (a root path reads like a relative one)."""
    try:
        _compile_path("@" + text[1:] if text.startswith("$") else text)
    except (_Invalid, _Broken):
        return False
    return True


def _literal_node(literal: Literal | Regex) -> _Node:
    if isinstance(literal, Regex):
        return _Node("pattern", literal)
    if literal.kind == "json":
        return _Node("json", literal, parsed=False)
    if literal.kind == "number":
        return _Node("number", literal.value)
    return _Node(literal.kind, literal.value)


def _json(node: _Node) -> Any:
    """JsonNode.parse: the decoded value (a literal is parsed now, as json-smart would)."""
    if node.parsed:
        return node.value
    if isinstance(node.value, Literal):
        if node.value.error:
            raise MatcherEvaluationError(f"JSON literal {node.value.text}: {node.value.error}")
        return node.value.value
    return java.parse_permissive_json(node.value)


def _raw(node: _Node) -> Any:
    """JsonNode's ``json`` field: the decoded value, or the text of a literal not yet read."""
    if node.parsed:
        return node.value
    return node.value.text if isinstance(node.value, Literal) else node.value


def _value_list(node: _Node) -> list[_Node] | None:
    """JsonNode.asValueListNode: None (UNDEFINED) unless the node holds a list."""
    value = _json(node)
    return [_list_node(v) for v in value] if isinstance(value, list) else None


def _as_text(node: _Node) -> str:
    if node.kind == "string":
        return node.value
    if node.kind == "number":
        return str(node.value)
    raise _Rejected("expected a string node")


def _as_number(node: _Node) -> Decimal | None:
    """asNumberNode; None is NumberNode.NAN."""
    if node.kind == "number":
        return node.value
    if node.kind == "string":
        try:
            return java.big_decimal(node.value)
        except java.JavaSyntaxError:
            return None
    raise _Rejected("expected a number node")


def _as_boolean(node: _Node) -> bool:
    if node.kind != "boolean":
        raise _Rejected("expected a boolean node")
    return node.value


def _node_equals(left: _Node, right: _Node) -> bool:
    """``left.equals(right)`` of two ValueNodes."""
    if left.kind == "string":
        return right.kind in ("string", "number") and left.value == _as_text(right)
    if left.kind == "number":
        if right.kind not in ("string", "number"):
            return False
        other = _as_number(right)
        return other is not None and left.value == other
    if left.kind in ("boolean", "null"):
        return right.kind == left.kind and right.value == left.value
    if left.kind == "json":
        return right.kind == "json" and java.java_equal(_raw(left), _raw(right))
    return False  # UNDEFINED, patterns and paths equal nothing


def _contains(values: list[_Node], probe: _Node) -> bool:
    return any(_node_equals(probe, value) for value in values)


def _operand_list(node: _Node) -> list[_Node] | None:
    """The value list of an ``in``/``anyof``... operand; None when the JSON is no list."""
    if node.kind != "json":
        raise _Rejected("expected a value list node")
    return _value_list(node)


def _equals(left: _Node, right: _Node) -> bool:
    if left.kind == "json" and right.kind == "json":
        decoded = _json(right)  # Jayway parses the right side first, failing if it cannot
        if not left.parsed:
            return False  # a literal's text never equals a decoded value
        return java.java_equal(left.value, decoded)
    return _node_equals(left, right)


def _ordered(op: str, left: _Node, right: _Node) -> bool:
    if left.kind == "number" and right.kind == "number":
        order = (left.value > right.value) - (left.value < right.value)
    elif left.kind == "string" and right.kind == "string":
        order = java.utf16_compare(left.value, right.value)
    else:
        return False
    return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[op]


def _regex_input(node: _Node) -> str:
    if node.kind in ("string", "number"):
        return _as_text(node)
    if node.kind == "boolean":
        return "true" if node.value else "false"
    return ""


def _regex(left: _Node, right: _Node) -> bool:
    if (left.kind == "pattern") == (right.kind == "pattern"):
        return False
    pattern, subject = (left, right) if left.kind == "pattern" else (right, left)
    compiled = pattern.value.compiled()
    if subject.kind == "json" and isinstance(_json(subject), list):
        values = _value_list(subject) or []
        return any(compiled.fullmatch(_regex_input(v)) for v in values)
    return compiled.fullmatch(_regex_input(subject)) is not None


def _size(left: _Node, right: _Node) -> bool:
    if right.kind != "number":
        return False
    expected = int(right.value)
    if left.kind == "string":
        return java.utf16_length(left.value) == expected
    if left.kind == "json":
        value = _json(left)
        return (len(value) if isinstance(value, list) else -1) == expected
    return False


def _empty(left: _Node, right: _Node) -> bool:
    if left.kind == "string":
        return (left.value == "") == _as_boolean(right)
    if left.kind == "json":
        value = _json(left)
        if isinstance(value, dict):  # JsonNode.isEmpty casts a Map to a Collection
            raise MatcherEvaluationError("Jayway cannot test an object with 'empty' "
                                         "(ClassCastException)")
        empty = len(value) == 0 if isinstance(value, list | str) else True
        return empty == _as_boolean(right)
    return False


def _in(left: _Node, right: _Node) -> bool:
    values = _operand_list(right)
    return values is not None and _contains(values, left)


def _contains_op(left: _Node, right: _Node) -> bool:
    if left.kind == "string" and right.kind == "string":
        return right.value in left.value
    if left.kind == "json":
        values = _value_list(left)
        return values is not None and _contains(values, right)
    return False


def _list_pair(left: _Node, right: _Node) -> tuple[list[_Node], list[_Node]] | None:
    right_values = _operand_list(right)
    if right_values is None:
        return None
    left_values = _operand_list(left)
    if left_values is None:
        return None
    return left_values, right_values


def _subsetof(left: _Node, right: _Node) -> bool:
    pair = _list_pair(left, right)
    return pair is not None and all(_contains(pair[1], v) for v in pair[0])


def _anyof(left: _Node, right: _Node) -> bool:
    pair = _list_pair(left, right)
    return pair is not None and any(_node_equals(a, b) for a in pair[0] for b in pair[1])


def _noneof(left: _Node, right: _Node) -> bool:
    pair = _list_pair(left, right)
    return pair is not None and not any(_node_equals(a, b) for a in pair[0] for b in pair[1])


def _exists_op(left: _Node, right: _Node) -> bool:
    if left.kind != "boolean" and right.kind != "boolean":
        raise MatcherEvaluationError("Jayway: failed to evaluate exists expression")
    return _as_boolean(left) == _as_boolean(right)


def _always_rejects(what: str) -> Callable[[_Node, _Node], bool]:
    def evaluate(left: _Node, right: _Node) -> bool:
        raise _Rejected(f"expected {what} node")
    return evaluate


_EVALUATORS: dict[str, Callable[[_Node, _Node], bool]] = {
    "==": _equals,
    "!=": lambda a, b: not _equals(a, b),
    "===": lambda a, b: a.kind == b.kind and _equals(a, b),
    "!==": lambda a, b: not (a.kind == b.kind and _equals(a, b)),
    "<": lambda a, b: _ordered("<", a, b),
    "<=": lambda a, b: _ordered("<=", a, b),
    ">": lambda a, b: _ordered(">", a, b),
    ">=": lambda a, b: _ordered(">=", a, b),
    "=~": _regex,
    "size": _size,
    "empty": _empty,
    "in": _in,
    "nin": lambda a, b: not _in(a, b),
    "contains": _contains_op,
    "subsetof": _subsetof,
    "anyof": _anyof,
    "noneof": _noneof,
    "exists": _exists_op,
    "all": _always_rejects("value list"),
    "type": _always_rejects("class"),
    "matches": _always_rejects("predicate"),
}


def _operand_node(operand: Operand, item: Any) -> _Node:
    if isinstance(operand, Path):
        return _path_value(operand, item)
    return _literal_node(operand)


def _evaluate(expr: Expr, item: Any) -> bool:
    if isinstance(expr, Or):
        return _evaluate(expr.left, item) or _evaluate(expr.right, item)
    if isinstance(expr, And):
        return _evaluate(expr.left, item) and _evaluate(expr.right, item)
    if isinstance(expr, Not):
        return not _evaluate(expr.expr, item)
    if isinstance(expr, Exists):
        return _path_exists(expr.operand, item) == expr.should_exist
    left = _operand_node(expr.left, item)
    right = _operand_node(expr.right, item)
    return _EVALUATORS[expr.op](left, right)


def _accepts(expr: Expr, item: Any) -> bool:
    """PredicatePathToken.accept: an InvalidPathException rejects the item."""
    try:
        return _evaluate(expr, item)
    except _Rejected:
        return False


def matches(matcher: str | Expr, obj: Any) -> bool:
    """Return whether one object passes a matcher (``$[?(<matcher>)]`` on the object).

    Parameters
    ----------
    matcher : str or Expr
        The filter text or an already parsed expression.
    obj : Any
        One element of the list being filtered (a dict decoded from JSON).

    Raises
    ------
    MatcherSyntaxError
        When ``matcher`` is text that Jayway cannot read.
    MatcherEvaluationError
        When Jayway's read fails on this object.

    Examples
    --------
    >>> matches("@.scan-type == 'MSME'", {"scan-type": "MSME"})
    True
    >>> matches("'DICOM' in @.resources[*].label", {"resources": [{"label": "NIFTI"}]})
    False
    >>> matches("@.quality != 'usable'", {"id": "1"})
    True
    """
    expr = parse(matcher) if isinstance(matcher, str) else matcher
    return _accepts(expr, obj)


def filter_objects(matcher: str | Expr | None, objects: Iterable[Any]) -> list[Any]:
    """Apply ``$[?(<matcher>)]`` to a list; a blank matcher keeps every object.

    Parameters
    ----------
    matcher : str, Expr or None
        The filter body.
    objects : iterable
        The parent's child list (scans, resources, files...).

    Returns
    -------
    list
        The objects that pass, in their original order.

    Raises
    ------
    MatcherSyntaxError
        When ``matcher`` is text that Jayway cannot read.
    MatcherEvaluationError
        When Jayway's read fails on one of the objects (it then returns nothing at all).
    """
    items = list(objects)
    if matcher is None or (isinstance(matcher, str) and not matcher.strip()):
        return items
    expr = parse(matcher) if isinstance(matcher, str) else matcher
    return [obj for obj in items if _accepts(expr, obj)]

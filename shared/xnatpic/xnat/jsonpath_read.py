"""Reading a matcher as Jayway JsonPath 2.8.0 reads ``$[?(<matcher>)]``.

A port, in our own words, of json-path 2.8.0's ``internal/CharacterIndex.java``,
``internal/filter/FilterCompiler.java`` and, for the paths inside a filter,
``internal/path/PathCompiler.java``, quirks included (see :mod:`xnatpic.xnat.jsonpath`).
"""

from __future__ import annotations

import re

from xnatpic.xnat import jsonpath_java as java
from xnatpic.xnat.errors import MatcherSyntaxError
from xnatpic.xnat.jsonpath_tree import (
    WILDCARD,
    And,
    Compare,
    Exists,
    Expr,
    Filter,
    Function,
    Indexes,
    Literal,
    MatcherUnsupportedError,
    Not,
    Operand,
    Or,
    Path,
    Properties,
    Regex,
    Slice,
    Step,
)

__all__ = ["compiles", "read_matcher"]

# RelationalOperator.java, matched after upper-casing.
_OPERATORS = {
    ">=": ">=", "<=": "<=", "==": "==", "===": "===", "!=": "!=", "!==": "!==", "<": "<",
    ">": ">", "=~": "=~", "NIN": "nin", "IN": "in", "CONTAINS": "contains", "ALL": "all",
    "SIZE": "size", "EXISTS": "exists", "TYPE": "type", "MATCHES": "matches",
    "EMPTY": "empty", "SUBSETOF": "subsetof", "ANYOF": "anyof", "NONEOF": "noneof",
}
_OPERATOR_CHARS = "<>=~!"  # FilterCompiler.isRelationalOperatorChar
# PathFunctionFactory: the functions other than length()/size() (not evaluated here).
_VALUE_FUNCTIONS = {"avg", "stddev", "sum", "min", "max", "concat", "append", "keys",
                    "first", "last", "index"}


class _Invalid(Exception):
    """Jayway's InvalidPathException while reading (caught in places, as Jayway does)."""


class _Broken(Exception):
    """Any other exception while reading: Jayway turns it into InvalidPathException."""


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
    try:
        return java.quoted_string(quoted)
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
        """``name(...)``: read as Jayway does; arguments and the functions that compute over
        a list's values are noted as unsupported."""
        t = self.t
        depth, index = 1, opening + 1
        while index < len(t.text) and depth:
            depth += {"(": 1, ")": -1}.get(t.text[index], 0)
            index += 1
        if depth:
            raise _Invalid(f"arguments to function {t.text[t.pos:opening]!r} are not closed "
                           "properly")
        name = t.text[t.pos:opening]
        has_arguments = t.ok(opening + 1) and t.text[opening + 1] != ")"
        if has_arguments or name in _VALUE_FUNCTIONS:
            self.defer(f"path functions other than length() and size() ({name}(...))")
        self.steps.append(Function(name))
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
            self.steps.append(_slice(inner))
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


def _slice(text: str) -> Slice:
    """ArraySliceOperation.parse."""
    if any(not (c.isdecimal() or c in "-:") for c in text):
        raise _Invalid(f"failed to parse the slice {text!r}")
    parts = text.split(":")
    while parts and parts[-1] == "":  # String.split drops trailing empty strings
        parts.pop()
    bounds: list[int | None] = []
    for part in parts[:2]:
        if part == "":
            bounds.append(None)
        elif re.fullmatch(r"-?[0-9]+", part) and -(2**31) <= int(part) < 2**31:
            bounds.append(int(part))
        else:
            raise _Broken(f"failed to parse the slice {text!r}")
    start, stop = [*bounds, None, None][:2]
    if start is not None:
        return Slice("from" if stop is None else "between", start, stop)
    if stop is not None:
        return Slice("to", None, stop)
    raise _Invalid(f"failed to parse the slice {text!r}")


def compiles(text: str) -> bool:
    """Whether PathCompiler compiles ``text`` (a root path reads like a relative one)."""
    try:
        _compile_path("@" + text[1:] if text.startswith("$") else text)
    except (_Invalid, _Broken):
        return False
    return True


def read_matcher(matcher: str) -> Expr:
    """Read a matcher (or a whole ``$[?(...)]``); see :func:`xnatpic.xnat.jsonpath.parse`."""
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

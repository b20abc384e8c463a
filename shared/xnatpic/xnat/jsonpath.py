"""The JSONPath filter subset that Container Service matchers use.

XNAT applies a wrapper input's ``matcher`` as ``$[?(<matcher>)]`` to the parent object's
child list (Jayway JsonPath). This module parses such a filter body and applies it to
Python objects decoded from JSON. Supported grammar::

    expr     := or
    or       := and ('||' and)*
    and      := unary ('&&' unary)*
    unary    := '!' unary | '(' expr ')' | compare
    compare  := operand [OP operand]          (operand alone: the path exists and is truthy)
    OP       := == | != | < | <= | > | >= | =~ | in | nin | contains | anyof | noneof
                | subsetof
    operand  := path | 'string' | "string" | number | true | false | null | /regex/flags
                | [literal, ...]
    path     := @ ( .key | ['key'] | [*] | [N] | .* )*     (keys may contain '-')

``=~`` is a full match, as Java's ``Matcher.matches()`` in Jayway; flags ``i``, ``m``,
``s``, ``x``. A path through a wildcard yields a list (``@.resources[*].label``), so
``'DICOM' in @.resources[*].label`` asks whether any resource is labelled DICOM. A path
that does not exist makes every comparison false.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xnatpic.xnat.errors import MatcherSyntaxError

__all__ = [
    "And",
    "Compare",
    "Expr",
    "Literal",
    "Not",
    "Or",
    "Path",
    "Regex",
    "Truthy",
    "filter_objects",
    "matches",
    "parse",
]

_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "=~")
_WORD_OPERATORS = ("in", "nin", "contains", "anyof", "noneof", "subsetof")
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}
_MISSING = object()


@dataclass(frozen=True)
class Path:
    """A relative path ``@...``; ``steps`` holds keys (str), indexes (int) or ``"*"``."""

    steps: tuple[str | int, ...]

    @property
    def is_multi(self) -> bool:
        """True when the path goes through a wildcard and so yields a list."""
        return any(step == "*" for step in self.steps)

    def evaluate(self, obj: Any) -> Any:
        """Return the value at this path in ``obj``, a list for wildcard paths, or _MISSING."""
        current: list[Any] = [obj]
        for step in self.steps:
            nxt: list[Any] = []
            for item in current:
                if step == "*":
                    if isinstance(item, dict):
                        nxt.extend(item.values())
                    elif isinstance(item, list):
                        nxt.extend(item)
                elif isinstance(step, int):
                    if isinstance(item, list) and -len(item) <= step < len(item):
                        nxt.append(item[step])
                elif isinstance(item, dict) and step in item:
                    nxt.append(item[step])
            current = nxt
        if self.is_multi:
            return current
        return current[0] if current else _MISSING


@dataclass(frozen=True)
class Literal:
    """A literal value: str, int, float, bool, None or a list of those."""

    value: Any


@dataclass(frozen=True)
class Regex:
    """A ``/pattern/flags`` literal."""

    pattern: str
    flags: str

    def compiled(self) -> re.Pattern[str]:
        """Return the compiled pattern."""
        value = 0
        for flag in self.flags:
            value |= _REGEX_FLAGS[flag]
        return re.compile(self.pattern, value)


Operand = Path | Literal | Regex


@dataclass(frozen=True)
class Compare:
    """``left OP right``."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Truthy:
    """A bare operand: true when the path exists and its value is not false/empty/null."""

    operand: Operand


@dataclass(frozen=True)
class Not:
    """``!expr``."""

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


Expr = Compare | Truthy | Not | And | Or


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- low level -----------------------------------------------------------------
    def _error(self, message: str) -> MatcherSyntaxError:
        return MatcherSyntaxError(
            f"matcher {self.text!r}: {message} at character {self.pos + 1}"
        )

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self, token: str) -> bool:
        self._skip()
        return self.text.startswith(token, self.pos)

    def _peek_word(self, word: str) -> bool:
        self._skip()
        end = self.pos + len(word)
        if not self.text.startswith(word, self.pos):
            return False
        return end >= len(self.text) or not (self.text[end].isalnum() or self.text[end] in "_-")

    def _take(self, token: str) -> bool:
        if self._peek(token):
            self.pos += len(token)
            return True
        return False

    # -- grammar ---------------------------------------------------------------------
    def parse(self) -> Expr:
        expr = self._or()
        self._skip()
        if self.pos != len(self.text):
            raise self._error(f"unexpected {self.text[self.pos:]!r}")
        return expr

    def _or(self) -> Expr:
        left = self._and()
        while self._take("||"):
            left = Or(left, self._and())
        return left

    def _and(self) -> Expr:
        left = self._unary()
        while self._take("&&"):
            left = And(left, self._unary())
        return left

    def _unary(self) -> Expr:
        if self._peek("!") and not self._peek("!="):
            self.pos += 1
            return Not(self._unary())
        if self._take("("):
            expr = self._or()
            if not self._take(")"):
                raise self._error("missing ')'")
            return expr
        return self._compare()

    def _compare(self) -> Expr:
        left = self._operand()
        self._skip()
        for op in _OPERATORS:
            if self._take(op):
                right = self._operand(allow_regex=op == "=~")
                if op == "=~" and not isinstance(right, Regex):
                    raise self._error("'=~' needs a /regex/ on its right")
                return Compare(op, left, right)
        for word in _WORD_OPERATORS:
            if self._peek_word(word):
                self.pos += len(word)
                return Compare(word, left, self._operand())
        if isinstance(left, Regex):
            raise self._error("a /regex/ must follow '=~'")
        return Truthy(left)

    def _operand(self, *, allow_regex: bool = False) -> Operand:
        self._skip()
        if self.pos >= len(self.text):
            raise self._error("expected a value or a path, found the end")
        ch = self.text[self.pos]
        if ch == "@":
            self.pos += 1
            return self._path()
        if ch in "'\"":
            return Literal(self._string())
        if ch == "/" and allow_regex:
            return self._regex()
        if ch == "[":
            return Literal(self._list())
        match = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?").match(self.text, self.pos)
        if match:
            self.pos = match.end()
            number = match.group(0)
            return Literal(float(number) if any(c in number for c in ".eE") else int(number))
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self._peek_word(word):
                self.pos += len(word)
                return Literal(value)
        raise self._error(f"expected a value or a path, found {ch!r}")

    def _string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == quote:
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise self._error("unterminated string")

    def _regex(self) -> Regex:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] == "/":
                out.append("/")
                self.pos += 2
                continue
            if ch == "/":
                self.pos += 1
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos].isalpha():
                    self.pos += 1
                flags = self.text[start:self.pos]
                bad = [f for f in flags if f not in _REGEX_FLAGS]
                if bad:
                    raise self._error(f"unknown regex flag {bad[0]!r}")
                regex = Regex("".join(out), flags)
                try:
                    regex.compiled()
                except re.error as exc:
                    raise self._error(f"bad regex /{regex.pattern}/: {exc}") from exc
                return regex
            out.append(ch)
            self.pos += 1
        raise self._error("unterminated /regex/")

    def _list(self) -> list[Any]:
        self.pos += 1
        items: list[Any] = []
        if self._take("]"):
            return items
        while True:
            item = self._operand()
            if not isinstance(item, Literal):
                raise self._error("a list may hold only literals")
            items.append(item.value)
            if self._take("]"):
                return items
            if not self._take(","):
                raise self._error("expected ',' or ']' in a list")

    def _path(self) -> Path:
        steps: list[str | int] = []
        key = re.compile(r"[A-Za-z0-9_\-$]+")
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == ".":
                self.pos += 1
                if self.text.startswith("*", self.pos):
                    self.pos += 1
                    steps.append("*")
                    continue
                match = key.match(self.text, self.pos)
                if not match:
                    raise self._error("expected a key after '.'")
                # a trailing '-' belongs to the key only when followed by a key character
                steps.append(match.group(0))
                self.pos = match.end()
            elif ch == "[":
                self.pos += 1
                self._skip()
                if self._take("*"):
                    steps.append("*")
                elif self._peek("'") or self._peek('"'):
                    steps.append(self._string())
                else:
                    match = re.compile(r"-?\d+").match(self.text, self.pos)
                    if not match:
                        raise self._error("expected '*', an index or a quoted key in '[...]'")
                    steps.append(int(match.group(0)))
                    self.pos = match.end()
                if not self._take("]"):
                    raise self._error("missing ']'")
            else:
                break
        return Path(tuple(steps))


def parse(matcher: str) -> Expr:
    """Parse a matcher (the body of ``$[?(...)]``).

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
    MatcherSyntaxError
        When the text is not in the supported grammar.
    """
    text = matcher.strip()
    wrapped = re.fullmatch(r"\$\[\?\((.*)\)\]", text, re.DOTALL)
    if wrapped:
        text = wrapped.group(1)
    if not text:
        raise MatcherSyntaxError("matcher is empty")
    return _Parser(text).parse()


def _value(operand: Operand, obj: Any) -> Any:
    if isinstance(operand, Path):
        return operand.evaluate(obj)
    if isinstance(operand, Literal):
        return operand.value
    return operand


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(a: Any, b: Any) -> bool:
    if a == b and type(a) is type(b):
        return True
    if isinstance(a, str) and isinstance(b, str):
        return False
    num_a, num_b = _as_number(a), _as_number(b)
    if num_a is not None and num_b is not None:
        return num_a == num_b
    return a == b


def _ordered(op: str, a: Any, b: Any) -> bool:
    num_a, num_b = _as_number(a), _as_number(b)
    if num_a is not None and num_b is not None and not (
        isinstance(a, str) and isinstance(b, str)
    ):
        left: Any
        right: Any
        left, right = num_a, num_b
    elif isinstance(a, str) and isinstance(b, str):
        left, right = a, b
    else:
        return False
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _members(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    members = _members(container)
    return members is not None and any(_equal(m, item) for m in members)


def _compare(expr: Compare, obj: Any) -> bool:
    left = _value(expr.left, obj)
    right = _value(expr.right, obj)
    if left is _MISSING or right is _MISSING:
        return False
    op = expr.op
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("<", "<=", ">", ">="):
        return _ordered(op, left, right)
    if op == "=~":
        assert isinstance(right, Regex)  # guaranteed by the parser
        pattern = right.compiled()
        if isinstance(left, list):
            return any(isinstance(v, str) and pattern.fullmatch(v) for v in left)
        return isinstance(left, str) and pattern.fullmatch(left) is not None
    if op == "in":
        return _contains(right, left)
    if op == "nin":
        return not _contains(right, left)
    if op == "contains":
        return _contains(left, right)
    left_list, right_list = _members(left), _members(right)
    if left_list is None or right_list is None:
        return False
    if op == "anyof":
        return any(_contains(right_list, v) for v in left_list)
    if op == "noneof":
        return not any(_contains(right_list, v) for v in left_list)
    return all(_contains(right_list, v) for v in left_list)  # subsetof


def _evaluate(expr: Expr, obj: Any) -> bool:
    if isinstance(expr, Or):
        return _evaluate(expr.left, obj) or _evaluate(expr.right, obj)
    if isinstance(expr, And):
        return _evaluate(expr.left, obj) and _evaluate(expr.right, obj)
    if isinstance(expr, Not):
        return not _evaluate(expr.expr, obj)
    if isinstance(expr, Truthy):
        value = _value(expr.operand, obj)
        return value is not _MISSING and value not in (None, False, "", [], {})
    return _compare(expr, obj)


def matches(matcher: str | Expr, obj: Any) -> bool:
    """Return whether one object passes a matcher.

    Parameters
    ----------
    matcher : str or Expr
        The filter text or an already parsed expression.
    obj : Any
        One element of the list being filtered (a dict decoded from JSON).

    Raises
    ------
    MatcherSyntaxError
        When ``matcher`` is text that cannot be parsed.

    Examples
    --------
    >>> matches("@.scan-type == 'MSME'", {"scan-type": "MSME"})
    True
    >>> matches("'DICOM' in @.resources[*].label", {"resources": [{"label": "NIFTI"}]})
    False
    """
    expr = parse(matcher) if isinstance(matcher, str) else matcher
    return _evaluate(expr, obj)


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
    """
    items: Sequence[Any] = list(objects)
    if matcher is None or (isinstance(matcher, str) and not matcher.strip()):
        return list(items)
    expr = parse(matcher) if isinstance(matcher, str) else matcher
    return [obj for obj in items if _evaluate(expr, obj)]

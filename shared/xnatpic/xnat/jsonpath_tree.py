"""The expression tree of a Container Service matcher, and the errors of reading one.

:mod:`xnatpic.xnat.jsonpath_read` builds it as Jayway JsonPath 2.8.0 reads a filter,
:mod:`xnatpic.xnat.jsonpath_eval` applies it; :mod:`xnatpic.xnat.jsonpath` is the public face.
"""

from __future__ import annotations

import re
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
    "Function",
    "Indexes",
    "Literal",
    "MatcherEvaluationError",
    "MatcherUnsupportedError",
    "Not",
    "Operand",
    "Or",
    "Path",
    "Properties",
    "Regex",
    "Slice",
    "Step",
    "Truthy",
    "definite",
]


class MatcherUnsupportedError(MatcherSyntaxError):
    """A matcher Jayway accepts but that uses JSONPath this module does not evaluate."""


class MatcherEvaluationError(MatcherSyntaxError):
    """A matcher whose evaluation makes Jayway's whole read fail (JsonPathException).

    It derives from :class:`MatcherSyntaxError` so that callers reporting bad matchers
    report this too.
    """


# -- the tree ------------------------------------------------------------------
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
class Slice:
    """A ``[from:to]`` step; ``kind`` is from, between or to (ArraySliceOperation)."""

    kind: str
    start: int | None
    stop: int | None


@dataclass(frozen=True)
class Function:
    """A ``.name()`` step without arguments: ``length()``/``size()`` are evaluated; any
    other name makes Jayway throw InvalidPathException when it is evaluated."""

    name: str


@dataclass(frozen=True)
class Filter:
    """A nested ``[?(...)]`` step."""

    expr: Expr


Step = str | int | Indexes | Properties | Slice | Function | Filter | _Wildcard


def definite(steps: tuple[Step, ...], i: int) -> bool:
    """PathToken.isTokenDefinite for step ``i``."""
    step = steps[i]
    if isinstance(step, Properties):
        return i == len(steps) - 1
    return isinstance(step, str | int | Function)


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
        return not all(definite(self.steps, i) for i in range(len(self.steps)))


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

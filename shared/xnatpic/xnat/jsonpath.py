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
- paths: ``@``, ``.key``, ``['key']``, ``['a','b']``, ``[*]``, ``.*``, ``[N]``,
  ``[N,M]``, slices ``[a:b]``, ``.length()``/``.size()`` and nested ``[?(...)]`` filters.

And the evaluation follows ``EvaluatorFactory`` and ``ValueNodes``:

- a path that does not exist is UNDEFINED: every comparison with it is false, so ``!=``
  (``!==``) and ``nin`` are TRUE for an object without the key;
- a bare path (``@.quality``) tests existence: ``null``, ``false``, ``""`` and ``[]`` exist;
  with a wildcard (``@.resources[*].label``) every element must have the key;
- a path through a wildcard, several indexes, a filter or (before its end) several
  properties yields a list; ``['a','b']`` at the end yields one object with those keys;
- ``'5' == 5`` compares text, ``5 == '5'`` compares numbers; lists compare element by
  element with Java's ``equals`` (``1`` is not ``1.0``);
- an operand of the wrong kind (``in`` with no list on the right, ``anyof`` with no list on
  the left, ``empty`` without a boolean, any ``all``/``type``/``matches``) makes Jayway throw
  InvalidPathException, which rejects the object (the whole matcher is false for it);
- a list holding objects or lists on either side of ``in``, ``contains``, ``anyof``...
  makes Jayway throw JsonPathException, which aborts the whole read: here
  :class:`MatcherEvaluationError`.

Not supported (Jayway reads them; :func:`parse` raises :class:`MatcherUnsupportedError`,
but only for a matcher Jayway would read as a whole): root paths ``$...`` inside a matcher
(CS evaluates them against different documents), deep scan ``..``, the functions that
compute over values (``.sum()``, ``.max()``...) and a filter that closes before the
matcher's end. (A function with arguments cannot occur: the path would end at its ``)``.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xnatpic.xnat.jsonpath_eval import accepts
from xnatpic.xnat.jsonpath_read import read_matcher
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
    MatcherEvaluationError,
    MatcherUnsupportedError,
    Not,
    Or,
    Path,
    Properties,
    Regex,
    Slice,
    Truthy,
)

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
    "Or",
    "Path",
    "Properties",
    "Regex",
    "Slice",
    "Truthy",
    "filter_objects",
    "matches",
    "parse",
]


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
    return read_matcher(matcher)


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
    return accepts(expr, obj)


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
    return [obj for obj in items if accepts(expr, obj)]

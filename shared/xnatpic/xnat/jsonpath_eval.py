"""Applying a matcher to one object as Jayway JsonPath 2.8.0 does.

A port, in our own words, of json-path 2.8.0's path tokens (``internal/path/*PathToken.java``),
``internal/filter/ValueNodes.java``, ``ValueNode.java``, ``EvaluatorFactory.java`` and
``PredicatePathToken.accept`` (see :mod:`xnatpic.xnat.jsonpath`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from xnatpic.xnat import jsonpath_java as java
from xnatpic.xnat.jsonpath_read import compiles
from xnatpic.xnat.jsonpath_tree import (
    WILDCARD,
    And,
    Exists,
    Expr,
    Function,
    Indexes,
    Literal,
    MatcherEvaluationError,
    Not,
    Operand,
    Or,
    Path,
    Properties,
    Regex,
    Slice,
    Step,
    definite,
)

__all__ = ["accepts"]


class _Rejected(Exception):
    """InvalidPathException while evaluating: Jayway rejects the object."""


# -- Jayway's path tokens, ValueNodes and EvaluatorFactory ---------------------
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
    upstream_definite = all(definite(steps, j) for j in range(i))
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
    elif isinstance(step, Function):
        if step.name not in ("length", "size"):
            raise _Rejected(f"function of name {step.name} cannot be created")
        size = len(model) if isinstance(model, list | dict) else None  # Length.invoke
        _walk(steps, i + 1, size, found, strict)
    elif isinstance(step, Slice):
        if not isinstance(model, list):
            if upstream_definite:
                raise _PathNotFound(step)
            return
        for index in _slice_indexes(step, len(model)):
            effective = index + len(model) if index < 0 else index
            if 0 <= effective < len(model):
                _walk(steps, i + 1, model[effective], found, strict)
    elif isinstance(step, int | Indexes):
        if not isinstance(model, list):
            if upstream_definite:
                raise _PathNotFound(step)
            return
        for index in (step,) if isinstance(step, int) else step.values:
            effective = index + len(model) if index < 0 else index
            if 0 <= effective < len(model):
                _walk(steps, i + 1, model[effective], found, strict)
    elif step is WILDCARD:
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
            if accepts(step.expr, model):
                _walk(steps, i + 1, model, found, strict)
        elif isinstance(model, list):
            for value in model:
                if accepts(step.expr, value):
                    _walk(steps, i + 1, value, found, strict)
        elif upstream_definite:
            raise _Rejected("a filter cannot be applied to a primitive")


def _slice_indexes(step: Slice, length: int) -> range:
    """ArraySliceToken: the indexes it visits (sliceBetween keeps a negative start)."""
    if length == 0:
        return range(0)
    if step.kind == "from":
        assert step.start is not None
        start = max(0, length + step.start if step.start < 0 else step.start)
        return range(start, length)
    if step.kind == "between":
        assert step.start is not None and step.stop is not None
        return range(step.start, min(length, step.stop))
    assert step.stop is not None
    stop = length + step.stop if step.stop < 0 else step.stop
    return range(0, min(length, stop))


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


def _permissive_json(text: str) -> bool:
    """Whether json-smart (permissive mode) reads ``text``; if not it stays a string."""
    try:
        java.parse_permissive_json(text)
    except java.JavaSyntaxError:
        return False
    return True


def _list_node(value: Any) -> _Node:
    """ValueNode.toValueNode: one element of a list used as a value list."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        stripped = java.java_trim(value)
        if stripped[:1] in ("@", "$") and compiles(stripped):
            return _Node("path", stripped)
        if (len(stripped) > 1 and (stripped[0], stripped[-1]) in (("[", "]"), ("{", "}"))
                and _permissive_json(stripped)):
            return _Node("json", value, parsed=False)
        try:
            return _Node("string", java.quoted_string(value))
        except java.JavaSyntaxError as exc:
            raise MatcherEvaluationError(f"Jayway cannot unescape {value!r}: {exc}") from exc
    if isinstance(value, bool):
        return _Node("boolean", value)
    if isinstance(value, int | float | Decimal):
        return _Node("number", java.big_decimal(java.number_text(value)))
    raise MatcherEvaluationError(
        f"Jayway JsonPath cannot compare a list holding {type(value).__name__}s "
        "(objects or lists): 'Could not determine value type'"
    )


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


def accepts(expr: Expr, item: Any) -> bool:
    """PredicatePathToken.accept: an InvalidPathException rejects the item."""
    try:
        return _evaluate(expr, item)
    except _Rejected:
        return False

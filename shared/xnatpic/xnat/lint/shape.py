"""JSON shapes Jackson accepts for a command, as XNAT's ObjectMapper reads them.

XNAT deserialises a POSTed command (and each command of an image label) into
``Command.CommandCreation`` with the ObjectMapper built by Spring's
``Jackson2ObjectMapperBuilder``: unknown keys are ignored, scalars are coerced (a number or a
boolean becomes a String; "2048" becomes a Long; 0/1 and "true"/"false" become a Boolean), but
a list where an object is expected, an object where a scalar is expected, a string that is not
a number for a Long, or a null inside an immutable list or map makes the request fail (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["COMMAND", "Problem", "Schema", "check_command"]

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_JAVA_LONG = re.compile(r"[+-]?\d+")
_JAVA_DOUBLE = re.compile(  # Double.parseDouble, plus Jackson's "INF"
    r"[+-]?(NaN|Infinity|INF|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?"
    r"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+[fFdD]?)")
_BOOLEAN_TEXT = frozenset({"true", "True", "TRUE", "false", "False", "FALSE", "", "null"})


@dataclass(frozen=True)
class Problem:
    """One shape problem: rule code, message, where."""

    code: str
    message: str
    where: str


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _string(value: Any) -> str | None:
    """Why a value cannot be a Java String (any scalar can), or None."""
    return None if not isinstance(value, (list, dict)) else f"a string, found {_kind(value)}"


def _long(value: Any) -> str | None:
    if isinstance(value, bool):
        return "an integer, found boolean"
    if isinstance(value, (int, float)):
        return None if _LONG_MIN <= value <= _LONG_MAX else "an integer within Long range"
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "null") or (
                _JAVA_LONG.fullmatch(text) and _LONG_MIN <= int(text) <= _LONG_MAX):
            return None
        return f"an integer (bytes), found string {value!r}"
    return f"an integer, found {_kind(value)}"


def _double(value: Any) -> str | None:
    if isinstance(value, bool):
        return "a number, found boolean"
    if isinstance(value, (int, float)):
        return None
    if isinstance(value, str):
        text = value.strip()
        return None if text in ("", "null") or _JAVA_DOUBLE.fullmatch(text) else \
            f"a number, found string {value!r}"
    return f"a number, found {_kind(value)}"


def _boolean(value: Any) -> str | None:
    if isinstance(value, int):  # bool is an int too; Jackson reads 0 as false, others true
        return None
    if isinstance(value, str) and value.strip() in _BOOLEAN_TEXT:
        return None
    return f"true or false, found {_kind(value)} {value!r}"


Scalar = Callable[[Any], "str | None"]
STRING: Scalar = _string
LONG: Scalar = _long
DOUBLE: Scalar = _double
BOOLEAN: Scalar = _boolean


@dataclass(frozen=True)
class Schema:
    """An object Jackson builds: its fields, the fields that must not be null, subtypes."""

    fields: dict[str, Any]
    required: frozenset[str] = frozenset()
    #: The rule a missing required field breaks.
    required_code: str = "E004"


@dataclass(frozen=True)
class ListOf:
    """A JSON array of ``item`` (a Schema, a scalar checker or a Typed)."""

    item: Any


@dataclass(frozen=True)
class MapOfStrings:
    """A JSON object whose values are coerced to String (no null values)."""


@dataclass(frozen=True)
class Typed:
    """A polymorphic object chosen by its ``type`` property (@JsonTypeInfo NAME)."""

    subtypes: dict[str, Schema]


ANY = object()  # a JsonNode: anything goes

MOUNT = Schema({"name": STRING, "writable": BOOLEAN, "path": STRING})
INPUT = Schema({
    "name": STRING, "label": STRING, "description": STRING, "type": STRING, "required": BOOLEAN,
    "matcher": STRING, "default-value": STRING, "replacement-key": STRING,
    "command-line-flag": STRING, "command-line-separator": STRING, "true-value": STRING,
    "false-value": STRING, "sensitive": BOOLEAN, "select-values": ListOf(STRING),
    "multiple-delimiter": STRING,
}, frozenset({"name"}))
OUTPUT = Schema({"name": STRING, "description": STRING, "required": BOOLEAN, "mount": STRING,
                 "path": STRING, "glob": STRING})
EXTERNAL_INPUT = Schema({
    "name": STRING, "label": STRING, "description": STRING, "type": STRING, "matcher": STRING,
    "provides-value-for-command-input": STRING, "provides-files-for-command-mount": STRING,
    "via-setup-command": STRING, "default-value": STRING, "user-settable": BOOLEAN,
    "replacement-key": STRING, "required": BOOLEAN, "load-children": BOOLEAN,
    "sensitive": BOOLEAN,
}, frozenset({"name"}))
DERIVED_INPUT = Schema({
    **EXTERNAL_INPUT.fields, "derived-from-wrapper-input": STRING,
    "derived-from-xnat-object-property": STRING, "multiple": BOOLEAN, "parser": STRING,
}, frozenset({"name"}))
HANDLER = Schema({
    "name": STRING, "accepts-command-output": STRING, "as-a-child-of": STRING,
    "as-a-child-of-wrapper-input": STRING, "via-wrapup-command": STRING, "type": STRING,
    "xsi-type": STRING, "label": STRING, "format": STRING, "description": STRING,
    "content": STRING, "tags": ListOf(STRING),
})
WRAPPER = Schema({
    "name": STRING, "label": STRING, "description": STRING, "contexts": ListOf(STRING),
    "external-inputs": ListOf(EXTERNAL_INPUT), "derived-inputs": ListOf(DERIVED_INPUT),
    "output-handlers": ListOf(HANDLER),
})
SECRET = Schema({
    "source": Typed({"system-property": Schema({"identifier": STRING})}),
    "destination": Typed({"environment-variable": Schema({"identifier": STRING})}),
}, frozenset({"destination"}), "E005")  # validate() calls destination().getClass() (:418)
COMMAND = Schema({
    "name": STRING, "label": STRING, "description": STRING, "version": STRING,
    "schema-version": STRING, "info-url": STRING, "image": STRING, "container-name": STRING,
    "type": STRING, "index": STRING, "hash": STRING, "working-directory": STRING,
    "command-line": STRING, "command-metadata": ANY, "override-entrypoint": BOOLEAN,
    "mounts": ListOf(MOUNT), "environment-variables": MapOfStrings(), "ports": MapOfStrings(),
    "inputs": ListOf(INPUT), "outputs": ListOf(OUTPUT), "xnat": ListOf(WRAPPER),
    "reserve-memory": LONG, "limit-memory": LONG, "limit-cpu": DOUBLE, "runtime": STRING,
    "ipcMode": STRING, "auto-remove": BOOLEAN, "shm-size": LONG, "network": STRING,
    "container-labels": MapOfStrings(), "gpus": STRING, "generic-resources": MapOfStrings(),
    "ulimits": MapOfStrings(), "secrets": ListOf(SECRET), "visibility": STRING,
})


def _check(value: Any, spec: Any, where: str) -> Iterator[Problem]:
    if spec is ANY or value is None:
        return
    if isinstance(spec, Schema):
        yield from _object(value, spec, where)
    elif isinstance(spec, Typed):
        yield from _typed(value, spec, where)
    elif isinstance(spec, ListOf):
        yield from _list(value, spec, where)
    elif isinstance(spec, MapOfStrings):
        yield from _map(value, where)
    else:
        why = spec(value)
        if why:
            yield Problem("E002", f"{where} must be {why}", where)


def _object(value: Any, schema: Schema, where: str) -> Iterator[Problem]:
    if not isinstance(value, dict):
        yield Problem("E002", f"{where} must be an object, found {_kind(value)}", where)
        return
    for key in sorted(schema.required):
        if value.get(key) is None:
            yield Problem(schema.required_code,
                          f"{where} has no '{key}' (XNAT fails on a null {key})", where)
    for key, spec in schema.fields.items():
        if key in value:
            yield from _check(value[key], spec, f"{where}.{key}" if where else key)


def _typed(value: Any, spec: Typed, where: str) -> Iterator[Problem]:
    if not isinstance(value, dict):
        yield Problem("E002", f"{where} must be an object, found {_kind(value)}", where)
        return
    kind = value.get("type")
    if kind not in spec.subtypes:
        known = ", ".join(sorted(spec.subtypes))
        yield Problem("E005", f"{where}.type {kind!r} is not one of: {known}", where)
        return
    yield from _object(value, spec.subtypes[kind], where)


def _list(value: Any, spec: ListOf, where: str) -> Iterator[Problem]:
    if not isinstance(value, list):
        yield Problem("E002", f"{where} must be an array, found {_kind(value)}", where)
        return
    for i, item in enumerate(value):
        if item is None:
            yield Problem("E003", f"{where}[{i}] is null", where)
        else:
            yield from _check(item, spec.item, f"{where}[{i}]")


def _map(value: Any, where: str) -> Iterator[Problem]:
    if not isinstance(value, dict):
        yield Problem("E002", f"{where} must be an object of strings, found {_kind(value)}",
                      where)
        return
    for key, item in value.items():
        if item is None:
            yield Problem("E003", f"{where}.{key} is null", where)
        elif isinstance(item, (list, dict)):
            yield Problem("E002", f"{where}.{key} must be a string, found {_kind(item)}", where)


def check_command(command: dict[str, Any]) -> list[Problem]:
    """Every shape problem of one command object (empty when Jackson would build it)."""
    return list(_object(command, COMMAND, ""))


def known_keys(schema: Schema) -> frozenset[str]:
    """The keys Jackson reads for ``schema`` (everything else is ignored)."""
    return frozenset(schema.fields)

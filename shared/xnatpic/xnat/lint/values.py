"""Read command fields the way Jackson hands them to the Container Service."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "BAD_NAME_CHAR", "as_bool", "as_text", "blank", "has_tag", "java_split", "objects",
    "parse_string_list", "text_or", "texts",
]

#: Command.COMMAND_NAME: any character outside it makes a name ill-formed (Command.java:67).
BAD_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")
#: Command.HAS_TAG, matched against the whole image name (Command.java:68).
_HAS_TAG = re.compile(r".+:[a-zA-Z0-9_.-]+")
_TRUE_TEXT = frozenset({"true", "True", "TRUE"})


def as_text(obj: dict[str, Any], key: str) -> str | None:
    """The value as the Java String Jackson makes of it (numbers and booleans coerced)."""
    value = obj.get(key)
    if value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def text_or(obj: dict[str, Any], key: str, default: str) -> str:
    """``as_text``, with ``default`` only where the value is null or absent (not for "")."""
    value = as_text(obj, key)
    return default if value is None else value


def as_bool(obj: dict[str, Any], key: str) -> bool | None:
    """The value as the Java Boolean Jackson makes of it (None when null or unreadable)."""
    value = obj.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        text = value.strip()
        if text in _TRUE_TEXT:
            return True
        if text.lower() == "false":
            return False
    return None


def blank(value: str | None) -> bool:
    """StringUtils.isBlank: None, empty or whitespace only."""
    return value is None or not value.strip()


def objects(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects of a list field (null, a wrong type and non-object items give nothing)."""
    value = obj.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def texts(obj: dict[str, Any], key: str) -> list[str]:
    """A list of strings, each coerced as Jackson does (unreadable items left out)."""
    value = obj.get(key)
    if not isinstance(value, list):
        return []
    return [t for t in (as_text({"v": item}, "v") for item in value) if t is not None]


def has_tag(image: str) -> bool:
    """Whether an image name already carries a tag (Command.HAS_TAG.matcher(image).matches())."""
    return bool(_HAS_TAG.fullmatch(image))


def java_split(text: str, sep: str) -> list[str]:
    """``String.split(sep)`` for a literal one-character separator: trailing empties dropped."""
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def parse_string_list(text: str | None) -> list[str | None] | None:
    """``new ObjectMapper().readValue(text, List<String>)``, or None where it throws IOException.

    Jackson reads the first JSON value and ignores what follows; scalars in the array become
    strings, a null stays null, an object or array inside fails.
    """
    if text is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    out: list[str | None] = []
    for item in value:
        if isinstance(item, (list, dict)):
            return None
        out.append(None if item is None else as_text({"v": item}, "v"))
    return out

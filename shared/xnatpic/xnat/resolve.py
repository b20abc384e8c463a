"""Resolve a command's wrapper for one launch, as the Container Service does.

Order (container-service.md, "What happens at launch"): the external (root) input from
the launch, derived inputs by JSONPath over the parent's children, then command inputs
(a value provided by a wrapper input wins over a launch parameter, which wins over the
default). Every resolved value is checked for what XNAT refuses (``;``, ``&&``, ``||``,
backtick, ``(``). The command line is built by substituting each input's replacement
key with flag, separator and value (a blank value drops its flag), then split into
arguments: no shell runs it unless ``override-entrypoint`` is true.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat import jsonpath
from xnatpic.xnat.archive import XnatObject
from xnatpic.xnat.errors import (
    IllegalValueError,
    MatcherSyntaxError,
    ResolutionError,
)
from xnatpic.xnat.schema import SELECT_TYPES, XNAT_OBJECT_TYPES, illegal_fragment

__all__ = [
    "ResolvedCommand",
    "ResolvedInput",
    "ResolvedMount",
    "find_wrapper",
    "resolve",
    "wrapper_root_type",
]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass
class ResolvedInput:
    """A wrapper input after resolution."""

    name: str
    type: str
    value: str | list[str] | None
    objects: list[XnatObject] = field(default_factory=list)

    @property
    def obj(self) -> XnatObject | None:
        """The single XNAT object this input holds, if any."""
        return self.objects[0] if len(self.objects) == 1 else None


@dataclass
class ResolvedMount:
    """A mount: host folder (None: a fresh output folder to create) and container path."""

    name: str
    path: str
    host: Path | None
    writable: bool
    fed_by: str | None = None


@dataclass
class ResolvedCommand:
    """Everything needed to run one launch and to store its outputs."""

    command: dict[str, Any]
    wrapper: dict[str, Any]
    wrapper_inputs: dict[str, ResolvedInput]
    command_inputs: dict[str, str | list[str] | None]
    command_line: str
    arguments: list[str]
    mounts: list[ResolvedMount]
    environment: dict[str, str]

    @property
    def override_entrypoint(self) -> bool:
        """Whether the command line is run by ``/bin/sh -c`` instead of the ENTRYPOINT."""
        return bool(self.command.get("override-entrypoint"))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no secrets: sensitive inputs are masked)."""
        sensitive = {i["name"] for i in self.command.get("inputs", []) if i.get("sensitive")}
        values = {k: ("***" if k in sensitive and v else v)
                  for k, v in self.command_inputs.items()}
        return {
            "command": self.command.get("name"),
            "version": self.command.get("version"),
            "image": self.command.get("image"),
            "wrapper": self.wrapper.get("name"),
            "wrapper-inputs": {k: v.value for k, v in self.wrapper_inputs.items()},
            "command-inputs": values,
            "command-line": self.command_line if not sensitive else "(has sensitive inputs)",
            "mounts": [{"name": m.name, "path": m.path, "host": str(m.host) if m.host else None,
                        "writable": m.writable, "fed-by": m.fed_by} for m in self.mounts],
        }


def find_wrapper(command: dict[str, Any], name: str | None) -> dict[str, Any]:
    """Return the wrapper called ``name`` (or the only one when ``name`` is None).

    Raises
    ------
    ResolutionError
        When there is no such wrapper, naming the ones there are.
    """
    wrappers = [w for w in command.get("xnat", []) if isinstance(w, dict)]
    names = [str(w.get("name")) for w in wrappers]
    if name is None:
        if len(wrappers) == 1:
            return wrappers[0]
        raise ResolutionError(
            f"command {command.get('name')!r} has {len(wrappers)} wrappers {names}: "
            "choose one with --wrapper"
        )
    for wrapper in wrappers:
        if wrapper.get("name") == name:
            return wrapper
    raise ResolutionError(f"command {command.get('name')!r} has no wrapper {name!r}; "
                          f"it has {names}")


def wrapper_root_type(wrapper: dict[str, Any]) -> str | None:
    """Return the type of the wrapper's root: its first external input of an XNAT type.

    ``Project`` for a project-context wrapper (launched once on the project),
    ``Session`` or ``Scan`` for one launched on sessions; None when no external input
    holds an XNAT object.
    """
    for winp in wrapper.get("external-inputs", []):
        wtype = winp.get("type", "string")
        if wtype in XNAT_OBJECT_TYPES:
            return str(wtype)
    return None


def _check_legal(name: str, value: str | list[str] | None) -> None:
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            fragment = illegal_fragment(item)
            if fragment:
                raise IllegalValueError(
                    f"input {name!r}: value {item!r} contains {fragment!r}, which the "
                    "Container Service refuses (;, &&, ||, backtick and '(' are not allowed)"
                )


def _object_value(obj: XnatObject, prop: str | None) -> str:
    if prop:
        if prop not in obj.data:
            raise ResolutionError(
                f"{obj.type} {obj.ident} has no property {prop!r}; it has "
                f"{sorted(k for k in obj.data if not isinstance(obj.data[k], list))}"
            )
        value = obj.data[prop]
        return "" if value is None else str(value)
    return obj.uri


class _Resolver:
    def __init__(self, command: dict[str, Any], wrapper: dict[str, Any], root: XnatObject,
                 params: dict[str, str]) -> None:
        self.command = command
        self.wrapper = wrapper
        self.root = root
        self.params = dict(params)
        self.used: set[str] = set()
        self.inputs: dict[str, ResolvedInput] = {}

    def param(self, name: str) -> str | None:
        if name in self.params:
            self.used.add(name)
            return self.params[name]
        return None

    def external(self, winp: dict[str, Any], root_taken: bool) -> bool:
        name, wtype = winp["name"], winp.get("type", "string")
        if wtype in XNAT_OBJECT_TYPES:
            if root_taken:
                raise ResolutionError(f"wrapper input {name!r}: a local launch has one root "
                                      "object (the session or project); a second object "
                                      "input is not supported")
            obj = self.root_as(name, wtype)
            value = _object_value(obj, winp.get("derived-from-xnat-object-property"))
            self.inputs[name] = ResolvedInput(name, wtype, value, [obj])
            return True
        value = self.param(name)
        if value is None:
            value = winp.get("default-value")
        value = None if value is None else str(value)
        if winp.get("required", True) and not value:
            raise ResolutionError(f"wrapper input {name!r} is required: give --param {name}=V")
        self.inputs[name] = ResolvedInput(name, wtype, value)
        return root_taken

    def root_as(self, name: str, wtype: str) -> XnatObject:
        if wtype == self.root.type:
            return self.root
        if wtype == "Scan" and self.root.type == "Session":
            scan_id = self.param(name)
            scans = self.root.children.get("Scan", [])
            found = [s for s in scans if s.ident == scan_id]
            if scan_id is None or not found:
                ids = ", ".join(s.ident for s in scans) or "none"
                raise ResolutionError(
                    f"wrapper input {name!r} is a Scan: pick one with --param {name}=SCAN_ID "
                    f"(scans of session {self.root.ident}: {ids})"
                )
            return found[0]
        if wtype == "Project":
            raise ResolutionError(
                f"wrapper input {name!r} is a Project: this wrapper is launched once on a "
                f"project; give --project PROJECT_DIR (not a {self.root.type.lower()})"
            )
        if self.root.type == "Project":
            raise ResolutionError(
                f"wrapper input {name!r} is a {wtype}: this wrapper is launched on "
                "sessions, not on the project; give --session DIR (or --project DIR for one "
                "launch per session)"
            )
        raise ResolutionError(
            f"wrapper input {name!r} is a {wtype}; a local launch starts from a Session "
            "(or a Scan of it) or a Project"
        )

    def derived(self, winp: dict[str, Any]) -> None:
        name, wtype = winp["name"], winp.get("type", "string")
        parent_name = winp.get("derived-from-wrapper-input")
        if parent_name not in self.inputs:
            raise ResolutionError(f"derived input {name!r}: parent {parent_name!r} is not "
                                  "resolved before it (declare it earlier)")
        parent = self.inputs[parent_name]
        required = bool(winp.get("required", True))
        prop = winp.get("derived-from-xnat-object-property")
        if parent.obj is None:
            if required:
                raise ResolutionError(f"derived input {name!r}: parent {parent_name!r} holds "
                                      "no single XNAT object")
            self.inputs[name] = ResolvedInput(name, wtype, None)
            return
        if wtype not in XNAT_OBJECT_TYPES:
            chosen = self.param(name) if winp.get("user-settable", True) is not False else None
            value = chosen if chosen is not None else _object_value(parent.obj, prop)
            self.inputs[name] = ResolvedInput(name, wtype, value)
            return
        candidates = self.children(parent.obj, wtype, name)
        matcher = winp.get("matcher")
        try:
            kept = jsonpath.filter_objects(matcher, [c.data for c in candidates])
        except MatcherSyntaxError as exc:
            raise ResolutionError(f"derived input {name!r}: {exc}") from exc
        found = [c for c in candidates if any(c.data is k for k in kept)]
        chosen = self.param(name)
        if chosen is not None:
            found = [o for o in found if chosen in (o.ident, o.uri, o.data.get("label"))]
        what = f"{wtype} of {parent.obj.type} {parent.obj.ident}"
        if winp.get("multiple"):
            values = [_object_value(o, prop) for o in found]
            if required and not values:
                raise ResolutionError(f"derived input {name!r}: no {what} matches {matcher!r}")
            self.inputs[name] = ResolvedInput(name, wtype, values, found)
            return
        if len(found) > 1:
            ids = ", ".join(o.ident for o in found)
            raise ResolutionError(
                f"derived input {name!r}: matcher {matcher!r} matches {len(found)} "
                f"({ids}) {wtype} objects of {parent.obj.type} {parent.obj.ident}; a launch "
                f"needs exactly one: pick one with --param {name}=ID or set multiple: true"
            )
        if not found:
            if required:
                raise ResolutionError(
                    f"derived input {name!r}: no {what} matches {matcher or '(no matcher)'!r}"
                    + (f" with id {chosen!r}" if chosen is not None else "")
                )
            self.inputs[name] = ResolvedInput(name, wtype, None)
            return
        self.inputs[name] = ResolvedInput(name, wtype, _object_value(found[0], prop), found)

    @staticmethod
    def children(parent: XnatObject, wtype: str, name: str) -> list[XnatObject]:
        if wtype == "Directory" and parent.type == "Resource":
            return [parent]
        if wtype in parent.children:
            return parent.children[wtype]
        raise ResolutionError(f"derived input {name!r}: a {wtype} cannot be derived from a "
                              f"{parent.type}")

    def command_inputs(self) -> dict[str, str | list[str] | None]:
        provided: dict[str, ResolvedInput] = {}
        for key in ("external-inputs", "derived-inputs"):
            for winp in self.wrapper.get(key, []):
                target = winp.get("provides-value-for-command-input")
                if target:
                    provided[target] = self.inputs[winp["name"]]
        values: dict[str, str | list[str] | None] = {}
        for cinp in self.command.get("inputs", []):
            name = cinp["name"]
            value: str | list[str] | None
            if name in provided:
                if name in self.params and name not in self.inputs:
                    raise ResolutionError(
                        f"parameter {name!r} is set by wrapper input {provided[name].name!r}; "
                        "a launch cannot override it"
                    )
                value = provided[name].value
            else:
                param = self.param(name)
                default = cinp.get("default-value")
                value = param if param is not None else (None if default is None
                                                         else str(default))
            value = self.check_type(cinp, value)
            if cinp.get("required") and (value is None or value == "" or value == []):
                raise ResolutionError(
                    f"command input {name!r} is required and has no value: give "
                    f"--param {name}=V"
                )
            values[name] = value
        return values

    @staticmethod
    def check_type(cinp: dict[str, Any], value: str | list[str] | None
                   ) -> str | list[str] | None:
        if value is None or isinstance(value, list) or value == "":
            return value
        name, ctype = cinp["name"], cinp.get("type", "string")
        if ctype == "number":
            try:
                float(value)
            except ValueError as exc:
                raise ResolutionError(f"command input {name!r}: {value!r} is not a number"
                                      ) from exc
        elif ctype == "boolean":
            if value.lower() not in _TRUE | _FALSE:
                raise ResolutionError(f"command input {name!r}: {value!r} is not true/false")
        elif ctype in SELECT_TYPES:
            allowed = [str(v) for v in cinp.get("select-values", [])]
            chosen: list[str] = [value]
            if ctype == "select-many":
                try:
                    parsed = json.loads(value)
                except json.JSONDecodeError:
                    parsed = value.split(",")
                chosen = [str(v).strip() for v in (parsed if isinstance(parsed, list)
                                                   else [parsed])]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                raise ResolutionError(f"command input {name!r}: {bad[0]!r} is not one of "
                                      f"{allowed}")
            return chosen if ctype == "select-many" else value
        return value


def _render(cinp: dict[str, Any], value: str | list[str] | None) -> str:
    if cinp.get("type") == "boolean" and isinstance(value, str):
        truthy = value.lower() in _TRUE
        value = str(cinp.get("true-value", "true") if truthy else cinp.get("false-value",
                                                                            "false"))
    if value is None or value == "" or value == []:
        return ""
    flag = cinp.get("command-line-flag") or ""
    sep = cinp.get("command-line-separator")
    sep = " " if sep is None else sep
    if isinstance(value, list):
        delimiter = cinp.get("multiple-delimiter") or "quoted-space"
        if delimiter == "flag" and flag:
            return " ".join(f"{flag}{sep}{v}" for v in value)
        if delimiter == "comma":
            joined = ",".join(value)
        elif delimiter == "space":
            joined = " ".join(value)
        else:
            joined = " ".join(f'"{v}"' for v in value)
        return f"{flag}{sep}{joined}" if flag else joined
    return f"{flag}{sep}{value}" if flag else value


def _substitute(text: str, replacements: dict[str, str]) -> str:
    for key, value in replacements.items():
        text = text.replace(key, value)
    return text


def resolve(command: dict[str, Any], wrapper: dict[str, Any], root: XnatObject,
            params: dict[str, str] | None = None) -> ResolvedCommand:
    """Resolve one launch of ``wrapper`` on ``root`` (a session or a project).

    Parameters
    ----------
    command : dict
        The command (linted beforehand).
    wrapper : dict
        One of its ``xnat`` wrappers (see :func:`find_wrapper`).
    root : XnatObject
        The session or project launched on (from
        :func:`xnatpic.xnat.archive.load_session` or
        :func:`~xnatpic.xnat.archive.load_project`).
    params : dict of str to str, optional
        Launch parameters by wrapper-input or command-input name.

    Returns
    -------
    ResolvedCommand

    Raises
    ------
    ResolutionError
        When an input cannot be resolved (nothing or several objects match, a required
        value is missing, a value has the wrong type, an unknown parameter is given).
    IllegalValueError
        When a value contains ``;``, ``&&``, ``||``, a backtick or ``(``.
    """
    resolver = _Resolver(command, wrapper, root, params or {})
    root_taken = False
    for winp in wrapper.get("external-inputs", []):
        root_taken = resolver.external(winp, root_taken)
    for winp in wrapper.get("derived-inputs", []):
        resolver.derived(winp)
    command_values = resolver.command_inputs()
    unused = sorted(set(resolver.params) - resolver.used)
    if unused:
        known = sorted({i["name"] for i in command.get("inputs", [])} | set(resolver.inputs))
        raise ResolutionError(f"unknown parameter(s) {unused}; this wrapper takes {known}")
    for name, resolved in resolver.inputs.items():
        _check_legal(name, resolved.value)
    for name, value in command_values.items():
        _check_legal(name, value)

    replacements: dict[str, str] = {}
    for cinp in command.get("inputs", []):
        key = cinp.get("replacement-key") or f"#{cinp['name']}#"
        replacements[key] = _render(cinp, command_values[cinp["name"]])
    for name, resolved in resolver.inputs.items():
        winp_key = f"#{name}#"
        if winp_key not in replacements and isinstance(resolved.value, str):
            replacements[winp_key] = resolved.value
    line = " ".join(_substitute(command.get("command-line", ""), replacements).split())
    try:
        arguments = shlex.split(line)
    except ValueError as exc:
        raise ResolutionError(f"command line {line!r} cannot be split: {exc}") from exc

    fed: dict[str, ResolvedInput] = {}
    for key in ("external-inputs", "derived-inputs"):
        for winp in wrapper.get(key, []):
            mount = winp.get("provides-files-for-command-mount")
            if mount:
                fed[mount] = resolver.inputs[winp["name"]]
    mounts: list[ResolvedMount] = []
    for mount in command.get("mounts", []):
        source = fed.get(mount["name"])
        host = None
        if source is not None:
            obj = source.obj
            if obj is None or obj.directory is None:
                raise ResolutionError(
                    f"mount {mount['name']!r}: input {source.name!r} holds no archive folder"
                )
            host = obj.directory.parent if obj.type == "File" else obj.directory
        mounts.append(ResolvedMount(
            mount["name"], mount["path"], host,
            writable=source is None, fed_by=source.name if source else None,
        ))
    env = {k: _substitute(str(v), replacements)
           for k, v in (command.get("environment-variables") or {}).items()}
    return ResolvedCommand(
        command=command, wrapper=wrapper, wrapper_inputs=resolver.inputs,
        command_inputs=command_values, command_line=line, arguments=arguments,
        mounts=mounts, environment=env,
    )

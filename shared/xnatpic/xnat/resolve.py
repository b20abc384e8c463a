"""Resolve a command's wrapper for one launch, as the Container Service (v3.7.3) does.

Each rule cites ``CommandResolutionServiceImpl.java`` (CRSI below, under container-service
``src/main/java/org/nrg/containers/services/impl/``); the launch section of
docs/xnat-conformance.md lists them with the tests that check them.

- Inputs form trees walked depth first: each external input with the derived inputs and
  command inputs under it, then the command inputs no wrapper input provides (CRSI
  1526-1589, resolveNode 1600-1662). As each input resolves, its raw value is stored under
  its replacement key (default ``#name#``) in the *template values*: matchers of later
  inputs, output paths, handler labels/descriptions/formats/content/tags, environment
  variables, ``working-directory`` and mount paths are filled from them (CRSI 804, 875,
  2338-2343, 2407-2425, 2589).
- The command line is filled only from *command-input* values, each as flag + separator +
  value (CRSI 1684-1692, getValueForCommandLine 1786-1820); a wrapper input's key stays in
  the command line as written.
- A command input takes its default, then the launch value, then the value of the wrapper
  input providing it when that is not null (CRSI 1464-1487). Booleans follow Java's
  ``Boolean.parseBoolean`` (only "true", any case): ``true-value`` or ``false-value`` when set,
  else the value unchanged (CRSI 1497-1505). Numbers and select values are not checked.
- Derived ``number`` and ``boolean`` inputs and ``Config`` inputs never get a value (CRSI
  917-924, 1419-1422); a required one fails the launch like any unresolved input.
- An external XNAT-object input with a matcher keeps its object only when the matcher
  matches it (CRSI 2091-2118).
- Several values: ``multiple-delimiter`` ``space`` (also the default and any unknown name),
  ``comma``, ``flag`` (flag before each value) or ``quoted-space`` (the whole list in ONE pair
  of single quotes) (CRSI 1744-1784, CommandInputEntity.java 347-359).
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat import jsonpath
from xnatpic.xnat.archive import XnatObject
from xnatpic.xnat.errors import IllegalValueError, MatcherSyntaxError, ResolutionError
from xnatpic.xnat.schema import XNAT_OBJECT_TYPES

__all__ = [
    "ResolvedCommand",
    "ResolvedInput",
    "ResolvedMount",
    "ResolvedOutput",
    "find_wrapper",
    "parse_boolean",
    "resolve",
    "wrapper_root_type",
]

_log = logging.getLogger(__name__)

#: What the Container Service refuses in any resolved value (CommandResolutionService.java:14).
ILLEGAL_STRINGS = (";", "&&", "||", "`", "(")
#: Wrapper input types whose value never resolves (derived: CRSI 917-924; Config: 1419).
_UNRESOLVED_DERIVED = frozenset({"number", "boolean", "Config"})
#: Input types that can feed a mount (CommandWrapperInputType.java:47-49); a File mounts
#: the file itself (XnatFile.java:113-115: its root path is its path).
_MOUNTABLE = frozenset({"Project", "ProjectAsset", "SubjectAssessor", "Session", "Scan",
                        "Assessor", "Resource", "File"})
#: Which properties a launch value may name a derived object by, in order (CRSI 1262-1290).
_VALUE_KEYS = {"Scan": ("uri", "id", "directory")}


def parse_boolean(value: str | None) -> bool:
    """Java's ``Boolean.parseBoolean``: True only for "true" in any case.

    Examples
    --------
    >>> [parse_boolean(v) for v in ("TRUE", "true", "1", "yes", None)]
    [True, True, False, False, False]
    """
    return value is not None and value.lower() == "true"


@dataclass
class ResolvedInput:
    """A wrapper or command input after resolution.

    ``value`` is None when nothing resolved, a list for a ``multiple`` derived input.
    """

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
    """A mount: its container path and where its files come from.

    ``host`` is the archive folder mounted read-only; None for a fresh build folder:
    an output mount (nobody feeds it) or a writable input mount, whose ``copy_from``
    archive folder is copied into the build folder first (CRSI 2733-2757).
    """

    name: str
    path: str
    host: Path | None
    writable: bool
    fed_by: str | None = None
    copy_from: Path | None = None


@dataclass
class ResolvedOutput:
    """One output handler's upload, with its templates filled (CRSI 2325-2343)."""

    name: str
    handler: str
    mount: str
    path: str
    required: bool
    type: str
    parent: str
    label: str | None
    description: str | None
    format: str | None
    content: str | None
    tags: list[str]


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
    working_directory: str | None = None
    outputs: list[ResolvedOutput] = field(default_factory=list)
    container_labels: dict[str, str] = field(default_factory=dict)

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
            "working-directory": self.working_directory,
            "mounts": [{"name": m.name, "path": m.path, "host": str(m.host) if m.host else None,
                        "writable": m.writable, "fed-by": m.fed_by} for m in self.mounts],
            "outputs": [{"name": o.name, "handler": o.handler, "path": o.path,
                         "label": o.label, "required": o.required} for o in self.outputs],
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
    """Return the type of the wrapper's root: its first external input of an XNAT type."""
    for winp in wrapper.get("external-inputs", []):
        wtype = winp.get("type", "string")
        if wtype in XNAT_OBJECT_TYPES:
            return str(wtype)
    return None


def replacement_key(inp: dict[str, Any]) -> str:
    """An input's replacement key: its own when not blank, else ``#name#`` (Command.java)."""
    raw = inp.get("replacement-key")
    return str(raw) if raw is not None and str(raw).strip() else f"#{inp['name']}#"


def fill_template(template: str | None, values: dict[str, str]) -> str | None:
    """Replace every replacement key found in ``template`` by its value (CRSI 2822-2851)."""
    if template is None or not template.strip():
        return template
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def _check_legal(name: str, value: str | None) -> None:
    if value is None:
        return
    for illegal in ILLEGAL_STRINGS:
        if illegal in value:
            raise IllegalValueError(
                f'Input "{name}" has a value containing illegal string "{illegal}" '
                f"(value {value!r}); the Container Service refuses ; && || backtick and ("
            )


#: Characters a value may not hold (xnatpic, stricter than CS): whitespace, quotes and
#: backslash would make CS's ShellSplitter (utils/ShellSplitter.java:13-47, called at
#: DockerControlApi.java:606-608 and :728-732) cut one value into several arguments or
#: join it with the next; the rest is syntax to ``/bin/sh -c`` under override-entrypoint.
_NOT_ONE_ARGUMENT = frozenset(" \t\n\r\x0b\x0c'\"\\|&;<>$`(){}*?[]~!#")


def check_one_argument(name: str, value: str | None) -> None:
    """Refuse a value that would not reach the step as exactly one argument.

    The Container Service pastes each value into the command line and splits the line
    with its ShellSplitter (or hands it to ``/bin/sh -c`` when ``override-entrypoint``),
    so ``scans=3 --output DIR`` becomes three arguments there. xnatpic refuses such a
    value before anything runs.

    Raises
    ------
    IllegalValueError
        Naming the input, the value and the character.

    Examples
    --------
    >>> check_one_argument("scans", "3,4")
    >>> check_one_argument("scans", "3 --output /x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xnatpic.xnat.errors.IllegalValueError: Input "scans" has a value containing ' ' ...
    """
    if value is None:
        return
    bad = sorted({c for c in value if c in _NOT_ONE_ARGUMENT or not c.isprintable()})
    if bad:
        raise IllegalValueError(
            f'Input "{name}" has a value containing {", ".join(map(repr, bad))} '
            f"(value {value[:80]!r}): each value must stay one argument with no shell "
            "syntax; xnatpic refuses whitespace, quotes, backslash, control characters "
            "and | & ; < > $ ` ( ) { } * ? [ ] ~ ! #"
        )


def _java_list(values: list[str]) -> str:
    """A list as Java's ``List.toString`` writes it: ``[a, b]``."""
    return "[" + ", ".join(values) + "]"


def _blank(text: str | None) -> bool:
    return text is None or not text.strip()


def multiple_for_command_line(cinp: dict[str, Any], values: list[str]) -> str:
    """Several values on the command line (CRSI 1744-1784).

    The prefix is flag + separator, each defaulting to a space when blank, and no prefix
    at all when both are blank.

    Examples
    --------
    >>> multiple_for_command_line({"command-line-flag": "--s"}, ["a", "b"])
    '--s a b'
    >>> print(multiple_for_command_line({"multiple-delimiter": "quoted-space"}, ["a", "b"]))
    'a b'
    """
    if not values:
        return ""
    flag = cinp.get("command-line-flag")
    sep = cinp.get("command-line-separator")
    prefix = (" " if _blank(flag) else str(flag)) + (" " if _blank(sep) else str(sep))
    prefix = "" if _blank(prefix) else prefix
    delimiter_name = cinp.get("multiple-delimiter") or ""
    suffix = ""
    if delimiter_name == "quoted-space":
        delimiter, prefix, suffix = " ", prefix + "'", "'"
    elif delimiter_name == "comma":
        delimiter = ","
    elif delimiter_name == "flag":
        delimiter = " " + prefix
    else:  # "space", null and any other name (CommandInputEntity.getByName)
        delimiter = " "
    return prefix + delimiter.join(values) + suffix


def value_for_command_line(cinp: dict[str, Any], value: str) -> str:
    """One command input's text on the command line (CRSI 1786-1820).

    A blank value gives "" (its flag too); a ``select-many`` value that is a JSON list of
    strings is written as several values; otherwise flag + separator (a space when
    null, kept as given when "") + value.
    """
    if _blank(value):
        return ""
    if cinp.get("type") == "select-many":
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return multiple_for_command_line(cinp, parsed)
    flag = cinp.get("command-line-flag")
    if _blank(flag):
        return value
    sep = cinp.get("command-line-separator")
    return f"{flag}{' ' if sep is None else sep}{value}"


def _object_property(obj: XnatObject, prop: str | None, matcher: str | None) -> str | None:
    """``$.<prop>`` (with ``[?(<matcher>)]``) of an object's JSON read as a String.

    CRSI 902-916 and 1860-1866 read it with Jayway JsonPath mapped by Jackson to a String:
    a missing path is an InvalidPathException (logged, null); a filter gives a list and an
    object or list does not map to a String (MappingException, logged, null: Jackson's
    defaults, inferred); numbers and booleans map to their text.
    """
    if not prop:
        return obj.uri
    if matcher or prop not in obj.data:
        return None
    value = obj.data[prop]
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Resolver:
    def __init__(self, command: dict[str, Any], wrapper: dict[str, Any], root: XnatObject,
                 params: dict[str, str]) -> None:
        self.command = command
        self.wrapper = wrapper
        self.root = root
        self.params = dict(params)
        self.used: set[str] = set()
        self.inputs: dict[str, ResolvedInput] = {}
        self.command_values: dict[str, str | list[str] | None] = {}
        self.templates: dict[str, str] = {}
        self.command_line: dict[str, str] = {}
        self.root_taken = False

    # parameters ------------------------------------------------------------------------

    def param(self, name: str) -> str | None:
        if name in self.params:
            self.used.add(name)
            return self.params[name]
        return None

    # the input trees -------------------------------------------------------------------

    def run(self) -> None:
        externals = list(self.wrapper.get("external-inputs", []))
        deriveds = list(self.wrapper.get("derived-inputs", []))
        children: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        providers: dict[str, dict[str, Any]] = {}
        for winp in externals + deriveds:
            parent = winp.get("derived-from-wrapper-input")
            if parent:
                children.setdefault(parent, []).append(("derived", winp))
            target = winp.get("provides-value-for-command-input")
            if target:
                providers[target] = winp
        roots: list[tuple[str, dict[str, Any]]] = [("external", w) for w in externals]
        for cinp in self.command.get("inputs", []):
            provider = providers.get(cinp["name"])
            if provider is None:
                roots.append(("command", cinp))
            else:
                children.setdefault(provider["name"], []).append(("command", cinp))
                if not provider.get("required", True):
                    # CRSI 1576-1581: no leftover key when an optional parent resolves nothing
                    self.command_line[replacement_key(cinp)] = ""
        for kind, inp in roots:
            self.node(kind, inp, None, children)
        self.check_unique()

    def node(self, kind: str, inp: dict[str, Any], parent: ResolvedInput | None,
             children: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
        if kind == "external":
            resolved = self.external(inp)
        elif kind == "derived":
            assert parent is not None
            resolved = self.derived(inp, parent)
        else:
            resolved = self.command_input(inp, parent)
        if kind != "command":
            self.inputs[inp["name"]] = resolved
        value = resolved.value
        key = replacement_key(inp)
        if not isinstance(value, list):
            self.templates[key] = value or ""
        if kind != "command":  # a command input may share a wrapper input's name
            for child_kind, child in children.get(inp["name"], []):
                self.node(child_kind, child, resolved, children)

    def external(self, winp: dict[str, Any]) -> ResolvedInput:
        name, wtype = winp["name"], winp.get("type", "string")
        if wtype in XNAT_OBJECT_TYPES:
            if self.root_taken:
                raise ResolutionError(f"wrapper input {name!r}: a local launch has one root "
                                      "object (the session or project); a second object "
                                      "input is not supported")
            self.root_taken = True
            obj = self.root_as(name, wtype)
            matcher = fill_template(winp.get("matcher"), self.templates)
            if matcher and not self.matches(name, matcher, obj):
                _log.info("input %s: %s %s does not match %r", name, wtype, obj.ident, matcher)
                return ResolvedInput(name, wtype, None)
            value = obj.uri
            _check_legal(name, value)
            return ResolvedInput(name, wtype, value, [obj])
        value = winp.get("default-value")
        runtime = self.param(name)
        if runtime is not None:
            value = runtime
        value = None if value is None else str(value)
        _check_legal(name, value)
        return ResolvedInput(name, wtype, value)

    @staticmethod
    def matches(name: str, matcher: str, obj: XnatObject) -> bool:
        try:
            return bool(jsonpath.filter_objects(matcher, [obj.data]))
        except MatcherSyntaxError as exc:
            raise ResolutionError(f"input {name!r}: {exc}") from exc

    def root_as(self, name: str, wtype: str) -> XnatObject:
        if wtype == self.root.type:
            return self.root
        if wtype == "Scan" and self.root.type == "Session":
            scan_id = self.param(name)
            scans = self.root.children.get("Scan", [])
            found = [s for s in scans if scan_id in (s.ident, s.uri)]
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

    def derived(self, winp: dict[str, Any], parent: ResolvedInput) -> ResolvedInput:
        name, wtype = winp["name"], winp.get("type", "string")
        matcher = fill_template(winp.get("matcher"), self.templates)
        prop = winp.get("derived-from-xnat-object-property")
        if wtype in _UNRESOLVED_DERIVED:
            _log.warning("derived input %s: a derived %s input never gets a value on XNAT "
                         "(Container Service 3.7.3 leaves it unresolved)", name, wtype)
            return self.values(winp, [], [])
        pobj = parent.obj
        if pobj is None:
            return self.values(winp, [], [])
        if wtype == "string":
            # CRSI 909: "$." + property; without a property the path is "$.null": no value
            value = _object_property(pobj, prop, matcher) if prop else None
            return self.values(winp, [] if value is None else [value], [])
        if wtype == "Directory":
            if pobj.type != "Resource":
                return self.values(winp, [], [])
            value = _object_property(pobj, "directory", matcher)
            return self.values(winp, [] if value is None else [value],
                               [pobj] if value is not None else [])
        candidates = self.children(pobj, wtype, name)
        runtime = self.param(name)
        wanted = runtime if runtime is not None else winp.get("default-value")
        try:
            kept_data = jsonpath.filter_objects(matcher, [c.data for c in candidates]) \
                if matcher else [c.data for c in candidates]
        except MatcherSyntaxError as exc:
            raise ResolutionError(f"derived input {name!r}: {exc}") from exc
        found = [c for c in candidates if any(c.data is k for k in kept_data)]
        if wanted not in (None, ""):
            # CRSI 1930-1963 and 1262-1290: the value is tried as uri, id, (label,) directory
            for key in _VALUE_KEYS.get(wtype, ("uri", "id", "label", "directory")):
                picked = [o for o in found if str(o.data.get(key)) == str(wanted)]
                if picked:
                    found = picked
                    break
            else:
                found = []
        values = [_object_property(o, prop, None) if prop else o.uri for o in found]
        pairs = [(v, o) for v, o in zip(values, found, strict=True) if v is not None]
        return self.values(winp, [v for v, _ in pairs], [o for _, o in pairs])

    def values(self, winp: dict[str, Any], values: list[str], objects: list[XnatObject]
               ) -> ResolvedInput:
        name, wtype = winp["name"], winp.get("type", "string")
        for value in values:
            _check_legal(name, value)
        if winp.get("multiple"):
            return ResolvedInput(name, wtype, list(values), objects)
        if len(values) == 1:
            return ResolvedInput(name, wtype, values[0], objects)
        required = winp.get("required", True) is not False
        what = wtype + (f" of {objects[0].type}" if objects else "")
        if not values:
            if required:
                raise ResolutionError(
                    f'Input "{name}" could not be resolved for this item. You might check the '
                    f"JSONPath matchers in command.json and confirm that this item has {wtype} "
                    "data."
                )
            return ResolvedInput(name, wtype, None)
        ids = ", ".join(o.ident for o in objects) or ", ".join(values)
        if required:
            raise ResolutionError(
                f'Input "{name}" does not have a unique, resolved value and multiple = true '
                f"is not set in command.json: {len(values)} {what} objects match ({ids}); "
                f"pick one with --param {name}=ID"
            )
        return ResolvedInput(name, wtype, None)

    @staticmethod
    def children(parent: XnatObject, wtype: str, name: str) -> list[XnatObject]:
        if wtype in parent.children:
            return parent.children[wtype]
        if wtype == "File[]" and "File" in parent.children:
            return parent.children["File"]
        _log.error("An input of type %s cannot be derived from an input of type %s (%s)",
                   wtype, parent.type, name)
        return []

    def command_input(self, cinp: dict[str, Any], parent: ResolvedInput | None
                      ) -> ResolvedInput:
        name, ctype = cinp["name"], cinp.get("type", "string")
        key = replacement_key(cinp)
        if parent is not None and isinstance(parent.value, list):
            # the command input of a ``multiple`` derived input (CRSI 1697-1718)
            values = list(parent.value)
            for one in values:
                check_one_argument(name, one)
            self.command_values[name] = values
            self.templates[key] = _java_list(values)
            self.command_line[key] = multiple_for_command_line(cinp, values)
            parent_key = f"#{parent.name}#"
            self.templates[parent_key] = _java_list(values)
            return ResolvedInput(name, ctype, values)
        default = cinp.get("default-value")
        value = None if default is None else str(default)
        runtime = self.param(name)
        if runtime is not None:
            value = runtime
        if parent is not None and parent.value is not None:
            value = str(parent.value)
        if ctype == "boolean":
            chosen = cinp.get("true-value") if parse_boolean(value) else cinp.get("false-value")
            if chosen is not None:
                value = str(chosen)
        _check_legal(name, value)
        self._check_command_line_value(cinp, value)
        self.command_values[name] = value
        self.command_line[key] = value_for_command_line(cinp, value or "")
        return ResolvedInput(name, ctype, value)

    @staticmethod
    def _check_command_line_value(cinp: dict[str, Any], value: str | None) -> None:
        """Each value (each element of a select-many list) must stay one argument."""
        if value is None or _blank(value):
            return
        if cinp.get("type") == "select-many":
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
                for one in parsed:
                    check_one_argument(cinp["name"], one)
                return
        check_one_argument(cinp["name"], value)

    def check_unique(self) -> None:
        """CRSI 443-452: every required input must have a non-null value."""
        missing = [n for n, r in self.inputs.items() if r.value is None and self.required(n)]
        missing += [c["name"] for c in self.command.get("inputs", [])
                    if c.get("required") and self.command_values.get(c["name"]) is None]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise ResolutionError(f"Missing values for required input{plural}: "
                                  f"{', '.join(missing)}. Give them with --param NAME=VALUE")

    def required(self, name: str) -> bool:
        for key in ("external-inputs", "derived-inputs"):
            for winp in self.wrapper.get(key, []):
                if winp.get("name") == name:
                    return winp.get("required", True) is not False
        return False


def _mounts(command: dict[str, Any], wrapper: dict[str, Any], inputs: dict[str, ResolvedInput],
            templates: dict[str, str]) -> list[ResolvedMount]:
    fed: dict[str, ResolvedInput] = {}
    for key in ("external-inputs", "derived-inputs"):
        for winp in wrapper.get(key, []):
            mount = winp.get("provides-files-for-command-mount")
            if mount:
                fed[mount] = inputs[winp["name"]]
    mounts: list[ResolvedMount] = []
    for mount in command.get("mounts", []):
        path = fill_template(mount["path"], templates) or mount["path"]
        source = fed.get(mount["name"])
        if source is None:
            # CRSI 2591-2592, 2652-2669: nobody feeds it: a fresh writable build folder
            mounts.append(ResolvedMount(mount["name"], path, None, writable=True))
            continue
        if source.type not in _MOUNTABLE:
            # CRSI 2676-2679, CommandWrapperInputType.java:47-49
            raise ResolutionError(f"I don't know how to provide files to a mount from an input "
                                  f'of type "{source.type}" (input "{source.name}", mount '
                                  f'"{mount["name"]}")')
        obj = source.obj
        if obj is None or obj.directory is None:
            raise ResolutionError(
                f'mount "{mount["name"]}": input "{source.name}"\'s XnatModelObject value is '
                "null (it resolved to no single archive object)"
            )
        host = obj.directory
        if bool(mount.get("writable")):
            # CRSI 2733-2757: a writable mount gets a copy of the files in a build folder
            mounts.append(ResolvedMount(mount["name"], path, None, writable=True,
                                        fed_by=source.name, copy_from=host))
        else:
            mounts.append(ResolvedMount(mount["name"], path, host, writable=False,
                                        fed_by=source.name))
    return mounts


def _outputs(command: dict[str, Any], wrapper: dict[str, Any], templates: dict[str, str]
             ) -> list[ResolvedOutput]:
    outputs = {o["name"]: o for o in command.get("outputs", [])}
    resolved: list[ResolvedOutput] = []
    for handler in wrapper.get("output-handlers", []):
        output = outputs.get(handler.get("accepts-command-output", ""))
        if output is None:
            raise ResolutionError(f"Command wrapper output handler \"{handler.get('name')}\" "
                                  "has no resolved output to handle.")
        resolved.append(ResolvedOutput(
            name=f"{output['name']}:{handler['name']}", handler=handler["name"],
            mount=output["mount"], path=fill_template(output.get("path"), templates) or "",
            required=output.get("required") is True,
            type=handler.get("type", "Resource"),
            parent=handler.get("as-a-child-of") or handler.get("as-a-child-of-wrapper-input")
            or "",
            label=fill_template(handler.get("label"), templates),
            description=fill_template(handler.get("description"), templates),
            format=fill_template(handler.get("format"), templates),
            content=fill_template(handler.get("content"), templates),
            tags=[fill_template(t, templates) or "" for t in handler.get("tags") or []],
        ))
    return resolved


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
        Launch values by input name (XNAT's launch parameters). A name no input has is
        ignored by XNAT; here it is logged as a warning.

    Returns
    -------
    ResolvedCommand

    Raises
    ------
    ResolutionError
        When an input cannot be resolved as the Container Service would fail it (nothing
        or several objects for a required input, a required value missing).
    IllegalValueError
        When a value contains ``;``, ``&&``, ``||``, a backtick or ``(``.
    """
    resolver = _Resolver(command, wrapper, root, params or {})
    resolver.run()
    unused = sorted(set(resolver.params) - resolver.used)
    if unused:
        known = sorted({i["name"] for i in command.get("inputs", [])} | set(resolver.inputs))
        _log.warning("parameter(s) %s match no input and are ignored, as XNAT ignores them; "
                     "this wrapper takes %s", unused, known)
    templates = resolver.templates
    line = command.get("command-line") or ""
    for key, value in resolver.command_line.items():
        line = line.replace(key, value)
    try:
        arguments = shlex.split(line)
    except ValueError as exc:
        raise ResolutionError(f"command line {line!r} cannot be split: {exc}") from exc
    env = {fill_template(k, templates) or k: fill_template(str(v), templates) or ""
           for k, v in (command.get("environment-variables") or {}).items()}
    # CRSI 2368-2384: container labels are filled like the environment
    labels = {fill_template(k, templates) or k: fill_template(str(v), templates) or ""
              for k, v in (command.get("container-labels") or {}).items()}
    return ResolvedCommand(
        command=command, wrapper=wrapper, wrapper_inputs=resolver.inputs,
        command_inputs=resolver.command_values, command_line=line, arguments=arguments,
        mounts=_mounts(command, wrapper, resolver.inputs, templates), environment=env,
        working_directory=fill_template(command.get("working-directory"), templates),
        outputs=_outputs(command, wrapper, templates), container_labels=labels,
    )

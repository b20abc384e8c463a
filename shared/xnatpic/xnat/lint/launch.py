"""Warnings: what the Container Service accepts, then ignores or fails on at launch."""

from __future__ import annotations

import re
from typing import Any

from xnatpic.xnat import jsonpath
from xnatpic.xnat.errors import MatcherSyntaxError
from xnatpic.xnat.lint import shape
from xnatpic.xnat.lint.validate import Report, handler_target
from xnatpic.xnat.lint.values import as_bool, as_text, blank, has_tag, objects, text_or
from xnatpic.xnat.schema import illegal_fragment

__all__ = ["RESERVED_ENV", "LaunchChecks"]

#: Environment variables ContainerServiceImpl sets on every container (:816-828).
RESERVED_ENV = frozenset({"XNAT_USER", "XNAT_PASS", "XNAT_HOST", "XNAT_WORKFLOW_ID",
                          "XNAT_EVENT_ID"})
_COMMAND_INPUT_TYPES = frozenset({
    "string", "boolean", "number", "select-one", "select-many", "file", "File"})
_REPLACEMENT_KEY = re.compile(r"#[A-Za-z0-9_\-]+#")
_SHELL_SYNTAX = re.compile(r"\$|\||>|<|&&|;|\*|`|~/")
#: Which parent types CommandResolutionServiceImpl derives each type from (:901-1427).
_DERIVABLE_FROM: dict[str, frozenset[str]] = {
    "string": frozenset({"Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session",
                         "Scan", "Assessor", "File", "Resource"}),
    "Directory": frozenset({"Resource"}),
    "File": frozenset({"Resource"}),
    "File[]": frozenset({"Resource"}),
    "Project": frozenset({"ProjectAsset", "Session", "Subject", "Scan", "Assessor",
                          "SubjectAssessor"}),
    "ProjectAsset": frozenset({"Project"}),
    "Subject": frozenset({"Project", "Session", "SubjectAssessor"}),
    "Session": frozenset({"Subject", "Scan", "Assessor"}),
    "SubjectAssessor": frozenset({"Subject"}),
    "Scan": frozenset({"Session", "Resource"}),
    "Assessor": frozenset({"Session"}),
    "Resource": frozenset({"Project", "ProjectAsset", "Subject", "Session", "Scan",
                           "Assessor", "SubjectAssessor"}),
}
#: Child types picked among several children of the parent, and the keys that pin one.
_PINNING_KEYS: dict[str, frozenset[str]] = {
    "Scan": frozenset({"id", "uid", "integer-id", "uri"}),
    "Assessor": frozenset({"id", "label", "uri"}),
    "SubjectAssessor": frozenset({"id", "label", "uri"}),
    "Resource": frozenset({"id", "label", "uri"}),
    "File": frozenset({"name", "uri"}),
}
#: (child type, parent type) pairs where one parent has several such children.
_ONE_OF_MANY = {("Session", "Subject"), ("Subject", "Project"), ("Scan", "Session"),
                ("Assessor", "Session"), ("SubjectAssessor", "Subject"), ("File", "Resource")}
_RESOURCE_PARENTS = frozenset({"Project", "ProjectAsset", "Subject", "Session", "Scan",
                               "Assessor", "SubjectAssessor"})
_KNOWN_KEYS = {
    "command": shape.known_keys(shape.COMMAND) | {"id"},
    "mount": shape.known_keys(shape.MOUNT) | {"id"},
    "input": shape.known_keys(shape.INPUT) | {"id"},
    "output": shape.known_keys(shape.OUTPUT) | {"id"},
    "wrapper": shape.known_keys(shape.WRAPPER) | {"id"},
    "external-inputs": shape.known_keys(shape.EXTERNAL_INPUT) | {"id"},
    "derived-inputs": shape.known_keys(shape.DERIVED_INPUT) | {"id"},
    "handler": shape.known_keys(shape.HANDLER) | {"id"},
}


def _key(inp: dict[str, Any]) -> str:
    raw = as_text(inp, "replacement-key")
    return raw if not blank(raw) else f"#{as_text(inp, 'name')}#"


class LaunchChecks:
    """Warnings for one command object (run after the shape and validation checks)."""

    def __init__(self, command: dict[str, Any], add: Report) -> None:
        self.cmd = command
        self.add = add

    def unknown(self, obj: dict[str, Any], kind: str, where: str) -> None:
        for key in obj:
            if key == "ipc-mode" and kind == "command":
                self.add("W102", "'ipc-mode' is ignored: XNAT reads 'ipcMode' when a command "
                         "is added", where)
            elif key not in _KNOWN_KEYS[kind]:
                self.add("W101", f"unknown key '{key}' (XNAT ignores it)", where)

    def run(self, image: str | None, label: bool) -> None:
        """Report every warning."""
        cmd = self.cmd
        self.unknown(cmd, "command", "")
        self.image(image, label)
        if "gpus" in cmd:
            self.add("W105", "'gpus' is stored but no Container Service backend applies it", "")
        missing = [k for k in ("reserve-memory", "limit-memory", "limit-cpu") if k not in cmd]
        if missing:
            self.add("W106", f"missing {', '.join(missing)}: Swarm/Kubernetes schedule by them",
                     "")
        if blank(as_text(cmd, "version")):
            self.add("W107", "no 'version': a changed command cannot be told apart", "")
        self.environment()
        mounts = self.mounts()
        inputs = self.inputs()
        outputs = self.outputs()
        self.command_line(inputs)
        for i, secret in enumerate(objects(cmd, "secrets")):
            if secret.get("source") is None:
                self.add("W127", "secret without a 'source': the launch fails resolving it",
                         f"secrets[{i}]")
            source = secret.get("source")
            if isinstance(source, dict) and source.get("type") == "system-property":
                name = source.get("identifier")
                self.add("W131", f"secret from system property {name!r}: every launch of "
                         f"this command fails ('Could not resolve secret') until XNAT's "
                         f"administrator sets -D{name}=VALUE in JAVA_OPTS and restarts XNAT; "
                         "say so in the command's description", f"secrets[{i}]")
        for i, wrapper in enumerate(objects(cmd, "xnat")):
            name = as_text(wrapper, "name") or ""
            self.wrapper(wrapper, f"xnat[{i}]" + (f" ({name})" if name else ""), inputs,
                         mounts, outputs)

    def image(self, image: str | None, label: bool) -> None:
        if blank(image):
            return
        assert image is not None
        if not label and not has_tag(image):
            self.add("W103", f"image {image!r} has no tag: XNAT stores it as {image}:latest", "")
        first = image.split("/", 1)[0]
        if "/" not in image or not ("." in first or ":" in first or first == "localhost"):
            self.add("W104", f"image {image!r} names no registry host: Swarm/Kubernetes nodes "
                     "pull it from Docker Hub, which only works for a public Hub image; push "
                     "a local build to a registry and name it HOST/NAME:TAG", "")

    def environment(self) -> None:
        env = self.cmd.get("environment-variables")
        if not isinstance(env, dict):
            return
        for name in sorted(set(env) & RESERVED_ENV):
            self.add("W123", f"environment variable {name} is set by XNAT itself: the launch "
                     "fails on the duplicate", "environment-variables")
        for name in env:
            value = as_text(env, name)
            if value is not None:
                self.check_value(value, f"environment variable {name}", "environment-variables")

    def check_value(self, value: str | None, what: str, where: str) -> None:
        fragment = illegal_fragment(value) if value else None
        if fragment:
            self.add("W116", f"{what} {value!r} contains {fragment!r}", where)

    def mounts(self) -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for i, mount in enumerate(objects(self.cmd, "mounts")):
            name = as_text(mount, "name") or ""
            where = f"mounts[{i}]" + (f" ({name})" if name else "")
            self.unknown(mount, "mount", where)
            path = as_text(mount, "path") or ""
            if path.strip() and not path.startswith("/"):
                self.add("W121", f"mount path {path!r} is not absolute", where)
            seen.setdefault(name, mount)
        return seen

    def inputs(self) -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for i, inp in enumerate(objects(self.cmd, "inputs")):
            name = as_text(inp, "name") or ""
            where = f"inputs[{i}]" + (f" ({name})" if name else "")
            self.unknown(inp, "input", where)
            kind = text_or(inp, "type", "string")
            if kind not in _COMMAND_INPUT_TYPES:
                self.add("W109", f"input type {kind!r} unknown: XNAT treats it as string", where)
            for key in ("default-value", "true-value", "false-value"):
                self.check_value(as_text(inp, key), key, where)
            seen.setdefault(name, inp)
        return seen

    def outputs(self) -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for i, out in enumerate(objects(self.cmd, "outputs")):
            name = as_text(out, "name") or ""
            where = f"outputs[{i}]" + (f" ({name})" if name else "")
            self.unknown(out, "output", where)
            if "glob" in out and out["glob"] not in (None, ""):
                self.add("W110", "'glob' is ignored: everything under 'path' is uploaded", where)
            path = as_text(out, "path") or ""
            if path.startswith("/"):
                self.add("W121", f"output path {path!r} must be relative to its mount", where)
            seen.setdefault(name, out)
        return seen

    def command_line(self, inputs: dict[str, dict[str, Any]]) -> None:
        cmd = self.cmd
        line = as_text(cmd, "command-line") or ""
        command_keys = {_key(inp) for inp in inputs.values()}
        wrapper_keys = {
            _key(winp) for wrapper in objects(cmd, "xnat")
            for kind in ("external-inputs", "derived-inputs") for winp in objects(wrapper, kind)
        }
        for key in sorted(set(_REPLACEMENT_KEY.findall(line))):
            if key in command_keys:
                continue
            if key in wrapper_keys:
                self.add("W112", f"command-line uses {key}, a wrapper-input key: XNAT "
                         "substitutes only command-input keys there (left as is)", "")
            else:
                self.add("W111", f"command-line uses {key} but no input defines it", "")
        env = cmd.get("environment-variables")
        env_values = [str(v) for v in env.values()] if isinstance(env, dict) else []
        elsewhere = " ".join([line, as_text(cmd, "working-directory") or "", *env_values])
        for name, inp in inputs.items():
            key = _key(inp)
            if key not in elsewhere:
                self.add("W113", f"replacement key {key} never appears in command-line, "
                         "working-directory or environment", f"input {name}")
        if not as_bool(cmd, "override-entrypoint"):
            match = _SHELL_SYNTAX.search(_REPLACEMENT_KEY.sub("", line))
            if match:
                self.add("W108", f"command-line uses {match.group(0)!r} but override-entrypoint "
                         "is false: the line is split into arguments, no shell interprets it",
                         "")

    # -- wrappers --------------------------------------------------------------------------
    def wrapper(self, wrapper: dict[str, Any], where: str, inputs: dict[str, dict[str, Any]],
                mounts: dict[str, dict[str, Any]], outputs: dict[str, dict[str, Any]]) -> None:
        self.unknown(wrapper, "wrapper", where)
        contexts = wrapper.get("contexts")
        if not contexts:
            self.add("W114", "no 'contexts': the wrapper is offered in no launch menu", where)
        external = objects(wrapper, "external-inputs")
        if not external:
            self.add("W115", "no external input: XNAT offers this wrapper only site-wide, "
                     "never on a project or session", where)
        elif len(external) > 1:
            self.add("W115", f"{len(external)} external inputs: only the first is set from the "
                     "object a launch starts on; the others need values at every launch", where)
        types: dict[str, str] = {}
        fed_mounts: set[str] = set()
        for kind in ("external-inputs", "derived-inputs"):
            for i, winp in enumerate(objects(wrapper, kind)):
                name = as_text(winp, "name") or ""
                wwhere = f"{where} {kind}[{i}]" + (f" ({name})" if name else "")
                self.unknown(winp, kind, wwhere)
                wtype = text_or(winp, "type", "string")
                target = as_text(winp, "provides-value-for-command-input")
                if not blank(target) and target not in inputs:
                    self.add("W124", f"feeds command input {target!r}, which does not exist",
                             wwhere)
                mount = as_text(winp, "provides-files-for-command-mount")
                if not blank(mount):
                    fed_mounts.add(mount or "")
                    if mount not in mounts:
                        self.add("W125", f"feeds mount {mount!r}, which does not exist", wwhere)
                self.check_value(as_text(winp, "default-value"), "default-value", wwhere)
                if kind == "derived-inputs":
                    self.derived(winp, wtype, types, wwhere)
                types.setdefault(name, wtype)
        for name, out in outputs.items():
            mount_name = as_text(out, "mount")
            if mount_name in fed_mounts:
                mount = mounts.get(mount_name or "", {})
                why = ("its input files are copied there and uploaded with the output"
                       if as_bool(mount, "writable") else
                       "it is the archive directory, mounted read-only")
                self.add("W122", f"output {name!r} is written to mount {mount_name!r}, which an "
                         f"input feeds: {why}; use a mount nobody feeds", where)
        self.handlers(wrapper, where)

    def derived(self, winp: dict[str, Any], wtype: str, types: dict[str, str],
                where: str) -> None:
        parent_type = types.get(as_text(winp, "derived-from-wrapper-input") or "")
        if wtype in ("number", "boolean", "Config", "file"):
            self.add("W120", f"a derived {wtype} input is never resolved by XNAT (no value)",
                     where)
        allowed = _DERIVABLE_FROM.get(wtype)
        if parent_type and allowed is not None and parent_type not in allowed:
            self.add("W119", f"XNAT cannot derive a {wtype} from a {parent_type}", where)
        matcher = as_text(winp, "matcher")
        parsed = False
        if not blank(matcher):
            try:
                jsonpath.parse(matcher or "")
                parsed = True
            except MatcherSyntaxError as exc:
                self.add("W118", str(exc), where)
        several = (wtype, parent_type) in _ONE_OF_MANY or (
            wtype == "Resource" and parent_type in _RESOURCE_PARENTS)
        required = as_bool(winp, "required") is not False  # null means true (Command.java:1698)
        if several and required and not as_bool(winp, "multiple"):
            keys = _PINNING_KEYS.get(wtype, frozenset({"id", "label", "uri"}))
            if not parsed or not _pins_one(matcher or "", keys):
                why = "no matcher" if blank(matcher) else (
                    f"matcher {matcher!r}" if parsed else "an unparsable matcher")
                self.add("W117", f"{why} can match several {wtype}s of one {parent_type}; "
                         f"match on one of {', '.join(sorted(keys))} with ==, or set "
                         "multiple: true", where)

    def handlers(self, wrapper: dict[str, Any], where: str) -> None:
        handlers = objects(wrapper, "output-handlers")
        by_name = {as_text(h, "name"): h for h in handlers}
        for i, handler in enumerate(handlers):
            name = as_text(handler, "name") or ""
            hwhere = f"{where} output-handlers[{i}]" + (f" ({name})" if name else "")
            self.unknown(handler, "handler", hwhere)
            parent = by_name.get(handler_target(handler))
            if parent is not None and parent is not handler:
                kind = text_or(handler, "type", "Resource")
                parent_kind = text_or(parent, "type", "Resource")
                if kind != "Resource" or parent_kind not in ("Assessor", "Scan"):
                    self.add("W126", f"a {kind} under handler {as_text(parent, 'name')!r} "
                             f"({parent_kind}) is not uploaded: only a Resource under an "
                             "Assessor or Scan is", hwhere)


def _pins_one(matcher: str, keys: frozenset[str]) -> bool:
    """Whether a matcher can only match one object: ``@.KEY == 'value'`` and no ``||``."""
    if "||" in matcher:
        return False
    names = "|".join(re.escape(k) for k in sorted(keys))
    literal = r"""(?:'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?)"""
    path = rf"@\.(?:{names})(?![\w.\[-])"
    return bool(re.search(rf"{path}\s*==\s*{literal}|{literal}\s*==\s*{path}", matcher))

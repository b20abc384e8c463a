"""``Command.validate()`` of the Container Service, rule for rule (Command.java:365-666)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnatpic.xnat.lint.values import (
    BAD_NAME_CHAR,
    as_bool,
    as_text,
    blank,
    has_tag,
    java_split,
    objects,
    parse_string_list,
    text_or,
    texts,
)

__all__ = ["COMMAND_TYPES", "RESERVED_SECRET_ENV", "Validator"]

COMMAND_TYPES = ("docker", "docker-setup", "docker-wrapup")
VISIBILITIES = frozenset({"public", "private", "protected"})
MULTIPLE_DELIMITERS = frozenset({"quoted-space", "space", "comma", "flag"})
SELECT_TYPES = frozenset({"select-one", "select-many"})
WRAPPER_INPUT_TYPES = frozenset({
    "string", "boolean", "number", "Directory", "File[]", "File", "Project", "ProjectAsset",
    "Subject", "SubjectAssessor", "Session", "Scan", "Assessor", "Resource", "Config", "file",
})
HANDLER_TYPES = ("Resource", "Assessor", "Scan")
#: ContainerService.RESERVED_ENV: secrets may not target these (ContainerService.java:43).
RESERVED_SECRET_ENV = frozenset({"XNAT_USER", "XNAT_PASS", "XNAT_HOST"})

Report = Callable[[str, str, str], None]

#: Fields stored in varchar(255) columns (Hibernate's default length; only descriptions,
#: default values and the command line are TEXT): longer values fail the INSERT.
VARCHAR_LIMIT = 255
_VARCHAR_FIELDS: dict[str, tuple[str, ...]] = {
    "command": ("name", "label", "version", "schema-version", "info-url", "container-name",
                "working-directory", "runtime", "ipcMode", "network", "gpus", "index", "hash"),
    "mounts": ("name", "path"),
    "inputs": ("name", "label", "matcher", "replacement-key", "command-line-flag",
               "command-line-separator", "true-value", "false-value", "select-values"),
    "outputs": ("name", "mount", "path", "glob"),
    "xnat": ("name", "label", "contexts"),
    "external-inputs": ("name", "label", "matcher", "provides-value-for-command-input",
                        "provides-files-for-command-mount", "via-setup-command",
                        "replacement-key"),
    "derived-inputs": ("name", "label", "matcher", "provides-value-for-command-input",
                       "provides-files-for-command-mount", "via-setup-command",
                       "replacement-key", "derived-from-wrapper-input",
                       "derived-from-xnat-object-property", "parser"),
    "output-handlers": ("name", "xsi-type", "accepts-command-output", "as-a-child-of",
                        "as-a-child-of-wrapper-input", "via-wrapup-command", "label", "format",
                        "description", "content", "tags"),
}
_VARCHAR_MAPS = ("environment-variables", "ports", "container-labels", "ulimits",
                 "generic-resources")


def _ill_named(name: str | None) -> bool:
    return blank(name) or bool(BAD_NAME_CHAR.search(name or ""))


class Validator:
    """Run the checks of ``Command.validate()`` on one command, reporting through ``add``.

    Parameters
    ----------
    command : dict
        The command as decoded from JSON.
    add : callable
        ``add(code, message, where)`` for each finding.
    image : str or None
        The image name XNAT validates: the ``image`` field on POST (with ``:latest`` added),
        or the image name used for a label import; None when the command names none.
    """

    def __init__(self, command: dict[str, Any], add: Report, image: str | None) -> None:
        self.cmd = command
        self.add = add
        self.image = image

    def run(self) -> None:
        """Report every validation error."""
        cmd = self.cmd
        if blank(as_text(cmd, "name")):
            self.add("E101", "command 'name' is blank", "")
        if self.image is None:
            pass  # no image yet: the one given when the command is added is validated (W129)
        elif blank(self.image):
            self.add("E102", "command 'image' is blank", "")
        elif not has_tag(self.image):
            self.add("E103", f"image name {self.image!r} has no tag (write e.g. "
                     f"{self.image}:1.0); XNAT adds no :latest when importing a label", "")
        kind = text_or(cmd, "type", "docker")
        if kind == "docker":
            self.docker()
        elif kind in COMMAND_TYPES:
            self.setup_or_wrapup(kind)
        else:
            self.add("E104", f"type {kind!r} is not one of {', '.join(COMMAND_TYPES)}", "")
        visibility = as_text(cmd, "visibility")
        if visibility is not None and visibility not in VISIBILITIES:
            self.add("E105", f"visibility {visibility!r} is not public, private or protected",
                     "")
        self.lengths()

    def lengths(self) -> None:
        """Values too long for their varchar(255) column (the save fails, HTTP 500)."""
        def check(obj: dict[str, Any], kind: str, where: str) -> None:
            for key in _VARCHAR_FIELDS[kind]:
                values = texts(obj, key) if isinstance(obj.get(key), list) else [
                    as_text(obj, key)]
                for value in values:
                    if value is not None and len(value) > VARCHAR_LIMIT:
                        self.add("E145", f"'{key}' is {len(value)} characters; XNAT stores at "
                                 f"most {VARCHAR_LIMIT} there", where)

        cmd = self.cmd
        check(cmd, "command", "")
        if self.image is not None and len(self.image) > VARCHAR_LIMIT:
            self.add("E145", f"image name is {len(self.image)} characters; XNAT stores at most "
                     f"{VARCHAR_LIMIT}", "")
        for key in _VARCHAR_MAPS:
            value = cmd.get(key)
            if isinstance(value, dict):
                for name in value:
                    text = as_text(value, name)
                    if len(name) > VARCHAR_LIMIT or (text and len(text) > VARCHAR_LIMIT):
                        self.add("E145", f"'{key}' entry {name[:40]!r} is longer than "
                                 f"{VARCHAR_LIMIT} characters", key)
        for kind in ("mounts", "inputs", "outputs"):
            for i, obj in enumerate(objects(cmd, kind)):
                check(obj, kind, f"{kind}[{i}]")
        for i, wrapper in enumerate(objects(cmd, "xnat")):
            check(wrapper, "xnat", f"xnat[{i}]")
            for kind in ("external-inputs", "derived-inputs", "output-handlers"):
                for j, obj in enumerate(objects(wrapper, kind)):
                    check(obj, kind, f"xnat[{i}] {kind}[{j}]")

    def setup_or_wrapup(self, kind: str) -> None:
        """Setup and wrapup commands may declare none of these (Command.java:639-665)."""
        for key in ("mounts", "inputs", "outputs", "xnat", "environment-variables", "ports",
                    "secrets"):
            value = self.cmd.get(key)
            if isinstance(value, (list, dict)) and value:
                self.add("E106", f"a {kind} command cannot declare any '{key}'", key)

    # -- type docker ---------------------------------------------------------------------
    def docker(self) -> None:
        cmd = self.cmd
        ulimits = cmd.get("ulimits")
        if isinstance(ulimits, dict):
            for name in ulimits:
                value = as_text(ulimits, name)
                if value is not None and (
                        value == "" or (":" in value and len(java_split(value, ":")) > 2)):
                    self.add("E107", f"ulimit {name}: {value!r} is not LIMIT or SOFT:HARD",
                             "ulimits")
        self.secrets()
        mounts = self.mounts()
        inputs = self.inputs()
        outputs = self.outputs(mounts)
        names: set[str | None] = set()
        for i, wrapper in enumerate(objects(cmd, "xnat")):
            name = as_text(wrapper, "name") or ""
            where = f"xnat[{i}]" + (f" ({name})" if name else "")
            if blank(name):
                self.add("E123", "wrapper 'name' is blank", where)
            if name in names:
                self.add("E124", f"wrapper name {name!r} is not unique", where)
            names.add(name)
            self.wrapper(wrapper, where, inputs, outputs)

    def secrets(self) -> None:
        env = self.cmd.get("environment-variables")
        env_names = set(env) if isinstance(env, dict) else set()
        for i, secret in enumerate(objects(self.cmd, "secrets")):
            dest = secret.get("destination")
            if not isinstance(dest, dict) or dest.get("type") != "environment-variable":
                continue
            ident = as_text(dest, "identifier")
            if ident in RESERVED_SECRET_ENV:
                self.add("E108", f"secret writes {ident}, which XNAT sets itself",
                         f"secrets[{i}]")
            if ident in env_names:
                self.add("E109", f"secret and environment variable both named {ident!r}",
                         f"secrets[{i}]")

    def mounts(self) -> set[str]:
        seen: set[str] = set()
        for i, mount in enumerate(objects(self.cmd, "mounts")):
            name = as_text(mount, "name") or ""
            where = f"mounts[{i}]" + (f" ({name})" if name else "")
            if blank(name) or blank(as_text(mount, "path")):
                self.add("E110", "mount needs a name and a path", where)
            if name in seen:
                self.add("E111", f"mount name {name!r} is not unique", where)
            seen.add(name)
        return seen

    def inputs(self) -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for i, inp in enumerate(objects(self.cmd, "inputs")):
            name = as_text(inp, "name")
            if name is None:
                continue  # E004: Jackson refused it already
            where = f"inputs[{i}]" + (f" ({name})" if name else "")
            if _ill_named(name):
                self.add("E112", f"input name {name!r} must be non-blank [A-Za-z0-9_-]", where)
            if name in seen:
                self.add("E113", f"input name {name!r} is not unique", where)
            else:
                seen[name] = inp
            self.select_rules(inp, where)
        return seen

    def select_rules(self, inp: dict[str, Any], where: str) -> None:
        """multiple-delimiter, select-values and default-value (Command.java:934-967)."""
        delimiter = as_text(inp, "multiple-delimiter")
        if delimiter is not None and delimiter not in MULTIPLE_DELIMITERS:
            self.add("E114", f"multiple-delimiter {delimiter!r} is not one of "
                     f"{', '.join(sorted(MULTIPLE_DELIMITERS))}", where)
        kind = text_or(inp, "type", "string")
        values = texts(inp, "select-values")
        select = kind in SELECT_TYPES
        if select and not values:
            self.add("E115", f"type {kind} needs 'select-values'", where)
        elif not select and values:
            self.add("E116", f"'select-values' on type {kind!r}", where)
        default = as_text(inp, "default-value")
        if kind == "select-many" and default is None:
            self.add("E118", "select-many input without 'default-value': XNAT's validation "
                     "throws on it (HTTP 500; a label import stops there)", where)
            return
        chosen = parse_string_list(default) if kind == "select-many" else None
        if chosen is not None:
            missing = [v for v in chosen if v not in values]
            if chosen and values and missing:
                self.add("E117", f"default values {missing} not in select-values", where)
        elif default is not None and values and default not in values:
            self.add("E117", f"default {default!r} not in select-values {values}", where)

    def outputs(self, mounts: set[str]) -> set[str | None]:
        seen: set[str | None] = set()
        for i, out in enumerate(objects(self.cmd, "outputs")):
            name = as_text(out, "name")
            where = f"outputs[{i}]" + (f" ({name})" if name else "")
            if _ill_named(name):
                self.add("E119", f"output name {name!r} must be non-blank [A-Za-z0-9_-]", where)
            mount = as_text(out, "mount")
            if blank(mount):
                self.add("E120", "output 'mount' is blank", where)
            elif mount not in mounts:
                self.add("E122", f"output mount {mount!r} is not in 'mounts'", where)
            if name in seen:
                self.add("E121", f"output name {name!r} is not unique", where)
            seen.add(name)
        return seen

    # -- wrappers --------------------------------------------------------------------------
    def wrapper(self, wrapper: dict[str, Any], where: str, inputs: dict[str, dict[str, Any]],
                outputs: set[str | None]) -> None:
        declared: dict[str, dict[str, Any]] = {}
        derived: set[str] = set()
        multiple: set[str] = set()
        for kind in ("external-inputs", "derived-inputs"):
            for i, winp in enumerate(objects(wrapper, kind)):
                name = as_text(winp, "name")
                if name is None:
                    continue  # E004
                wwhere = f"{where} {kind}[{i}]" + (f" ({name})" if name else "")
                self.wrapper_input(winp, wwhere)
                if name in declared:
                    self.add("E128", f"wrapper input name {name!r} is not unique", wwhere)
                else:
                    declared[name] = winp
                    if kind == "derived-inputs":
                        derived.add(name)
                if kind == "derived-inputs":
                    self.derived(winp, name, wwhere, declared)
                    if as_bool(winp, "multiple"):
                        multiple.add(name)
                target = inputs.get(as_text(winp, "provides-value-for-command-input") or "")
                if target is not None and (
                        text_or(target, "type", "string") in SELECT_TYPES
                        or texts(target, "select-values")):
                    self.add("E129", f"feeds command input {as_text(target, 'name')!r}, which "
                             "is a select type", wwhere)
        self.handlers(wrapper, where, declared, derived, multiple, outputs)

    def wrapper_input(self, winp: dict[str, Any], where: str) -> None:
        name = as_text(winp, "name")
        if _ill_named(name):
            self.add("E125", f"wrapper input name {name!r} must be non-blank [A-Za-z0-9_-]",
                     where)
        kind = text_or(winp, "type", "string")
        if kind not in WRAPPER_INPUT_TYPES:
            self.add("E126", f"wrapper input type {kind!r} unknown (case matters)", where)
        if not blank(as_text(winp, "via-setup-command")) and blank(
                as_text(winp, "provides-files-for-command-mount")):
            self.add("E127", "via-setup-command needs provides-files-for-command-mount", where)

    def derived(self, winp: dict[str, Any], name: str, where: str,
                declared: dict[str, dict[str, Any]]) -> None:
        parent = as_text(winp, "derived-from-wrapper-input")
        if blank(parent):
            self.add("E130", "derived input without 'derived-from-wrapper-input'", where)
        elif parent == name:
            self.add("E131", "derived input derived from itself", where)
        elif parent not in declared:
            self.add("E132", f"parent {parent!r} is not an external or earlier derived input",
                     where)
        if as_bool(winp, "multiple"):
            if not blank(as_text(winp, "provides-files-for-command-mount")):
                self.add("E133", "multiple: true cannot feed a mount", where)
            if blank(as_text(winp, "provides-value-for-command-input")):
                self.add("E134", "multiple: true needs provides-value-for-command-input", where)

    def handlers(self, wrapper: dict[str, Any], where: str, declared: dict[str, dict[str, Any]],
                 derived: set[str], multiple: set[str], outputs: set[str | None]) -> None:
        names: set[str | None] = set()
        handled: set[str] = set()
        for i, handler in enumerate(objects(wrapper, "output-handlers")):
            name = as_text(handler, "name")
            hwhere = f"{where} output-handlers[{i}]" + (f" ({name})" if name else "")
            if _ill_named(name):
                self.add("E135", f"handler name {name!r} must be non-blank [A-Za-z0-9_-]", hwhere)
            accepts = as_text(handler, "accepts-command-output")
            if blank(accepts) or accepts not in outputs:
                self.add("E136", f"accepts-command-output {accepts!r} is not a command output",
                         hwhere)
            else:
                handled.add(accepts or "")
            target = handler_target(handler)
            if blank(target) or (target not in declared and target not in names):
                self.add("E137", f"as-a-child-of {target!r} is not a wrapper input or an "
                         "earlier output handler", hwhere)
            if target in multiple:
                self.add("E138", f"as-a-child-of {target!r}, an input with multiple: true",
                         hwhere)
            parent = declared.get(target or "")
            prop = as_text(parent, "derived-from-xnat-object-property") if parent else None
            if target in derived and prop is not None and prop != "uri":
                self.add("E139", f"as-a-child-of {target!r}, whose value is its {prop!r}, not "
                         "its uri", hwhere)
            kind = text_or(handler, "type", "Resource")
            if kind not in HANDLER_TYPES:
                self.add("E141", f"handler type {kind!r} is not Resource, Assessor or Scan",
                         hwhere)
            if kind == "Resource" and blank(as_text(handler, "label")):
                self.add("E142", "a Resource handler needs a 'label'", hwhere)
            if name in names:
                self.add("E140", f"handler name {name!r} is not unique", hwhere)
            names.add(name)
        for name in sorted(o for o in outputs if o is not None):
            if name not in handled:
                self.add("E143", f"command output {name!r} has no handler in this wrapper",
                         where)


def handler_target(handler: dict[str, Any]) -> str | None:
    """as-a-child-of, or the legacy as-a-child-of-wrapper-input when it is null (:2146)."""
    target = as_text(handler, "as-a-child-of")
    return target if target is not None else as_text(handler, "as-a-child-of-wrapper-input")

"""Lint Container Service commands: XNAT's validation rules and launch-time traps.

Errors (``E...``) are the checks the Container Service runs when a command is saved or
read from an image label (rules 1-12 of ``shared/docs/container-service.md``; ``E0..`` are
JSON shape errors that fail deserialisation). Warnings (``W...``) are mistakes XNAT
accepts silently and that break or misbehave at launch. :data:`RULES` lists every code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from xnatpic.xnat import jsonpath
from xnatpic.xnat.errors import MatcherSyntaxError
from xnatpic.xnat.schema import (
    COMMAND_INPUT_TYPES,
    COMMAND_KEYS,
    COMMAND_TYPES,
    HANDLER_KEYS,
    HANDLER_TYPES,
    INPUT_KEYS,
    MOUNT_KEYS,
    NAME_PATTERN,
    OUTPUT_KEYS,
    RESERVED_ENV,
    SELECT_TYPES,
    VISIBILITIES,
    WRAPPER_INPUT_KEYS,
    WRAPPER_INPUT_TYPES,
    WRAPPER_KEYS,
    LoadedCommand,
    illegal_fragment,
)

__all__ = ["RULES", "Finding", "lint_command", "lint_commands"]

#: Every code the linter emits, with what it means.
RULES: dict[str, str] = {
    "E001": "a command is not a JSON object, or a field has the wrong JSON type",
    "E101": "rule 1: command name blank",
    "E102": "rule 1: image blank",
    "E103": "rule 1: image without a :tag",
    "E201": "rule 2: type not docker, docker-setup or docker-wrapup",
    "E202": "rule 2: visibility not public or private",
    "E301": "rule 3: mount with blank name or path",
    "E302": "rule 3: repeated mount name",
    "E401": "rule 4: command input name blank or ill-formed",
    "E402": "rule 4: duplicate command input name",
    "E403": "rule 4: select type without select-values",
    "E404": "rule 4: select-values on a non-select type",
    "E405": "rule 4: default-value outside select-values",
    "E501": "rule 5: output name blank or ill-formed",
    "E502": "rule 5: duplicate output name",
    "E503": "rule 5: output mount blank",
    "E504": "rule 5: output mount not declared",
    "E601": "rule 6: wrapper name blank",
    "E602": "rule 6: duplicate wrapper name",
    "E701": "rule 7: wrapper input name blank or ill-formed",
    "E702": "rule 7: duplicate wrapper input name (external and derived together)",
    "E703": "rule 7: unknown wrapper input type",
    "E704": "rule 7: wrapper input provides a value for a select-type command input",
    "E705": "wrapper input provides a value for a command input that does not exist",
    "E706": "wrapper input provides files for a mount that does not exist",
    "E801": "rule 8: derived input without derived-from-wrapper-input",
    "E802": "rule 8: derived input derived from itself",
    "E803": "rule 8: derived input's parent not declared earlier",
    "E804": "rule 8: multiple: true without provides-value-for-command-input",
    "E805": "rule 8: multiple: true feeding a mount",
    "E901": "rule 9: output handler name blank",
    "E902": "rule 9: output handler accepts an unknown command output",
    "E903": "rule 9: as-a-child-of is not a wrapper input or an earlier handler",
    "E904": "rule 9: as-a-child-of a multiple: true input",
    "E905": "rule 9: as-a-child-of a derived input whose property is not uri",
    "E906": "rule 9: Resource handler without label",
    "E907": "rule 9: duplicate output handler name",
    "E908": "rule 9: output handler type not Resource, Assessor or Scan",
    "E1001": "rule 10: command output not handled in a wrapper",
    "E1101": "rule 11: secret targets XNAT_USER, XNAT_PASS or XNAT_HOST",
    "E1201": "rule 12: (name, image, version) repeated",
    "W101": "unknown top-level key (ignored by XNAT)",
    "W102": "unknown command input key",
    "W103": "unknown output key",
    "W104": "unknown mount key",
    "W105": "unknown wrapper key",
    "W106": "unknown wrapper input key",
    "W107": "unknown output handler key",
    "W201": "unknown command input type (XNAT silently makes it a string)",
    "W202": "output relies on glob (ignored: everything under path is uploaded)",
    "W203": "gpus is stored but never applied",
    "W301": "replacement key in command-line that no input defines",
    "W302": "command input whose replacement key never appears",
    "W401": "wrapper without contexts (hidden from every launch menu)",
    "W402": "wrapper without exactly one external input (not launchable from the UI/REST)",
    "W501": "value or default containing ;, &&, ||, a backtick or ( (refused at launch)",
    "W601": "Scan input can match several scans in a bulk launch (launch fails)",
    "W602": "matcher cannot be parsed as a JSONPath filter",
    "W603": "derivation XNAT cannot make (parent type cannot give this type)",
    "W604": "mount path not absolute, or output path absolute",
    "W605": "output written to a mount fed by an input (read-only archive mount)",
    "W701": "missing reserve-memory, limit-memory or limit-cpu (schedulers need them)",
    "W702": "no version (rule 12 needs a new version for every change)",
    "W703": "shell syntax in command-line without override-entrypoint (no shell runs it)",
}

_REPLACEMENT_KEY = re.compile(r"#[A-Za-z0-9_\-]+#")
_SHELL_SYNTAX = re.compile(r"\$|\||>|<|&&|;|\*|`|~/")
_OBJECT_TYPES_DERIVED_FROM: dict[str, frozenset[str]] = {
    "Session": frozenset({"Subject", "Scan", "Assessor"}),
    "Scan": frozenset({"Session"}),
    "Assessor": frozenset({"Session"}),
    "Subject": frozenset({"Project", "Session"}),
    "Resource": frozenset({"Project", "Subject", "Session", "Scan", "Assessor"}),
    "File": frozenset({"Resource"}),
    "File[]": frozenset({"Resource"}),
    "Directory": frozenset({"Resource"}),
}
_PINNING_KEYS = frozenset({"id", "uid", "integer-id"})


@dataclass(frozen=True)
class Finding:
    """One problem in one command."""

    code: str
    message: str
    source: str
    where: str = ""

    @property
    def severity(self) -> str:
        """``error`` for E codes, ``warning`` for W codes."""
        return "error" if self.code.startswith("E") else "warning"

    def as_dict(self) -> dict[str, str]:
        """The finding as a JSON-ready dict."""
        return {**asdict(self), "severity": self.severity}

    def __str__(self) -> str:
        where = f" {self.where}" if self.where else ""
        return f"{self.source}{where}: {self.code} {self.severity}: {self.message}"


class _Linter:
    def __init__(self, command: Any, source: str) -> None:
        self.command = command
        self.source = source
        self.findings: list[Finding] = []

    def add(self, code: str, message: str, where: str = "") -> None:
        assert code in RULES, code
        self.findings.append(Finding(code, message, self.source, where))

    # -- helpers -------------------------------------------------------------------
    def objects(
        self, parent: dict[str, Any], key: str, where: str, *, report: bool = True
    ) -> list[tuple[int, dict]]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            if not report:
                return []
            self.add("E001", f"'{key}' must be a list, found {type(value).__name__}", where)
            return []
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                out.append((i, item))
            elif report:
                self.add("E001", f"'{key}[{i}]' must be an object", where)
        return out

    def unknown_keys(self, obj: dict, known: frozenset[str], code: str, where: str) -> None:
        for key in obj:
            if key not in known:
                self.add(code, f"unknown key '{key}' (XNAT ignores it)", where)

    @staticmethod
    def text(obj: dict, key: str) -> str:
        value = obj.get(key)
        return value.strip() if isinstance(value, str) else ""

    def check_value(self, value: Any, what: str, where: str) -> None:
        if isinstance(value, str):
            fragment = illegal_fragment(value)
            if fragment:
                self.add("W501", f"{what} {value!r} contains {fragment!r}", where)

    # -- the command -----------------------------------------------------------------
    def run(self) -> list[Finding]:
        cmd = self.command
        if not isinstance(cmd, dict):
            self.add("E001", f"a command must be a JSON object, found {type(cmd).__name__}")
            return self.findings
        self.unknown_keys(cmd, COMMAND_KEYS, "W101", "")
        self.top_level(cmd)
        mounts = self.mounts(cmd)
        inputs = self.inputs(cmd)
        outputs = self.outputs(cmd, mounts)
        self.replacement_keys(cmd, inputs)
        self.secrets(cmd)
        self.wrappers(cmd, inputs, mounts, outputs)
        return self.findings

    def top_level(self, cmd: dict) -> None:
        if not self.text(cmd, "name"):
            self.add("E101", "command 'name' is blank")
        image = self.text(cmd, "image")
        if not image:
            self.add("E102", "command 'image' is blank")
        elif ":" not in image.rsplit("/", 1)[-1]:
            self.add("E103", f"image {image!r} has no tag (write e.g. {image}:1.0)")
        kind = cmd.get("type", "docker")
        if kind not in COMMAND_TYPES:
            self.add("E201", f"type {kind!r} is not one of {sorted(COMMAND_TYPES)}")
        if "visibility" in cmd and cmd["visibility"] not in VISIBILITIES:
            self.add("E202", f"visibility {cmd['visibility']!r} is not public or private")
        if "gpus" in cmd:
            self.add("W203", "'gpus' is stored but the Container Service never applies it")
        missing = [k for k in ("reserve-memory", "limit-memory", "limit-cpu") if k not in cmd]
        if missing:
            self.add("W701", f"missing {', '.join(missing)}: Swarm/Kubernetes schedule by them")
        if not self.text(cmd, "version"):
            self.add("W702", "no 'version': every change must get a new one to be saved")
        line = cmd.get("command-line", "")
        if isinstance(line, str) and not cmd.get("override-entrypoint"):
            stripped = _REPLACEMENT_KEY.sub("", line)
            match = _SHELL_SYNTAX.search(stripped)
            if match:
                self.add(
                    "W703",
                    f"command-line uses {match.group(0)!r} but override-entrypoint is false: "
                    "the line is split into arguments, no shell interprets it",
                )

    def mounts(self, cmd: dict) -> dict[str, dict]:
        seen: dict[str, dict] = {}
        for i, mount in self.objects(cmd, "mounts", ""):
            where = f"mounts[{i}]"
            self.unknown_keys(mount, MOUNT_KEYS, "W104", where)
            name, path = self.text(mount, "name"), self.text(mount, "path")
            if not name or not path:
                self.add("E301", "mount needs a name and a path", where)
            if path and not path.startswith("/"):
                self.add("W604", f"mount path {path!r} is not absolute", where)
            if name in seen:
                self.add("E302", f"mount name {name!r} repeated", where)
            if name:
                seen[name] = mount
        return seen

    def inputs(self, cmd: dict) -> dict[str, dict]:
        seen: dict[str, dict] = {}
        for i, inp in self.objects(cmd, "inputs", ""):
            name = self.text(inp, "name")
            where = f"inputs[{i}]" + (f" ({name})" if name else "")
            self.unknown_keys(inp, INPUT_KEYS, "W102", where)
            if not name or not NAME_PATTERN.fullmatch(name):
                self.add("E401", f"input name {name!r} must match [A-Za-z0-9_-]+", where)
            elif name in seen:
                self.add("E402", f"input name {name!r} repeated", where)
            kind = inp.get("type", "string")
            if kind not in COMMAND_INPUT_TYPES:
                self.add("W201", f"input type {kind!r} unknown: XNAT treats it as string", where)
            values = inp.get("select-values")
            if kind in SELECT_TYPES:
                if not values:
                    self.add("E403", f"type {kind} needs 'select-values'", where)
                elif "default-value" in inp and inp["default-value"] not in (None, ""):
                    default = str(inp["default-value"])
                    allowed = {str(v) for v in values}
                    chosen = [default]
                    if kind == "select-many" and default.startswith("["):
                        chosen = [v.strip(" \"'") for v in default.strip("[]").split(",")]
                    bad = [v for v in chosen if v not in allowed]
                    if bad:
                        self.add("E405", f"default {bad[0]!r} not in select-values", where)
            elif values:
                self.add("E404", f"'select-values' on type {kind!r}", where)
            for key in ("default-value", "true-value", "false-value"):
                self.check_value(inp.get(key), key, where)
            for value in values or []:
                self.check_value(value, "select value", where)
            if name:
                seen.setdefault(name, inp)
        return seen

    def outputs(self, cmd: dict, mounts: dict[str, dict]) -> dict[str, dict]:
        seen: dict[str, dict] = {}
        for i, out in self.objects(cmd, "outputs", ""):
            name = self.text(out, "name")
            where = f"outputs[{i}]" + (f" ({name})" if name else "")
            self.unknown_keys(out, OUTPUT_KEYS, "W103", where)
            if not name or not NAME_PATTERN.fullmatch(name):
                self.add("E501", f"output name {name!r} must match [A-Za-z0-9_-]+", where)
            elif name in seen:
                self.add("E502", f"output name {name!r} repeated", where)
            mount = self.text(out, "mount")
            if not mount:
                self.add("E503", "output 'mount' is blank", where)
            elif mount not in mounts:
                self.add("E504", f"output mount {mount!r} is not declared in 'mounts'", where)
            if "glob" in out:
                self.add("W202", "'glob' is ignored: everything under 'path' is uploaded", where)
            path = self.text(out, "path")
            if path.startswith("/"):
                self.add("W604", f"output path {path!r} must be relative to its mount", where)
            if name:
                seen.setdefault(name, out)
        return seen

    def replacement_keys(self, cmd: dict, inputs: dict[str, dict]) -> None:
        line = cmd.get("command-line") or ""
        if not isinstance(line, str):
            self.add("E001", "'command-line' must be a string")
            line = ""
        defined = {self.text(i, "replacement-key") or f"#{n}#": n for n, i in inputs.items()}
        for _, wrapper in self.objects(cmd, "xnat", "", report=False):
            for key in ("external-inputs", "derived-inputs"):
                for _, winp in self.objects(wrapper, key, "", report=False):
                    name = self.text(winp, "name")
                    defined.setdefault(self.text(winp, "replacement-key") or f"#{name}#", name)
        for key in sorted(set(_REPLACEMENT_KEY.findall(line))):
            if key not in defined:
                self.add("W301", f"command-line uses {key} but no input defines it")
        env = cmd.get("environment-variables") or {}
        env_values = [str(v) for v in env.values()] if isinstance(env, dict) else []
        elsewhere = " ".join([line, str(cmd.get("working-directory") or ""), *env_values])
        for name, inp in inputs.items():
            key = self.text(inp, "replacement-key") or f"#{name}#"
            if key not in elsewhere:
                self.add(
                    "W302",
                    f"replacement key {key} never appears in command-line or environment",
                    f"input {name}",
                )

    def secrets(self, cmd: dict) -> None:
        for i, secret in self.objects(cmd, "secrets", ""):
            dest = secret.get("destination")
            ident = dest.get("identifier") if isinstance(dest, dict) else None
            if ident in RESERVED_ENV:
                self.add("E1101", f"secret writes into {ident}, which XNAT sets", f"secrets[{i}]")

    # -- wrappers --------------------------------------------------------------------
    def wrappers(
        self, cmd: dict, inputs: dict[str, dict], mounts: dict[str, dict],
        outputs: dict[str, dict],
    ) -> None:
        names: set[str] = set()
        for i, wrapper in self.objects(cmd, "xnat", ""):
            name = self.text(wrapper, "name")
            where = f"xnat[{i}]" + (f" ({name})" if name else "")
            self.unknown_keys(wrapper, WRAPPER_KEYS, "W105", where)
            if not name:
                self.add("E601", "wrapper 'name' is blank", where)
            elif name in names:
                self.add("E602", f"wrapper name {name!r} repeated", where)
            names.add(name)
            contexts = wrapper.get("contexts")
            if not contexts:
                self.add("W401", "no 'contexts': the wrapper is offered nowhere", where)
            self.wrapper(wrapper, where, inputs, mounts, outputs)

    def wrapper(
        self, wrapper: dict, where: str, inputs: dict[str, dict], mounts: dict[str, dict],
        outputs: dict[str, dict],
    ) -> None:
        external = self.objects(wrapper, "external-inputs", where)
        derived = self.objects(wrapper, "derived-inputs", where)
        if len(external) != 1:
            self.add(
                "W402",
                f"{len(external)} external inputs: a UI or REST launch needs exactly one root",
                where,
            )
        declared: dict[str, dict] = {}
        fed_mounts: set[str] = set()
        all_names = {self.text(w, "name") for _, w in external + derived}
        for kind, items in (("external-inputs", external), ("derived-inputs", derived)):
            for i, winp in items:
                name = self.text(winp, "name")
                wwhere = f"{where} {kind}[{i}]" + (f" ({name})" if name else "")
                self.unknown_keys(winp, WRAPPER_INPUT_KEYS, "W106", wwhere)
                if not name or not NAME_PATTERN.fullmatch(name):
                    self.add("E701", f"wrapper input name {name!r} is ill-formed", wwhere)
                elif name in declared:
                    self.add("E702", f"wrapper input name {name!r} repeated", wwhere)
                wtype = winp.get("type", "string")
                if wtype not in WRAPPER_INPUT_TYPES:
                    self.add("E703", f"wrapper input type {wtype!r} unknown (case matters)",
                             wwhere)
                target = self.text(winp, "provides-value-for-command-input")
                if target:
                    if target not in inputs:
                        self.add("E705", f"command input {target!r} does not exist", wwhere)
                    elif inputs[target].get("type") in SELECT_TYPES:
                        self.add("E704", f"command input {target!r} is a select type", wwhere)
                mount = self.text(winp, "provides-files-for-command-mount")
                if mount:
                    fed_mounts.add(mount)
                    if mount not in mounts:
                        self.add("E706", f"mount {mount!r} does not exist", wwhere)
                self.check_value(winp.get("default-value"), "default-value", wwhere)
                if kind == "derived-inputs":
                    self.derived(winp, name, wwhere, declared, all_names)
                if name and name not in declared:
                    declared[name] = winp
        for name, out in outputs.items():
            if self.text(out, "mount") in fed_mounts:
                self.add(
                    "W605",
                    f"output {name!r} is written to mount {out.get('mount')!r}, which an input "
                    "feeds with the read-only archive; outputs need a mount nobody feeds",
                    where,
                )
        self.handlers(wrapper, where, declared, outputs)

    def derived(
        self, winp: dict, name: str, where: str, declared: dict[str, dict], all_names: set[str]
    ) -> None:
        parent = self.text(winp, "derived-from-wrapper-input")
        if not parent:
            self.add("E801", "derived input without 'derived-from-wrapper-input'", where)
        elif parent == name:
            self.add("E802", "derived input derived from itself", where)
        elif parent not in declared:
            later = " (it is declared later: move it up)" if parent in all_names else ""
            self.add("E803", f"parent {parent!r} is not declared earlier{later}", where)
        multiple = bool(winp.get("multiple"))
        if multiple and not self.text(winp, "provides-value-for-command-input"):
            self.add("E804", "multiple: true needs provides-value-for-command-input", where)
        if multiple and self.text(winp, "provides-files-for-command-mount"):
            self.add("E805", "multiple: true cannot feed a mount", where)
        wtype = winp.get("type", "string")
        parent_type = declared[parent].get("type", "string") if parent in declared else None
        allowed = _OBJECT_TYPES_DERIVED_FROM.get(wtype)
        if parent_type and allowed is not None and parent_type not in allowed:
            self.add("W603", f"a {wtype} cannot be derived from a {parent_type}", where)
        matcher = winp.get("matcher")
        expr = None
        if isinstance(matcher, str) and matcher.strip():
            try:
                expr = jsonpath.parse(matcher)
            except MatcherSyntaxError as exc:
                self.add("W602", str(exc), where)
        if wtype == "Scan" and not multiple and (expr is None or not _pins_one(expr)):
            if not matcher:
                why = "no matcher"
            elif expr is None:
                why = "an unparsable matcher"
            else:
                why = f"matcher {matcher!r}"
            self.add(
                "W601",
                f"{why} can match several scans of a session; bulk and REST launches fail "
                "then: match on @.id or @.uid, or set multiple: true",
                where,
            )

    def handlers(
        self, wrapper: dict, where: str, declared: dict[str, dict], outputs: dict[str, dict]
    ) -> None:
        handled: set[str] = set()
        names: set[str] = set()
        for i, handler in self.objects(wrapper, "output-handlers", where):
            name = self.text(handler, "name")
            hwhere = f"{where} output-handlers[{i}]" + (f" ({name})" if name else "")
            self.unknown_keys(handler, HANDLER_KEYS, "W107", hwhere)
            if not name:
                self.add("E901", "output handler 'name' is blank", hwhere)
            elif name in names:
                self.add("E907", f"output handler name {name!r} repeated", hwhere)
            accepts = self.text(handler, "accepts-command-output")
            if accepts not in outputs:
                self.add("E902", f"command output {accepts!r} does not exist", hwhere)
            else:
                handled.add(accepts)
            parent = self.text(handler, "as-a-child-of")
            if parent in declared:
                pinp = declared[parent]
                if pinp.get("multiple"):
                    self.add("E904", f"parent {parent!r} has multiple: true", hwhere)
                prop = pinp.get("derived-from-xnat-object-property")
                if pinp.get("derived-from-wrapper-input") and prop and prop != "uri":
                    self.add("E905", f"parent {parent!r} is derived as property {prop!r}",
                             hwhere)
            elif parent not in names:
                self.add(
                    "E903", f"as-a-child-of {parent!r} is not a wrapper input or earlier handler",
                    hwhere,
                )
            htype = handler.get("type", "Resource")
            if htype not in HANDLER_TYPES:
                self.add("E908", f"type {htype!r} is not Resource, Assessor or Scan", hwhere)
            if htype == "Resource" and not self.text(handler, "label"):
                self.add("E906", "a Resource handler needs a 'label'", hwhere)
            if name:
                names.add(name)
        for name in outputs:
            if name not in handled:
                self.add("E1001", f"command output {name!r} has no handler in this wrapper",
                         where)


def _pins_one(expr: jsonpath.Expr) -> bool:
    """Whether a matcher can only match one scan: an equality on id or uid (in a &&)."""
    if isinstance(expr, jsonpath.And):
        return _pins_one(expr.left) or _pins_one(expr.right)
    if isinstance(expr, jsonpath.Compare) and expr.op == "==":
        sides = (expr.left, expr.right)
        paths = [s for s in sides if isinstance(s, jsonpath.Path)]
        literals = [s for s in sides if isinstance(s, jsonpath.Literal)]
        return (
            len(paths) == 1 and len(literals) == 1
            and paths[0].steps in {(key,) for key in _PINNING_KEYS}
        )
    return False


def lint_command(command: Any, source: str = "<command>") -> list[Finding]:
    """Lint one command.

    Parameters
    ----------
    command : Any
        A command decoded from JSON (anything: a non-object is reported as E001).
    source : str
        Where it came from, used in every finding.

    Returns
    -------
    list of Finding
        Errors and warnings in the order found.
    """
    return _Linter(command, source).run()


def lint_commands(commands: Iterable[LoadedCommand]) -> list[Finding]:
    """Lint commands together: each on its own, plus rule 12 across them.

    Parameters
    ----------
    commands : iterable of LoadedCommand
        As returned by :func:`xnatpic.xnat.schema.load_commands`.

    Returns
    -------
    list of Finding
    """
    findings: list[Finding] = []
    seen: dict[tuple[str, str, str], str] = {}
    items: Sequence[LoadedCommand] = list(commands)
    for item in items:
        findings.extend(lint_command(item.data, item.where))
        if isinstance(item.data, dict):
            key = tuple(str(item.data.get(k, "")) for k in ("name", "image", "version"))
            if key in seen:
                findings.append(Finding(
                    "E1201",
                    f"name/image/version {key} already used by {seen[key]}: bump 'version'",
                    item.where,
                ))
            else:
                seen[key] = item.where  # type: ignore[index]
    return findings

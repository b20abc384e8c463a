"""What a Container Service ``command.json`` may hold: keys, enumerations, name rules.

Taken from the Container Service model (NrgXnat/container-service 3.7.3), as written down
in ``shared/docs/container-service.md``. Reading helpers turn a file, a JSON array or an
image label into a list of commands.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import CommandFileError, ContainerRuntimeError
from xnatpic.xnat.runtime import detect_runtime, runtime_env

__all__ = [
    "COMMAND_INPUT_TYPES",
    "COMMAND_KEYS",
    "COMMAND_TYPES",
    "HANDLER_KEYS",
    "HANDLER_TYPES",
    "ILLEGAL_VALUE_PATTERN",
    "INPUT_KEYS",
    "LABEL_NAME",
    "MOUNT_KEYS",
    "NAME_PATTERN",
    "OUTPUT_KEYS",
    "RESERVED_ENV",
    "SELECT_TYPES",
    "VISIBILITIES",
    "WRAPPER_INPUT_KEYS",
    "WRAPPER_INPUT_TYPES",
    "WRAPPER_KEYS",
    "XNAT_OBJECT_TYPES",
    "LoadedCommand",
    "illegal_fragment",
    "load_commands",
    "read_image_label",
]

#: The image label that carries a JSON array of commands.
LABEL_NAME = "org.nrg.commands"

COMMAND_KEYS = frozenset({
    "id", "name", "label", "description", "version", "schema-version", "info-url", "image",
    "type", "command-line", "override-entrypoint", "working-directory", "mounts",
    "environment-variables", "ports", "inputs", "outputs", "xnat", "reserve-memory",
    "limit-memory", "limit-cpu", "container-labels", "secrets", "visibility", "runtime",
    "ulimits", "auto-remove", "shm-size", "network", "gpus", "hash",
})
MOUNT_KEYS = frozenset({"id", "name", "writable", "path"})
INPUT_KEYS = frozenset({
    "id", "name", "label", "description", "type", "required", "default-value",
    "replacement-key", "command-line-flag", "command-line-separator", "true-value",
    "false-value", "select-values", "multiple-delimiter", "sensitive", "matcher",
})
OUTPUT_KEYS = frozenset({"id", "name", "description", "mount", "path", "glob", "required"})
WRAPPER_KEYS = frozenset({
    "id", "name", "label", "description", "contexts", "external-inputs", "derived-inputs",
    "output-handlers",
})
WRAPPER_INPUT_KEYS = frozenset({
    "id", "name", "label", "description", "type", "matcher", "default-value",
    "provides-value-for-command-input", "provides-files-for-command-mount", "user-settable",
    "load-children", "required", "replacement-key", "sensitive", "via-setup-command",
    "derived-from-wrapper-input", "derived-from-xnat-object-property", "multiple",
})
HANDLER_KEYS = frozenset({
    "id", "name", "accepts-command-output", "as-a-child-of", "type", "label", "format",
    "description", "content", "tags", "xsi-type", "via-wrapup-command",
})

COMMAND_TYPES = frozenset({"docker", "docker-setup", "docker-wrapup"})
VISIBILITIES = frozenset({"public", "private", "protected"})
COMMAND_INPUT_TYPES = frozenset({
    "string", "boolean", "number", "select-one", "select-many", "file",
})
SELECT_TYPES = frozenset({"select-one", "select-many"})
WRAPPER_INPUT_TYPES = frozenset({
    "string", "boolean", "number", "Directory", "File", "File[]", "file", "Project",
    "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor", "Resource",
    "Config",
})
#: Wrapper input types that are XNAT objects (their value is a URI).
XNAT_OBJECT_TYPES = frozenset({
    "Project", "ProjectAsset", "Subject", "SubjectAssessor", "Session", "Scan", "Assessor",
    "Resource", "File", "File[]", "Directory",
})
HANDLER_TYPES = frozenset({"Resource", "Assessor", "Scan"})
#: Secrets may not be written into these environment variables (rule 11).
RESERVED_ENV = frozenset({"XNAT_USER", "XNAT_PASS", "XNAT_HOST"})
#: Names of inputs, outputs, wrapper inputs.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
#: What makes the Container Service refuse a resolved value at launch.
ILLEGAL_VALUE_PATTERN = re.compile(r";|&&|\|\||`|\(")


def illegal_fragment(value: str) -> str | None:
    """Return the first fragment of ``value`` that XNAT refuses at launch, or None.

    Examples
    --------
    >>> illegal_fragment("T1 (RARE)")
    '('
    >>> illegal_fragment("T1_RARE") is None
    True
    """
    match = ILLEGAL_VALUE_PATTERN.search(value)
    return match.group(0) if match else None


@dataclass
class LoadedCommand:
    """One command read from a source, with where it came from (for messages)."""

    data: Any
    source: str
    index: int | None = None
    #: The image whose ``org.nrg.commands`` label this came from (None for a file).
    image: str | None = None
    #: Read only thanks to XNAT's lenient parser (single quotes or ``#`` comments).
    relaxed: bool = False

    @property
    def where(self) -> str:
        """``file`` or ``file[2]`` for the third command of an array."""
        return self.source if self.index is None else f"{self.source}[{self.index}]"


def _container_cli() -> str:
    try:
        return detect_runtime()  # the store images are built into: docker's, else podman's
    except ContainerRuntimeError:
        for exe in ("podman", "docker"):
            if shutil.which(exe):
                return exe
    raise CommandFileError("reading an image label needs podman or docker on PATH")


def read_image_label(image: str, *, cli: str | None = None) -> str:
    """Return the ``org.nrg.commands`` label text of a local image.

    Parameters
    ----------
    image : str
        Image name, e.g. ``xnatpic-mri2dicom:0.1.0``.
    cli : str, optional
        ``podman`` or ``docker``; found on PATH when omitted.

    Raises
    ------
    CommandFileError
        When the image cannot be inspected or has no such label.
    """
    exe = cli or _container_cli()
    fmt = '{{ index .Config.Labels "' + LABEL_NAME + '" }}'
    proc = subprocess.run(
        [exe, "image", "inspect", "--format", fmt, image],
        capture_output=True, text=True, check=False, env=runtime_env(exe),
    )
    if proc.returncode != 0:
        raise CommandFileError(
            f"image {image}: '{exe} image inspect' failed: {proc.stderr.strip()}"
        )
    text = proc.stdout.strip()
    if not text or text == "<no value>":
        raise CommandFileError(f"image {image}: no {LABEL_NAME} label")
    return text


def _strict_json(text: str) -> str | None:
    """Rewrite single-quoted strings and ``#`` comments as strict JSON (None: none found).

    XNAT's ObjectMapper enables ALLOW_SINGLE_QUOTES and ALLOW_YAML_COMMENTS (NrgXnat/xnat
    ``org/nrg/framework/configuration/SerializerConfig.java``, ``objectMapperBuilder``).
    """
    out: list[str] = []
    i, n, changed = 0, len(text), False
    while i < n:
        char = text[i]
        if char == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif char == "'":
            changed = True
            j, chars = i + 1, []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n:
                    chars.append("'" if text[j + 1] == "'" else text[j:j + 2])
                    j += 2
                    continue
                chars.append('\\"' if text[j] == '"' else text[j])
                j += 1
            out.append('"' + "".join(chars) + '"')
            i = j + 1
        elif char == "#":
            changed = True
            while i < n and text[i] not in "\r\n":
                i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out) if changed else None


def _parse(text: str, source: str, image: str | None = None) -> list[LoadedCommand]:
    relaxed = False
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        strict = _strict_json(text)
        try:
            data = json.loads(strict) if strict is not None else None
        except json.JSONDecodeError:
            strict = None
        if strict is None:
            raise CommandFileError(
                f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        relaxed = True
    if isinstance(data, list):
        return [LoadedCommand(item, source, i, image, relaxed) for i, item in enumerate(data)]
    return [LoadedCommand(data, source, None, image, relaxed)]


def load_commands(spec: str) -> list[LoadedCommand]:
    """Read commands from a ``command.json``, a JSON array of them, or ``image:NAME``.

    Parameters
    ----------
    spec : str
        A path, or ``image:NAME`` to read the ``org.nrg.commands`` label of a local image.

    Returns
    -------
    list of LoadedCommand
        One entry per command, not yet validated (entries may not even be objects).

    Raises
    ------
    CommandFileError
        When the file is missing or not JSON, or the image has no label.
    """
    if spec.startswith("image:"):
        image = spec[len("image:"):]
        return _parse(read_image_label(image), f"image {image} label {LABEL_NAME}", image)
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is fine for Jackson too
    except FileNotFoundError as exc:
        raise CommandFileError(f"{spec}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandFileError(f"{spec}: cannot read: {exc}") from exc
    return _parse(text, spec)

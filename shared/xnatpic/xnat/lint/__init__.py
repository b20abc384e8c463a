"""Lint Container Service commands exactly as XNAT's Container Service (v3.7.3) judges them.

Errors (``E...``) are where XNAT refuses a command: Jackson cannot build it from the JSON
(``E00x``: HTTP 400 on ``POST /xapi/commands``), or ``Command.validate()`` fails (``E1xx``).
Warnings (``W...``) are what XNAT accepts and then ignores or fails on at launch.
:data:`RULES` lists every code, :data:`CITATIONS` the source line behind it.

Two ways in differ (``lint_command(..., label_image=NAME)``): a command POSTed to
``/xapi/commands`` gets ``:latest`` when its image has no tag, and a refusal is an HTTP error;
a command imported from an image label takes the image name it was imported by (no tag
added), and a refused command is dropped with a log line while the import answers 200.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from xnatpic.xnat.lint.launch import LaunchChecks
from xnatpic.xnat.lint.rules import CITATIONS, RULES
from xnatpic.xnat.lint.shape import check_command
from xnatpic.xnat.lint.validate import Validator
from xnatpic.xnat.lint.values import as_text, blank, has_tag
from xnatpic.xnat.schema import LoadedCommand

__all__ = ["CITATIONS", "RULES", "Finding", "lint_command", "lint_commands"]

#: Jackson could not build the command: in a label this loses the whole label.
_READ_ERRORS = frozenset({"E001", "E002", "E003", "E004", "E005"})


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


def _stored_image(command: dict[str, Any], image: str | None,
                  label_image: str | None) -> str | None:
    """The image name XNAT validates and stores for this command."""
    if label_image is not None:
        return label_image
    name = image if not blank(image) else as_text(command, "image")
    if not name:  # Strings.isNullOrEmpty: only these stay untagged (Command.java:333-335)
        return name
    return name if has_tag(name) else f"{name}:latest"


def lint_command(command: Any, source: str = "<command>", *, image: str | None = None,
                 label_image: str | None = None) -> list[Finding]:
    """Lint one command.

    Parameters
    ----------
    command : Any
        A command decoded from JSON (anything: a non-object is reported as E001).
    source : str
        Where it came from, used in every finding.
    image : str, optional
        The ``?image=`` override of ``POST /xapi/commands`` (replaces the command's image).
    label_image : str, optional
        Lint it as imported from the label of this image (``POST /xapi/docker/images/save``).

    Returns
    -------
    list of Finding
        Errors and warnings in the order found.
    """
    findings: list[Finding] = []

    def add(code: str, message: str, where: str = "") -> None:
        assert code in RULES, code
        findings.append(Finding(code, message, source, where))

    if not isinstance(command, dict):
        add("E001", f"a command must be a JSON object, found {type(command).__name__}")
        return findings
    for problem in check_command(command):
        add(problem.code, problem.message, problem.where)
    stored = _stored_image(command, image, label_image)
    if stored is None:
        add("W129", "no 'image': give it when adding the command (POST /xapi/commands?image="
            "NAME, xnatpic xnat register --image NAME) or import it from the image's label")
    Validator(command, add, stored).run()
    warn_image = label_image if label_image is not None else (
        image if not blank(image) else as_text(command, "image"))
    LaunchChecks(command, add).run(warn_image, label_image is not None)
    if label_image is not None and any(f.severity == "error" for f in findings):
        add("W128", "importing this label would drop this command with only a log line on "
            "XNAT (the import still answers 200): fix the errors above")
    return findings


def lint_commands(commands: Iterable[LoadedCommand], *,
                  image: str | None = None) -> list[Finding]:
    """Lint commands together: each on its own, plus duplicate (name, image, version).

    Parameters
    ----------
    commands : iterable of LoadedCommand
        As returned by :func:`xnatpic.xnat.schema.load_commands`; those read from an image
        label are linted as a label import (see :func:`lint_command`).
    image : str, optional
        The ``?image=`` override the commands will be POSTed with.

    Returns
    -------
    list of Finding
    """
    findings: list[Finding] = []
    seen: dict[tuple[str | None, str | None, str], str] = {}
    unreadable_labels: dict[str, str] = {}
    for item in commands:
        label_image = getattr(item, "image", None)
        if label_image is not None and item.index is None:
            findings.append(Finding(
                "E006", "the org.nrg.commands label must be a JSON array of commands: XNAT "
                "drops the whole label (log line only)", item.where))
        if getattr(item, "relaxed", False):
            findings.append(Finding(
                "W130", "single-quoted strings or # comments: XNAT reads them, but strict JSON "
                "tools (and many editors) do not; write plain JSON", item.where))
        found = lint_command(item.data, item.where, image=image, label_image=label_image)
        findings.extend(found)
        if label_image is not None and item.index is not None and any(
                f.code in _READ_ERRORS for f in found):
            unreadable_labels.setdefault(item.source, item.where)
        if not isinstance(item.data, dict):
            continue
        version = as_text(item.data, "version")
        if version is None:
            continue
        key = (as_text(item.data, "name"), _stored_image(item.data, image, label_image),
               version)
        if key in seen:
            findings.append(Finding(
                "E144", f"name/image/version {key} already used by {seen[key]}: bump 'version'",
                item.where))
        else:
            seen[key] = item.where
    for source, where in unreadable_labels.items():
        findings.append(Finding(
            "E006", f"{where} cannot be read as a command, so XNAT drops every command of "
            "this label (log line only)", source))
    return findings

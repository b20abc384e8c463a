"""One fixture per lint rule (tests/xnat/lint_fixtures/<CODE>.json), each citing its CS source.

Each fixture is the clean command of ``base.json`` with one change. An error fixture must give
exactly its error (XNAT refuses it for that one reason); a warning fixture must give its
warning and no error (XNAT accepts it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from xnatpic.xnat.lint import CITATIONS, RULES, Finding, lint_command, lint_commands
from xnatpic.xnat.schema import LoadedCommand, load_commands

FIXTURES = Path(__file__).parent / "lint_fixtures"
RULE_FILES = sorted(p for p in FIXTURES.glob("*.json") if p.stem in RULES)


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def lint_fixture(doc: dict[str, Any], source: str, tmp: Path) -> list[Finding]:
    """Lint a fixture the way its keys say: file text, one command, several, or a label."""
    if "text" in doc:
        path = tmp / source
        path.write_text(doc["text"], encoding="utf-8")
        return [replace(f, source=f.source.replace(str(path), source))
                for f in lint_commands(load_commands(str(path)))]
    if "commands" in doc:
        return lint_commands(
            [LoadedCommand(c, source, i) for i, c in enumerate(doc["commands"])])
    image = doc.get("label_image")
    if image is not None:
        index = 0 if doc.get("label_array", True) else None
        return lint_commands([LoadedCommand(doc["command"], source, index, image)])
    return lint_command(doc["command"], source)


def test_base_command_is_clean():
    assert lint_command(_load(FIXTURES / "base.json")["command"]) == []


def test_every_rule_has_a_fixture():
    assert {p.stem for p in RULE_FILES} == set(RULES)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_fixture_gives_its_rule(path, tmp_path):
    doc = _load(path)
    code = path.stem
    assert doc["rule"] == code
    assert doc["cites"] == CITATIONS[code] and ".java" in doc["cites"]
    findings = lint_fixture(doc, path.name, tmp_path)
    codes = {f.code for f in findings}
    errors = {f.code for f in findings if f.severity == "error"}
    expected_errors = set(doc.get("also_errors", []))
    if code.startswith("E"):
        expected_errors.add(code)
    else:
        assert code in codes, [str(f) for f in findings]
    assert errors == expected_errors, [str(f) for f in findings]
    assert all(f.source.startswith(path.name) for f in findings)

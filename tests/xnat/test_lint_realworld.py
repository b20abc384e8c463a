"""Real-world commands XNAT accepts lint with zero errors; CS's own refused command is refused.

The files and their origins are listed in tests/xnat/lint_realworld/SOURCES.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from xnatpic.xnat.lint import lint_commands
from xnatpic.xnat.schema import load_commands

REALWORLD = Path(__file__).parent / "lint_realworld"
ACCEPTED = sorted(REALWORLD.glob("*.json"))


def test_there_are_enough_real_world_files():
    assert len(ACCEPTED) >= 15
    listed = (REALWORLD / "SOURCES.md").read_text(encoding="utf-8")
    assert all(p.name in listed for p in ACCEPTED)


@pytest.mark.parametrize("path", ACCEPTED, ids=lambda p: p.name)
def test_accepted_command_has_no_error(path):
    findings = lint_commands(load_commands(str(path)))
    assert [str(f) for f in findings if f.severity == "error"] == []


def test_container_service_bad_command_gives_its_eight_errors():
    # CommandEntityTest.testDerivedInputsValidation (CommandEntityTest.java:881-918): two
    # select-values errors, multiple+mount, multiple without command input, a handler under a
    # multiple input, a handler under an id, and two wrapper inputs feeding select inputs
    path = REALWORLD / "refused" / \
        "nrgxnat-container-service-tests__commandEntityTest__bad-command.json"
    findings = lint_commands(load_commands(str(path)))
    errors = Counter(f.code for f in findings if f.severity == "error")
    assert errors == Counter({"E115": 1, "E116": 1, "E133": 1, "E134": 1, "E138": 1,
                              "E139": 1, "E129": 2})

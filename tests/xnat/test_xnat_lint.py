"""The command linter: one broken command per rule code, and the shipped commands clean."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xnatpic.cli.main import main
from xnatpic.xnat.lint import RULES, lint_command, lint_commands
from xnatpic.xnat.schema import LoadedCommand, load_commands

PROJECT_ROOT = Path(__file__).resolve().parents[2]
Mutation = Callable[[dict[str, Any]], Any]


def _wrapper(c: dict) -> dict:
    return c["xnat"][0]


def _derived(c: dict) -> list[dict]:
    return c["xnat"][0]["derived-inputs"]


def _handlers(c: dict) -> list[dict]:
    return c["xnat"][0]["output-handlers"]


def _set(obj: dict, key: str, value: Any) -> None:
    obj[key] = value


def _drop(obj: dict, key: str) -> None:
    del obj[key]


#: One mutation of the good command per rule code; each must make that code fire.
MUTATIONS: dict[str, Mutation] = {
    "E001": lambda c: _set(c, "inputs", {"name": "x"}),
    "E101": lambda c: _set(c, "name", " "),
    "E102": lambda c: _set(c, "image", ""),
    "E103": lambda c: _set(c, "image", "registry:5000/demo/step"),
    "E201": lambda c: _set(c, "type", "singularity"),
    "E202": lambda c: _set(c, "visibility", "everyone"),
    "E301": lambda c: _set(c["mounts"][0], "path", ""),
    "E302": lambda c: c["mounts"].append({"name": "in", "writable": False, "path": "/x"}),
    "E401": lambda c: _set(c["inputs"][2], "name", "bad name"),
    "E402": lambda c: _set(c["inputs"][2], "name", "threshold"),
    "E403": lambda c: _drop(c["inputs"][3], "select-values"),
    "E404": lambda c: _set(c["inputs"][1], "select-values", ["1", "2"]),
    "E405": lambda c: _set(c["inputs"][3], "default-value", "medium"),
    "E501": lambda c: _set(c["outputs"][0], "name", ""),
    "E502": lambda c: c["outputs"].append({"name": "result", "mount": "out", "path": "x"}),
    "E503": lambda c: _set(c["outputs"][0], "mount", ""),
    "E504": lambda c: _set(c["outputs"][0], "mount", "elsewhere"),
    "E601": lambda c: _set(_wrapper(c), "name", ""),
    "E602": lambda c: c["xnat"].append(json.loads(json.dumps(_wrapper(c)))),
    "E701": lambda c: _set(_derived(c)[1], "name", "scan id!"),
    "E702": lambda c: _set(_derived(c)[1], "name", "session"),
    "E703": lambda c: _set(_derived(c)[0], "type", "scan"),
    "E704": lambda c: _set(_derived(c)[1], "provides-value-for-command-input", "mode"),
    "E705": lambda c: _set(_derived(c)[1], "provides-value-for-command-input", "nope"),
    "E706": lambda c: _set(_derived(c)[0], "provides-files-for-command-mount", "nope"),
    "E801": lambda c: _drop(_derived(c)[0], "derived-from-wrapper-input"),
    "E802": lambda c: _set(_derived(c)[0], "derived-from-wrapper-input", "scan"),
    "E803": lambda c: _derived(c).reverse(),
    "E804": lambda c: _derived(c).append({
        "name": "all-scans", "type": "Scan", "derived-from-wrapper-input": "session",
        "multiple": True}),
    "E805": lambda c: _derived(c)[0].update({"multiple": True,
                                             "provides-value-for-command-input": "scan_id"}),
    "E901": lambda c: _set(_handlers(c)[0], "name", ""),
    "E902": lambda c: _set(_handlers(c)[0], "accepts-command-output", "other"),
    "E903": lambda c: _set(_handlers(c)[0], "as-a-child-of", "nobody"),
    "E904": lambda c: (_derived(c).append({
        "name": "scans", "type": "Scan", "derived-from-wrapper-input": "session",
        "multiple": True, "provides-value-for-command-input": "scan_id"}),
        _set(_handlers(c)[0], "as-a-child-of", "scans")),
    "E905": lambda c: _set(_handlers(c)[0], "as-a-child-of", "scan-id"),
    "E906": lambda c: _drop(_handlers(c)[0], "label"),
    "E907": lambda c: _handlers(c).append(dict(_handlers(c)[0])),
    "E908": lambda c: _set(_handlers(c)[0], "type", "File"),
    "E1001": lambda c: c["outputs"].append({"name": "extra", "mount": "out", "path": "extra"}),
    "E1101": lambda c: _set(c, "secrets", [{
        "source": {"type": "system-secret", "identifier": "token"},
        "destination": {"type": "environment-variable", "identifier": "XNAT_PASS"}}]),
    "W101": lambda c: _set(c, "comand-line", "typo"),
    "W102": lambda c: _set(c["inputs"][0], "replacement_key", "#SCAN_ID#"),
    "W103": lambda c: _set(c["outputs"][0], "label", "x"),
    "W104": lambda c: _set(c["mounts"][0], "read-only", True),
    "W105": lambda c: _set(_wrapper(c), "context", ["xnat:imageSessionData"]),
    "W106": lambda c: _set(_derived(c)[0], "provides-files-for-mount", "in"),
    "W107": lambda c: _set(_handlers(c)[0], "parent", "session"),
    "W201": lambda c: _set(c["inputs"][1], "type", "float"),
    "W202": lambda c: _set(c["outputs"][0], "glob", "*.nii"),
    "W203": lambda c: _set(c, "gpus", "all"),
    "W301": lambda c: _set(c, "command-line", c["command-line"] + " #UNDEFINED#"),
    "W302": lambda c: c["inputs"].append({"name": "unused", "type": "string"}),
    "W401": lambda c: _set(_wrapper(c), "contexts", []),
    "W402": lambda c: _wrapper(c)["external-inputs"].append(
        {"name": "extra", "type": "string", "provides-value-for-command-input": "scan_id"}),
    "W501": lambda c: _set(c["inputs"][0], "default-value", "T1 (RARE)"),
    "W601": lambda c: _set(_derived(c)[0], "matcher", "@.scan-type == 'MSME'"),
    "W602": lambda c: _set(_derived(c)[0], "matcher", "@.id == "),
    "W603": lambda c: _set(_derived(c)[1], "type", "File"),
    "W604": lambda c: _set(c["mounts"][1], "path", "output"),
    "W605": lambda c: _set(c["outputs"][0], "mount", "in"),
    "W701": lambda c: _drop(c, "limit-cpu"),
    "W702": lambda c: _drop(c, "version"),
    "W703": lambda c: _set(c, "command-line", c["command-line"] + " > /output/log.txt"),
}


def _codes(command: Any) -> set[str]:
    return {f.code for f in lint_command(command, "test.json")}


class TestGoodCommand:
    def test_good_command_is_clean(self, good_command):
        assert lint_command(good_command) == []

    def test_every_rule_has_a_broken_command(self):
        tested = set(MUTATIONS) | {"E1201"}
        assert tested == set(RULES), sorted(set(RULES) ^ tested)


class TestEachRule:
    @pytest.mark.parametrize("code", sorted(MUTATIONS))
    def test_rule_fires(self, good_command, code):
        MUTATIONS[code](good_command)
        findings = lint_command(good_command, "bad.json")
        assert code in {f.code for f in findings}, [str(f) for f in findings]
        finding = next(f for f in findings if f.code == code)
        assert finding.source == "bad.json"
        assert finding.severity == ("error" if code.startswith("E") else "warning")

    def test_rule_12_duplicate_name_image_version(self, good_command):
        items = [LoadedCommand(good_command, "a.json"), LoadedCommand(good_command, "b.json")]
        findings = lint_commands(items)
        dup = [f for f in findings if f.code == "E1201"]
        assert len(dup) == 1 and "a.json" in dup[0].message and dup[0].source == "b.json"

    def test_not_an_object(self):
        assert _codes(["a list"]) == {"E001"}

    def test_scan_matcher_pinned_by_uid_in_conjunction_is_fine(self, good_command):
        _derived(good_command)[0]["matcher"] = "@.uid == '1.2.3' && @.scan-type == 'T2'"
        assert "W601" not in _codes(good_command)

    def test_scan_matcher_with_or_can_match_several(self, good_command):
        _derived(good_command)[0]["matcher"] = "@.id == '3' || @.id == '4'"
        assert "W601" in _codes(good_command)

    def test_multiple_scan_input_is_not_warned(self, good_command):
        _derived(good_command).append({
            "name": "scans", "type": "Scan", "derived-from-wrapper-input": "session",
            "matcher": "@.scan-type == 'MSME'", "multiple": True,
            "provides-value-for-command-input": "scan_id"})
        assert "W601" not in _codes(good_command)

    def test_shell_syntax_fine_with_override_entrypoint(self, good_command):
        good_command["command-line"] = (
            "run.sh #SCAN_ID# > /output/log #THRESHOLD# #VERBOSE# #mode#")
        good_command["override-entrypoint"] = True
        assert "W703" not in _codes(good_command)


class TestShippedCommands:
    @pytest.mark.parametrize(
        "path", sorted((PROJECT_ROOT / "commands").glob("*.json")), ids=lambda p: p.name
    )
    def test_shipped_command_lints_clean(self, path):
        findings = lint_commands(load_commands(str(path)))
        assert findings == [], [str(f) for f in findings]

    def test_there_are_shipped_commands(self):
        assert list((PROJECT_ROOT / "commands").glob("*.json"))


class TestCli:
    def test_exit_1_and_json_on_error(self, tmp_path, good_command, capsys):
        good_command["image"] = "no-tag"
        path = tmp_path / "bad.json"
        path.write_text(json.dumps([good_command]))
        assert main(["commands", "lint", "--json", str(path)]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["errors"] == 1
        assert report["findings"][0]["code"] == "E103"
        assert report["findings"][0]["source"] == f"{path}[0]"

    def test_exit_0_with_warnings_only(self, tmp_path, good_command, capsys):
        good_command["gpus"] = "all"
        path = tmp_path / "warn.json"
        path.write_text(json.dumps(good_command))
        assert main(["commands", "lint", str(path)]) == 0
        out = capsys.readouterr().out
        assert "W203 warning" in out and str(path) in out

    def test_missing_file_is_an_error(self, tmp_path, capsys):
        assert main(["commands", "lint", str(tmp_path / "none.json")]) == 1
        assert "no such file" in capsys.readouterr().out

    def test_invalid_json_names_the_file(self, tmp_path, capsys):
        path = tmp_path / "broken.json"
        path.write_text("{")
        assert main(["commands", "lint", str(path)]) == 1
        assert f"{path}: not valid JSON" in capsys.readouterr().out

    def test_rules_listing(self, capsys):
        assert main(["commands", "lint", "--rules"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == len(RULES)

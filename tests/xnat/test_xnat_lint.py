"""The command linter: XNAT's own refusals are errors, nothing else is; shipped commands pass.

Each expectation cites the Container Service v3.7.3 line it copies (paths under
``src/main/java/org/nrg/containers/``). One fixture per rule lives in test_lint_fixtures.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.accepted_lint import accepted_warnings
from xnatpic.cli.main import main
from xnatpic.xnat.errors import CommandFileError
from xnatpic.xnat.lint import RULES, lint_command, lint_commands
from xnatpic.xnat.schema import LoadedCommand, load_commands

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "lint_fixtures" / "base.json").read_text())["command"]


@pytest.fixture
def cmd() -> dict[str, Any]:
    """A fresh copy of the clean command."""
    return copy.deepcopy(BASE)


def _errors(command: Any, **kwargs: Any) -> set[str]:
    return {f.code for f in lint_command(command, "t.json", **kwargs) if f.severity == "error"}


def _codes(command: Any, **kwargs: Any) -> set[str]:
    return {f.code for f in lint_command(command, "t.json", **kwargs)}


class TestJacksonTypes:
    """Command.CommandCreation as Spring's ObjectMapper builds it (Command.java:2062-2111)."""

    @pytest.mark.parametrize(("key", "value"), [
        ("reserve-memory", "2G"),              # Long from a non-numeric string (:2084)
        ("reserve-memory", True),              # Long from a boolean
        ("limit-cpu", "two"),                  # Double (:2086)
        ("contexts", "xnat:imageSessionData"),  # Set<String> from a string (:1444)
        ("environment-variables", ["A=1"]),    # Map from an array (:2079)
        ("select-values", "fast,slow"),        # List<String> from a string (:834)
        ("override-entrypoint", "yes"),        # Boolean from a word (:2077)
        ("command-line", ["run", "it"]),       # String from an array (:2075)
        ("inputs", {"name": "x"}),             # List from an object (:2081)
        ("ulimits", {"nofile": {"soft": 1}}),  # Map value that is an object (:2095)
    ])
    def test_wrong_json_type_is_refused(self, cmd, key, value):
        target = {"contexts": cmd["xnat"][0], "select-values": cmd["inputs"][3]}.get(key, cmd)
        target[key] = value
        assert "E002" in _errors(cmd)

    @pytest.mark.parametrize(("key", "value"), [
        ("reserve-memory", "2048"),   # Jackson coerces a numeric string to Long
        ("reserve-memory", 2048.0),   # and a float (ACCEPT_FLOAT_AS_INT)
        ("limit-cpu", "0.5"),
        ("override-entrypoint", "true"),
        ("override-entrypoint", 1),   # an int to Boolean
        ("version", 1.2),             # a number to String
        ("reserve-memory", None),
        ("environment-variables", {"N": 3}),  # a number to a String map value
    ])
    def test_coerced_values_are_accepted(self, cmd, key, value):
        cmd[key] = value
        assert _errors(cmd) == set()

    def test_null_map_value_is_refused(self, cmd):
        # ImmutableMap.copyOf throws on a null value (Command.java:2101)
        cmd["environment-variables"]["EMPTY"] = None
        assert _errors(cmd) == {"E003"}

    def test_null_wrapper_input_name_is_refused(self, cmd):
        # Input.name() is not @Nullable: the AutoValue builder throws (Command.java:2324, 1685)
        del cmd["xnat"][0]["derived-inputs"][1]["name"]
        assert "E004" in _errors(cmd)

    def test_not_an_object(self):
        assert _codes(["a list"]) == {"E001"}


class TestValidateDetails:
    def test_untagged_image_is_tagged_latest_on_post(self, cmd):
        # setDefaultTag on the POST path (Command.java:278, 329-335): accepted, with a warning
        cmd["image"] = "registry.example.org/demo/step"
        assert _errors(cmd) == set() and "W103" in _codes(cmd)

    def test_untagged_image_name_fails_a_label_import(self, cmd):
        # label import: .image(imageName) with no tag added (CommandLabelServiceImpl.java:57-58)
        assert "E103" in _errors(cmd, label_image="registry.example.org/demo/step")
        assert "E103" not in _errors(cmd, label_image="registry.example.org/demo/step:2")

    def test_label_image_replaces_the_command_image(self, cmd):
        cmd["image"] = ""
        assert _errors(cmd, label_image="registry.example.org/demo/step:1.0") == set()

    def test_image_override_fills_a_missing_image(self, cmd):
        del cmd["image"]
        assert "W129" not in _codes(cmd, image="registry.example.org/demo/step:1.0")

    @pytest.mark.parametrize("visibility", ["public", "private", "protected", None])
    def test_known_or_null_visibility_is_accepted(self, cmd, visibility):
        # CommandVisibility has protected (CommandVisibility.java:13-15); null defaults (:2109)
        cmd["visibility"] = visibility
        assert _errors(cmd) == set()

    def test_null_type_defaults_to_docker(self, cmd):
        cmd["type"] = None
        assert _errors(cmd) == set()

    def test_empty_type_is_refused(self, cmd):
        cmd["type"] = ""
        assert _errors(cmd) == {"E104"}

    @pytest.mark.parametrize(("value", "refused"), [
        ("1024", False), ("1024:2048", False), ("1:2:", False),  # String.split drops trailing ""
        ("", True), ("1:2:3", True), ("a::b", True),
    ])
    def test_ulimit_format(self, cmd, value, refused):
        cmd["ulimits"] = {"nofile": value}
        assert ("E107" in _errors(cmd)) is refused

    @pytest.mark.parametrize(("default", "refused"), [
        ('["a"]', False), ("[]", False), ("a", False), ('["a", "z"]', True), ("z", True),
        ("", True), ('"a"', True),  # a JSON string is not a list: compared whole, with quotes
    ])
    def test_select_many_default(self, cmd, default, refused):
        cmd["inputs"][4]["default-value"] = default
        assert ("E117" in _errors(cmd)) is refused

    def test_legacy_as_a_child_of_wrapper_input_is_read(self, cmd):
        # CommandWrapperOutputCreation reads it when as-a-child-of is null (Command.java:2146)
        handler = cmd["xnat"][0]["output-handlers"][0]
        handler["as-a-child-of-wrapper-input"] = handler.pop("as-a-child-of")
        assert _codes(cmd) == set()

    def test_feeding_a_missing_command_input_is_only_a_warning(self, cmd):
        # provFor == null is skipped (Command.java:517-518)
        cmd["xnat"][0]["derived-inputs"][1]["provides-value-for-command-input"] = "nope"
        assert _errors(cmd) == set() and "W124" in _codes(cmd)

    def test_handler_may_be_child_of_earlier_handler_only(self, cmd):
        handlers = cmd["xnat"][0]["output-handlers"]
        handlers.insert(0, {"name": "child", "accepts-command-output": "result",
                            "as-a-child-of": "result-resource", "label": "CHILD"})
        assert "E137" in _errors(cmd)  # wrapperOutputNames holds earlier handlers (:588)

    def test_setup_command_may_have_no_inputs_but_needs_nothing_else(self):
        setup = {"name": "stage", "type": "docker-setup", "image": "r.example.org/s:1",
                 "command-line": "stage"}
        assert _errors(setup) == set()

    def test_duplicate_with_null_version_is_not_a_duplicate(self, cmd):
        # the unique key (name, image, version) treats NULLs as distinct (CommandEntity.java:39)
        del cmd["version"]
        items = [LoadedCommand(cmd, "a.json"), LoadedCommand(cmd, "b.json")]
        assert "E144" not in {f.code for f in lint_commands(items)}

    def test_duplicate_compares_the_stored_image(self, cmd):
        other = copy.deepcopy(cmd)
        other["image"] = cmd["image"].rsplit(":", 1)[0].replace("1.0", "")
        cmd["image"] = other["image"] + ":latest"
        findings = lint_commands([LoadedCommand(cmd, "a.json"), LoadedCommand(other, "b.json")])
        dup = [f for f in findings if f.code == "E144"]
        assert len(dup) == 1 and dup[0].source == "b.json" and "a.json" in dup[0].message


class TestWarnings:
    def test_scan_matcher_pinned_by_uid_in_conjunction_is_fine(self, cmd):
        cmd["xnat"][0]["derived-inputs"][0]["matcher"] = "@.uid == '1.2' && @.scan-type == 'T2'"
        assert "W117" not in _codes(cmd)

    def test_scan_matcher_with_or_can_match_several(self, cmd):
        cmd["xnat"][0]["derived-inputs"][0]["matcher"] = "@.id == '3' || @.id == '4'"
        assert "W117" in _codes(cmd)

    def test_multiple_scan_input_is_not_warned(self, cmd):
        cmd["xnat"][0]["derived-inputs"][0].update(
            {"matcher": "@.scan-type == 'MSME'", "multiple": True,
             "provides-value-for-command-input": "scan_id",
             "provides-files-for-command-mount": None})
        del cmd["xnat"][0]["derived-inputs"][1]["provides-value-for-command-input"]
        assert "W117" not in _codes(cmd)

    def test_resource_matched_by_label_is_fine(self, cmd):
        cmd["xnat"][0]["derived-inputs"].append(
            {"name": "dicom", "type": "Resource", "derived-from-wrapper-input": "scan",
             "matcher": "@.label == 'DICOM'"})
        assert "W117" not in _codes(cmd)

    def test_shell_syntax_fine_with_override_entrypoint(self, cmd):
        cmd["command-line"] += " > /output/log"
        cmd["override-entrypoint"] = True
        assert "W108" not in _codes(cmd)

    def test_wrapper_key_in_environment_is_fine(self, cmd):
        # environment variables get every input's value (CommandResolutionServiceImpl:2413)
        cmd["environment-variables"]["SESSION"] = "#session#"
        assert _codes(cmd) == set()


class TestShippedCommands:
    @pytest.mark.parametrize(
        "path", sorted((PROJECT_ROOT / "commands").glob("*.json")), ids=lambda p: p.name)
    def test_shipped_command_has_no_error(self, path):
        findings = lint_commands(load_commands(str(path)))
        assert [str(f) for f in findings if f.severity == "error"] == []
        accepted = accepted_warnings(json.loads(path.read_text()))
        assert {f.code for f in findings} <= accepted, [str(f) for f in findings]

    def test_there_are_shipped_commands(self):
        assert list((PROJECT_ROOT / "commands").glob("*.json"))


class TestCli:
    def test_exit_1_and_json_on_error(self, tmp_path, cmd, capsys):
        cmd["name"] = ""
        path = tmp_path / "bad.json"
        path.write_text(json.dumps([cmd]))
        assert main(["commands", "lint", "--json", str(path)]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["errors"] == 1
        assert report["findings"][0]["code"] == "E101"
        assert report["findings"][0]["source"] == f"{path}[0]"

    def test_exit_0_with_warnings_only(self, tmp_path, cmd, capsys):
        cmd["gpus"] = "all"
        path = tmp_path / "warn.json"
        path.write_text(json.dumps(cmd))
        assert main(["commands", "lint", str(path)]) == 0
        out = capsys.readouterr().out
        assert "W105 warning" in out and str(path) in out

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

    def test_label_of_lints_as_a_label_import(self, tmp_path, cmd, capsys):
        # CommandLabelServiceImpl.java:57-58: the label's image is replaced by the image name
        path = tmp_path / "label.json"
        path.write_text(json.dumps([cmd]))
        argv = ["commands", "lint", "--json", "--label-of", "r.example.org/s", str(path)]
        assert main(argv) == 1
        codes = {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]}
        assert {"E103", "W128"} <= codes

    def test_image_override_fills_the_image(self, tmp_path, cmd, capsys):
        del cmd["image"]
        path = tmp_path / "noimage.json"
        path.write_text(json.dumps(cmd))
        assert main(["commands", "lint", "--json", "--image", "r.example.org/s:1", str(path)]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["findings"] == []


class TestLabelImport:
    def test_one_unreadable_command_drops_the_whole_label(self, cmd):
        # readValue(List<CommandCreation>) fails as a whole (CommandLabelServiceImpl.java:50, 64)
        bad = copy.deepcopy(cmd)
        bad["reserve-memory"] = "2G"
        items = [LoadedCommand(cmd, "img", 0, "r.example.org/s:1"),
                 LoadedCommand(bad, "img", 1, "r.example.org/s:1")]
        findings = lint_commands(items)
        dropped = [f for f in findings if f.code == "E006"]
        assert len(dropped) == 1 and dropped[0].source == "img" and "img[1]" in dropped[0].message

    def test_a_refused_command_of_a_label_is_dropped_alone(self, cmd):
        # CommandServiceImpl.save logs and skips it (CommandServiceImpl.java:130-143)
        bad = copy.deepcopy(cmd)
        bad["name"] = ""
        items = [LoadedCommand(cmd, "img", 0, "r.example.org/s:1"),
                 LoadedCommand(bad, "img", 1, "r.example.org/s:1")]
        findings = lint_commands(items)
        assert {(f.source, f.code) for f in findings} == {("img[1]", "E101"), ("img[1]", "W128")}


def _paths(obj: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += _paths(value, (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += _paths(value, (*path, i))
    return found


def _replaced(command: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(command)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


class TestRobustness:
    ODD_VALUES = (None, "", 0, 1.5, True, [], {}, [None], {"a": None}, "x" * 300, [{}])

    def test_any_json_value_anywhere_gives_findings_not_a_crash(self):
        for path in _paths(BASE)[1:]:
            for value in self.ODD_VALUES:
                command = _replaced(BASE, path, value)
                findings = lint_command(command, "t.json")
                label = lint_commands([LoadedCommand(command, "t", 0, "r.example.org/s:1")])
                assert all(f.code in RULES for f in findings + label), (path, value)

    def test_an_object_in_place_of_any_scalar_is_refused(self):
        # no scalar field of CommandCreation and its parts accepts a JSON object (Jackson 400)
        leaves = [p for p in _paths(BASE)[1:] if not isinstance(_get(BASE, p), (dict, list))]
        assert leaves
        for path in leaves:
            assert "E002" in _errors(_replaced(BASE, path, {"a": "b"})), path


def _get(obj: Any, path: tuple) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def test_file_with_byte_order_mark_is_read(tmp_path):
    # Jackson detects the encoding from the bytes, BOM included; so must we
    path = tmp_path / "bom.json"
    path.write_bytes("\ufeff".encode() + json.dumps(BASE).encode())
    assert lint_commands(load_commands(str(path))) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("{'a': 'it\\'s \"x\"'}", {"a": "it's \"x\""}),       # ALLOW_SINGLE_QUOTES
    ('{"a": "#not a comment"} # a comment', {"a": "#not a comment"}),  # ALLOW_YAML_COMMENTS
])
def test_xnat_lenient_json_is_read_with_a_warning(tmp_path, text, expected):
    # NrgXnat/xnat framework SerializerConfig.objectMapperBuilder enables both features
    path = tmp_path / "lenient.json"
    path.write_text(text)
    loaded = load_commands(str(path))
    assert loaded[0].data == expected and loaded[0].relaxed
    assert "W130" in {f.code for f in lint_commands(loaded)}


def test_other_invalid_json_is_still_refused(tmp_path):
    path = tmp_path / "trailing.json"
    path.write_text('{"a": 1,}')  # no ALLOW_TRAILING_COMMA in XNAT's mapper
    with pytest.raises(CommandFileError, match="not valid JSON"):
        load_commands(str(path))


def test_optional_derived_input_matching_several_is_not_warned(cmd):
    # only a required input without a unique value fails (CommandResolutionServiceImpl:1730)
    scan = cmd["xnat"][0]["derived-inputs"][0]
    scan.update({"matcher": "@.scan-type == 'MSME'", "required": False})
    assert "W117" not in _codes(cmd)


def test_whitespace_image_is_tagged_not_refused(cmd):
    # setDefaultTag appends :latest to any non-empty name, so "  " becomes "  :latest",
    # which is not blank (Command.java:329-335, 376): XNAT stores it; only "" is refused
    cmd["image"] = "  "
    assert "E102" not in _errors(cmd)
    cmd["image"] = ""
    assert "E102" in _errors(cmd)

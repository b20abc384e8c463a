"""The local launcher against Container Service 3.7.3, case by case.

Each expectation cites the line of container-service ``src/main/java/org/nrg/containers/``
it comes from (CRSI = services/impl/CommandResolutionServiceImpl.java, CFSI =
services/impl/ContainerFinalizeServiceImpl.java, CSI = services/impl/ContainerServiceImpl.java).
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import shutil
import stat
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.launch_archive import make_session, step_entrypoint
from xnatpic.cli.main import main
from xnatpic.xnat.archive import load_project, load_session
from xnatpic.xnat.errors import IllegalValueError, ResolutionError
from xnatpic.xnat.launcher import LaunchOptions, container_argv, launch, launch_project
from xnatpic.xnat.metadata import read_project, update_project
from xnatpic.xnat.metaserver import MetadataServer
from xnatpic.xnat.resolve import (
    find_wrapper,
    multiple_for_command_line,
    resolve,
    value_for_command_line,
)
from xnatpic.xnat.rest import XnatClient, load_credentials

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "name": "probe", "version": "1.0", "image": "probe:1.0", "type": "docker",
    "command-line": "--input /input --output /output",
    "mounts": [{"name": "in", "writable": False, "path": "/input"},
               {"name": "out", "writable": True, "path": "/output"}],
    "inputs": [], "outputs": [],
    "xnat": [{
        "name": "probe-session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "required": True,
                             "provides-files-for-command-mount": "in"}],
        "derived-inputs": [], "output-handlers": [],
    }],
}


def command_with(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced; ``wrapper`` updates the wrapper's keys."""
    command = copy.deepcopy(BASE)
    wrapper = changes.pop("wrapper", {})
    command.update(changes)
    command["xnat"][0].update(wrapper)
    return command


def resolved_for(command: dict[str, Any], session: Path, params: dict[str, str] | None = None):
    return resolve(command, find_wrapper(command, None), load_session(session), params)


@pytest.fixture
def session(tmp_path) -> Path:
    return make_session(tmp_path / "archive", "m1_d0", group="control",
                        fields={"timepoint": "d0"})


def run_local(command, session, tmp_path, params=None, **options):
    opts = LaunchOptions(runtime="local", entrypoint=step_entrypoint(tmp_path),
                         build_root=tmp_path / "build", **options)
    return launch(command, None, session, params, opts)


def record_of(result) -> dict[str, Any]:
    return json.loads((Path(result.build_dir) / "mounts" / "out" / "record.json").read_text())


class TestCommandLine:
    def test_only_command_input_keys_are_substituted(self, session):
        # CRSI 1684-1692: only CommandInput values enter the command-line map; 2395 fills
        # the command line from that map alone, so a wrapper input's key stays as written
        command = command_with(
            **{"command-line": "--input /input --output /output #session# #label#"},
            inputs=[{"name": "label", "type": "string"}],
            wrapper={"derived-inputs": [{
                "name": "session-label", "type": "string", "derived-from-wrapper-input":
                "session", "derived-from-xnat-object-property": "label",
                "provides-value-for-command-input": "label"}]})
        resolved = resolved_for(command, session)
        assert resolved.arguments[-2:] == ["#session#", "m1_d0"]

    def test_flag_and_separator(self, session):
        # CRSI 1807-1816: flag + (separator, a space when null) + value
        cinp = {"name": "x", "command-line-flag": "--x"}
        assert value_for_command_line(cinp, "1") == "--x 1"
        assert value_for_command_line({**cinp, "command-line-separator": "="}, "1") == "--x=1"
        assert value_for_command_line({**cinp, "command-line-separator": ""}, "1") == "--x1"
        # CRSI 1790-1793: a blank value drops its flag
        assert value_for_command_line(cinp, "  ") == ""

    @pytest.mark.parametrize(("delimiter", "expected"), [
        (None, "--s a b c"),            # CommandInputEntity.java 356-358: default space
        ("space", "--s a b c"),
        ("comma", "--s a,b,c"),
        ("flag", "--s a --s b --s c"),  # CRSI 1772-1774: delimiter " " + prefix
        ("quoted-space", "--s 'a b c'"),  # CRSI 1761-1766: ONE pair of single quotes
        ("bogus", "--s a b c"),         # getByName: anything else is space
    ])
    def test_multiple_delimiters(self, delimiter, expected):
        cinp = {"name": "s", "command-line-flag": "--s", "multiple-delimiter": delimiter}
        assert multiple_for_command_line(cinp, ["a", "b", "c"]) == expected

    def test_multiple_prefix_without_flag(self):
        # CRSI 1754-1755: flag and separator default to " " when blank; a blank prefix is ""
        assert multiple_for_command_line({"name": "s"}, ["a", "b"]) == "a b"
        assert multiple_for_command_line({"name": "s", "multiple-delimiter": "quoted-space"},
                                         ["a", "b"]) == "'a b'"
        # an empty separator becomes a space for several values (unlike one value)
        assert multiple_for_command_line({"name": "s", "command-line-flag": "-s",
                                          "command-line-separator": ""}, ["a"]) == "-s a"

    def test_select_many_json_list(self):
        # CRSI 1796-1805: a select-many value that is a JSON list is written as several
        cinp = {"name": "m", "type": "select-many", "command-line-flag": "--m",
                "multiple-delimiter": "comma"}
        assert value_for_command_line(cinp, '["a", "b"]') == "--m a,b"
        assert value_for_command_line(cinp, "a") == "--m a"

    def test_multiple_derived_values(self, session):
        # CRSI 1697-1718: a multiple derived input gives its command input every value
        command = command_with(
            **{"command-line": "#RES#"},
            inputs=[{"name": "res", "type": "string", "replacement-key": "#RES#",
                     "command-line-flag": "--r", "multiple-delimiter": "quoted-space"}],
            wrapper={"derived-inputs": [
                {"name": "scan", "type": "Scan", "derived-from-wrapper-input": "session",
                 "matcher": "@.scan-type == 'MSME'"},
                {"name": "labels", "type": "Resource", "derived-from-wrapper-input": "scan",
                 "multiple": True, "derived-from-xnat-object-property": "label",
                 "provides-value-for-command-input": "res"}]})
        assert resolved_for(command, session).command_line == "--r 'DICOM NIFTI'"

    def test_optional_parent_resolving_nothing_blanks_the_key(self, session):
        # CRSI 1576-1586: a command input under a non-required wrapper input gets "" on
        # the command line when that input resolves to nothing
        command = command_with(
            **{"command-line": "--a #SCANID# --b"},
            inputs=[{"name": "scanid", "type": "string", "replacement-key": "#SCANID#"}],
            wrapper={"derived-inputs": [
                {"name": "scan", "type": "Scan", "derived-from-wrapper-input": "session",
                 "matcher": "@.scan-type == 'NONE'", "required": False},
                {"name": "scan-id", "type": "string", "derived-from-wrapper-input": "scan",
                 "derived-from-xnat-object-property": "id", "required": False,
                 "provides-value-for-command-input": "scanid"}]})
        assert resolved_for(command, session).arguments == ["--a", "--b"]


class TestValues:
    def test_provided_value_wins_over_launch_value(self, session):
        # CRSI 1470-1487: default, then the launch value, then the provider's value
        command = command_with(
            **{"command-line": "#label#"},
            inputs=[{"name": "label", "type": "string", "default-value": "dflt"}],
            wrapper={"derived-inputs": [{
                "name": "session-label", "type": "string", "derived-from-wrapper-input":
                "session", "derived-from-xnat-object-property": "label",
                "provides-value-for-command-input": "label"}]})
        assert resolved_for(command, session, {"label": "mine"}).command_line == "m1_d0"

    def test_launch_value_wins_over_default(self, session):
        command = command_with(**{"command-line": "#n#"},
                               inputs=[{"name": "n", "type": "number", "default-value": "1"}])
        assert resolved_for(command, session, {"n": "2"}).command_line == "2"
        # CRSI 1464-1514: a number is not checked
        assert resolved_for(command, session, {"n": "two"}).command_line == "two"

    @pytest.mark.parametrize(("given", "expected"), [
        ("true", "-v"), ("TRUE", "-v"), ("True", "-v"),      # Boolean.parseBoolean
        ("1", "-q"), ("yes", "-q"), ("on", "-q"), ("false", "-q"),
        (None, "-q"),                                        # no value: false-value
    ])
    def test_booleans_parse_like_java(self, session, given, expected):
        # CRSI 1498-1505
        command = command_with(**{"command-line": "#b#"}, inputs=[
            {"name": "b", "type": "boolean", "true-value": "-v", "false-value": "-q"}])
        params = {} if given is None else {"b": given}
        assert resolved_for(command, session, params).command_line == expected

    def test_boolean_without_true_value_passes_through(self, session):
        # CRSI 1501-1502: no true-value: the value itself ("TRUE" stays "TRUE")
        command = command_with(**{"command-line": "#b#"},
                               inputs=[{"name": "b", "type": "boolean"}])
        assert resolved_for(command, session, {"b": "TRUE"}).command_line == "TRUE"

    @pytest.mark.parametrize("dtype", ["number", "boolean", "Config"])
    def test_derived_number_boolean_config_never_resolve(self, session, dtype):
        # CRSI 917-924 (number, boolean: "TODO", no values) and 1419-1422 (Config)
        derived = {"name": "d", "type": dtype, "derived-from-wrapper-input": "session",
                   "derived-from-xnat-object-property": "label"}
        command = command_with(wrapper={"derived-inputs": [derived]})
        # CRSI 1720-1733: a required input without value fails the resolution
        with pytest.raises(ResolutionError, match='Input "d" could not be resolved'):
            resolved_for(command, session)
        derived["required"] = False
        resolved = resolved_for(command, session)
        assert resolved.wrapper_inputs["d"].value is None

    def test_derived_string_reads_a_scalar_property(self, session):
        # CRSI 909 with 1860-1866: "$.<property>" of the parent read as a String; a list
        # (or a filter's result) does not map to a String: no value
        derived = {"name": "d", "type": "string", "derived-from-wrapper-input": "session",
                   "derived-from-xnat-object-property": "label", "required": False}
        command = command_with(wrapper={"derived-inputs": [derived]})
        assert resolved_for(command, session).wrapper_inputs["d"].value == "m1_d0"
        for change in ({"derived-from-xnat-object-property": "scans"},
                       {"derived-from-xnat-object-property": "nope"},
                       {"matcher": "@.label == 'm1_d0'"}):
            command["xnat"][0]["derived-inputs"][0] = {**derived, **change}
            assert resolved_for(command, session).wrapper_inputs["d"].value is None

    def test_missing_required_command_input(self, session):
        # CRSI 443-452
        command = command_with(inputs=[{"name": "a", "type": "string", "required": True},
                                       {"name": "b", "type": "string", "required": True}])
        with pytest.raises(ResolutionError, match="Missing values for required inputs: a, b"):
            resolved_for(command, session)
        # "" is a value (hasNonNullValue, CRSI 1837)
        assert resolved_for(command, session, {"a": "", "b": ""}).command_line

    def test_illegal_strings(self, session):
        # CommandResolutionService.java:14 and CRSI 652-666
        command = command_with(inputs=[{"name": "a", "type": "string"}])
        for bad in ("x;y", "a && b", "a || b", "`x`", "T1 (RARE)"):
            with pytest.raises(IllegalValueError, match='Input "a" has a value containing'):
                resolved_for(command, session, {"a": bad})


class TestTemplates:
    def test_matcher_gets_replacement_keys(self, session):
        # CRSI 875: a derived input's matcher is filled from the values resolved before it
        # (input trees one after another, depth first: CRSI 388-405, 1600-1662)
        command = command_with(
            **{"command-line": "#sid#"},
            inputs=[{"name": "sid", "type": "string"}],
            wrapper={"external-inputs": [
                {"name": "wanted", "type": "string", "default-value": "T1_RARE"},
                {"name": "session", "type": "Session", "provides-files-for-command-mount":
                 "in"}],
                "derived-inputs": [
                {"name": "scan", "type": "Scan", "derived-from-wrapper-input": "session",
                 "matcher": "@.scan-type == '#wanted#'"},
                {"name": "scan-id", "type": "string", "derived-from-wrapper-input": "scan",
                 "derived-from-xnat-object-property": "id",
                 "provides-value-for-command-input": "sid"}]})
        assert resolved_for(command, session).command_line == "3"
        assert resolved_for(command, session, {"wanted": "MSME"}).command_line == "4"
        # declared after the session, "wanted" is not resolved yet when the scan's
        # matcher is filled: the key stays literal and nothing matches
        externals = command["xnat"][0]["external-inputs"]
        externals.reverse()
        with pytest.raises(ResolutionError, match='Input "scan" could not be resolved'):
            resolved_for(command, session)

    def test_external_input_matcher(self, session):
        # CRSI 804-836 and 2091-2118: the matcher is applied to the external object too;
        # no match gives a null value, then "Missing values" (CRSI 443-452)
        command = command_with(wrapper={"external-inputs": [
            {"name": "session", "type": "Session", "matcher": "@.label == 'other'",
             "provides-files-for-command-mount": "in"}]})
        with pytest.raises(ResolutionError, match="required input: session"):
            resolved_for(command, session)
        command["xnat"][0]["external-inputs"][0]["matcher"] = "@.label == 'm1_d0'"
        assert resolved_for(command, session).wrapper_inputs["session"].obj is not None

    def test_environment_gets_raw_values(self, session):
        # CRSI 2407-2413: environment variables (names and values) are filled from the
        # raw values, never from the flagged command-line text
        command = command_with(
            inputs=[{"name": "n", "type": "number", "default-value": "3",
                     "command-line-flag": "--n"}],
            **{"environment-variables": {"STEP_N": "#n#", "STEP_#n#": "x",
                                         "STEP_SESSION": "#session#"}})
        env = resolved_for(command, session).environment
        assert env == {"STEP_N": "3", "STEP_3": "x",
                       "STEP_SESSION": "/archive/experiments/XNAT_E00001"}

    def test_container_labels(self, session):
        # CRSI 2368-2384: container labels filled from raw values; DockerControlApi.java:615
        command = command_with(**{"container-labels": {"step.session": "#session#"}})
        resolved = resolved_for(command, session)
        argv = container_argv(resolved, "docker", "img", {"in": Path("/a"), "out": Path("/b")},
                              [], network="host", limits=False, name="n")
        assert argv[argv.index("--label") + 1] == (
            "step.session=/archive/experiments/XNAT_E00001")

    def test_outputs_working_directory_and_mount_paths(self, session):
        # CRSI 2338-2343 (output path, handler label/description...), 2425
        # (working-directory), 2589 (mount path)
        command = command_with(
            inputs=[{"name": "tag", "type": "string", "default-value": "T2"}],
            outputs=[{"name": "o", "mount": "out", "path": "#tag#_maps"}],
            mounts=[{"name": "in", "writable": False, "path": "/in_#tag#"},
                    {"name": "out", "writable": True, "path": "/output"}],
            **{"working-directory": "/work/#tag#"},
            wrapper={"output-handlers": [{
                "name": "h", "accepts-command-output": "o", "as-a-child-of": "session",
                "type": "Resource", "label": "#tag#MAP", "description": "from #session#",
                "tags": ["#tag#"]}]})
        resolved = resolved_for(command, session)
        (output,) = resolved.outputs
        assert (output.path, output.label, output.tags) == ("T2_maps", "T2MAP", ["T2"])
        assert output.description == "from /archive/experiments/XNAT_E00001"
        assert resolved.working_directory == "/work/T2"
        assert resolved.mounts[0].path == "/in_T2"


class TestModel:
    def test_session_json_as_cs_serialises_it(self, session):
        # model/xnat/Session.java 36-45: no custom "fields"; NON_NULL inclusion
        # (src/test/.../config/ObjectMapperConfig.java:18) drops null values
        data = load_session(session).data
        assert "fields" not in data and "datatype-string" not in data
        assert data["id"] == "XNAT_E00001" and data["label"] == "m1_d0"
        assert data["project-id"] == "PRECLIN" and data["subject-id"] == "XNAT_S00001"

    def test_scan_integer_id_is_a_database_key(self, tmp_path):
        # model/xnat/Scan.java:74: integer-id = xnat_imagescandata_id, not the scan number
        archive = tmp_path / "archive"
        make_session(archive, "a", scans={"7": "T1_RARE"})
        second = make_session(archive, "b", scans={"7": "T1_RARE"})
        (scan,) = load_session(second).children["Scan"]
        key = read_project(archive, "PRECLIN").experiment("b")["scans"]["7"][
            "xnat_imagescandata_id"]
        assert scan.data["integer-id"] == key == 2     # the second scan row of the site
        assert scan.data["label"] == "7 - T1_RARE"      # Scan.java:80

    def test_no_metadata_file_in_sessions(self, session):
        assert not list(session.rglob("session.json"))
        assert (session.parents[2] / ".xnatpic" / "PRECLIN.json").is_file()

    def test_project_mount_is_arc001(self, tmp_path, session):
        # model/xnat/Project.java:91: directory = root archive path + current arc
        project = load_project(session.parents[1])
        assert project.directory == session.parent
        command = command_with(wrapper={"external-inputs": [
            {"name": "project", "type": "Project", "provides-files-for-command-mount": "in"}]})
        result = launch_project(command, None, session.parents[1], None, LaunchOptions(
            runtime="local", build_root=tmp_path / "build",
            entrypoint=step_entrypoint(tmp_path)))
        assert result.ok, result.error
        assert record_of(result)["args"][1] == str(session.parent.resolve())


class TestLaunch:
    def test_reserved_environment_name_fails_staging(self, session, tmp_path):
        # ResolvedCommand.java:343-353 puts XNAT's five variables (CSI 816-829) into the
        # ImmutableMap builder already holding the command's: Guava refuses the duplicate
        # key, CSI 613-615 records "Failed (Staging)" and no container starts
        marker = tmp_path / "ran"
        for name in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_WORKFLOW_ID",
                     "XNAT_EVENT_ID"):
            command = command_with(**{
                "environment-variables": {name: "mine"},
                "command-line": f"--output /output --touch {marker}"})
            result = run_local(command, session, tmp_path)
            assert result.status == "Failed (Staging)"
            assert f"Multiple entries with same key: {name}=mine" in result.error
            assert not marker.exists()

    def test_xnat_environment_and_metadata_server(self, session, tmp_path):
        # CSI 816-829: XNAT_HOST/USER/PASS/WORKFLOW_ID/EVENT_ID in every container; here
        # they reach the local archive's metadata over XNAT's REST shapes
        command = command_with(**{"environment-variables": {"STEP_X": "1"}})
        result = run_local(command, session, tmp_path)
        assert result.ok, result.error
        env = record_of(result)["env"]
        assert set(env) == {"XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_WORKFLOW_ID",
                            "XNAT_EVENT_ID", "STEP_X"}
        assert env["XNAT_HOST"].startswith("http://127.0.0.1:")

    def test_output_folder_owner_write_only(self, session, tmp_path):
        # CRSI 3116-3129: created with the default mode, then owner write: not 0o777
        result = run_local(command_with(), session, tmp_path)
        mode = stat.S_IMODE((Path(result.build_dir) / "mounts" / "out").stat().st_mode)
        assert mode & stat.S_IWUSR and not mode & (stat.S_IWGRP | stat.S_IWOTH)

    def test_container_runs_as_the_invoking_user(self, session, tmp_path):
        # DockerControlApi.java:614 withUser(container user): our default is the uid:gid
        # owning the build folders; Container.java:847-849 binds, ":ro" when not writable
        resolved = resolved_for(command_with(), session)
        argv = container_argv(resolved, "docker", "probe:1.0",
                              {"in": Path("/a"), "out": Path("/b")}, ["XNAT_HOST"],
                              network="host", limits=False, name="n")
        assert argv[argv.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
        assert "/a:/input:ro" in argv and "/b:/output" in argv
        assert "--network" in argv and argv[argv.index("--network") + 1] == "host"

    def test_override_entrypoint_argv(self, session):
        # DockerControlApi.java:606-618: Cmd ["/bin/sh", "-c", line], Entrypoint ""
        resolved = resolved_for(command_with(**{"override-entrypoint": True}), session)
        argv = container_argv(resolved, "podman", "img", {"in": Path("/a"), "out": Path("/b")},
                              [], network="host", limits=False, name="n", user="5:6")
        assert argv[-6:] == ["--entrypoint", "", "img", "/bin/sh", "-c",
                             "--input /input --output /output"]

    def test_writable_input_mount_is_a_copy(self, session, tmp_path):
        # CRSI 2733-2757: a writable mount fed by an input gets a copy of the archive
        # folder in a build directory, mounted writable; the archive is untouched
        command = command_with(
            mounts=[{"name": "in", "writable": True, "path": "/input"},
                    {"name": "out", "writable": True, "path": "/output"}],
            **{"command-line": "--input /input --output /output --touch /input/new.txt"})
        result = run_local(command, session, tmp_path)
        assert result.ok, result.error
        copy_dir = Path(result.build_dir) / "mounts" / "in"
        assert (copy_dir / "new.txt").is_file() and (copy_dir / "SCANS" / "3").is_dir()
        assert not (session / "new.txt").exists()

    def _outputs_command(self, *, a_required: bool | None, b_required: bool | None
                         ) -> dict[str, Any]:
        outputs = [{"name": "a", "mount": "out", "path": "a"},
                   {"name": "b", "mount": "out", "path": "b"}]
        if a_required is not None:
            outputs[0]["required"] = a_required
        if b_required is not None:
            outputs[1]["required"] = b_required
        return command_with(outputs=outputs, inputs=[
            # select-many: each element is one argument (values with spaces are refused)
            {"name": "extra", "type": "select-many", "default-value": ""}],
            **{"command-line": "--input /input --output /output #extra#"},
            wrapper={"output-handlers": [
                {"name": "ha", "accepts-command-output": "a", "as-a-child-of": "session",
                 "type": "Resource", "label": "A"},
                {"name": "hb", "accepts-command-output": "b", "as-a-child-of": "session",
                 "type": "Resource", "label": "B"}]})

    def test_required_output_failure_keeps_the_others(self, session, tmp_path):
        # CFSI 377-394: each output uploaded on its own; a failed required one is
        # collected and CFSI 258-271 records "Failed (Upload)"; the others stay stored
        command = self._outputs_command(a_required=True, b_required=True)
        result = run_local(command, session, tmp_path, {"extra": json.dumps(['--write', 'b'])})
        assert result.status == "Failed (Upload)"
        assert "output a:ha" in result.error
        assert (session / "RESOURCES" / "B" / "file.txt").read_text() == "b"
        assert not (session / "RESOURCES" / "A").exists()

    def test_required_defaults_to_false(self, session, tmp_path):
        # Command.java:1001 CommandOutput required is a nullable Boolean; CFSI 387 and
        # treat only TRUE as required (CRSI 2256): a missing optional output is only logged
        command = self._outputs_command(a_required=None, b_required=None)
        result = run_local(command, session, tmp_path, {"extra": json.dumps(['--write', 'b'])})
        assert result.status == "Complete", result.error
        assert len(result.warnings) == 1 and "output a:ha" in result.warnings[0]

    def test_empty_folder_is_uploaded(self, session, tmp_path):
        # CFSI 452-455 and 588-592: an empty folder lists no file, so the folder itself is
        # uploaded: the resource is created (empty), not an error
        command = self._outputs_command(a_required=True, b_required=True)
        extra = json.dumps(["--empty", "a", "--write", "b"])
        result = run_local(command, session, tmp_path, {"extra": extra})
        assert result.ok, result.error
        folder = session / "RESOURCES" / "A"
        assert folder.is_dir() and [p.name for p in folder.iterdir()] == ["A_catalog.xml"]

    def test_exit_code_stores_nothing(self, session, tmp_path):
        command = self._outputs_command(a_required=True, b_required=True)
        extra = json.dumps(["--write", "a", "--write", "b", "--fail"])
        result = run_local(command, session, tmp_path, {"extra": extra})
        assert result.status == "Failed" and result.exit_code == 3
        assert not (session / "RESOURCES" / "A").exists()

    def test_resolution_failure_status(self, session, tmp_path):
        # CSI 605-606: "Failed (Command resolution)"
        command = command_with(inputs=[{"name": "a", "type": "string", "required": True}])
        result = run_local(command, session, tmp_path)
        assert result.status == "Failed (Command resolution)"
        assert "Missing values for required input: a" in result.error


class TestMetadataServer:
    def _get(self, server: MetadataServer, path: str, *, password: str | None = None):
        token = base64.b64encode(
            f"{server.user}:{password or server.password}".encode()).decode()
        request = urllib.request.Request(server.url + path,
                                         headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def test_answers_in_xnat_shapes(self, session):
        archive = session.parents[2]
        with MetadataServer(archive) as server:
            item = self._get(server, "/data/experiments/XNAT_E00001?format=json")["items"][0]
            subjects = self._get(server, "/data/projects/PRECLIN/subjects?format=json")
            subject = self._get(server, "/data/projects/PRECLIN/subjects/mouse1?format=json")
            experiments = self._get(server, "/data/projects/PRECLIN/experiments?format=json")
            with pytest.raises(urllib.error.HTTPError) as denied:
                self._get(server, "/data/projects/PRECLIN/subjects", password="wrong")
            with pytest.raises(urllib.error.HTTPError) as missing:
                self._get(server, "/data/experiments/NOPE?format=json")
        # xnat-rest-tests TestDicomDataExtraction.java:111-123: data_fields and the
        # fields/field children (name, field)
        assert item["data_fields"]["label"] == "m1_d0"
        assert item["data_fields"]["subject_ID"] == "XNAT_S00001"
        assert item["meta"]["xsi:type"] == "xnat:mrSessionData"
        fields = next(c for c in item["children"] if c["field"] == "fields/field")
        assert fields["items"][0]["data_fields"] == {"name": "timepoint", "field": "d0"}
        assert subjects["ResultSet"]["Result"][0]["group"] == "control"
        assert subject["items"][0]["data_fields"]["group"] == "control"
        row = experiments["ResultSet"]["Result"][0]
        assert (row["ID"], row["subject_label"]) == ("XNAT_E00001", "mouse1")
        assert denied.value.code == 401 and missing.value.code == 404


def _dicom(series: int, instance: int, series_uid: str, description: str) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, \
        meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", series_uid
    ds.SeriesNumber, ds.InstanceNumber, ds.Modality = series, instance, "MR"
    ds.SeriesDescription = description
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class TestLocalImport:
    def test_dicom_zip_import_makes_one_scan_per_series(self, session, tmp_path):
        # what mri2dicom --import sends (rest.import_dicom_zip); scan ids are the
        # SeriesNumber, a second series with a taken number becomes N-MR1
        # (xnat-rest-tests TestImport.java:580-600)
        zip_path = tmp_path / "dicom.zip"
        with zipfile.ZipFile(zip_path, "w") as zf:
            for i in (1, 2):
                zf.writestr(f"a/{i}.dcm", _dicom(5, i, "1.2.3.5", "T2_MSME"))
            zf.writestr("b/1.dcm", _dicom(5, 1, "1.2.3.55", "T2_other"))
        with MetadataServer(session.parents[2]) as server:
            client = XnatClient(load_credentials(env=server.env()))
            answer = client.import_dicom_zip(zip_path, project="PRECLIN", subject="mouse1",
                                             session_label="m1_d0")
        assert answer.strip() == "/data/archive/projects/PRECLIN/subjects/mouse1/" \
            "experiments/m1_d0"
        scans = {s.ident: s.data for s in load_session(session).children["Scan"]}
        assert scans["5"]["scan-type"] == "T2_MSME" and scans["5"]["frames"] == 2
        assert scans["5-MR1"]["uid"] == "1.2.3.55"
        assert sorted(p.name for p in (session / "SCANS" / "5" / "DICOM").iterdir()) == [
            "1.dcm", "2.dcm"]

    def test_mri2dicom_imports_into_the_local_archive(self, tmp_path):
        # the mri2dicom step launched locally sends its DICOM through the import service
        # (XNAT_HOST of the launch) and the next launch finds the new scans
        archive = tmp_path / "archive"
        session = archive / "PRECLIN" / "arc001" / "m1"
        assert main(["phantom", str(tmp_path / "ph")]) == 0
        shutil.copytree(tmp_path / "ph", session / "RESOURCES" / "PARAVISION" / "study")
        with update_project(archive, "PRECLIN") as meta:
            meta.ensure_experiment("m1", "mouse1")
        command = json.loads((ROOT / "commands" / "mri2dicom.json").read_text())
        result = launch(command, None, session, {"scans": "1"}, LaunchOptions(
            runtime="local", build_root=tmp_path / "b",
            entrypoint=[sys.executable, str(ROOT / "pipelines" / "mri2dicom" / "run.py")]))
        assert result.ok, result.error
        (scan,) = load_session(session).children["Scan"]
        assert scan.data["resources"][0]["label"] == "DICOM" and scan.data["frames"] > 0
        assert load_session(session).children["Subject"][0].data["label"] == "mouse1"


class TestMountSources:
    def _command(self, derived: dict[str, Any]) -> dict[str, Any]:
        return command_with(wrapper={
            "external-inputs": [{"name": "session", "type": "Session"}],
            "derived-inputs": [
                {"name": "res", "type": "Resource", "derived-from-wrapper-input": "session",
                 "matcher": "@.label == 'PARAVISION'"},
                {**derived, "derived-from-wrapper-input": "res",
                 "provides-files-for-command-mount": "in"}]})

    def test_file_input_mounts_the_file(self, session):
        # XnatFile.java:113-115: a File's root path is the file itself
        resolved = resolved_for(self._command({"name": "f", "type": "File"}), session)
        assert resolved.mounts[0].host == session / "RESOURCES" / "PARAVISION" / "acqp"

    def test_directory_input_cannot_feed_a_mount(self, session):
        # CRSI 2676-2679 with CommandWrapperInputType.java:47-49: Directory is not mountable
        with pytest.raises(ResolutionError, match="I don't know how to provide files to a "
                                                  'mount from an input of type "Directory"'):
            resolved_for(self._command({"name": "d", "type": "Directory"}), session)

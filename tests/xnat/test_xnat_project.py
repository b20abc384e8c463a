"""Metadata in .xnatpic/ (not in the sessions), projects in archive layout, project launches."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.launch_archive import make_session
from tests.xnat.test_xnat_launch import COMMAND
from xnatpic.cli.main import main
from xnatpic.xnat import jsonpath
from xnatpic.xnat.archive import load_project, load_session
from xnatpic.xnat.errors import ArchiveError, ResolutionError
from xnatpic.xnat.launcher import LaunchOptions, container_argv, launch, launch_project
from xnatpic.xnat.metadata import metadata_path, update_project
from xnatpic.xnat.resolve import resolve, wrapper_root_type

#: A project step: lists the mounted project, writes the value it was given.
STEP = r'''
import json, sys
from pathlib import Path
args = sys.argv[1:]
inp = Path(args[args.index("--input") + 1])
out = Path(args[args.index("--output") + 1])
if "--fail" in args:
    print("project step failed on purpose", file=sys.stderr)
    sys.exit(4)
(out / "summary").mkdir(parents=True)
(out / "summary" / "seen.json").write_text(json.dumps({
    "args": args, "top": sorted(p.name for p in inp.iterdir())}))
'''

PROJECT_COMMAND: dict[str, Any] = {
    "name": "proj", "version": "1.0", "image": "proj:1.0", "type": "docker",
    "command-line": "--input /input --output /output #PROJECT# #SUBJECTS# #FAIL#",
    "reserve-memory": 100, "limit-memory": 200, "limit-cpu": 1,
    "mounts": [{"name": "in", "writable": False, "path": "/input"},
               {"name": "out", "writable": True, "path": "/output"}],
    "inputs": [
        {"name": "project", "type": "string", "replacement-key": "#PROJECT#",
         "command-line-flag": "--project"},
        {"name": "subjects", "type": "string", "replacement-key": "#SUBJECTS#",
         "command-line-flag": "--subject", "multiple-delimiter": "flag"},
        {"name": "fail", "type": "boolean", "default-value": "false", "true-value": "--fail",
         "false-value": "", "replacement-key": "#FAIL#"},
    ],
    "outputs": [{"name": "summary", "mount": "out", "path": "summary", "required": True}],
    "xnat": [{
        "name": "proj-project", "contexts": ["xnat:projectData"],
        "external-inputs": [{"name": "project", "type": "Project", "required": True,
                             "provides-files-for-command-mount": "in"}],
        "derived-inputs": [
            {"name": "project-id", "type": "string", "derived-from-wrapper-input": "project",
             "derived-from-xnat-object-property": "id",
             "provides-value-for-command-input": "project", "user-settable": False},
            {"name": "treated", "type": "Subject", "derived-from-wrapper-input": "project",
             "matcher": "@.group == 'treated'", "multiple": True,
             "derived-from-xnat-object-property": "label",
             "provides-value-for-command-input": "subjects", "required": False},
        ],
        "output-handlers": [{"name": "summary-resource", "accepts-command-output": "summary",
                             "as-a-child-of": "project", "type": "Resource",
                             "label": "SUMMARY"}],
    }],
}


def make_project(root: Path) -> Path:
    """PRECLIN/arc001/{a,b,c}: subjects mouse1 (a, b; control) and mouse2 (c; treated)."""
    for label, subject, group, timepoint in (("a", "mouse1", "control", "d0"),
                                             ("b", "mouse1", None, "d7"),
                                             ("c", "mouse2", "treated", "d0")):
        make_session(root, label, subject=subject, group=group,
                     fields={"timepoint": timepoint})
    return root / "PRECLIN"


@pytest.fixture
def command() -> dict[str, Any]:
    return copy.deepcopy(PROJECT_COMMAND)


@pytest.fixture
def step(tmp_path) -> list[str]:
    script = tmp_path / "project_step.py"
    script.write_text(STEP)
    return [sys.executable, str(script)]


class TestMetadata:
    def test_fields_are_not_in_the_session_json(self, tmp_path):
        # model/xnat/Session.java 36-45 has no custom fields; the subject has the group
        folder = make_session(tmp_path, "m1", group="treated",
                              fields={"weight_g": "24.5", "timepoint": "d7"})
        session = load_session(folder)
        assert "fields" not in session.data and "group" not in session.data
        (subject,) = session.children["Subject"]
        assert subject.data["group"] == "treated" and subject.data["label"] == "mouse1"
        assert subject.data["id"] == session.data["subject-id"] == "XNAT_S00001"

    def test_matchers_cannot_see_fields(self, tmp_path):
        root = load_project(make_project(tmp_path))
        (treated,) = [s for s in root.children["Subject"] if s.data["group"] == "treated"]
        assert [s["label"] for s in treated.data["sessions"]] == ["c"]
        sessions = [s.data for s in root.children["Subject"][0].children["Session"]]
        assert jsonpath.filter_objects("@.fields.timepoint == 'd7'", sessions) == []

    def test_rows_are_kept_outside_the_sessions(self, tmp_path):
        project = make_project(tmp_path)
        stored = json.loads(metadata_path(tmp_path, "PRECLIN").read_text())
        assert stored["experiments"]["b"]["fields"] == {"timepoint": "d7"}
        assert stored["subjects"]["mouse1"]["group"] == "control"
        assert sorted(p.name for p in (project / "arc001" / "a").iterdir()) == [
            "RESOURCES", "SCANS"]

    def test_bad_metadata_file_names_it(self, tmp_path):
        project = make_project(tmp_path)
        metadata_path(tmp_path, "PRECLIN").write_text("{not json")
        with pytest.raises(ArchiveError, match=r"\.xnatpic/PRECLIN\.json: not valid JSON"):
            load_project(project)


class TestLoadProject:
    def test_project_as_xnat_serialises_it(self, tmp_path):
        project = make_project(tmp_path)
        (project / "RESOURCES" / "NOTES").mkdir(parents=True)
        (project / "RESOURCES" / "NOTES" / "n.txt").write_text("x")
        with update_project(tmp_path, "PRECLIN") as meta:
            meta.data["project"].update({"name": "Preclinical", "description": "mice"})
        root = load_project(project)
        data = root.data
        assert (data["id"], data["label"], data["xsiType"], data["uri"], data["title"]) == (
            "PRECLIN", "Preclinical", "xnat:projectData", "/archive/projects/PRECLIN",
            "Preclinical")
        # Project.java:91: the directory is the archive root path + current arc
        assert data["directory"] == str(project / "arc001")
        assert root.directory == project / "arc001"
        assert [r["label"] for r in data["resources"]] == ["NOTES"]
        assert data["resources"][0]["uri"] == "/archive/projects/PRECLIN/resources/NOTES"
        subjects = {s["label"]: s for s in data["subjects"]}
        assert sorted(subjects) == ["mouse1", "mouse2"]
        assert (subjects["mouse1"]["id"], subjects["mouse1"]["group"]) == (
            "XNAT_S00001", "control")
        assert [s["label"] for s in subjects["mouse1"]["sessions"]] == ["a", "b"]
        # Subject.java:73 and Session.java:98: URIs under the parent's
        assert subjects["mouse1"]["sessions"][0]["uri"] == (
            "/archive/projects/PRECLIN/subjects/XNAT_S00001/experiments/XNAT_E00001")
        assert subjects["mouse2"]["group"] == "treated"
        s1 = root.children["Subject"][0]
        assert all(s.children["Subject"] == [s1] and s.children["Project"] == [root]
                   for s in s1.children["Session"])

    def test_arc001_folder_accepted(self, tmp_path):
        project = make_project(tmp_path)
        assert load_project(project / "arc001").data["id"] == "PRECLIN"

    def test_sessions_without_subject_are_not_merged(self, tmp_path):
        arc = tmp_path / "P" / "arc001"
        for label in ("x", "y"):
            (arc / label / "RESOURCES").mkdir(parents=True)
        subjects = load_project(tmp_path / "P").data["subjects"]
        assert [len(s["sessions"]) for s in subjects] == [1, 1]

    @pytest.mark.parametrize(("case", "message"), [
        ("archive-root", r"archive root holding projects \['PRECLIN'\]"),
        ("flat", "sessions must be in .*/arc001/"),
        ("missing", "no such project folder"),
    ])
    def test_refused(self, tmp_path, case, message):
        make_project(tmp_path / "archive")
        target = {"archive-root": tmp_path / "archive", "flat": tmp_path / "flat",
                  "missing": tmp_path / "nope"}[case]
        if case == "flat":
            (target / "x" / "SCANS").mkdir(parents=True)
        with pytest.raises(ArchiveError, match=message):
            load_project(target)


class TestProjectLaunch:
    def test_root_type(self, command):
        assert wrapper_root_type(command["xnat"][0]) == "Project"

    def test_resolve_mounts_the_project(self, tmp_path, command):
        project = make_project(tmp_path)
        resolved = resolve(command, command["xnat"][0], load_project(project))
        assert resolved.arguments == ["--input", "/input", "--output", "/output",
                                      "--project", "PRECLIN", "--subject", "mouse2"]
        (mount,) = [m for m in resolved.mounts if m.name == "in"]
        assert (mount.host, mount.writable, mount.fed_by) == (project / "arc001", False,
                                                              "project")

    def test_container_mounts_the_project_read_only(self, tmp_path, command):
        project = make_project(tmp_path)
        resolved = resolve(command, command["xnat"][0], load_project(project))
        hosts = {"in": project / "arc001", "out": tmp_path / "out"}
        argv = container_argv(resolved, "podman", "proj:1.0", hosts, [], network="none",
                              limits=False, name="c1")
        assert argv[argv.index(f"{project}/arc001:/input:ro") - 1] == "-v"
        assert f"{tmp_path}/out:/output" in argv

    def test_launch_once_stores_on_the_project(self, tmp_path, command, step):
        project = make_project(tmp_path)
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch_project(command, None, project, {}, options)
        assert result.ok, result.error
        assert (result.session, result.root_type) == ("PRECLIN", "Project")
        dest = project / "RESOURCES" / "SUMMARY"
        assert result.stored == [str(dest)]
        seen = json.loads((dest / "seen.json").read_text())
        assert seen["top"] == ["a", "b", "c"]  # the mount is arc001 (Project.java:91)
        assert seen["args"][-4:] == ["--project", "PRECLIN", "--subject", "mouse2"]
        assert (dest / "SUMMARY_catalog.xml").exists()
        # the stored resource is a project resource for the next launch
        assert [r["label"] for r in load_project(project).data["resources"]] == ["SUMMARY"]

    def test_failure_stores_nothing(self, tmp_path, command, step):
        project = make_project(tmp_path)
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch_project(command, None, project, {"fail": "true"}, options)
        assert not result.ok and result.exit_code == 4
        assert "project step failed on purpose" in result.error
        assert not (project / "RESOURCES").exists()

    def test_project_wrapper_on_a_session_is_refused(self, tmp_path, command, step):
        project = make_project(tmp_path)
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch(command, None, project / "arc001" / "a", {}, options)
        assert not result.ok
        assert "is a Project" in result.error and "--project PROJECT_DIR" in result.error

    def test_session_wrapper_on_a_project_is_refused(self, tmp_path, step):
        project = make_project(tmp_path)
        with pytest.raises(ResolutionError, match="launched on sessions, not on the project"):
            resolve(COMMAND, COMMAND["xnat"][0], load_project(project))

    def test_cli_project_launches_once(self, tmp_path, command, step):
        project = make_project(tmp_path)
        cmd_file = tmp_path / "proj.json"
        cmd_file.write_text(json.dumps(command))
        report = tmp_path / "report.json"
        code = main(["launch", str(cmd_file), "--project", str(project), "--runtime", "local",
                     "--entrypoint", " ".join(step), "--build-dir", str(tmp_path / "bd"),
                     "--report", str(report)])
        assert code == 0
        data = json.loads(report.read_text())
        assert (data["sessions"], data["succeeded"]) == (1, 1)
        assert data["results"][0]["root_type"] == "Project"
        assert (project / "RESOURCES" / "SUMMARY" / "seen.json").exists()
        assert len(list((tmp_path / "bd").glob("PRECLIN-proj-project-*"))) == 1

    def test_cli_session_with_project_wrapper_fails(self, tmp_path, command, step):
        project = make_project(tmp_path)
        cmd_file = tmp_path / "proj.json"
        cmd_file.write_text(json.dumps(command))
        code = main(["launch", str(cmd_file), "--session", str(project / "arc001" / "a"),
                     "--runtime", "local", "--entrypoint", " ".join(step),
                     "--build-dir", str(tmp_path / "bd"), "--report",
                     str(tmp_path / "r.json")])
        assert code == 1
        error = json.loads((tmp_path / "r.json").read_text())["results"][0]["error"]
        assert "is a Project" in error and "--project PROJECT_DIR" in error
        assert not (project / "RESOURCES").exists()

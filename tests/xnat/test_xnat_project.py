"""session.json group/timepoint/fields, projects in archive layout, project-level launches."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.test_xnat_launch import COMMAND, make_session
from xnatpic.cli.main import main
from xnatpic.xnat import jsonpath
from xnatpic.xnat.archive import load_project, load_session
from xnatpic.xnat.errors import ArchiveError, ResolutionError
from xnatpic.xnat.launcher import LaunchOptions, container_argv, launch, launch_project
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
    "args": args, "top": sorted(p.name for p in inp.iterdir()),
    "sessions": sorted(p.name for p in (inp / "arc001").iterdir())}))
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


def _meta(session: Path, **extra: Any) -> None:
    path = session / "session.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **extra}))


def make_project(root: Path) -> Path:
    """PRECLIN/arc001/{a,b,c}: subjects S_1 (a, b; control) and S_2 (c; treated)."""
    project = root / "PRECLIN"
    for label, subject, group, timepoint in (("a", "S_1", "control", "d0"),
                                             ("b", "S_1", "", "d7"),
                                             ("c", "S_2", "treated", "d0")):
        session = make_session(project / "arc001", label)
        _meta(session, subject=subject, **{"subject-label": f"mouse{subject[-1]}"},
              timepoint=timepoint, **({"group": group} if group else {}))
    return project


@pytest.fixture
def command() -> dict[str, Any]:
    return copy.deepcopy(PROJECT_COMMAND)


@pytest.fixture
def step(tmp_path) -> list[str]:
    script = tmp_path / "project_step.py"
    script.write_text(STEP)
    return [sys.executable, str(script)]


class TestSessionFields:
    def test_group_timepoint_and_fields(self, tmp_path):
        folder = make_session(tmp_path, "m1")
        _meta(folder, group="treated", timepoint="d7",
              fields={"weight_g": 24.5, "fasted": True, "cage": "A2"})
        session = load_session(folder)
        assert session.data["fields"] == {"weight_g": "24.5", "fasted": "true", "cage": "A2",
                                          "timepoint": "d7"}
        assert "group" not in session.data
        (subject,) = session.children["Subject"]
        assert subject.data["group"] == "treated"

    def test_matchers_see_fields_and_group(self, tmp_path):
        project = make_project(tmp_path)
        root = load_project(project)
        (treated,) = [s for s in root.children["Subject"] if s.data["group"] == "treated"]
        assert [s["fields"]["timepoint"] for s in treated.data["sessions"]] == ["d0"]
        sessions = [s.data for s in root.children["Subject"][0].children["Session"]]
        kept = jsonpath.filter_objects("@.fields.timepoint == 'd7'", sessions)
        assert [s["label"] for s in kept] == ["b"]

    def test_no_fields_is_an_empty_object(self, tmp_path):
        assert load_session(make_session(tmp_path, "m1")).data["fields"] == {}

    @pytest.mark.parametrize(("extra", "message"), [
        ({"fields": ["d0"]}, "'fields' must be an object"),
        ({"fields": {"w": [1]}}, r"fields\['w'\] must be a non-empty name"),
        ({"timepoint": "d0", "fields": {"timepoint": "d7"}},
         "'timepoint' 'd0' differs from fields.timepoint 'd7'"),
        ({"timepoint": {"d": 0}}, "'timepoint' must be a string or number"),
        ({"group": 3}, "'group' .* must be a string"),
        ({"groups": "x"}, r"unknown key\(s\) \['groups'\]"),
    ])
    def test_bad_values_name_the_file(self, tmp_path, extra, message):
        folder = make_session(tmp_path, "m1")
        _meta(folder, **extra)
        with pytest.raises(ArchiveError, match="session.json: " + message):
            load_session(folder)


class TestLoadProject:
    def test_project_as_xnat_serialises_it(self, tmp_path):
        project = make_project(tmp_path)
        (project / "RESOURCES" / "NOTES").mkdir(parents=True)
        (project / "RESOURCES" / "NOTES" / "n.txt").write_text("x")
        (project / "project.json").write_text(json.dumps({"title": "Preclinical",
                                                          "description": "mice"}))
        root = load_project(project)
        data = root.data
        assert (data["id"], data["label"], data["xsiType"], data["uri"], data["title"]) == (
            "PRECLIN", "PRECLIN", "xnat:projectData", "/archive/projects/PRECLIN",
            "Preclinical")
        assert data["directory"] == str(project) and root.directory == project
        assert [r["label"] for r in data["resources"]] == ["NOTES"]
        assert data["resources"][0]["uri"] == "/archive/projects/PRECLIN/resources/NOTES"
        subjects = {s["id"]: s for s in data["subjects"]}
        assert sorted(subjects) == ["S_1", "S_2"]
        assert (subjects["S_1"]["label"], subjects["S_1"]["group"]) == ("mouse1", "control")
        assert [s["label"] for s in subjects["S_1"]["sessions"]] == ["a", "b"]
        assert subjects["S_2"]["group"] == "treated"
        # sessions point back to the shared subject and project objects
        s1 = root.children["Subject"][0]
        assert all(s.children["Subject"] == [s1] and s.children["Project"] == [root]
                   for s in s1.children["Session"])

    def test_arc001_folder_accepted(self, tmp_path):
        project = make_project(tmp_path)
        assert load_project(project / "arc001").data["id"] == "PRECLIN"

    def test_project_json_id(self, tmp_path):
        project = make_project(tmp_path)
        for label in "abc":  # sessions without a project take the project's id
            path = project / "arc001" / label / "session.json"
            meta = json.loads(path.read_text())
            del meta["project"]
            path.write_text(json.dumps(meta))
        (project / "project.json").write_text(json.dumps({"id": "P7", "label": "Seven"}))
        root = load_project(project)
        assert (root.data["id"], root.data["label"], root.uri) == (
            "P7", "Seven", "/archive/projects/P7")
        assert {s["project-id"] for s in root.data["subjects"]} == {"P7"}
        session = root.children["Subject"][0].children["Session"][0]
        assert session.data["project-id"] == "P7"

    def test_group_conflict_names_both_files(self, tmp_path):
        project = make_project(tmp_path)
        _meta(project / "arc001" / "b", group="treated")
        with pytest.raises(ArchiveError, match=r"arc001/b/session.json: group 'treated' of "
                                               r"subject 'S_1' differs from 'control' in "
                                               r".*arc001/a/session.json"):
            load_project(project)

    def test_sessions_without_subject_are_not_merged(self, tmp_path):
        arc = tmp_path / "P" / "arc001"
        for label, group in (("x", "control"), ("y", "treated")):
            (arc / label / "RESOURCES").mkdir(parents=True)
            (arc / label / "session.json").write_text(json.dumps({"group": group}))
        subjects = load_project(tmp_path / "P").data["subjects"]
        assert [(s["id"], s["group"], len(s["sessions"])) for s in subjects] == [
            ("", "control", 1), ("", "treated", 1)]

    @pytest.mark.parametrize(("case", "message"), [
        ("archive-root", r"archive root holding projects \['PRECLIN'\]"),
        ("flat", "sessions must be in .*/arc001/"),
        ("missing", "no such project folder"),
        ("bad-json", r"project.json: unknown key\(s\) \['owner'\]"),
    ])
    def test_refused(self, tmp_path, case, message):
        project = make_project(tmp_path / "archive")
        target = {"archive-root": tmp_path / "archive", "flat": tmp_path / "flat",
                  "missing": tmp_path / "nope", "bad-json": project}[case]
        if case == "flat":
            make_session(target, "x")
        if case == "bad-json":
            (project / "project.json").write_text('{"owner": "me"}')
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
        assert (mount.host, mount.writable, mount.fed_by) == (project, False, "project")

    def test_container_mounts_the_project_read_only(self, tmp_path, command):
        project = make_project(tmp_path)
        resolved = resolve(command, command["xnat"][0], load_project(project))
        hosts = {"in": project, "out": tmp_path / "out"}
        argv = container_argv(resolved, "podman", "proj:1.0", hosts, [], network="none",
                              limits=False, name="c1")
        assert argv[argv.index(f"{project}:/input:ro") - 1] == "-v"
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
        assert seen["top"] == ["arc001"] and seen["sessions"] == ["a", "b", "c"]
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

"""Archive layout, input resolution, local launches and bulk launches.

Each rule is pinned to the Container Service source in tests/xnat/test_launch_conformance.py;
these tests run a whole command through it.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.launch_archive import make_session as archive_session
from xnatpic.cli.main import main
from xnatpic.xnat.archive import find_sessions, load_session
from xnatpic.xnat.bulk import bulk_launch
from xnatpic.xnat.errors import ArchiveError, IllegalValueError, ResolutionError
from xnatpic.xnat.launcher import LaunchOptions, container_argv, launch, rewrite_paths
from xnatpic.xnat.metadata import update_project
from xnatpic.xnat.resolve import find_wrapper, resolve

#: A step that records its arguments and environment, and writes outputs.
STEP = r'''
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("--output") + 1])
inp = Path(args[args.index("--input") + 1])
print("args", json.dumps(args))
if "--fail" in args:
    print("step failed on purpose", file=sys.stderr)
    sys.exit(3)
(out / "result" / "sub").mkdir(parents=True)
(out / "result" / "args.json").write_text(json.dumps({
    "args": args, "listing": sorted(p.name for p in inp.iterdir()),
    "env": {k: os.environ.get(k) for k in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS",
                                          "XNAT_WORKFLOW_ID", "STEP_SCAN")}}))
(out / "result" / "sub" / "x.txt").write_text("nested")
if "--no-report" not in args:
    (out / "report.json").write_text("{}")
'''

COMMAND: dict[str, Any] = {
    "name": "probe", "version": "1.0", "image": "probe:1.0", "type": "docker",
    "command-line": "--input /input --output /output #SCAN# #FLAGS# #MODE# #FAIL# #NOREPORT#",
    "reserve-memory": 100, "limit-memory": 200, "limit-cpu": 1,
    "environment-variables": {"STEP_SCAN": "#SCAN#"},
    "mounts": [{"name": "in", "writable": False, "path": "/input"},
               {"name": "out", "writable": True, "path": "/output"}],
    "inputs": [
        {"name": "scan", "type": "string", "required": True, "replacement-key": "#SCAN#",
         "command-line-flag": "--scan", "command-line-separator": "="},
        {"name": "flags", "type": "string", "replacement-key": "#FLAGS#",
         "command-line-flag": "--label", "multiple-delimiter": "flag"},
        {"name": "mode", "type": "select-one", "select-values": ["a", "b"],
         "default-value": "a", "replacement-key": "#MODE#", "command-line-flag": "--mode"},
        {"name": "fail", "type": "boolean", "default-value": "false", "true-value": "--fail",
         "false-value": "", "replacement-key": "#FAIL#"},
        {"name": "noreport", "type": "boolean", "default-value": "false",
         "true-value": "--no-report", "false-value": "", "replacement-key": "#NOREPORT#"},
    ],
    "outputs": [{"name": "result", "mount": "out", "path": "result", "required": True},
                {"name": "report", "mount": "out", "path": "report.json", "required": True}],
    "xnat": [{
        "name": "probe-scan", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "required": True}],
        "derived-inputs": [
            {"name": "scan", "type": "Scan", "derived-from-wrapper-input": "session",
             "matcher": "@.scan-type == 'MSME' && 'DICOM' in @.resources[*].label",
             "provides-files-for-command-mount": "in"},
            {"name": "scan-id", "type": "string", "derived-from-wrapper-input": "scan",
             "derived-from-xnat-object-property": "id",
             "provides-value-for-command-input": "scan"},
            {"name": "labels", "type": "Resource", "derived-from-wrapper-input": "scan",
             "multiple": True, "derived-from-xnat-object-property": "label",
             "provides-value-for-command-input": "flags", "required": False},
        ],
        "output-handlers": [
            {"name": "result-on-scan", "accepts-command-output": "result",
             "as-a-child-of": "scan", "type": "Resource", "label": "PROBE"},
            {"name": "report-on-session", "accepts-command-output": "report",
             "as-a-child-of": "session", "type": "Resource", "label": "PROBE_REPORT"},
        ],
    }],
}


def make_session(archive: Path, label: str, *, msme_scans: tuple[str, ...] = ("4",),
                 scan_type: str = "MSME", project: str = "PRECLIN") -> Path:
    """A session in ``archive/<project>/arc001/<label>``: a T1 scan 3 and MSME scans."""
    scans = {"3": "T1_RARE", **{sid: scan_type for sid in msme_scans}}
    session = archive_session(archive, label, project=project, subject="S_1", scans={})
    (session / "SCANS" / "3" / "DICOM").mkdir(parents=True)
    (session / "SCANS" / "3" / "DICOM" / "a.dcm").write_bytes(b"x")
    for sid in msme_scans:
        for res in ("DICOM", "NIFTI"):
            (session / "SCANS" / sid / res).mkdir(parents=True)
            (session / "SCANS" / sid / res / f"{res.lower()}.dat").write_bytes(b"y")
    with update_project(archive, project) as meta:
        for sid, stype in scans.items():
            meta.set_scan(label, sid, type=stype, series_description="T2map")
    return session


@pytest.fixture
def command() -> dict[str, Any]:
    return copy.deepcopy(COMMAND)


@pytest.fixture
def step(tmp_path) -> list[str]:
    script = tmp_path / "step.py"
    script.write_text(STEP)
    return [sys.executable, str(script)]


class TestArchive:
    def test_metadata_and_disk(self, tmp_path):
        session = load_session(make_session(tmp_path, "m1"))
        assert session.data["id"] == "XNAT_E00001" and session.data["project-id"] == "PRECLIN"
        assert session.uri == "/archive/experiments/XNAT_E00001"
        scans = session.children["Scan"]
        assert [s.ident for s in scans] == ["3", "4"]
        assert scans[1].data["label"] == "4 - MSME"
        assert scans[1].data["uri"] == "/archive/experiments/XNAT_E00001/scans/4"
        assert [r["label"] for r in scans[1].data["resources"]] == ["DICOM", "NIFTI"]
        assert session.data["resources"][0]["label"] == "PARAVISION"
        res = scans[1].children["Resource"][0]
        assert res.data["files"][0]["name"] == "dicom.dat"
        assert res.data["parent-uri"] == scans[1].uri

    def test_defaults_without_metadata(self, tmp_path):
        folder = tmp_path / "PRJ" / "arc001" / "s1"
        (folder / "SCANS" / "7" / "DICOM").mkdir(parents=True)
        session = load_session(folder)
        assert session.data["id"] == "s1" and session.data["label"] == "s1"
        assert session.data["project-id"] == "PRJ"
        scan = session.children["Scan"][0].data
        assert "scan-type" not in scan and scan["label"] == "7 - null"  # Scan.java:80

    def test_not_a_session(self, tmp_path):
        with pytest.raises(ArchiveError, match="not a session in XNAT's archive layout"):
            load_session(tmp_path)

    def test_a_session_json_is_no_metadata(self, tmp_path):
        """XNAT keeps a session's rows in its database, never in a file of the session
        folder: a ``session.json`` is neither read nor
        enough to make a folder a session."""
        folder = tmp_path / "P" / "arc001" / "m1"
        folder.mkdir(parents=True)
        (folder / "session.json").write_text(json.dumps({
            "id": "E_m1", "subject": "S_1", "subject-label": "mouse1", "group": "ctl"}))
        with pytest.raises(ArchiveError, match="not a session in XNAT's archive layout"):
            load_session(folder)
        (folder / "SCANS" / "3" / "DICOM").mkdir(parents=True)
        session = load_session(folder)
        assert session.data["id"] == "m1" and "Subject" not in session.children

    @pytest.mark.parametrize("layout", ["project", "arc001", "archive-root", "flat"])
    def test_find_sessions_layouts(self, tmp_path, layout):
        base = tmp_path / "P" / "arc001"
        for name in ("a", "b"):
            make_session(tmp_path, name, project="P")
        if layout == "flat":
            base = tmp_path / "flat"
            base.mkdir()
            for name in ("a", "b"):
                (tmp_path / "P" / "arc001" / name).rename(base / name)
        (base / "not-a-session").mkdir()
        start = {"project": tmp_path / "P", "arc001": base, "archive-root": tmp_path,
                 "flat": base}[layout]
        assert [p.name for p in find_sessions(start)] == ["a", "b"]

    def test_find_sessions_empty(self, tmp_path):
        with pytest.raises(ArchiveError, match="no session found"):
            find_sessions(tmp_path)


class TestResolve:
    def _resolve(self, command, folder, params=None):
        wrapper = find_wrapper(command, "probe-scan")
        return resolve(command, wrapper, load_session(folder), params)

    def test_command_line_mounts_env(self, tmp_path, command):
        folder = make_session(tmp_path, "m1")
        resolved = self._resolve(command, folder)
        assert resolved.arguments == [
            "--input", "/input", "--output", "/output", "--scan=4",
            "--label", "DICOM", "--label", "NIFTI", "--mode", "a",
        ]
        assert resolved.wrapper_inputs["scan"].value == (
            "/archive/experiments/XNAT_E00001/scans/4")
        mounts = {m.name: m for m in resolved.mounts}
        assert mounts["in"].host == folder / "SCANS" / "4" and not mounts["in"].writable
        assert mounts["out"].host is None and mounts["out"].writable
        assert resolved.environment == {"STEP_SCAN": "4"}  # the raw value, no flag

    def test_booleans_and_select(self, tmp_path, command):
        folder = make_session(tmp_path, "m1")
        resolved = self._resolve(command, folder, {"fail": "true", "mode": "b"})
        assert resolved.arguments[-3:] == ["--mode", "b", "--fail"]

    @pytest.mark.parametrize(("delimiter", "expected"), [
        ("comma", "--label DICOM,NIFTI"),
        ("space", "--label DICOM NIFTI"),
        ("quoted-space", "--label 'DICOM NIFTI'"),
        ("flag", "--label DICOM --label NIFTI"),
    ])
    def test_multiple_delimiters(self, tmp_path, command, delimiter, expected):
        command["inputs"][1]["multiple-delimiter"] = delimiter
        resolved = self._resolve(command, make_session(tmp_path, "m1"))
        assert expected in resolved.command_line

    def test_several_scans_match(self, tmp_path, command):
        folder = make_session(tmp_path, "m1", msme_scans=("4", "5"))
        with pytest.raises(ResolutionError, match=r'Input "scan" does not have a unique, '
                                                  r"resolved value.*2 Scan"):
            self._resolve(command, folder)

    def test_param_picks_one_scan(self, tmp_path, command):
        folder = make_session(tmp_path, "m1", msme_scans=("4", "5"))
        assert "--scan=5" in self._resolve(command, folder, {"scan": "5"}).arguments

    def test_no_scan_matches(self, tmp_path, command):
        folder = make_session(tmp_path, "m1", msme_scans=())
        with pytest.raises(ResolutionError, match='Input "scan" could not be resolved'):
            self._resolve(command, folder)

    def test_illegal_value_from_archive_refused(self, tmp_path, command):
        folder = make_session(tmp_path, "m1", scan_type="MSME (T2)")
        command["xnat"][0]["derived-inputs"][0]["matcher"] = "@.id == '4'"
        command["xnat"][0]["derived-inputs"][1]["derived-from-xnat-object-property"] = (
            "scan-type")
        with pytest.raises(IllegalValueError, match='Input "scan-id" has a value containing '
                                                    'illegal string "\\("'):
            self._resolve(command, folder)

    @pytest.mark.parametrize("value", ["a;b", "a && b", "a || b", "`id`", "f(x)"])
    def test_illegal_param_refused(self, tmp_path, command, value):
        command["inputs"][2] = {"name": "mode", "type": "string", "replacement-key": "#MODE#"}
        with pytest.raises(IllegalValueError):
            self._resolve(command, make_session(tmp_path, "m1"), {"mode": value})

    def test_provided_value_wins_over_param(self, tmp_path, command):
        resolved = self._resolve(command, make_session(tmp_path, "m1"), {"flags": "x"})
        assert "--label DICOM --label NIFTI" in resolved.command_line

    def test_unknown_param_is_ignored(self, tmp_path, command, caplog):
        resolved = self._resolve(command, make_session(tmp_path, "m1"), {"modee": "b"})
        assert resolved.arguments[-2:] == ["--mode", "a"]
        assert "['modee'] match no input" in caplog.text

    def test_blank_value_drops_flag(self, tmp_path, command):
        command["xnat"][0]["derived-inputs"].pop()  # no resource labels
        resolved = self._resolve(command, make_session(tmp_path, "m1"))
        assert "--label" not in resolved.arguments

    def test_required_command_input_missing(self, tmp_path, command):
        command["xnat"][0]["derived-inputs"].pop(1)  # nothing provides 'scan'
        with pytest.raises(ResolutionError, match="Missing values for required input: scan"):
            self._resolve(command, make_session(tmp_path, "m1"))

    def test_unknown_wrapper(self, command):
        with pytest.raises(ResolutionError, match="has no wrapper 'x'"):
            find_wrapper(command, "x")


class TestLocalLaunch:
    def test_success_stores_outputs(self, tmp_path, command, step):
        folder = make_session(tmp_path, "m1")
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch(command, "probe-scan", folder, {}, options)
        assert result.ok, result.error
        probe = folder / "SCANS" / "4" / "PROBE"
        seen = json.loads((probe / "args.json").read_text())
        build = Path(result.build_dir)
        assert seen["args"][:4] == ["--input", str(folder / "SCANS" / "4"), "--output",
                                    str(build / "mounts" / "out")]
        assert seen["listing"] == ["DICOM", "NIFTI"]
        password = seen["env"]["XNAT_PASS"]
        assert password and seen["env"]["STEP_SCAN"] == "4"
        assert seen["env"]["XNAT_HOST"].startswith("http://127.0.0.1:")
        assert (probe / "sub" / "x.txt").read_text() == "nested"  # subfolders kept
        assert (probe / "PROBE_catalog.xml").exists()
        assert (folder / "RESOURCES" / "PROBE_REPORT" / "report.json").exists()
        assert "args" in Path(result.stdout).read_text()
        assert password not in (build / "launch.json").read_text()
        assert password not in (build / "result.json").read_text()
        # the new resources are visible to the next launch, with a database key
        scan = load_session(folder).children["Scan"][1]
        probe_json = next(r for r in scan.data["resources"] if r["label"] == "PROBE")
        assert isinstance(probe_json["integer-id"], int)

    def test_failure_keeps_logs_and_stores_nothing(self, tmp_path, command, step):
        folder = make_session(tmp_path, "m1")
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch(command, "probe-scan", folder, {"fail": "true"}, options)
        assert result.status == "Failed" and result.exit_code == 3
        assert "exited 3" in result.error and "step failed on purpose" in result.error
        assert "step failed on purpose" in Path(result.stderr).read_text()
        assert not (folder / "SCANS" / "4" / "PROBE").exists()
        assert not (folder / "RESOURCES" / "PROBE_REPORT").exists()

    def test_missing_required_output_keeps_the_others(self, tmp_path, command, step):
        folder = make_session(tmp_path, "m1")
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch(command, "probe-scan", folder, {"noreport": "true"}, options)
        assert result.status == "Failed (Upload)" and result.exit_code == 0
        assert "report.json does not exist" in result.error
        assert (folder / "SCANS" / "4" / "PROBE" / "args.json").exists()

    def test_resolution_failure_is_a_failed_result(self, tmp_path, command, step):
        folder = make_session(tmp_path, "m1", msme_scans=())
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "b")
        result = launch(command, "probe-scan", folder, {}, options)
        assert result.status == "Failed (Command resolution)"
        assert 'Input "scan"' in result.error and result.build_dir is None

    def test_override_entrypoint_runs_a_shell(self, tmp_path, command):
        command["override-entrypoint"] = True
        command["command-line"] = ("mkdir -p /output/result && echo $STEP_SCAN > "
                                   "/output/result/s.txt && echo {} > /output/report.json "
                                   "#MODE# #FAIL# #NOREPORT#")
        command["environment-variables"] = {"STEP_SCAN": "#SCAN#"}
        folder = make_session(tmp_path, "m1")
        options = LaunchOptions(runtime="local", build_root=tmp_path / "b")
        result = launch(command, "probe-scan", folder, {}, options)
        assert result.ok, result.error
        text = (folder / "SCANS" / "4" / "PROBE" / "s.txt").read_text()
        assert text.strip() == "4"


class TestContainerArgv:
    def test_mounts_env_limits(self, tmp_path, command):
        folder = make_session(tmp_path, "m1")
        resolved = resolve(command, command["xnat"][0], load_session(folder))
        hosts = {"in": folder / "SCANS" / "4", "out": tmp_path / "out"}
        argv = container_argv(resolved, "podman", "probe:1.0", hosts,
                              ["XNAT_HOST", "XNAT_PASS"], network="none", limits=True,
                              name="c1")
        line = " ".join(argv)
        assert f"-v {folder}/SCANS/4:/input:ro" in line
        assert f"-v {tmp_path}/out:/output " in line
        assert "-e XNAT_PASS " in line and "--memory 200m" in line and "--cpus 1" in line
        assert argv[argv.index("probe:1.0") + 1:][:2] == ["--input", "/input"]

    def test_rewrite_paths(self):
        mapping = {"/input": "/h/in", "/output": "/h/out"}
        assert rewrite_paths("--o=/output/x", mapping) == "--o=/h/out/x"
        assert rewrite_paths("/input", mapping) == "/h/in"
        assert rewrite_paths("/inputs /data/input", mapping) == "/inputs /data/input"


class TestBulk:
    def test_one_failure_does_not_stop_others(self, tmp_path, command, step):
        for name in ("a", "c"):
            make_session(tmp_path, name)
        make_session(tmp_path, "b", msme_scans=("4", "5"))  # b: two MSME scans -> fails
        options = LaunchOptions(runtime="local", entrypoint=step, build_root=tmp_path / "bd")
        done = []
        results = bulk_launch(command, "probe-scan", find_sessions(tmp_path / "PRECLIN"),
                              {}, options, jobs=2, on_done=done.append)
        assert [Path(r.session_dir).name for r in results] == ["a", "b", "c"]
        assert [r.ok for r in results] == [True, False, True]
        assert len(done) == 3
        assert "does not have a unique" in results[1].error

    def test_cli_project_report(self, tmp_path, command, step, capsys):
        make_session(tmp_path, "a")
        make_session(tmp_path, "b", msme_scans=())
        cmd_file = tmp_path / "probe.json"
        cmd_file.write_text(json.dumps(command))
        report = tmp_path / "report.json"
        code = main(["launch", str(cmd_file), "--project", str(tmp_path / "PRECLIN"),
                     "--runtime", "local", "--entrypoint", " ".join(step), "--build-dir",
                     str(tmp_path / "bd"), "--jobs", "2", "--report", str(report)])
        assert code == 1
        data = json.loads(report.read_text())
        assert (data["sessions"], data["succeeded"], data["failed"]) == (2, 1, 1)
        assert data["statuses"] == {"Complete": 1, "Failed (Command resolution)": 1}
        second = data["results"][1]
        assert second["session"] == "XNAT_E00002" and second["error"]
        assert second["status"] == "Failed (Command resolution)"
        err = capsys.readouterr().err
        assert "XNAT_E00001" in err and "Complete" in err and "Failed" in err

    def test_cli_single_session_ok(self, tmp_path, command, step):
        folder = make_session(tmp_path, "a", project="P")
        cmd_file = tmp_path / "probe.json"
        cmd_file.write_text(json.dumps([command]))
        code = main(["launch", str(cmd_file), "--wrapper", "probe-scan", "--session",
                     str(folder), "--runtime", "local", "--entrypoint", " ".join(step),
                     "--build-dir", str(tmp_path / "bd"), "--param", "mode=b"])
        assert code == 0
        args = json.loads((folder / "SCANS" / "4" / "PROBE" / "args.json").read_text())["args"]
        assert args[-2:] == ["--mode", "b"]

    def test_cli_refuses_command_with_lint_errors(self, tmp_path, command, capsys):
        command["image"] = ""
        cmd_file = tmp_path / "probe.json"
        cmd_file.write_text(json.dumps(command))
        code = main(["launch", str(cmd_file), "--session", str(tmp_path), "--build-dir",
                     str(tmp_path / "bd")])
        assert code == 1
        assert "XNAT would refuse this command" in capsys.readouterr().err

"""Launch values cannot become arguments or shell syntax; steps stay contained (issue 16).

CS references (container-service v3.7.3): the resolved command line becomes the
container's Cmd through ``ShellSplitter.shellSplit`` (api/DockerControlApi.java:606-608,
swarm :728-732), or ``/bin/sh -c LINE`` under override-entrypoint; CS refuses only
``; && || ` (`` (services/CommandResolutionService.java:14).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shlex
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.launch_archive import make_session, step_entrypoint
from xnatpic.confine import EscapingPathError, confined
from xnatpic.upload.prepare import zip_files
from xnatpic.xnat.archive import load_session
from xnatpic.xnat.errors import IllegalValueError
from xnatpic.xnat.hardening import PODMAN_HARDENING, local_environment
from xnatpic.xnat.launcher import LaunchOptions, container_argv, launch
from xnatpic.xnat.resolve import find_wrapper, resolve

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "name": "probe", "version": "1.0", "image": "probe:1.0", "type": "docker",
    "command-line": "--input /input --output /output #v#",
    "mounts": [{"name": "in", "writable": False, "path": "/input"},
               {"name": "out", "writable": True, "path": "/output"}],
    "inputs": [{"name": "v", "type": "string", "required": False}],
    "outputs": [{"name": "a", "mount": "out", "path": "a"}],
    "xnat": [{
        "name": "probe-session", "contexts": ["xnat:imageSessionData"],
        "external-inputs": [{"name": "session", "type": "Session", "required": True,
                             "provides-files-for-command-mount": "in"}],
        "derived-inputs": [],
        "output-handlers": [{"name": "ha", "accepts-command-output": "a",
                             "as-a-child-of": "session", "type": "Resource",
                             "label": "A"}],
    }],
}


def _command(**changes: Any) -> dict[str, Any]:
    command = copy.deepcopy(BASE)
    command.update(changes)
    return command


def _real(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "commands" / f"{name}.json").read_text())


@pytest.fixture
def session(tmp_path) -> Path:
    return make_session(tmp_path / "archive", "m1_d0")


def _local(command, session, tmp_path, params=None, entrypoint=None):
    options = LaunchOptions(runtime="local", build_root=tmp_path / "build dir",
                            entrypoint=entrypoint or step_entrypoint(tmp_path))
    return launch(command, None, session, params, options)


class TestOneArgument:
    def test_scans_value_cannot_add_output_argument(self, session, tmp_path):
        # the reproduction: --param "scans=3 --output DIR"
        elsewhere = tmp_path / "elsewhere"
        command = _real("mri2dicom")
        result = _local(command, session, tmp_path,
                        {"scans": f"3 --output {elsewhere}", "import": "false"})
        assert result.status == "Failed (Command resolution)"
        assert 'Input "scans"' in result.error and "' '" in result.error
        assert not elsewhere.exists()
        assert result.exit_code is None  # nothing ran

    @pytest.mark.parametrize("value", [
        "3 4", "3\t4", "a\nb", "a|b", "a>b", "a<b", "a&b", "$HOME", "${X}", "a'b", 'a"b',
        "a\\b", "*", "a?", "[ab]", "~", "!x", "#x", "a{b}", "a)", "a\x1bb", "a\u202eb"])
    def test_values_that_cs_would_split_or_a_shell_would_interpret(self, session, value):
        command = _command()
        with pytest.raises(IllegalValueError, match='Input "v" has a value containing'):
            resolve(command, find_wrapper(command, None), load_session(session),
                    {"v": value})

    @pytest.mark.parametrize("value", ["3,4", "PARAVISION", "a-b_c.d/e", "x=y", "--flag",
                                       "1e-3", "Müller"])
    def test_ordinary_values_stay_one_argument(self, session, value):
        command = _command()
        resolved = resolve(command, find_wrapper(command, None), load_session(session),
                           {"v": value})
        assert resolved.arguments == ["--input", "/input", "--output", "/output", value]

    def test_select_many_elements_checked_one_by_one(self, session):
        command = _command(inputs=[{"name": "v", "type": "select-many"}])
        wrapper, root = find_wrapper(command, None), load_session(session)
        ok = resolve(command, wrapper, root, {"v": json.dumps(["a", "b"])})
        assert ok.arguments[-2:] == ["a", "b"]
        with pytest.raises(IllegalValueError):
            resolve(command, wrapper, root, {"v": json.dumps(["a", "b; rm"])})

    def test_override_entrypoint_local_shell_sees_no_value_syntax(self, session, tmp_path):
        marker = tmp_path / "pwned"
        command = _command(**{"override-entrypoint": True})
        result = _local(command, session, tmp_path, {"v": f"x>{marker}"})
        assert result.status == "Failed (Command resolution)"
        assert not marker.exists()

    def test_override_entrypoint_host_paths_quoted(self, session, tmp_path):
        # the build folder has a space ("build dir"): the rewritten /output must stay one
        # word for /bin/sh -c
        script = tmp_path / "step.py"
        step_entrypoint(tmp_path)
        line = f"{shlex.quote(sys.executable)} {script} --output /output --write a"
        command = _command(**{"override-entrypoint": True, "command-line": line,
                              "inputs": []})
        result = _local(command, session, tmp_path)
        assert result.ok, result.error
        assert (session / "RESOURCES" / "A" / "file.txt").read_text() == "a"


class TestConfinedPaths:
    def test_resource_cannot_leave_resources(self, tmp_path):
        spec = importlib.util.spec_from_file_location(
            "mri2dicom_run_h", ROOT / "pipelines" / "mri2dicom" / "run.py")
        step = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(step)
        (tmp_path / "in" / "RESOURCES" / "PARAVISION").mkdir(parents=True)
        study = tmp_path / "host-study"
        (study / "1").mkdir(parents=True)
        (study / "subject").write_text("##$SUBJECT_id=<x>\n##END=\n")
        with pytest.raises(step.StepError, match="outside"):
            step.find_sources(tmp_path / "in", "../../host-study")

    def test_symlink_escape_refused(self, tmp_path):
        base = tmp_path / "RESOURCES"
        base.mkdir()
        (base / "LINK").symlink_to(tmp_path)
        with pytest.raises(EscapingPathError, match="outside"):
            confined(base, "LINK", what="resource")
        assert confined(base, "X/../Y", what="resource") == (base / "Y").resolve()


class TestEnvironment:
    def test_local_environment_is_minimal(self):
        env = local_environment({"XNAT_HOST": "http://h", "STEP_X": "1"},
                                {"PATH": "/usr/bin", "LANG": "C.UTF-8", "AWS_SECRET": "k",
                                 "XNATPIC_DEIDENTIFY_SALT": "s", "HOME": "/root"})
        assert env == {"PATH": "/usr/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
                       "XNAT_HOST": "http://h", "STEP_X": "1"}

    def test_step_sees_only_declared_secret(self, session, tmp_path, monkeypatch):
        # the secret's system property x.y, defined for a local launch (xnatpic.xnat.secrets)
        monkeypatch.setenv("XNATPIC_SYSPROP_X_Y", "declared")
        monkeypatch.setenv("STEP_OTHER", "undeclared")
        script = tmp_path / "env.py"
        script.write_text("import json, os, sys\nfrom pathlib import Path\n"
                          "out = Path(sys.argv[sys.argv.index('--output') + 1]) / 'a'\n"
                          "out.mkdir()\n(out / 'env.json').write_text(json.dumps("
                          "dict(os.environ)))\n")
        command = _command(secrets=[{
            "source": {"type": "system-property", "identifier": "x.y"},
            "destination": {"type": "environment-variable", "identifier": "STEP_SECRET"}}])
        result = _local(command, session, tmp_path, entrypoint=[sys.executable, str(script)])
        assert result.ok, result.error
        env = json.loads((session / "RESOURCES" / "A" / "env.json").read_text())
        assert env["STEP_SECRET"] == "declared"
        assert "STEP_OTHER" not in env
        assert env["HOME"] == "/tmp"
        assert {"XNAT_HOST", "XNAT_USER", "XNAT_PASS"} <= set(env)
        assert set(env) <= {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "STEP_SECRET",
                            "XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_WORKFLOW_ID",
                            "XNAT_EVENT_ID", "PWD", "LC_CTYPE"}


class TestOutputsAndZips:
    def test_symlink_in_output_not_stored(self, session, tmp_path):
        host_file = tmp_path / "host-secret.txt"
        host_file.write_text("host data")
        line = (f"mkdir -p /output/a && echo ok > /output/a/ok.txt && "
                f"ln -s {host_file} /output/a/leak.txt")
        command = _command(**{"override-entrypoint": True, "command-line": line,
                              "inputs": []})
        result = _local(command, session, tmp_path)
        assert result.ok, result.error
        stored = session / "RESOURCES" / "A"
        assert (stored / "ok.txt").read_text() == "ok\n"
        assert not (stored / "leak.txt").exists() and not (stored / "leak.txt").is_symlink()

    def test_output_that_is_a_symlink_fails(self, session, tmp_path):
        (tmp_path / "hostdir").mkdir()
        (tmp_path / "hostdir" / "f.txt").write_text("host")
        line = f"ln -s {tmp_path / 'hostdir'} /output/a"
        command = _command(**{"override-entrypoint": True, "command-line": line,
                              "inputs": []})
        command["outputs"][0]["required"] = True
        result = _local(command, session, tmp_path)
        assert result.status == "Failed (Upload)"
        assert "symbolic link" in result.error
        assert not (session / "RESOURCES" / "A" / "f.txt").exists()

    def test_raw_zip_skips_symlinks(self, tmp_path):
        study = tmp_path / "study"
        (study / "1").mkdir(parents=True)
        (study / "1" / "acqp").write_text("##END=\n")
        (tmp_path / "host.txt").write_text("host")
        (study / "1" / "leak").symlink_to(tmp_path / "host.txt")
        (tmp_path / "hostdir").mkdir()
        (tmp_path / "hostdir" / "h.txt").write_text("host")
        (study / "linkdir").symlink_to(tmp_path / "hostdir")
        files = [p for p in study.rglob("*") if p.is_file()]
        assert len(files) >= 2  # the links are there to be refused
        zipped = zip_files(files, study, tmp_path / "out.zip")
        with zipfile.ZipFile(zipped) as zf:
            assert zf.namelist() == ["1/acqp"]


class TestContainerArgv:
    def _resolved(self, session):
        command = _command()
        return resolve(command, find_wrapper(command, None), load_session(session), {})

    def test_podman_runs_hardened(self, session, tmp_path):
        argv = container_argv(self._resolved(session), "podman", "img:1",
                              {"in": tmp_path, "out": tmp_path}, [], network="host",
                              limits=True, name="n")
        joined = " ".join(argv)
        for flag in ("--cap-drop ALL", "--security-opt no-new-privileges", "--read-only",
                     "--tmpfs /tmp", "--pids-limit"):
            assert flag in joined
        assert argv.index("--read-only") < argv.index("img:1")

    def test_docker_cli_mirrors_cs(self, session, tmp_path):
        # CS sets none of these (DockerControlApi.java:560-618): only podman adds them
        argv = container_argv(self._resolved(session), "docker", "img:1",
                              {"in": tmp_path, "out": tmp_path}, [], network="host",
                              limits=True, name="n")
        assert not set(PODMAN_HARDENING) & set(argv[:argv.index("img:1")]) - {"ALL"}

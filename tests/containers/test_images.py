"""Build the images for real, read their labels back, and run mri2dicom as XNAT would.

The images are built once per test run (session fixture ``built_images``). These tests
skip only when no container runtime can run here; ``make test`` installs podman first.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.accepted_lint import accepted_warnings
from tests.containers.conftest import session_subject_id
from xnatpic.xnat.launcher import LaunchOptions, launch
from xnatpic.xnat.lint import lint_commands
from xnatpic.xnat.metadata import update_project
from xnatpic.xnat.runtime import runtime_env
from xnatpic.xnat.schema import load_commands, read_image_label

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
STEPS = sorted(p.parent.name for p in (PROJECT_ROOT / "containers").glob("*/Dockerfile")
               if p.parent.name != "base")


def _image(step: str) -> str:
    data = json.loads((COMMANDS / f"{step}.json").read_text())
    return (data[0] if isinstance(data, list) else data)["image"]


def _inspect(runtime: str, image: str, fmt: str) -> str:
    proc = subprocess.run([runtime, "image", "inspect", "--format", fmt, image],
                          capture_output=True, text=True, check=True,
                          env=runtime_env(runtime))
    return proc.stdout.strip()


class TestBuiltImages:
    @pytest.mark.parametrize("step", STEPS)
    def test_label_read_back_equals_command_and_lints_clean(self, built_images,
                                                            container_runtime, step):
        image = _image(step)
        label = json.loads(read_image_label(image, cli=container_runtime))
        expected = json.loads((COMMANDS / f"{step}.json").read_text())
        assert label == (expected if isinstance(expected, list) else [expected])
        # the warnings tests/accepted_lint.py accepts, W104 always (commands/ stays
        # unqualified; REGISTRY= builds qualify it, test_registry.py), and no error
        codes = {f.code for f in lint_commands(load_commands(f"image:{image}"))}
        assert "W104" in codes and codes <= accepted_warnings(expected), codes

    @pytest.mark.parametrize("step", STEPS)
    def test_runs_as_root_by_default(self, built_images, container_runtime, step):
        # no USER: with XNAT's Container User empty (DockerControlApi.java:614, Swarm :722)
        # the step runs as root, which can write the owner-only output folder XNAT makes
        # (CommandResolutionServiceImpl.java:3122-3127) whatever uid XNAT runs as
        user = _inspect(container_runtime, _image(step), "{{.Config.User}}")
        assert user in ("", "0", "0:0", "root", "root:root"), user
        assert _inspect(container_runtime, _image(step), "{{.Config.WorkingDir}}") == "/tmp"

    def test_input_is_read_only_and_tmp_writable(self, built_images, container_runtime,
                                                 tmp_path):
        (tmp_path / "in").mkdir()
        proc = subprocess.run(
            [container_runtime, "run", "--rm", "--network", "none", "-v",
             f"{tmp_path / 'in'}:/input:ro", "--entrypoint", "/bin/sh", _image("mri2dicom"),
             "-c", "id -u; touch /tmp/ok && echo tmp-ok; touch /input/x || echo input-ro"],
            capture_output=True, text=True, check=False, env=runtime_env(container_runtime),
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["0", "tmp-ok", "input-ro"]
        assert not (tmp_path / "in" / "x").exists()


class TestMri2dicomThroughLauncher:
    def _launch(self, runtime, session, tmp_path, params=None):
        command = json.loads((COMMANDS / "mri2dicom.json").read_text())
        options = LaunchOptions(runtime=runtime, build_root=tmp_path / "builds",
                                timeout=1200)
        return launch(command, "xnatpic-mri2dicom-session", session, params or {}, options)

    def test_missing_resource_fails_with_reason_in_log(self, built_images, container_runtime,
                                                       tmp_path):
        session = tmp_path / "PRECLIN" / "arc001" / "empty"
        (session / "RESOURCES" / "OTHER").mkdir(parents=True)
        with update_project(tmp_path, "PRECLIN") as meta:
            meta.ensure_experiment("empty", "mouse1")
        result = self._launch(container_runtime, session, tmp_path)
        assert not result.ok and result.exit_code == 1
        last = Path(result.stderr).read_text().strip().splitlines()[-1]
        assert "no resource 'PARAVISION'" in last and "OTHER" in last
        assert sorted(p.name for p in (session / "RESOURCES").iterdir()) == ["OTHER"]

    def test_real_study_to_dicom(self, built_images, container_runtime, acidocest_session,
                                 tmp_path, monkeypatch):
        for key in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS"):
            monkeypatch.delenv(key, raising=False)
        # import=false: the DICOM stays the MRI2DICOM resource only (the import into the
        # local archive is tested with the launcher in tests/xnat)
        result = self._launch(container_runtime, acidocest_session, tmp_path,
                              {"import": "false"})
        launch_json = json.loads((Path(result.build_dir) / "launch.json").read_text())
        assert launch_json["command-inputs"]["session_label"] == "acido_d0"
        assert launch_json["command-inputs"]["subject"] \
            == session_subject_id(acidocest_session)
        assert result.ok, (result.error, Path(result.stderr).read_text()[-2000:])
        dicom = acidocest_session / "RESOURCES" / "MRI2DICOM"
        files = sorted(dicom.rglob("*.dcm"))
        assert files, f"no DICOM in {dicom}"
        assert (dicom / "MRI2DICOM_catalog.xml").exists()
        report_dir = acidocest_session / "RESOURCES" / "MRI2DICOM_REPORT"
        provenance = json.loads((report_dir / "provenance.json").read_text())
        assert provenance["dicom-files"] == len(files)
        assert provenance["imported"] is None  # import=false
        assert (report_dir / "report.json").exists()

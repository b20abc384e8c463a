"""Image labels follow commands/, and a changed command always gets a new version."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from xnatpic.cli.main import main
from xnatpic.xnat import labels
from xnatpic.xnat.errors import LabelError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
STEPS = sorted(p.parent.name for p in (PROJECT_ROOT / "containers").glob("*/Dockerfile")
               if p.parent.name != "base")


class TestShippedLabels:
    def test_there_are_steps(self):
        assert "mri2dicom" in STEPS

    @pytest.mark.parametrize("step", STEPS)
    def test_step_has_command_and_readme(self, step):
        assert (COMMANDS / f"{step}.json").is_file()
        assert (PROJECT_ROOT / "containers" / step / "README.md").is_file()

    @pytest.mark.parametrize("step", STEPS)
    def test_dockerfile_label_matches_command(self, step):
        labels.check_dockerfile(PROJECT_ROOT / "containers" / step / "Dockerfile",
                                COMMANDS / f"{step}.json")

    def test_versions_lock_up_to_date(self):
        assert labels.check_lock(COMMANDS) == []

    @pytest.mark.parametrize("path", sorted(COMMANDS.glob("*.json")), ids=lambda p: p.name)
    def test_version_bumped_against_git_head(self, path):
        assert labels.check_against_git(path) is None


class TestLabelText:
    def test_escape_round_trip(self):
        text = labels.label_text([{"command-line": 'echo "$HOME" \\ `x`', "m": "@.a == 'b'"}])
        escaped = labels.escape_for_dockerfile(text)
        assert "\\$HOME" in escaped and '\\"' in escaped
        assert json.loads(labels.unescape_dockerfile(escaped)) == json.loads(text)

    def test_single_command_becomes_array(self):
        assert json.loads(labels.label_text({"name": "x"})) == [{"name": "x"}]

    def test_drift_detected(self, tmp_path):
        command = tmp_path / "x.json"
        command.write_text(json.dumps({"name": "x", "version": "1"}))
        dockerfile = tmp_path / "Dockerfile"
        dockerfile.write_text(f"FROM scratch\n{labels.BEGIN_MARKER}\n{labels.END_MARKER}\n")
        assert labels.update_dockerfile(dockerfile, command)
        labels.check_dockerfile(dockerfile, command)
        assert not labels.update_dockerfile(dockerfile, command)  # idempotent
        assert dockerfile.read_text().startswith("FROM scratch\n")
        command.write_text(json.dumps({"name": "x", "version": "2"}))
        with pytest.raises(LabelError, match=r"label differs from .*x\.json; run 'make labels'"):
            labels.check_dockerfile(dockerfile, command)

    def test_dockerfile_without_markers(self, tmp_path):
        dockerfile = tmp_path / "Dockerfile"
        dockerfile.write_text("FROM scratch\n")
        with pytest.raises(LabelError, match="no generated label block"):
            labels.read_dockerfile_label(dockerfile)

    def test_cli_prints_label(self, capsys):
        assert main(["commands", "label", str(COMMANDS / "mri2dicom.json")]) == 0
        assert json.loads(capsys.readouterr().out)[0]["name"] == "xnatpic-mri2dicom"


class TestVersionLock:
    def _copy(self, tmp_path) -> Path:
        folder = tmp_path / "commands"
        shutil.copytree(COMMANDS, folder)
        return folder

    def _edit(self, path: Path, **changes) -> None:
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data, indent=1))

    def test_change_without_bump_is_caught(self, tmp_path):
        folder = self._copy(tmp_path)
        self._edit(folder / "mri2dicom.json", description="changed")
        problems = labels.check_lock(folder)
        assert len(problems) == 1 and "bump 'version'" in problems[0]
        with pytest.raises(LabelError, match="bump 'version' first"):
            labels.update_lock(folder)

    def test_change_with_bump_needs_lock_update(self, tmp_path):
        folder = self._copy(tmp_path)
        self._edit(folder / "mri2dicom.json", description="changed", version="9.9.9")
        assert "not recorded" in labels.check_lock(folder)[0]
        labels.update_lock(folder)
        assert labels.check_lock(folder) == []

    def test_formatting_only_change_is_fine(self, tmp_path):
        folder = self._copy(tmp_path)
        path = folder / "mri2dicom.json"
        path.write_text(json.dumps(json.loads(path.read_text()), indent=8, sort_keys=True))
        assert labels.check_lock(folder) == []

    def test_new_command_missing_from_lock(self, tmp_path):
        folder = self._copy(tmp_path)
        (folder / "new.json").write_text('{"name": "n", "version": "1"}')
        assert "not in" in labels.check_lock(folder)[0]

    @pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
    def test_against_git(self, tmp_path):
        repo = tmp_path / "repo"
        repo.mkdir()
        path = repo / "c.json"
        path.write_text('{"name": "c", "version": "1"}')

        def git(*args):
            subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

        git("init", "-q")
        git("add", "c.json")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
        assert labels.check_against_git(path) is None
        path.write_text('{"name": "c", "version": "1", "label": "new"}')
        assert "bump 'version'" in labels.check_against_git(path)
        path.write_text('{"name": "c", "version": "2", "label": "new"}')
        assert labels.check_against_git(path) is None

    def test_cli_lock_check(self, tmp_path, capsys):
        folder = self._copy(tmp_path)
        assert main(["commands", "lock", str(folder), "--check"]) == 0
        self._edit(folder / "mri2dicom.json", label="x")
        assert main(["commands", "lock", str(folder), "--check"]) == 1
        assert "bump 'version'" in capsys.readouterr().err

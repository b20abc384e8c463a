"""Image labels follow commands/, and a changed command always gets a new version."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.oracles import require_executable
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

    def test_no_version_ever_stood_for_two_contents(self):
        """Every committed version of every command (a clean checkout included)."""
        require_executable("git", "apt-get install git; the history is the oracle")
        assert labels.check_history(COMMANDS) == []


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

    def test_against_git(self, tmp_path):
        repo = _repo(tmp_path)
        path = repo / "c.json"
        path.write_text('{"name": "c", "version": "1"}')
        _commit(repo, "c")
        assert labels.check_against_git(path) is None
        path.write_text('{"name": "c", "version": "1", "label": "new"}')
        assert "bump 'version'" in labels.check_against_git(path)
        path.write_text('{"name": "c", "version": "2", "label": "new"}')
        assert labels.check_against_git(path) is None

    def test_history_catches_a_landed_change_without_bump(self, tmp_path):
        """Identical to HEAD in a clean checkout, yet version 1 stood for two contents."""
        repo = _repo(tmp_path)
        path = repo / "c.json"
        path.write_text('{"name": "c", "version": "1"}')
        _commit(repo, "first")
        path.write_text('{"name": "c", "version": "1", "label": "changed"}')
        _commit(repo, "changed without bump")
        assert labels.check_against_git(path) is None  # what the old test compared
        (problem,) = labels.check_history(repo)
        assert "c.json: version 1 stands for 2 different contents" in problem

    def test_history_catches_an_uncommitted_change_without_bump(self, tmp_path):
        repo = _repo(tmp_path)
        path = repo / "c.json"
        path.write_text('{"name": "c", "version": "1"}')
        _commit(repo, "first")
        path.write_text('{"name": "c", "version": "2"}')
        _commit(repo, "bumped")
        assert labels.check_history(repo) == []
        path.write_text('{"name": "c", "version": "1", "x": 1}')  # back to 1, new content
        (problem,) = labels.check_history(repo)
        assert "the working tree" in problem

    def test_broken_committed_json_fails(self, tmp_path):
        repo = _repo(tmp_path)
        path = repo / "c.json"
        path.write_text('{"name": "c", "version": "1"')
        _commit(repo, "broken")
        path.write_text('{"name": "c", "version": "1"}')
        with pytest.raises(LabelError, match="committed JSON is not valid"):
            labels.check_history(repo)
        with pytest.raises(LabelError, match="committed JSON is not valid"):
            labels.check_against_git(path)

    def test_outside_git_fails(self, tmp_path):
        (tmp_path / "c.json").write_text('{"name": "c", "version": "1"}')
        with pytest.raises(LabelError, match="not in a git work tree"):
            labels.check_history(tmp_path)
        with pytest.raises(LabelError, match="not in a git work tree"):
            labels.check_against_git(tmp_path / "c.json")

    def test_without_git_fails(self, tmp_path, monkeypatch):
        (tmp_path / "c.json").write_text('{"name": "c", "version": "1"}')
        monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
        with pytest.raises(LabelError, match="git cannot run"):
            labels.check_history(tmp_path)

    def test_shallow_clone_fails(self, tmp_path):
        origin = _repo(tmp_path / "origin")
        (origin / "c.json").write_text('{"name": "c", "version": "1"}')
        _commit(origin, "one")
        (origin / "c.json").write_text('{"name": "c", "version": "2"}')
        _commit(origin, "two")
        clone = tmp_path / "clone"
        _git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", str(clone))
        with pytest.raises(LabelError, match="shallow clone"):
            labels.check_history(clone)

    def test_unknown_revision_fails(self, tmp_path):
        repo = _repo(tmp_path)
        (repo / "c.json").write_text('{"name": "c", "version": "1"}')
        _commit(repo, "c")
        with pytest.raises(LabelError, match="no such commit"):
            labels.check_against_git(repo / "c.json", "nope")

    def test_cli_lock_check(self, tmp_path, capsys):
        folder = self._copy(_repo(tmp_path))
        _commit(tmp_path, "commands")
        assert main(["commands", "lock", str(folder), "--check"]) == 0
        self._edit(folder / "mri2dicom.json", label="x")
        assert main(["commands", "lock", str(folder), "--check"]) == 1
        err = capsys.readouterr().err
        assert "bump 'version'" in err and "stands for 2 different contents" in err

    def test_cli_lock_check_outside_git_fails(self, tmp_path, capsys):
        folder = self._copy(tmp_path)
        assert main(["commands", "lock", str(folder), "--check"]) == 1
        assert "not in a git work tree" in capsys.readouterr().err


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def _repo(path: Path) -> Path:
    """A fresh git repository at ``path`` (git is the oracle: missing fails under CI)."""
    require_executable("git", "apt-get install git")
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    return path


def _commit(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)

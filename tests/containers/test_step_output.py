"""check_output_writable, the first thing every step does (xnatpic.step_output).

XNAT creates the output folder writable by the user XNAT runs as only
(container-service CommandResolutionServiceImpl.java:3122 and :3127), so a step running
as another uid must fail at once with one line naming the Container User setting. The
permission case runs in a forked child that drops to another uid when the tests run as
root (root writes anywhere), else on a folder made read-only for us.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from xnatpic.step_output import (
    CONTAINER_USER_SETTING,
    OutputNotWritableError,
    check_output_writable,
)

OTHER_UID = 4321


def _check_as_other_user(folder: Path) -> dict[str, object]:
    """Run check_output_writable(folder) as a user that cannot write ``folder``."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            check_output_writable(folder)
        except OutputNotWritableError as exc:
            return {"error": str(exc), "uid": os.getuid()}
        finally:
            folder.chmod(0o755)
        return {"error": None, "uid": os.getuid()}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to another uid, check, report through the pipe
        os.close(read_end)
        outcome: dict[str, object] = {"error": None}
        try:
            os.setgroups([])
            os.setgid(OTHER_UID)
            os.setuid(OTHER_UID)
            outcome["uid"] = os.getuid()
            check_output_writable(folder)
        except OutputNotWritableError as exc:
            outcome["error"] = str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails
            outcome["error"] = f"unexpected {type(exc).__name__}: {exc}"
        with os.fdopen(write_end, "w") as fh:
            json.dump(outcome, fh)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as fh:
        outcome = json.load(fh)
    os.waitpid(pid, 0)
    return outcome


def test_writable_folder_passes_and_keeps_nothing(tmp_path):
    check_output_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_created(tmp_path):
    check_output_writable(tmp_path / "a" / "output")
    assert (tmp_path / "a" / "output").is_dir()
    assert list((tmp_path / "a" / "output").iterdir()) == []


def test_folder_that_is_a_file_names_it(tmp_path):
    (tmp_path / "output").write_text("x")
    with pytest.raises(OutputNotWritableError) as info:
        check_output_writable(tmp_path / "output")
    assert str(tmp_path / "output") in str(info.value)
    assert "\n" not in str(info.value)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder under /tmp every user can search (pytest's tmp_path is root-only)."""
    with tempfile.TemporaryDirectory(prefix="xnatpic-step-output-") as name:
        Path(name).chmod(0o755)
        yield Path(name)


def test_folder_of_another_user_names_owner_and_setting(open_tmp):
    folder = open_tmp / "output"
    folder.mkdir(mode=0o755)
    owner = folder.stat()
    outcome = _check_as_other_user(folder)
    message = outcome["error"]
    assert isinstance(message, str), outcome
    assert "\n" not in message
    assert message.startswith(f"{folder} is not writable by this step's user (uid "
                              f"{outcome['uid']}")
    assert f"belongs to uid {owner.st_uid} gid {owner.st_gid} with mode 0755" in message
    assert message.endswith(f"set {CONTAINER_USER_SETTING} to {owner.st_uid}:{owner.st_gid}")
    assert list(folder.iterdir()) == []


def test_folder_that_cannot_be_searched_still_names_setting(tmp_path):
    # pytest's tmp_path lies under a root-only folder: another uid cannot even stat it.
    folder = tmp_path / "output"
    folder.mkdir(mode=0o755)
    outcome = _check_as_other_user(folder)
    message = outcome["error"]
    assert isinstance(message, str), outcome
    assert "\n" not in message and message.startswith(f"{folder} is not writable")
    assert CONTAINER_USER_SETTING in message


def test_setting_is_named_as_xnat_shows_it():
    # containerService-siteAdmin.js:312 labels the field 'Container User';
    # site-settings.yaml:305 names the tab 'Compute Backend' of the Container Service group.
    assert CONTAINER_USER_SETTING.endswith("Compute Backend > (edit the host) > Container User")
    assert "Plugin Settings > Container Service" in CONTAINER_USER_SETTING

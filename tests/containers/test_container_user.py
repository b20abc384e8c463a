"""Every step image under a uid it was not built with, as XNAT's Container User runs it.

XNAT passes its *Container User* setting to Docker (DockerControlApi.java:614), Swarm
(:722) and Kubernetes (KubernetesClientImpl.java:366, ``runAsUser``) as the container's
user, and creates the output folder as the user XNAT runs as, writable by that user only
(CommandResolutionServiceImpl.java:3122, :3127). The images set no USER, so without the
setting they run as root, which writes that folder whoever owns it (tested with an
``/output`` of uid 4321, read back as 4321). Each image also runs here as 4321:4321 with
``/output`` owned by 4321 and mode 0755 and ``/input`` readable by 4321 only (folders
0700, files 0600), no /etc/passwd entry for 4321 (as with Docker), the image's file
system read-only and ``/tmp`` an empty tmpfs; and with an ``/output`` it cannot write,
each step must exit 1 with one stderr line naming the setting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.analysis.conftest import make_session
from tests.analysis.helpers import run_dir
from tests.oracles import missing_oracle
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key
from xnatpic.phantom import write_phantom
from xnatpic.step_output import CONTAINER_USER_SETTING
from xnatpic.xnat.runtime import runtime_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMMANDS = PROJECT_ROOT / "commands"
STEPS = sorted(p.parent.name for p in (PROJECT_ROOT / "containers").glob("*/Dockerfile")
               if p.parent.name != "base")
UID = GID = 4321
#: The program name a step's error lines start with, where it is not the step's folder:
#: mri2dicom-deidentify runs mri2dicom's script.
PROGRAM = {"mri2dicom-deidentify": "mri2dicom"}
#: Scans of the phantom each map step maps (as in test_analysis_steps.py).
MAP_SCANS = {"t2starmap": ("5",), "t1map": ("4",), "adcmap": ("6",), "cest": ("7", "8")}
#: Run options: the image read-only, /tmp a fresh world-writable tmpfs.
READ_ONLY_ROOT = ("--read-only", "--tmpfs", "/tmp:rw,mode=1777")


def _no_passwd_entry(runtime: str) -> tuple[str, ...]:
    """podman adds the uid to /etc/passwd; Docker and Kubernetes do not: neither may we."""
    return ("--passwd=false",) if runtime == "podman" else ()


@pytest.fixture(scope="module", autouse=True)
def as_root() -> None:
    """Handing folders to another uid needs root (as XNAT's host does for its own user)."""
    if os.geteuid() != 0:
        missing_oracle("the container-user tests chown folders to uid 4321 and need root")


@pytest.fixture(scope="module")
def phantom_dicom(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("phantom-uid")
    write_phantom(root / "study", snr=100.0, seed=1)
    assert xnatpic_main(["convert", str(root / "study"), "-o", str(root / "dicom")]) == 0
    return {folder_key(p.name): p for p in (root / "dicom").glob("*/*/*") if p.is_dir()}


def _image(step: str) -> str:
    data = json.loads((COMMANDS / f"{step}.json").read_text())
    return (data[0] if isinstance(data, list) else data)["image"]


def _readable_only_by(root: Path, uid: int, gid: int) -> None:
    """Give ``root`` and everything in it to uid:gid, folders 0700 and files 0600."""
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
        path.chmod(0o700 if path.is_dir() else 0o600)


def _output_folder(path: Path, uid: int, gid: int, mode: int = 0o755) -> Path:
    """An output folder as CS makes one: owned by uid:gid, ``mode``."""
    path.mkdir(parents=True)
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


def _run(runtime: str, step: str, input_dir: Path, output_dir: Path, *args: str,
         user: str | None = f"{UID}:{GID}", output_options: str = ""
         ) -> subprocess.CompletedProcess:
    """Run ``step``'s image with its ENTRYPOINT as XNAT would: read-only input, no network.

    The image's own file system is read-only and /tmp an empty tmpfs, stricter than XNAT:
    a step that wrote anywhere but /output and /tmp would fail here. ``user`` None runs
    the image's default user, as XNAT does with its Container User empty.
    """
    mount = f"{output_dir}:/output" + (f":{output_options}" if output_options else "")
    user_option = ("--user", user) if user is not None else ()
    return subprocess.run(
        [runtime, "run", "--rm", "--network", "none", *user_option, *READ_ONLY_ROOT,
         *_no_passwd_entry(runtime),
         "-v", f"{input_dir}:/input:ro", "-v", mount, _image(step),
         "--input", "/input", "--output", "/output", *args],
        capture_output=True, text=True, check=False, env=runtime_env(runtime), timeout=900,
    )


def _assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


def _owned_by(folder: Path, uid: int) -> list[str]:
    """Files under ``folder`` not owned by ``uid`` (none expected)."""
    return [str(p) for p in folder.rglob("*") if p.stat().st_uid != uid]


def _store(output: Path, session: Path, label: str) -> None:
    """Store an output folder as the session resource ``label``, as CS uploads it."""
    shutil.copytree(output, session / "RESOURCES" / label)


def test_images_run_as_root_unless_told(built_images, container_runtime):
    # blank Container User: Docker gets withUser("") (DockerControlApi.java:614), so the
    # image's USER applies; ours set none, so the steps run as root, and 4321 below is a
    # uid no image was built for
    for step in STEPS:
        proc = subprocess.run([container_runtime, "image", "inspect", "--format",
                               "{{.Config.User}}", _image(step)], capture_output=True,
                              text=True, check=True, env=runtime_env(container_runtime))
        assert proc.stdout.strip() in ("", "0", "0:0", "root"), step


def _unreadable_by(folder: Path, uid: int, gid: int) -> list[str]:
    """Files under ``folder`` a process of uid:gid cannot read, as XNAT copies them.

    GNU find as that uid: ``-readable`` asks the kernel (access(2)); a folder it cannot
    enter is reported on stderr.
    """
    proc = subprocess.run(["find", str(folder), "!", "-readable"], capture_output=True,
                          text=True, check=False, user=uid, group=gid, extra_groups=[])
    return proc.stdout.split() + proc.stderr.splitlines()


@pytest.fixture
def build_path() -> Iterator[Path]:
    """XNAT's build path: a folder XNAT's uid can reach (pytest's tmp_path is root's 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="xnatpic-build-", dir="/tmp"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder)


def test_default_user_writes_the_output_folder_of_xnats_user(built_images, container_runtime,
                                                            phantom_dicom, acidocest_session,
                                                            tmp_path, build_path):
    # XNAT running as 4321 made /output 0755 for itself (CommandResolutionServiceImpl.java
    # :3122-3127); the admin set no Container User: the steps run as the images' root,
    # write there, and XNAT (4321) can read every file to copy it into the archive
    session = make_session(tmp_path / "archive", {"2": phantom_dicom["2"]})
    maps = _output_folder(build_path / "out-t2map", UID, GID)
    _assert_ok(_run(container_runtime, "t2map", session, maps, user=None))
    assert (run_dir(maps / "maps") / "stats.json").is_file()
    dicom = _output_folder(build_path / "out-mri2dicom", UID, GID)
    _assert_ok(_run(container_runtime, "mri2dicom", acidocest_session, dicom,
                    "--resource", "PARAVISION", "--format", "dicom", "--no-import",
                    user=None))
    assert list((dicom / "dicom").rglob("*.dcm"))
    for output in (maps, dicom):
        assert {p.stat().st_uid for p in output.rglob("*")} == {0}
        assert _unreadable_by(output, UID, GID) == []


def test_home_and_caches_are_in_tmp(built_images, container_runtime):
    proc = subprocess.run(
        [container_runtime, "run", "--rm", "--network", "none", "--user", f"{UID}:{GID}",
         *READ_ONLY_ROOT, *_no_passwd_entry(container_runtime), "--entrypoint", "python3",
         _image("roi-stats"), "-c",
         "import os, matplotlib, matplotlib.pyplot as plt; plt.plot([1, 2]); "
         "plt.savefig('/tmp/p.png'); "
         "print(os.environ['HOME'], matplotlib.get_configdir(), matplotlib.get_cachedir(), "
         "os.environ['XDG_CACHE_HOME'])"],
        capture_output=True, text=True, check=False, env=runtime_env(container_runtime),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no "created a temporary cache directory" warning
    assert proc.stdout.split() == ["/tmp", "/tmp/matplotlib", "/tmp/matplotlib",
                                   "/tmp/.cache"]


@pytest.mark.parametrize("step", sorted(MAP_SCANS))
def test_map_step_as_another_uid(built_images, container_runtime, phantom_dicom, tmp_path,
                                 step):
    session = make_session(tmp_path / "archive", {s: phantom_dicom[s] for s in MAP_SCANS[step]})
    _readable_only_by(session, UID, GID)
    output = _output_folder(tmp_path / "output", UID, GID)
    _assert_ok(_run(container_runtime, step, session, output))
    stats = json.loads((run_dir(output / "maps") / "stats.json").read_text())
    assert stats["failed_voxels"] < 0.01 * stats["mask_voxels"]
    assert (run_dir(output / "maps") / "report.html").stat().st_size > 1000
    assert _owned_by(output, UID) == []


def test_t2map_roi_stats_project_summary_as_another_uid(built_images, container_runtime,
                                                       phantom_dicom, tmp_path):
    session = make_session(tmp_path / "archive", {"2": phantom_dicom["2"]}, label="m1_d0")
    project = session.parents[1]
    _readable_only_by(project, UID, GID)
    maps = _output_folder(tmp_path / "out-t2map", UID, GID)
    _assert_ok(_run(container_runtime, "t2map", session, maps))
    _store(maps / "maps", session, "T2MAP")
    _readable_only_by(project, UID, GID)

    roistats = _output_folder(tmp_path / "out-roi", UID, GID)
    _assert_ok(_run(container_runtime, "roi-stats", session, roistats, "--mask", "auto"))
    rows = json.loads((roistats / "roistats" / "auto" / "roi_stats.json").read_text())["rows"]
    assert any(row["map"] == "T2" for row in rows), rows[:3]
    _store(roistats / "roistats", session, "ROISTATS")
    _readable_only_by(project, UID, GID)

    summary = _output_folder(tmp_path / "out-summary", UID, GID)
    _assert_ok(_run(container_runtime, "project-summary", project, summary,
                    "--project", "PRECLIN"))
    text = (summary / "summary" / "summary.csv").read_text()
    assert "m1_d0" in text and list((summary / "summary" / "plots").glob("*.png"))
    assert _owned_by(maps, UID) == _owned_by(roistats, UID) == _owned_by(summary, UID) == []


def test_mri2dicom_as_another_uid(built_images, container_runtime, acidocest_session,
                                  tmp_path):
    _readable_only_by(acidocest_session, UID, GID)
    output = _output_folder(tmp_path / "output", UID, GID)
    _assert_ok(_run(container_runtime, "mri2dicom", acidocest_session, output,
                    "--resource", "PARAVISION", "--format", "dicom", "--no-import"))
    files = list((output / "dicom").rglob("*.dcm"))
    provenance = json.loads((output / "report" / "provenance.json").read_text())
    assert files and provenance["dicom-files"] == len(files)
    assert _owned_by(output, UID) == []


def test_uid_without_group_runs(built_images, container_runtime, phantom_dicom, tmp_path):
    # Kubernetes sets runAsUser only (KubernetesClientImpl.java:366), no group.
    session = make_session(tmp_path / "archive", {"2": phantom_dicom["2"]})
    _readable_only_by(session, UID, 0)
    output = _output_folder(tmp_path / "output", UID, 0)
    _assert_ok(_run(container_runtime, "t2map", session, output, user=str(UID)))
    assert (run_dir(output / "maps") / "stats.json").is_file()


@pytest.mark.parametrize("step", STEPS)
def test_unwritable_output_is_one_line_naming_the_setting(built_images, container_runtime,
                                                          tmp_path, step):
    session = tmp_path / "archive" / "PRECLIN" / "arc001" / "s1"
    (session / "SCANS").mkdir(parents=True)
    _readable_only_by(session, UID, GID)
    output = _output_folder(tmp_path / "output", 0, 0)  # XNAT running as root made it
    proc = _run(container_runtime, step, session, output)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    program = PROGRAM.get(step, step)
    assert lines[0].startswith(f"{program}: error: /output is not writable by this step's "
                               f"user (uid {UID}, gid {GID}); it belongs to uid 0 gid 0 with "
                               "mode 0755."), lines[0]
    assert lines[0].endswith(f"set {CONTAINER_USER_SETTING} to 0:0")
    assert list(output.iterdir()) == []


def test_read_only_output_mount_says_so(built_images, container_runtime, tmp_path):
    session = tmp_path / "archive" / "PRECLIN" / "arc001" / "s1"
    (session / "SCANS").mkdir(parents=True)
    output = _output_folder(tmp_path / "output", UID, GID)
    proc = _run(container_runtime, "t2map", session, output, output_options="ro")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "t2map: error: /output is on a read-only mount: the command's output mount must be "
        "'writable': true"]


def test_perfusion_step_as_another_uid(built_images, container_runtime, fair_dicom, tmp_path):
    session = make_session(tmp_path / "archive", {"30": fair_dicom})
    _readable_only_by(session, UID, GID)
    output = _output_folder(tmp_path / "output", UID, GID)
    _assert_ok(_run(container_runtime, "perfusion", session, output))
    stats = json.loads((run_dir(output / "maps") / "stats.json").read_text())
    assert stats["outcome"] == "complete" and "CBF" in stats["maps"]
    assert (run_dir(output / "maps") / "report.html").stat().st_size > 1000
    assert _owned_by(output, UID) == []

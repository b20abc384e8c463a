"""Issue 11, items 1-7: every path a user takes ends in a result or one clear message.

Each test drives ``xnatpic`` as a user does (a subprocess of the installed command, or
``main(argv)``) and checks the exit status, the one line on stderr and that no traceback
is shown without ``--debug``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xnatpic.cli.main import main
from xnatpic.xnat.launcher import _local_entrypoint
from xnatpic.xnat.schema import load_commands

from ..conftest import PROJECT_ROOT
from ..paravision.builders import write_study

XNATPIC = Path(sys.executable).parent / "xnatpic"
COMMANDS = PROJECT_ROOT / "commands"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            **kwargs) -> subprocess.CompletedProcess[str]:
    """Run the installed ``xnatpic`` command as a user would."""
    command = [str(XNATPIC)] if XNATPIC.exists() else [sys.executable, "-m",
                                                       "xnatpic.cli.main"]
    kwargs.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([*command, *args], stderr=subprocess.PIPE, text=True, env=env,
                          cwd=cwd, check=False, timeout=600, **kwargs)


def one_error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The stderr of a failed command: one ``xnatpic COMMAND: error:`` line, no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"xnatpic {command}: error: "), proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("phantom") / "study"
    proc = run_cli("phantom", str(folder), "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture(scope="module")
def localizer_only(phantom, tmp_path_factory) -> Path:
    """The phantom study with its localizer only: no scan a map step can use."""
    folder = tmp_path_factory.mktemp("localizer") / "study"
    shutil.copytree(phantom, folder, ignore=shutil.ignore_patterns("truth"))
    for scan in folder.iterdir():
        if scan.is_dir() and scan.name.isdigit() and scan.name != "1":
            shutil.rmtree(scan)
    subject = folder / "subject"  # another animal, so another session
    subject.write_text(subject.read_text().replace("xnatpic^phantom", "xnatpic^localizer"))
    return folder


@pytest.fixture(scope="module")
def archive_template(phantom, tmp_path_factory) -> Path:
    archive = tmp_path_factory.mktemp("archive") / "archive"
    proc = run_cli("upload", str(phantom), "--project", "P", "--archive", str(archive),
                   "--report", str(archive.parent / "upload.json"))
    assert proc.returncode == 0, proc.stderr
    return archive


@pytest.fixture
def archive(archive_template, tmp_path) -> Path:
    copy = tmp_path / "archive"
    shutil.copytree(archive_template, copy)
    return copy


def the_session(archive: Path, project: str = "P") -> Path:
    sessions = [p for p in (archive / project / "arc001").iterdir() if p.is_dir()]
    assert len(sessions) == 1, sessions
    return sessions[0]


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write to: a read-only tmpfs as root (root ignores modes), a
    folder of mode 0555 otherwise."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                               str(folder)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"cannot mount a read-only tmpfs: {proc.stderr}"
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def read_only_copy(source: Path, folder: Path) -> Path:
    """``source`` copied onto a file system that is then made read-only."""
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(folder)],
                       check=True)
        try:
            shutil.copytree(source, folder, dirs_exist_ok=True)
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        except BaseException:
            subprocess.run(["umount", str(folder)], check=True)
            raise
    else:
        shutil.copytree(source, folder, dirs_exist_ok=True)
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
    return folder


class TestNoTracebacks:
    """Item 1: a read-only disk, a file where a folder goes, a closed pipe."""

    def test_convert_onto_a_read_only_file_system(self, phantom, read_only_dir):
        proc = run_cli("convert", str(phantom), "-o", str(read_only_dir / "out"))
        assert proc.returncode == 1
        line = one_error_line(proc, "convert")
        assert str(read_only_dir / "out") in line
        assert ("Read-only file system" in line or "Permission denied" in line), line

    def test_debug_shows_the_traceback(self, phantom, read_only_dir):
        proc = run_cli("--debug", "convert", str(phantom), "-o", str(read_only_dir / "out"))
        assert proc.returncode == 1
        assert "Traceback" in proc.stderr

    def test_convert_onto_an_existing_file(self, phantom, tmp_path):
        target = tmp_path / "afile"
        target.write_text("x")
        proc = run_cli("convert", str(phantom), "-o", str(target))
        assert proc.returncode == 2
        assert "is a file" in one_error_line(proc, "convert")

    def test_upload_archive_on_a_read_only_folder(self, phantom, read_only_dir, tmp_path):
        proc = run_cli("upload", str(phantom), "--project", "P", "--archive",
                       str(read_only_dir / "archive"), "--report", str(tmp_path / "r.json"))
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        assert "read-only" in proc.stderr.lower() or "Permission denied" in proc.stderr

    def test_launch_on_a_read_only_session_fails_before_the_step(self, archive, tmp_path):
        archive_ro = read_only_copy(archive, tmp_path / "ro-archive")
        try:
            build = tmp_path / "build"
            proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                           str(the_session(archive_ro)), "--runtime", "local",
                           "--build-dir", str(build))
        finally:
            if os.geteuid() == 0:
                subprocess.run(["umount", str(archive_ro)], check=True)
            else:  # let pytest remove the copy
                for path in [archive_ro, *archive_ro.rglob("*")]:
                    if path.is_dir():
                        path.chmod(0o755)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert "not writable" in proc.stderr and "nothing was run" in proc.stderr
        assert not list(build.glob("*/stdout.log")), "the step ran"

    def test_launch_with_an_unwritable_build_dir(self, archive, read_only_dir):
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--build-dir",
                       str(read_only_dir / "builds"))
        assert proc.returncode == 1
        assert "--build-dir" in one_error_line(proc, "launch")

    def test_info_into_a_closed_pipe_is_quiet(self, phantom):
        read_end, write_end = os.pipe()
        os.close(read_end)  # the reader (``head``) is gone before anything is written
        try:
            proc = run_cli("info", str(phantom), "--json", stdout=write_end)
        finally:
            os.close(write_end)
        assert proc.returncode == 141
        assert proc.stderr == ""


BLOCK_XNAT_EXTRA = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("xnat", "requests"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
for name in [m for m in sys.modules if m.split(".")[0] in ("xnat", "requests")]:
    del sys.modules[name]
"""


def run_without_xnat_extra(code: str, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-c", BLOCK_XNAT_EXTRA + code],
                          capture_output=True, text=True, cwd=cwd, check=False, timeout=600)


class TestCoreInstall:
    """Item 2: the core install (no ``[xnat]`` extra) runs --help and upload --archive."""

    def test_the_blocker_blocks(self):
        proc = run_without_xnat_extra("import requests")
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr

    def test_help(self):
        proc = run_without_xnat_extra(
            "from xnatpic.cli.main import main\nsys.exit(main(['--help']))")
        assert proc.returncode == 0, proc.stderr
        for command in ("info", "convert", "launch", "upload", "xnat"):
            assert command in proc.stdout

    def test_upload_archive(self, phantom, tmp_path):
        proc = run_without_xnat_extra(
            "from xnatpic.cli.main import main\n"
            f"sys.exit(main(['upload', {str(phantom)!r}, '--project', 'P', '--archive', "
            f"{str(tmp_path / 'a')!r}, '--report', {str(tmp_path / 'r.json')!r}]))")
        assert proc.returncode == 0, proc.stderr
        assert list((tmp_path / "a" / "P" / "arc001").glob("*/SCANS/*/DICOM/*.dcm"))

    def test_upload_to_a_server_needs_no_extra(self, phantom, tmp_path):
        """The XNAT client is the standard library's: ``--server`` works on the core
        install (the XNAT double in the same blocked interpreter)."""
        root = Path(__file__).resolve().parents[2]
        proc = run_without_xnat_extra(
            f"sys.path.insert(0, {str(root)!r})\n"
            "import os\n"
            "from tests.double.server import PASSWORD, USER, XnatDouble\n"
            "from xnatpic.cli.main import main\n"
            "fake = XnatDouble(('P',)).start()\n"
            "os.environ.update(XNAT_USER=USER, XNAT_PASS=PASSWORD, NETRC='/nonexistent')\n"
            f"rc = main(['upload', {str(phantom)!r}, '--project', 'P', '--server', fake.url,"
            f" '--report', {str(tmp_path / 'r.json')!r}])\n"
            "held = sum(len(s.scans) for s in fake.sessions.values())\n"
            "fake.stop()\n"
            "print('scans held', held)\n"
            "sys.exit(rc)", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        assert int(proc.stdout.split("scans held")[-1]) > 0

    def test_version_imports_no_subcommand(self):
        proc = run_without_xnat_extra(
            "from xnatpic.cli.main import main\nfrom xnatpic import __version__\n"
            "assert main(['--version']) == 0\n"
            "print(sorted(m for m in sys.modules if m.startswith('xnatpic.cli.')))")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[-1] == (
            "['xnatpic.cli.errors', 'xnatpic.cli.main', 'xnatpic.cli.summaries']")


class TestLocalRuntime:
    """Item 3: ``--runtime local`` runs from the clone, no --entrypoint, no venv on PATH."""

    @pytest.mark.parametrize("path", sorted(COMMANDS.glob("*.json")), ids=lambda p: p.stem)
    def test_every_step_maps_onto_this_clone(self, path):
        image = load_commands(str(path))[0].data["image"]
        entrypoint = _local_entrypoint(image)
        assert entrypoint[0] == sys.executable
        assert Path(entrypoint[1]).is_file()
        assert Path(entrypoint[1]).is_relative_to(PROJECT_ROOT / "pipelines")

    def test_map_then_project_summary(self, archive, tmp_path):
        env = {**os.environ, "PATH": "/usr/bin:/bin"}  # no activated venv
        env.pop("VIRTUAL_ENV", None)
        build = tmp_path / "build"
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--build-dir",
                       str(build), env=env)
        assert proc.returncode == 0, proc.stderr
        assert list((the_session(archive) / "RESOURCES" / "T2MAP").glob("*/report.html"))
        proc = run_cli("launch", str(COMMANDS / "project-summary.json"), "--project",
                       str(archive / "P"), "--runtime", "local", "--build-dir", str(build),
                       env=env)
        assert proc.returncode == 0, proc.stderr
        assert list((archive / "P" / "RESOURCES" / "PROJECT_SUMMARY").glob("*.csv"))


class TestNotApplicable:
    """Item 4: a session without a suitable scan is "not applicable", not a failure."""

    @pytest.fixture
    def mixed(self, archive, localizer_only, tmp_path) -> Path:
        proc = run_cli("upload", str(localizer_only), "--project", "P", "--archive",
                       str(archive), "--report", str(tmp_path / "u.json"))
        assert proc.returncode == 0, proc.stderr
        return archive

    def test_bulk_launch_counts_it_apart(self, mixed, tmp_path):
        report = tmp_path / "report.json"
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--project",
                       str(mixed / "P"), "--runtime", "local", "--build-dir",
                       str(tmp_path / "b"), "--report", str(report))
        assert proc.returncode == 0, proc.stderr
        data = json.loads(report.read_text())
        assert (data["succeeded"], data["not_applicable"], data["failed"]) == (1, 1, 0)
        outcome = {r["session_dir"].rsplit("/", 1)[1]: r for r in data["results"]}
        localizer = next(r for name, r in outcome.items() if "localizer" in name)
        assert localizer["outcome"] == "not applicable"
        assert localizer["status"] == "Failed"  # what XNAT shows for a non-zero exit
        assert localizer["exit_code"] == 3
        assert "1 complete, 1 not applicable, 0 not enough signal, 0 failed" in proc.stderr
        assert "--param scan=ID" in proc.stderr

    def test_only_not_applicable_exits_3(self, mixed, tmp_path):
        session = next(p for p in (mixed / "P" / "arc001").iterdir() if "localizer" in p.name)
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session", str(session),
                       "--runtime", "local", "--build-dir", str(tmp_path / "b"))
        assert proc.returncode == 3, proc.stderr
        assert "not applicable" in proc.stderr and "Traceback" not in proc.stderr


class TestNotEnoughSignal:
    """A step whose noise gate refuses the data (exit 4, '<step>: not enough signal: ...')
    is its own outcome in the table, the report and the exit status, not a failure."""

    def test_launch_shows_it_and_exits_4(self, archive, tmp_path):
        report = tmp_path / "report.json"
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--build-dir",
                       str(tmp_path / "b"), "--report", str(report),
                       "--param", "snr_floor=1000000")
        assert proc.returncode == 4, proc.stderr
        data = json.loads(report.read_text())
        (result,) = data["results"]
        assert result["outcome"] == "not enough signal" and result["exit_code"] == 4
        assert result["status"] == "Failed"  # what XNAT shows for a non-zero exit
        assert (data["succeeded"], data["not_enough_signal"], data["failed"]) == (0, 1, 0)
        assert "0 complete, 0 not applicable, 1 not enough signal, 0 failed" in proc.stderr
        assert "t2map: not enough signal: " in proc.stderr and "Traceback" not in proc.stderr


class TestOneNumbering:
    """Item 5: ParaVision scan E reco P is series 10000*E+P everywhere, and `scan` takes
    either."""

    def test_info_names_the_series_the_archive_files(self, phantom, archive):
        proc = run_cli("info", str(phantom))
        stored = sorted(p.name for p in (the_session(archive) / "SCANS").iterdir())
        shown = [line.split("series ", 1)[1].split(":", 1)[0]
                 for line in proc.stdout.splitlines() if "→ series" in line]
        assert sorted(shown) == stored
        # ParaVision's own DICOM export numbers the series of E4 P1 40001 (pv6-acidocest)
        assert "40001" in stored

    @pytest.mark.parametrize("scan", ["2", "2-1", "20001"])
    def test_scan_param_takes_what_the_user_sees(self, archive, tmp_path, scan):
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--param",
                       f"scan={scan}", "--build-dir", str(tmp_path / "b"))
        assert proc.returncode == 0, proc.stderr
        provenance = the_session(archive) / "RESOURCES" / "T2MAP"
        assert provenance.is_dir()

    def test_a_missing_scan_names_the_rule(self, archive, tmp_path):
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--param",
                       "scan=9", "--build-dir", str(tmp_path / "b"))
        assert proc.returncode == 1
        assert "no scan '9'" in proc.stderr and "10000*E+P" in proc.stderr

    def test_demo_builds_its_archive_with_upload(self, phantom, tmp_path):
        sys.path.insert(0, str(PROJECT_ROOT / "pipelines"))
        try:
            import demo
        finally:
            sys.path.remove(str(PROJECT_ROOT / "pipelines"))
        session = demo.build_session(phantom, tmp_path / "archive")
        assert sorted(p.name for p in (session / "SCANS").iterdir()) == [
            f"{scan}0001" for scan in range(1, 9)]
        assert (session / "RESOURCES" / "PARAVISION").is_dir()
        assert (tmp_path / "archive" / ".xnatpic" / "P.json").exists() is False
        assert (tmp_path / "archive" / ".xnatpic" / f"{demo.PROJECT}.json").is_file()


class TestHelpAndMessages:
    """Item 6: help and messages agree with behaviour."""

    def test_upload_help_says_the_project_is_created(self):
        proc = run_cli("upload", "--help")
        assert "created" in " ".join(proc.stdout.split())
        assert "must exist" not in proc.stdout

    def test_missing_command_file(self, archive, tmp_path):
        proc = run_cli("launch", str(tmp_path / "nope.json"), "--session",
                       str(the_session(archive)))
        assert proc.returncode == 2
        assert one_error_line(proc, "launch").endswith("nope.json: no such file")

    def test_unknown_param_is_a_usage_error(self, archive, tmp_path):
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--param",
                       "sacn=2", "--build-dir", str(tmp_path / "b"))
        assert proc.returncode == 2
        line = one_error_line(proc, "launch")
        assert "sacn" in line and "scan" in line
        assert not (tmp_path / "b").exists() or not list((tmp_path / "b").iterdir())

    def test_info_geometry_and_plural(self, tmp_path):
        # one echo, one slice: VisuCoreSize (4, 6), VisuCoreExtent (1, 3) mm, thickness 1.5,
        # orientation the identity (slice normal along z: axial)
        study = write_study(tmp_path / "s", {"5": {"necho": 1, "nslices": 1}})
        proc = run_cli("info", str(study))
        assert proc.returncode == 0, proc.stderr
        line = next(li for li in proc.stdout.splitlines() if "reco 1" in li)
        assert "1 image " in line
        assert "FOV 3×1 mm" in line and "voxel 0.5×0.25×1.5 mm" in line
        assert "axial" in line and "series 50001" in line

    def test_info_in_a_pipe_keeps_whole_lines(self, phantom):
        proc = run_cli("info", str(phantom), env={**os.environ, "COLUMNS": "40"})
        lines = proc.stdout.splitlines()
        assert max(len(line) for line in lines) > 160
        reco_lines = [li for li in lines if "reco 1" in li]
        assert len(reco_lines) == 8 and all("TR " in li for li in reco_lines)

    def test_phantom_planes(self, phantom):
        # the phantom's protocol table: the localizer is coronal, the maps axial
        lines = [li for li in run_cli("info", str(phantom)).stdout.splitlines()
                 if "reco 1" in li]
        assert "coronal" in lines[0]
        assert all("axial" in li for li in lines[1:])


IMAGE_TAG = re.compile(r"xnatpic-([a-z0-9-]+?):(\d+\.\d+\.\d+)")


def command_images() -> dict[str, str]:
    """step → ``image`` of ``commands/<step>.json`` (read here, not through xnatpic)."""
    return {path.stem: json.loads(path.read_text())["image"]
            for path in COMMANDS.glob("*.json")}


class TestImageTags:
    """Item 6: every image tag in the docs and the help is the one commands/*.json gives."""

    @pytest.mark.parametrize("doc", ["README.md", "containers/README.md"])
    def test_docs(self, doc):
        images = command_images()
        text = (PROJECT_ROOT / doc).read_text()
        found = IMAGE_TAG.findall(text)
        for step, version in found:
            assert images[step].endswith(f"xnatpic-{step}:{version}"), (doc, step, version)

    @pytest.mark.parametrize("argv", [["xnat", "--help"], ["xnat", "register", "--help"],
                                      ["commands", "--help"]])
    def test_help(self, argv):
        images = command_images()
        text = run_cli(*argv).stdout
        found = IMAGE_TAG.findall(text)
        assert found, text
        for step, version in found:
            assert images[step].endswith(f"xnatpic-{step}:{version}"), (argv, step, version)


def test_upload_plan_title_names_the_archive_once(phantom, tmp_path):
    proc = run_cli("upload", str(phantom), "--project", "P", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    title = " ".join(proc.stdout.split()[:8])
    assert f"archive {tmp_path / 'archive'}" in title.replace("\n", ""), proc.stdout
    assert "archive archive" not in " ".join(proc.stdout.split())


def test_nifti_names_carry_the_protocol(phantom, tmp_path):
    proc = run_cli("convert", str(phantom), "-o", str(tmp_path / "out"), "--format", "nifti",
                   "--scans", "2")
    assert proc.returncode == 0, proc.stderr
    acqp = (phantom / "2" / "acqp").read_text()
    protocol = acqp.split("##$ACQ_protocol_name=", 1)[1].splitlines()[1].strip("<>")
    names = sorted(p.name for p in (tmp_path / "out").rglob("*.nii.gz"))
    assert names == [f"2-1_{protocol}.nii.gz"]


def _method_words(scan: Path, name: str) -> list[str]:
    """The values of a ``##$name=( n )`` array in a scan's method file (read here)."""
    text = (scan / "method").read_text()
    return text.split(f"##${name}=", 1)[1].splitlines()[1].split()


def test_info_geometry_agrees_with_the_method_files(corpus):
    """FOV and slice orientation as brkraw shows them (from PVM_Fov and
    PVM_SPackArrSliceOrient of each scan's method file)."""
    study = corpus / "pv6-dicomifier" / "study"
    proc = run_cli("info", str(study))
    assert proc.returncode == 0, proc.stderr
    lines = {}
    for line in proc.stdout.splitlines():
        if "scan " in line and "reco" not in line:
            scan = line.split("scan ", 1)[1].split()[0]
        elif "reco 1 →" in line:
            lines[scan] = line
    checked = 0
    for scan, line in lines.items():
        method = study / scan / "method"
        if "PVM_SPackArrSliceOrient" not in method.read_text():
            continue
        fov = sorted(float(v) for v in line.split("FOV ", 1)[1].split(" mm")[0].split("×"))
        assert fov == pytest.approx(sorted(float(v) for v in _method_words(
            study / scan, "PVM_Fov")), abs=1e-3), (scan, line)
        shown = line.split(" mm, ")[-1].split(";")[0].split(", ")
        shown = [p.removeprefix("oblique (").removesuffix(")") for p in shown]
        assert shown == list(dict.fromkeys(_method_words(study / scan,
                                                         "PVM_SPackArrSliceOrient"))), line
        checked += 1
    assert checked >= 8


class TestBuildFolders:
    """Item 7: logs stay, outputs go once stored, and the launch says where."""

    def test_outputs_pruned_logs_kept(self, archive, tmp_path):
        build = tmp_path / "b"
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--build-dir",
                       str(build))
        assert proc.returncode == 0, proc.stderr
        (launch_dir,) = [p for p in build.iterdir() if p.is_dir()]
        assert sorted(p.name for p in launch_dir.iterdir()) == [
            "launch.json", "result.json", "stderr.log", "stdout.log"]
        assert proc.stderr.strip().splitlines()[-1].startswith(f"logs: {build}/")

    def test_keep_outputs(self, archive, tmp_path):
        build = tmp_path / "b"
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--build-dir",
                       str(build), "--keep-outputs")
        assert proc.returncode == 0, proc.stderr
        assert list(build.glob("*/mounts/*/maps/*-scan*/report.html"))

    def test_a_failed_launch_keeps_its_output(self, archive, tmp_path):
        build = tmp_path / "b"
        proc = run_cli("launch", str(COMMANDS / "t2map.json"), "--session",
                       str(the_session(archive)), "--runtime", "local", "--param", "scan=1",
                       "--build-dir", str(build))
        assert proc.returncode == 1
        assert list(build.glob("*/mounts/*"))


def test_main_entry_point_error_is_one_line(tmp_path, capsys):
    assert main(["launch", str(tmp_path / "nope.json"), "--session", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"xnatpic launch: error: {tmp_path}/nope.json: "
                                         "no such file"]

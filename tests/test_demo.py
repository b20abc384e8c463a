"""``make demo`` (pipelines/demo.py): the user's commands in order, the upload sending the
conversion the demo made, and the benchmark running what make runs.

Truths: the conversion's own report and files on disk (what the archive must hold), make's
own expansion of the Makefile (``make -n``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracles import require_executable

ROOT = Path(__file__).resolve().parents[1]


def _demo_module():
    sys.path.insert(0, str(ROOT / "pipelines"))
    try:
        import demo
    finally:
        sys.path.remove(str(ROOT / "pipelines"))
    return demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """``pipelines/demo.py OUT`` in a fresh process, as make demo runs it."""
    out = tmp_path_factory.mktemp("demo") / "out"
    done = subprocess.run([sys.executable, str(ROOT / "pipelines" / "demo.py"), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    return out, done.returncode, done.stdout + done.stderr


def test_the_users_commands_run_in_order(demo_run):
    _, code, printed = demo_run
    assert code == 0, printed[-3000:]
    commands = [line.split()[2] for line in printed.splitlines() if line.startswith("$ xnatpic ")]
    assert commands == ["phantom", "info", "convert", "upload", "launch"]
    assert "scan 7 Bruker:RARE CEST_RARE" in printed  # info's own output is shown


def test_the_upload_sends_the_demos_conversion(demo_run):
    out, code, printed = demo_run
    assert code == 0, printed[-3000:]
    (row,) = json.loads((out / "upload-report.json").read_text())["sessions"]
    assert row["status"] == "uploaded"
    report = (out / "report.json").resolve()
    assert row["conversion"] == f"reused: {report} (output {(out / 'dicom').resolve()})"
    converted = json.loads(report.read_text())["recos"]
    (session,) = (out / "archive" / "DEMO" / "arc001").iterdir()
    held = {scan.name: len(list((scan / "DICOM").glob("*.dcm")))
            for scan in (session / "SCANS").iterdir()}
    # the archive holds every converted series with the files the conversion wrote
    assert sorted(held.values()) == sorted(r["files"] for r in converted)
    names = {p.name for p in (out / "dicom").rglob("*.dcm")}
    assert names == {p.name for p in (session / "SCANS").rglob("*.dcm")}
    assert (session / "RESOURCES" / "SESSION_MAPS" / "index.html").is_file()


def test_a_failing_step_stops_the_demo_naming_it(tmp_path):
    out = tmp_path / "out"
    (out / "phantom").mkdir(parents=True)
    (out / "phantom" / "something").write_text("not a phantom")
    done = subprocess.run([sys.executable, str(ROOT / "pipelines" / "demo.py"), str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "demo: xnatpic phantom failed (exit 1)"
    assert not (out / "archive").exists()


def test_the_benchmark_runs_what_make_demo_runs(tmp_path):
    make = require_executable("make", "GNU make; apt-get install make")
    from benchmarks.bench_steps import demo_chain

    out = str(tmp_path / "out")
    listed = subprocess.run([make, "--no-print-directory", "-n", "-o", "install", "demo",
                             f"DEMO_OUT={out}"], capture_output=True, text=True, cwd=ROOT,
                            check=True).stdout.split("\n")
    chain = demo_chain(out)
    steps = [line.strip() for line in listed if line.strip()]
    assert steps and steps[-1].endswith(f"pipelines/demo.py {out}")
    for step in steps:  # make's expansion, with the venv made absolute
        assert step.replace(".venv/", f"{ROOT}/.venv/", 1) in chain or step in chain


def test_build_session_without_a_conversion_converts(tmp_path):
    from xnatpic.phantom import write_phantom

    demo = _demo_module()
    phantom = tmp_path / "phantom"
    write_phantom(phantom, snr=50.0, seed=0)
    session = demo.build_session(phantom, tmp_path / "archive")
    row = json.loads((tmp_path / "upload-report.json").read_text())["sessions"][0]
    assert row["conversion"] == "converted"
    assert len(list((session / "SCANS").iterdir())) == 8

"""Conversion speed and memory: xnatpic (DICOM, NIfTI) vs brkraw 0.5.7 (NIfTI), same run.

Converts ``../shared/data/paravision/pv6-dicomifier/study`` with

* ``xnatpic convert SRC -o OUT --jobs 2`` (classic DICOM),
* ``xnatpic convert SRC -o OUT --jobs 2 --format nifti``,
* ``brkraw convert SRC -o OUT`` (brkraw's NIfTI of every scan and reco, one process),

each in a fresh output folder, best of :data:`REPEATS` runs, and prints wall times, the
ratio ours/brkraw and peak memory. Every command runs under a small Python wrapper
process, so ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` measured there belongs to
that command alone: on Linux it is the peak resident set of the largest single process of
its tree (a ``--jobs 2`` worker or the parent, not their sum). It is compared with twice
the largest reco's 2dseq, also after subtracting the resident set of an idle process
that has only imported what the command imports before reading data
(:data:`IDLE_IMPORTS`). Target: our DICOM conversion at
least 3× faster than brkraw's NIfTI (ratio ≤ 0.33).

Run: ``cd /work/main && .venv/bin/python -m benchmarks convert``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPEATS", "Measurement", "main", "measure"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STUDY = PROJECT_ROOT.parent / "shared" / "data" / "paravision" / "pv6-dicomifier" / "study"
BIN = Path(sys.executable).parent
XNATPIC = BIN / "xnatpic"
BRKRAW = BIN / "brkraw"
REPEATS = 3
TARGET_RATIO = 1 / 3
#: What each command's process has loaded before it reads any data (its memory baseline).
_CLI = "from xnatpic.cli.main import build_parser; build_parser(); "
IDLE_IMPORTS = {
    "xnatpic dicom --jobs 2": _CLI + "import xnatpic.dicom",
    "xnatpic nifti --jobs 2": _CLI + "import xnatpic.nifti",
    "brkraw convert (nifti)": "import brkraw.cli, brkraw.cli.main, brkraw.apps.loader, nibabel",
}

#: Runs one command and prints its wall time, exit status and RUSAGE_CHILDREN peak RSS.
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "rc": proc.returncode, "maxrss_kib": usage.ru_maxrss,
                  "stderr": proc.stderr[-2000:], "stdout": proc.stdout[-2000:]}))
"""


@dataclass
class Measurement:
    """One command's best run."""

    name: str
    walls: list[float]
    maxrss_mib: float
    idle_mib: float

    @property
    def best(self) -> float:
        """Fastest wall time (s)."""
        return min(self.walls)


def _run(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(out.stdout)


def measure(name: str, argv_for: Callable[[Path], list[str]], env: dict[str, str],
            work: Path) -> Measurement:
    """Run ``argv_for(output_folder)`` :data:`REPEATS` times in fresh folders.

    Raises
    ------
    SystemExit
        When the command fails (its stderr is shown).
    """
    walls, peak = [], 0
    idle = _run([sys.executable, "-c", IDLE_IMPORTS[name]], env)["maxrss_kib"]
    for repeat in range(REPEATS):
        out = work / f"{name.replace(' ', '_')}-{repeat}"
        result = _run(argv_for(out), env)
        if result["rc"] != 0:
            raise SystemExit(
                f"bench_convert: {name} failed (exit {result['rc']}):\n{result['stderr']}"
                f"{result['stdout']}"
            )
        walls.append(result["wall"])
        peak = max(peak, result["maxrss_kib"])
        shutil.rmtree(out, ignore_errors=True)
    return Measurement(name, walls, peak / 1024, idle / 1024)


def _largest_2dseq(study: Path) -> int:
    return max(p.stat().st_size for p in study.glob("*/pdata/*/2dseq"))


def _check_tools() -> None:
    if not STUDY.is_dir():
        raise SystemExit(f"bench_convert: corpus not found at {STUDY} (it lives beside the "
                         "project in ../shared/data/paravision)")
    if not XNATPIC.is_file():
        raise SystemExit(f"bench_convert: {XNATPIC} not found: the xnatpic CLI is not "
                         "installed in this venv (make install)")
    probe = subprocess.run([str(XNATPIC), "convert", "--help"], capture_output=True, text=True)
    if probe.returncode != 0 or "--jobs" not in probe.stdout or "nifti" not in probe.stdout:
        raise SystemExit("bench_convert: `xnatpic convert` with --jobs and --format nifti is "
                         f"not available yet:\n{probe.stderr or probe.stdout}")
    if not BRKRAW.is_file():
        raise SystemExit(f"bench_convert: {BRKRAW} not found: install the test extras "
                         "(brkraw==0.5.7) with make install")


def main() -> None:
    """Print wall times, ours/brkraw ratios and peak memory."""
    _check_tools()
    with tempfile.TemporaryDirectory(prefix="xnatpic-bench-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, BRKRAW_CONFIG_HOME=str(work / "brkraw-config"))
        src = str(STUDY)
        runs = [
            measure("xnatpic dicom --jobs 2",
                    lambda o: [str(XNATPIC), "convert", src, "-o", str(o), "--jobs", "2"],
                    env, work),
            measure("xnatpic nifti --jobs 2",
                    lambda o: [str(XNATPIC), "convert", src, "-o", str(o), "--jobs", "2",
                               "--format", "nifti"], env, work),
            measure("brkraw convert (nifti)",
                    lambda o: [str(BRKRAW), "convert", src, "-o", str(o)], env, work),
        ]
    brkraw = runs[-1]
    largest = _largest_2dseq(STUDY) / 2**20
    print(f"study: {STUDY} (largest 2dseq {largest:.2f} MiB; 2x = {2 * largest:.2f} MiB)")
    print(f"best of {REPEATS} runs; peak RSS = largest single process of the command's tree")
    print(f"{'command':28s} {'best s':>7s} {'runs s':>20s} {'ours/brkraw':>11s} "
          f"{'peak MiB':>9s} {'idle MiB':>9s} {'peak-idle':>9s} {'/(2x2dseq)':>10s}")
    for m in runs:
        ratio = m.best / brkraw.best
        above = m.maxrss_mib - m.idle_mib
        print(f"{m.name:28s} {m.best:7.2f} {' '.join(f'{w:.2f}' for w in m.walls):>20s} "
              f"{ratio:11.3f} {m.maxrss_mib:9.1f} {m.idle_mib:9.1f} {above:9.1f} "
              f"{above / (2 * largest):10.2f}")
    ratio = runs[0].best / brkraw.best
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target (xnatpic DICOM >= 3x faster than brkraw NIfTI, ratio <= 0.333): {verdict} "
          f"(ratio {ratio:.3f}, speed-up {1 / ratio:.1f}x)")


if __name__ == "__main__":
    main()

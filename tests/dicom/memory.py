"""Large synthetic recos and the peak memory of one conversion in a child process.

Shared by ``tests/dicom/test_streaming.py`` (a bound on memory per MiB of image data)
and ``benchmarks/bench_memory.py`` (the figures at 64 and 256 MiB).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.dicom.synthetic import write_study

__all__ = ["MIB", "convert_peak_rss_mib", "peak_rss_mib", "write_large_study"]

MIB = 1 << 20

#: Converts one study in a fresh interpreter (argv: source, output, format).
_CONVERT = """
import sys
from xnatpic.conversion import convert_study
report = convert_study(sys.argv[1], sys.argv[2], fmt=sys.argv[3])
failed = [f"{r.scan}-{r.reco}: {r.reason}" for r in report.failed]
sys.exit("conversion failed: " + "; ".join(failed) if failed else 0)
"""


def write_large_study(root: Path, mib: int, *, rows: int = 256, cols: int = 256,
                      seed: int = 0) -> Path:
    """A study whose one reco holds ``mib`` MiB of int16 images (``rows`` × ``cols``),
    one slice per frame, written frame block by frame block; returns the reco folder.

    The values are random (incompressible) with one slope, like ParaVision's.
    """
    frames = mib * MIB // (rows * cols * 2)
    shape_only = np.broadcast_to(np.zeros(1, dtype="<i2"), (frames, rows, cols))
    reco = write_study(root, shape_only, slopes=[0.0123] * frames, offsets=[0.0] * frames)
    rng = np.random.default_rng(seed)
    with open(reco / "2dseq", "wb") as f:  # the values, 64 frames at a time
        for start in range(0, frames, 64):
            count = min(64, frames - start)
            f.write(rng.integers(-3000, 3000, (count, rows, cols), dtype="<i2").tobytes())
    return reco


#: Runs argv[1:] and prints its exit status and peak RSS (KiB). A small interpreter forks
#: the measured process: a fork's resident set starts as its parent's (until exec), and
#: ru_maxrss keeps that, so forking it from a large test or benchmark process would count
#: the parent's memory.
_MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
stderr = proc.stderr.read().decode(errors="replace")
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
                  "stderr": stderr[-2000:]}))
"""


def peak_rss_mib(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Peak resident set (MiB) of the process ``argv`` (``ru_maxrss`` from ``wait4``).

    Raises
    ------
    RuntimeError
        When the process exits non-zero (its stderr is included).
    """
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True,
                         text=True, env=env, check=True)
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{argv[:3]} exited {result['rc']}: {result['stderr']}")
    return result["maxrss_kib"] / 1024


def convert_peak_rss_mib(study: Path, output: Path, fmt: str,
                         env: dict[str, str] | None = None) -> float:
    """Peak memory (MiB) of ``convert_study(study, output, fmt=fmt)`` in a fresh process."""
    return peak_rss_mib([sys.executable, "-c", _CONVERT, str(study), str(output), fmt], env)

"""Peak memory of Enhanced MR conversion against classic DICOM, at 64 and 256 MiB.

Synthetic recos of 64 and 256 MiB of int16 images (256 × 256, then 128 × 128: four times
the frames, so the per-frame functional groups weigh more; one slice per frame, one
slope: :func:`tests.dicom.memory.write_large_study`) are converted by
``convert_study(fmt="enhanced")`` and ``fmt="dicom"`` (classic, the baseline) in fresh
processes, alternating which goes first, :data:`REPEATS` pairs per size. Peak memory is
``ru_maxrss`` of the converting process (``wait4`` from a small launcher, so a large
parent is not counted). Printed: min/median/max MiB of each side, the median of the
per-pair ratios enhanced/classic, and each side's growth per MiB of image data between
the two sizes. Enhanced pixel data is streamed to the file, so its peak should stay
near the interpreter's floor; classic maps the whole 2dseq while it writes. The same
enhanced conversion before issue 13 (the baseline worktree of
:mod:`benchmarks.bench_convert`, which held every frame and their joined bytes) is
measured in the same rounds.

Run: ``make bench`` or ``.venv/bin/python -m benchmarks memory``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.bench_convert import _ensure_baseline
from tests.dicom.memory import convert_peak_rss_mib, write_large_study

__all__ = ["FRAMES", "REPEATS", "SIZES_MIB", "main"]

SIZES_MIB = (64, 256)
#: Frame shapes (rows, columns).
FRAMES = ((256, 256), (128, 128))
REPEATS = int(os.environ.get("XNATPIC_BENCH_REPEATS", "3"))
#: Measured sides: name → (format, runs the baseline worktree).
SIDES = {"enhanced": ("enhanced", False), "classic": ("dicom", False),
         "enhanced before": ("enhanced", True)}


def _mmm(values: list[float]) -> str:
    return f"{min(values):.0f}/{statistics.median(values):.0f}/{max(values):.0f}"


def _peaks(study: Path, work: Path, envs: dict[bool, dict[str, str]]
           ) -> dict[str, list[float]]:
    """Peak-memory runs of every side on one study, the order rotating each round."""
    peaks: dict[str, list[float]] = {name: [] for name in SIDES}
    names = list(SIDES)
    for repeat in range(REPEATS):
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            fmt, before = SIDES[name]
            out = work / "out"
            peaks[name].append(convert_peak_rss_mib(study, out, fmt, envs[before]))
            shutil.rmtree(out)
    return peaks


def main() -> None:
    """Print peak RSS of enhanced and classic conversion at each size, and the growth."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    envs = {False: env, True: dict(env, PYTHONPATH=str(_ensure_baseline()))}
    print(f"peak RSS (MiB), {REPEATS} rounds per size (order rotating); ratios = median "
          "of the per-round ratios")
    with tempfile.TemporaryDirectory(prefix="xnatpic-bench-memory-") as tmp:
        for rows, cols in FRAMES:
            _frame_shape(rows, cols, Path(tmp), envs)


def _frame_shape(rows: int, cols: int, work: Path, envs: dict[bool, dict[str, str]]) -> None:
    """Print the lines of one frame shape at every size, and each side's growth."""
    medians: dict[int, dict[str, float]] = {}
    print(f"\n{rows} x {cols} frames")
    print(f"{'image data':>10s} {'enhanced min/med/max':>21s} {'classic min/med/max':>20s} "
          f"{'before min/med/max':>20s} {'enh/classic':>11s} {'enh/before':>10s}")
    for mib in SIZES_MIB:
        study = work / f"study-{mib}"
        write_large_study(study, mib, rows=rows, cols=cols)
        peaks = _peaks(study, work, envs)
        shutil.rmtree(study)

        def ratio(baseline: str, p: dict[str, list[float]] = peaks) -> float:
            return statistics.median(e / b for e, b in zip(p["enhanced"], p[baseline],
                                                           strict=True))

        medians[mib] = {name: statistics.median(v) for name, v in peaks.items()}
        print(f"{mib:>6d} MiB {_mmm(peaks['enhanced']):>21s} {_mmm(peaks['classic']):>20s} "
              f"{_mmm(peaks['enhanced before']):>20s} {ratio('classic'):11.3f} "
              f"{ratio('enhanced before'):10.3f}", flush=True)
    low, high = SIZES_MIB[0], SIZES_MIB[-1]
    for name in SIDES:
        growth = (medians[high][name] - medians[low][name]) / (high - low)
        print(f"{name:16s} growth {low}->{high} MiB: {growth:.2f} MiB per MiB of image data")

if __name__ == "__main__":
    main()

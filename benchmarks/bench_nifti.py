"""NIfTI output speed: compressors, and ``xnatpic convert --format nifti`` against its peers.

Measured in one run, with the paired alternating runs of :mod:`benchmarks.bench_convert`
(min/median/max of each side, median of the per-pair ratios):

1. **gzip compressors** on the corpus's 2dseq bytes (every reco of pv6-dicomifier and
   pv6-acidocest, what the NIfTI files hold), in process: ISA-L levels 1–3 (``isal``; our
   ``fast``), zlib levels 6 and 9 (9 is our ``best``) against zlib level 1 (nibabel's
   default, what the NIfTI writer used before); time and compressed size.
2. ``xnatpic convert --format nifti`` (stored integers with scl_slope, ISA-L gzip) against
   **brkraw 0.5.7** ``brkraw convert`` (its NIfTI of every reco) and against **bruker2nifti
   1.0.4** (its defaults) on the recos bruker2nifti converts: it refuses pv6 scan 30 ("FG_SLICE
   not found in the order descriptor"), and with nibabel ≥ 5 it stops at diffusion scans
   on nibabel's removed ``get_data()``; it runs here with ``get_data`` restored as
   ``numpy.asanyarray(img.dataobj)`` (what nibabel's deprecation message gives), so
   it converts what it was written to convert. Targets: ≥ 2× brkraw, faster than
   bruker2nifti.
3. The same command against itself before issue 13 (float32, zlib level 1: the baseline
   worktree of :mod:`benchmarks.bench_convert`) and with ``--nifti-compression none`` and
   ``best``.

Each converter runs as its own process (imports included), one reco at a time
(``--jobs 1``). Run: ``make bench`` or ``.venv/bin/python -m benchmarks nifti``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_convert import (
    BIN,
    REPEATS,
    STUDIES,
    XNATPIC,
    CommandFailed,
    Pair,
    paired,
)

__all__ = ["main"]

BRKRAW = BIN / "brkraw"
#: Scans bruker2nifti converts, per study (None: all).
B2N_SCANS = {"pv6": "1,2,4,9,11,13,17,19,21,32", "acidoCEST": None}
TARGET_VS_BRKRAW = 2.0
#: bruker2nifti 1.0.4 with nibabel's removed get_data() restored (argv: study, out[, scans]).
_B2N = """
import sys
import nibabel, numpy
nibabel.Nifti1Image.get_data = lambda self: numpy.asanyarray(self.dataobj)
from bruker2nifti.converter import Bruker2Nifti
b = Bruker2Nifti(sys.argv[1], sys.argv[2], study_name="study")
if len(sys.argv) > 3:
    b.scans_list = sys.argv[3].split(",")
    b.list_new_name_each_scan = b.scans_list
b.verbose = 0
b.convert()
"""

Command = Callable[[Path], list[str]]


def _check_tools() -> None:
    missing = []
    for module, how in (("isal", "make install (a dependency of xnatpic)"),
                        ("bruker2nifti", "make bench installs bruker2nifti==1.0.4"),
                        ("brkraw", "make install (test extras: brkraw==0.5.7)")):
        try:
            __import__(module)
        except ImportError as exc:
            missing.append(f"{module} cannot be imported ({exc}): {how}")
    if not XNATPIC.is_file():
        missing.append(f"{XNATPIC} not found: make install")
    for study in STUDIES.values():
        if not study.is_dir():
            missing.append(f"corpus not found at {study} (../shared/data/paravision)")
    if missing:
        raise SystemExit("bench_nifti: " + "; ".join(missing))


def _mmm(values: list[float]) -> str:
    return f"{min(values):.3f}/{statistics.median(values):.3f}/{max(values):.3f}"


def _compressors() -> None:
    """Paired in-process timing of each compressor against zlib level 1."""
    from isal import isal_zlib

    data = b"".join(p.read_bytes() for study in STUDIES.values()
                    for p in sorted(study.glob("*/pdata/*/2dseq")))
    candidates: dict[str, Callable[[bytes], bytes]] = {
        "isal 1 (fast)": lambda b: isal_zlib.compress(b, 1),
        "isal 2": lambda b: isal_zlib.compress(b, 2),
        "isal 3": lambda b: isal_zlib.compress(b, 3),
        "zlib 6": lambda b: zlib.compress(b, 6),
        "zlib 9 (best)": lambda b: zlib.compress(b, 9),
    }
    baseline = lambda b: zlib.compress(b, 1)  # noqa: E731
    base_size = len(baseline(data))
    print(f"\ncompressors on {len(data) / 2**20:.1f} MiB of corpus 2dseq data, {REPEATS} "
          "pairs each against zlib 1 (nibabel's default)")
    print(f"{'compressor':16s} {'min/med/max s':>20s} {'zlib1 min/med/max':>20s} "
          f"{'ratio':>7s} {'speed':>7s} {'size':>7s} {'vs zlib1':>8s}")
    for name, compress in candidates.items():
        times: dict[str, list[float]] = {"figure": [], "baseline": []}
        size = 0
        for repeat in range(REPEATS):
            sides = [("figure", compress), ("baseline", baseline)]
            if repeat % 2:
                sides.reverse()
            for side, func in sides:
                start = time.perf_counter()
                packed = func(data)
                times[side].append(time.perf_counter() - start)
                if side == "figure":
                    size = len(packed)
        ratios = [f / b for f, b in zip(times["figure"], times["baseline"], strict=True)]
        ratio = statistics.median(ratios)
        print(f"{name:16s} {_mmm(times['figure']):>20s} {_mmm(times['baseline']):>20s} "
              f"{ratio:7.3f} {1 / ratio:6.2f}x {size / len(data):7.3f} "
              f"{size / base_size:8.3f}", flush=True)


def _print(label: str, pair: Pair | None, target: float | None = None) -> None:
    if pair is None:
        return
    f, b = pair.figure, pair.baseline
    speed = 1 / pair.ratio
    verdict = ""
    if target is not None:
        verdict = f"target >= {target:g}x: {'met' if speed >= target else 'NOT met'}"
    print(f"{label:56s} {f.summary():>20s} {b.summary():>20s} {pair.ratio:7.3f} "
          f"{speed:6.2f}x {f.maxrss_mib:6.0f} {b.maxrss_mib:6.0f}  {verdict}", flush=True)


def _pair(label: str, figure: tuple[str, Command, dict[str, str]],
          baseline: tuple[str, Command, dict[str, str]], work: Path,
          failed: list[str]) -> Pair | None:
    try:
        return paired(figure, baseline, work)
    except CommandFailed as exc:
        failed.append(label)
        print(f"{label:56s} FAILED: {exc}", flush=True)
        return None


def _converters(work: Path) -> list[str]:
    """Paired lines of our NIfTI conversion against brkraw, bruker2nifti, itself."""
    from benchmarks.bench_convert import _ensure_baseline

    env = dict(os.environ, BRKRAW_CONFIG_HOME=str(work / "brkraw-config"))
    env.pop("PYTHONPATH", None)
    base_env = dict(env, PYTHONPATH=str(_ensure_baseline()))
    failed: list[str] = []

    def ours(src: Path, *extra: str) -> Command:
        return lambda o: [str(XNATPIC), "convert", str(src), "-o", str(o), "--format",
                          "nifti", *extra]

    print(f"\nconverters: {REPEATS} paired alternating runs per line (after one warm-up "
          "each); ratio = median of figure/baseline per pair; speed = 1/ratio")
    print(f"{'figure vs baseline':56s} {'figure min/med/max s':>20s} "
          f"{'base min/med/max s':>20s} {'ratio':>7s} {'speed':>7s} {'MiB':>6s} "
          f"{'baseMiB':>6s}")
    for label, src in STUDIES.items():
        print(f"{label}: {src}")
        nifti = ("nifti", ours(src), env)
        brkraw = ("brkraw", lambda o, s=src: [str(BRKRAW), "convert", str(s), "-o",
                                              str(o / "brkraw")], env)
        _print("  nifti vs brkraw 0.5.7 (every reco)",
               _pair(f"{label} brkraw", nifti, brkraw, work, failed), TARGET_VS_BRKRAW)
        scans = B2N_SCANS[label]
        subset = ("nifti", ours(src, *(("--scans", scans) if scans else ())), env)
        b2n = ("bruker2nifti", lambda o, s=src, sc=scans: [
            sys.executable, "-c", _B2N, str(s), str(o), *((sc,) if sc else ())], env)
        _print(f"  nifti vs bruker2nifti 1.0.4 ({'scans ' + scans if scans else 'every scan'})",
               _pair(f"{label} bruker2nifti", subset, b2n, work, failed), 1.0)
        _print("  nifti vs xnatpic before issue 13 (float32)",
               _pair(f"{label} baseline", nifti, ("base nifti", ours(src), base_env), work,
                     failed))
        for compression in ("none", "best"):
            _print(f"  --nifti-compression {compression} vs fast",
                   _pair(f"{label} {compression}",
                         (compression, ours(src, "--nifti-compression", compression), env),
                         nifti, work, failed))
    return failed


def main() -> None:
    """Print the compressor table and the converter lines."""
    _check_tools()
    _compressors()
    with tempfile.TemporaryDirectory(prefix="xnatpic-bench-nifti-") as tmp:
        failed = _converters(Path(tmp))
    if failed:
        raise SystemExit(f"bench_nifti: {len(failed)} line(s) could not be measured: "
                         f"{'; '.join(failed)}")


if __name__ == "__main__":
    main()

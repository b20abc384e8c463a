"""Conversion speed against every peer, measured in one run with paired alternating runs.

Studies: the real ``pv6-dicomifier/study`` (15 recos, 21 MiB of 2dseq image data) and
``pv6-acidocest/study`` (3 recos) in ``../shared/data/paravision``, and a large one: pv6's
scans :data:`LARGE_COPIES` times under new scan numbers (hard links; 120 recos, 168 MiB),
so that every converter reads a real study's files at eight times the size.
dicomifier's derived time (below) holds for it as for pv6: the same recos, each converted
as often. Every command runs as its own process, in a fresh output folder,
:data:`REPEATS` times, alternating with its baseline (A B, B A, A B, ...); each line
prints min/median/max of both and the median of the per-pair ratios.

Comparisons (figure vs baseline):

* ``xnatpic convert`` (DICOM, enhanced) vs **the same command at the commit before the
  speed work** (:data:`BASELINE_COMMIT`, checked out with ``git worktree add`` into
  :data:`BASELINE_DIR` and run by the same venv's ``xnatpic`` script with ``PYTHONPATH``);
* **dicomifier 2.5.3** cannot be installed here (C++, on no reachable registry). Its time
  is *derived* from that baseline and the ratios measured side by side in issue 13:
  ``dicomifier = baseline / 1.42`` (classic DICOM) and ``baseline / 1.74`` (enhanced);
* ``xnatpic convert`` (DICOM) vs ``brkraw convert`` 0.5.7 (NIfTI of every reco; the only
  output brkraw has), target ≥ 3× on pv6 in paired medians;
* NIfTI against brkraw and bruker2nifti 1.0.4 is measured by ``bench_nifti.py`` (which
  uses :func:`paired` from here);
* start-up: ``xnatpic --version``, ``xnatpic --help`` and ``xnatpic convert --help`` vs
  ``brkraw --help`` (and vs the baseline's ``--version``).

Peak RSS (``ru_maxrss`` of the command's largest process) is printed for each figure.
``--jobs`` is left at its default (1): the machine has two cores shared with other work.

Run: ``make bench`` or ``.venv/bin/python -m benchmarks convert``;
``XNATPIC_BENCH_REPEATS=N`` changes the number of pairs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BASELINE_COMMIT", "Pair", "Runs", "main", "paired"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "paravision"
STUDIES = {"pv6": CORPUS / "pv6-dicomifier" / "study",
           "acidoCEST": CORPUS / "pv6-acidocest" / "study"}
#: Copies of pv6's scans in the large study (scan ``n`` of copy ``k`` is ``n + 100 k``).
LARGE_COPIES = 8
BIN = Path(sys.executable).parent
XNATPIC = BIN / "xnatpic"
BRKRAW = BIN / "brkraw"
REPEATS = int(os.environ.get("XNATPIC_BENCH_REPEATS", "5"))
#: The commit before the conversion speed work of issue 13 (what dicomifier was measured
#: against).
BASELINE_COMMIT = "6401b54"
BASELINE_DIR = Path(tempfile.gettempdir()) / "xnatpic-base"
#: dicomifier 2.5.3 / xnatpic baseline, measured side by side in issue 13 (paired medians).
DICOMIFIER_SPEEDUP = {"dicom": 1.42, "enhanced": 1.74}
TARGET_VS_BRKRAW = 3.0

#: Runs one command and prints its wall time, exit status and peak RSS (KiB).
_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "rc": proc.returncode, "maxrss_kib": usage.ru_maxrss,
                  "stderr": proc.stderr[-2000:]}))
"""


@dataclass
class Runs:
    """Wall times (s) and peak RSS of one command."""

    name: str
    walls: list[float]
    maxrss_mib: float = 0.0

    @property
    def median(self) -> float:
        """Median wall time (s)."""
        return statistics.median(self.walls)

    def summary(self) -> str:
        """``min/median/max`` in seconds."""
        return f"{min(self.walls):.3f}/{self.median:.3f}/{max(self.walls):.3f}"


@dataclass
class Pair:
    """A figure and its baseline, measured in alternating order."""

    figure: Runs
    baseline: Runs

    @property
    def ratios(self) -> list[float]:
        """figure / baseline of each pair of runs."""
        return [f / b for f, b in zip(self.figure.walls, self.baseline.walls, strict=True)]

    @property
    def ratio(self) -> float:
        """Median of the per-pair ratios (< 1: the figure is faster)."""
        return statistics.median(self.ratios)


Command = Callable[[Path], list[str]]
#: A measured command: its name, its argv for an output folder, its environment.
Side = tuple[str, Command, dict[str, str]]


class CommandFailed(Exception):
    """A measured command exited non-zero (its stderr is the message)."""


def _run(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _WRAPPER, *argv], capture_output=True,
                         text=True, env=env, check=True)
    return json.loads(out.stdout)


def _once(name: str, command: Command, env: dict[str, str], work: Path) -> tuple[float, int]:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result = _run(command(out), env)
    shutil.rmtree(out, ignore_errors=True)
    if result["rc"] != 0:
        raise CommandFailed(f"{name} failed (exit {result['rc']}): "
                            f"{result['stderr'].strip()[-500:]}")
    return result["wall"], result["maxrss_kib"]


def paired(figure: Side, baseline: Side, work: Path,
           repeats: int = REPEATS) -> Pair:
    """Run two commands ``repeats`` times each, alternating which goes first."""
    runs = {figure[0]: Runs(figure[0], []), baseline[0]: Runs(baseline[0], [])}
    peaks = {figure[0]: 0, baseline[0]: 0}
    _once(*figure, work)  # warm the page cache and the bytecode of both sides
    _once(*baseline, work)
    for repeat in range(repeats):
        order = (figure, baseline) if repeat % 2 == 0 else (baseline, figure)
        for name, command, env in order:
            wall, peak = _once(name, command, env, work)
            runs[name].walls.append(wall)
            peaks[name] = max(peaks[name], peak)
    for name, r in runs.items():
        r.maxrss_mib = peaks[name] / 1024
    return Pair(runs[figure[0]], runs[baseline[0]])


def _ensure_baseline() -> Path:
    """The baseline checkout (``git worktree add``), created when missing."""
    shared = BASELINE_DIR / "shared"
    if not (shared / "xnatpic").is_dir():
        done = subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "--detach",
                               str(BASELINE_DIR), BASELINE_COMMIT],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench_convert: cannot check out the baseline {BASELINE_COMMIT} "
                             f"into {BASELINE_DIR}: {done.stderr.strip()}")
    return shared


def _check_tools() -> None:
    for study in STUDIES.values():
        if not study.is_dir():
            raise SystemExit(f"bench_convert: corpus not found at {study} (it lives beside "
                             "the project in ../shared/data/paravision)")
    for exe, how in ((XNATPIC, "make install"), (BRKRAW, "make install (test extras)")):
        if not exe.is_file():
            raise SystemExit(f"bench_convert: {exe} not found ({how})")


def _line(label: str, figure: Side, baseline: Side, work: Path,
          note: Callable[[Pair], str] = lambda pair: "") -> Pair | None:
    """Measure a pair and print its line (or why it could not be measured)."""
    try:
        pair = paired(figure, baseline, work)
    except CommandFailed as exc:
        _FAILED.append(label)
        print(f"{label:44s} FAILED: {exc}", flush=True)
        return None
    f, b = pair.figure, pair.baseline
    speedup = 1 / pair.ratio
    print(f"{label:44s} {f.summary():>20s} {b.summary():>20s} {pair.ratio:7.3f} "
          f"{speedup:6.2f}x {f.maxrss_mib:7.0f} {b.maxrss_mib:7.0f}  {note(pair)}", flush=True)
    return pair


_FAILED: list[str] = []


def _large_study(work: Path) -> Path:
    """pv6's study with its scans :data:`LARGE_COPIES` times (hard-linked files)."""
    source = STUDIES["pv6"]
    study = work / "large" / "study"
    study.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_file():  # subject, ResultState, ...
            os.link(entry, study / entry.name)
        elif not entry.name.isdigit():
            shutil.copytree(entry, study / entry.name, copy_function=os.link)
        else:
            for copy in range(LARGE_COPIES):
                shutil.copytree(entry, study / str(int(entry.name) + 100 * copy),
                                copy_function=os.link)
    return study


def _header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'figure vs baseline':44s} {'figure min/med/max s':>20s} "
          f"{'base min/med/max s':>20s} {'ratio':>7s} {'speed':>7s} {'MiB':>7s} "
          f"{'baseMiB':>7s}")


def main() -> None:
    """Print every conversion figure with its baseline and ratio."""
    _check_tools()
    base_shared = _ensure_baseline()
    with tempfile.TemporaryDirectory(prefix="xnatpic-bench-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, BRKRAW_CONFIG_HOME=str(work / "brkraw-config"))
        env.pop("PYTHONPATH", None)
        base_env = dict(env, PYTHONPATH=str(base_shared))

        def ours(src: Path, fmt: str) -> Command:
            return lambda o: [str(XNATPIC), "convert", str(src), "-o", str(o), "--format", fmt]

        def brkraw(src: Path) -> Command:
            return lambda o: [str(BRKRAW), "convert", str(src), "-o", str(o / "brkraw")]

        print(f"paired alternating runs: {REPEATS} pairs per line (after one warm-up each); "
              "ratio = median of figure/baseline per pair; speed = 1/ratio")
        print(f"baseline xnatpic = commit {BASELINE_COMMIT} ({base_shared}), same venv")
        version = ("version", lambda o: [str(XNATPIC), "--version"], env)
        brkraw_help = ("brkraw --help", lambda o: [str(BRKRAW), "--help"], env)
        _header("start-up")
        _line("xnatpic --version vs brkraw --help", version, brkraw_help, work)
        _line("xnatpic --help vs brkraw --help",
              ("--help", lambda o: [str(XNATPIC), "--help"], env), brkraw_help, work)
        _line("xnatpic convert --help vs brkraw --help",
              ("convert --help", lambda o: [str(XNATPIC), "convert", "--help"], env),
              brkraw_help, work)
        _line("xnatpic --version vs baseline --version", version,
              ("base --version", lambda o: [str(XNATPIC), "--version"], base_env), work)
        studies = {**STUDIES, f"pv6 x {LARGE_COPIES} (large)": _large_study(work)}
        for label, src in studies.items():
            _header(f"{label}: {src}")
            for fmt in ("dicom", "enhanced"):
                pair = _line(f"xnatpic {fmt} vs baseline {fmt}", (fmt, ours(src, fmt), env),
                             (f"base {fmt}", ours(src, fmt), base_env), work)
                if pair is not None:
                    _dicomifier(fmt, pair)
            _line("xnatpic dicom vs brkraw 0.5.7 (NIfTI)", ("dicom", ours(src, "dicom"), env),
                  ("brkraw", brkraw(src), env), work,
                  _brkraw_target if label == "pv6" else lambda pair: "")
    if _FAILED:
        raise SystemExit(f"bench_convert: {len(_FAILED)} line(s) could not be measured: "
                         f"{'; '.join(_FAILED)}")


def _dicomifier(fmt: str, pair: Pair) -> None:
    """Print dicomifier's derived time and ours against it.

    dicomifier's time is the baseline's divided by issue 13's ratio, so ours/dicomifier
    is the paired ratio ours/baseline times that ratio.
    """
    factor = DICOMIFIER_SPEEDUP[fmt]
    dicomifier = pair.baseline.median / factor
    vs = pair.ratio * factor
    print(f"{'  derived dicomifier ' + fmt:44s} {dicomifier:20.3f} s = baseline median / "
          f"{factor} (issue 13's side-by-side ratio); xnatpic/dicomifier = paired ratio x "
          f"{factor} = {vs:.3f} ({'faster' if vs < 1 else 'SLOWER'})", flush=True)


def _brkraw_target(pair: Pair) -> str:
    met = "met" if 1 / pair.ratio >= TARGET_VS_BRKRAW else "NOT met"
    return f"target >= {TARGET_VS_BRKRAW:.0f}x: {met}"

if __name__ == "__main__":
    main()

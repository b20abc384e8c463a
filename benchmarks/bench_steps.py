"""Map steps against their floor, the one-click session step, and ``make demo``'s chain.

Figures (paired alternating runs, :data:`~benchmarks.bench_convert.REPEATS` pairs after
one warm-up each; min/median/max of both sides and the median of the per-pair ratios):

* **each map step vs its floor** (target <= :data:`TARGET_VS_FLOOR`): the step's process
  (``pipelines/<step>/run.py``) against a process that starts Python, imports numpy and
  pydicom, reads the same input DICOM (pixel data included) and writes as many bytes as
  the step wrote (:data:`FLOOR`). Twice: *cold*, no stored scan index (the scan headers of
  the session are read to choose, as on a session nobody indexed), and *indexed*, with
  ``RESOURCES/SESSION_MAPS/scan-index.json`` as the session-maps step stores it.
  On the phantom session (8 scans, SNR 100) and on the real pv6-dicomifier session
  (scans 9, 11, 13, 21, 30 converted to DICOM).
* **session-maps vs the single steps**: one session-maps process against the five single
  steps run one after the other (cold, as five XNAT launches on an unindexed session).
* **``make demo``'s chain vs one conversion of the same phantom** (target <=
  :data:`TARGET_DEMO`): the Makefile's ``demo`` recipe as it stands (:func:`demo_chain`:
  ``xnatpic phantom``, ``info``, ``convert`` and ``pipelines/demo.py``, which uploads that
  conversion into an archive and launches session-maps) against one ``xnatpic convert``
  of the phantom.

Run: ``make bench`` or ``.venv/bin/python -m benchmarks steps``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_convert import CORPUS, XNATPIC, CommandFailed, Pair, paired

__all__ = ["FLOOR", "TARGET_DEMO", "TARGET_VS_FLOOR", "demo_chain", "main"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PIPELINES = PROJECT_ROOT / "pipelines"
PYTHON = sys.executable
TARGET_VS_FLOOR = 1.5
TARGET_DEMO = 5.0
#: The single steps the session step runs on the phantom (perfusion has no FAIR scan).
PHANTOM_STEPS = ("t2map", "t2starmap", "t1map", "adcmap", "cest")
#: The floor: start Python, import numpy and pydicom, read every DICOM file of the given
#: folders with its pixels, write as many bytes as the step wrote.
FLOOR = """
import os, sys
import numpy as np
import pydicom
out, size, folders = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
total = 0.0
for folder in folders:
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if name.endswith(".dcm"):
                ds = pydicom.dcmread(os.path.join(root, name))
                total += float(ds.pixel_array.astype(np.float32).sum())
with open(os.path.join(out, "floor.bin"), "wb") as fh:
    fh.write(os.urandom(size))
"""


def _xnatpic(*args: str) -> None:
    done = subprocess.run([str(XNATPIC), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_steps: xnatpic {args[0]} failed: {done.stderr[-1500:]}")


def _session(archive: Path) -> Path:
    (session,) = [p for p in (archive / "DEMO" / "arc001").iterdir() if p.is_dir()]
    return session


def _phantom_session(work: Path) -> tuple[Path, Path]:
    """The phantom study and its session (``xnatpic upload --archive``, as make demo)."""
    phantom = work / "phantom"
    _xnatpic("phantom", str(phantom), "--snr", "100", "--seed", "0")
    _xnatpic("upload", str(phantom), "--project", "DEMO", "--archive", str(work / "archive"),
             "--report", str(work / "upload.json"))
    return phantom, _session(work / "archive")


def _real_session(work: Path) -> Path | None:
    """pv6-dicomifier scans 9 (MSME), 11 (VTR), 13 (FAIR_RARE), 21 (DWI), 30 (FAIR) as a
    session."""
    study = CORPUS / "pv6-dicomifier" / "study"
    if not study.is_dir():
        print(f"real session: {study} not found; skipped")
        return None
    _xnatpic("convert", str(study), "-o", str(work / "real-dicom"), "--scans", "9,11,13,21,30")
    session = work / "real" / "PRECLIN" / "arc001" / "pasta"
    for series in sorted((work / "real-dicom").glob("*/*/*")):
        if series.is_dir():
            scan = series.name.split("_", 1)[0]  # <scan>[-<reco>]_<protocol>
            target = session / "SCANS" / scan / "DICOM"
            target.mkdir(parents=True, exist_ok=True)
            for path in series.glob("*.dcm"):
                shutil.copy2(path, target / path.name)
    return session


def _step_argv(step: str, session: Path) -> Callable[[Path], list[str]]:
    return lambda out: [PYTHON, str(PIPELINES / step / "run.py"), "--input", str(session),
                        "--output", str(out)]


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _inputs(step: str, session: Path, out: Path) -> list[str]:
    """The scan folders a step read (from its provenance)."""
    import json

    provenance = next((out / "maps").rglob("provenance.json"))
    scans = json.loads(provenance.read_text())["scans"]
    return [str(p) for scan in scans.values() for p in (session / "SCANS" / str(scan)).iterdir()
            if p.is_dir()]


def _probe(step: str, session: Path, work: Path) -> tuple[int, list[str]] | None:
    """Run the step once: the bytes it writes and the scan folders it reads; None when it
    does not apply or fails."""
    out = work / f"probe-{step}"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(_step_argv(step, session)(out), capture_output=True, text=True)
    if done.returncode not in (0, 4):
        print(f"  {step}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1]}")
        return None
    return _size(out), _inputs(step, session, out)


def _print(label: str, pair: Pair, target: float | None = None) -> None:
    f, b = pair.figure, pair.baseline
    ratios = pair.ratios
    verdict = "" if target is None else (" ok" if pair.ratio <= target else
                                         f" ABOVE target {target:g}")
    print(f"  {label:34s} {f.summary():>20s} {b.summary():>20s}  ratio "
          f"{min(ratios):.2f}/{pair.ratio:.2f}/{max(ratios):.2f}{verdict}", flush=True)


def _header(title: str, figure: str, baseline: str) -> None:
    print(f"\n{title}")
    print(f"  {'':34s} {figure + ' min/med/max s':>20s} {baseline + ' min/med/max s':>20s}"
          "  ratio min/median/max")


def _steps_vs_floor(name: str, session: Path, steps: tuple[str, ...], work: Path) -> None:
    from xnatpic.analysis.scan_index import stored_index_path
    from xnatpic.analysis.selection import session_index

    stored = stored_index_path(session)
    for indexed in (False, True):
        if indexed:
            session_index(session).write(stored)
        elif stored.exists():
            stored.unlink()
        mode = "stored scan index" if indexed else "cold: no stored scan index"
        _header(f"{name}: map step vs floor ({mode}), target <= {TARGET_VS_FLOOR:g}",
                "step", "floor")
        for step in steps:
            probe = _probe(step, session, work)
            if probe is None:
                continue
            size, folders = probe
            floor = ("floor", lambda out, s=size, f=folders: [PYTHON, "-c", FLOOR, str(out),
                                                               str(s), *f], {})
            try:
                pair = paired((step, _step_argv(step, session), {}), floor, work)
            except CommandFailed as exc:
                print(f"  {step}: FAILED: {exc}")
                continue
            _print(f"{step} ({size / 1e6:.1f} MB out)", pair, TARGET_VS_FLOOR)
    if stored.exists():
        stored.unlink()


def _session_vs_singles(session: Path, work: Path) -> None:
    singles = " && ".join(
        f"{PYTHON} {PIPELINES / step / 'run.py'} --input {session} --output OUT/{step}"
        for step in PHANTOM_STEPS)
    _header("phantom: session-maps (one process) vs the five single steps in a row (cold)",
            "session", "singles")
    try:
        pair = paired(("session", lambda out: [PYTHON, str(PIPELINES / "session_maps" /
                                                           "run.py"), "--input", str(session),
                                               "--output", str(out)], {}),
                      ("singles", lambda out: ["bash", "-c",
                                               singles.replace("OUT", str(out))], {}), work)
    except CommandFailed as exc:
        print(f"  FAILED: {exc}")
        return
    _print("session-maps / sum of single steps", pair)


def demo_chain(out: str, project: Path = PROJECT_ROOT) -> str:
    """``make demo``'s recipe as one shell command writing into ``out``, as make itself
    expands it (``make -n``, the ``install`` prerequisite left out, this venv), run from
    the project folder, what the steps print on stdout discarded: the benchmark runs what
    ``make demo`` runs.

    Raises
    ------
    SystemExit
        When make cannot list the recipe.
    """
    done = subprocess.run(["make", "--no-print-directory", "-n", "-o", "install", "-C",
                           str(project), "demo", f"DEMO_OUT={out}",
                           f"VENV={XNATPIC.parent.parent}"], capture_output=True, text=True)
    recipe = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not recipe:
        raise SystemExit(f"bench_steps: make -n demo in {project} failed: "
                         f"{done.stderr.strip()[-1000:]}")
    return f"cd {project} && ({' && '.join(recipe)}) > /dev/null"


def _demo_vs_convert(phantom: Path, work: Path) -> None:
    _header(f"make demo's chain vs one conversion of the same phantom, target <= "
            f"{TARGET_DEMO:g}", "chain", "convert")
    try:
        pair = paired(("chain", lambda out: ["bash", "-c", demo_chain(str(out / "demo"))], {}),
                      ("convert", lambda out: [str(XNATPIC), "convert", str(phantom), "-o",
                                               str(out / "dicom")], {}), work)
    except CommandFailed as exc:
        print(f"  FAILED: {exc}")
        return
    _print("make demo chain / xnatpic convert", pair, TARGET_DEMO)


def main() -> None:
    """Print every figure of the module docstring."""
    with tempfile.TemporaryDirectory(prefix="xnatpic-bench-steps-") as tmp:
        work = Path(tmp)
        phantom, session = _phantom_session(work)
        _steps_vs_floor("phantom", session, PHANTOM_STEPS, work)
        real = _real_session(work)
        if real is not None:
            _steps_vs_floor("real pv6-dicomifier", real, ("t2map", "t1map", "perfusion"),
                            work)
        _session_vs_singles(session, work)
        _demo_vs_convert(phantom, work)


if __name__ == "__main__":
    main()

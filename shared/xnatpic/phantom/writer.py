"""Write the phantom study: ParaVision 6.0.1 folders, 2dseq files and the ground truth.

Study layout (``OUT``)::

    subject
    <scan>/acqp  <scan>/method  <scan>/visu_pars
    <scan>/pdata/1/2dseq  <scan>/pdata/1/visu_pars  <scan>/pdata/1/reco
    truth/truth.json  truth/maps/<geometry>/<map>.npy
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic.errors import XnatpicError
from xnatpic.paravision.jcamp_writer import write_jcamp
from xnatpic.phantom.compartments import property_maps
from xnatpic.phantom.geometry import GEOMETRIES, SlicePack
from xnatpic.phantom.protocols import FREQUENCY_MHZ, PROTOCOLS, Protocol
from xnatpic.phantom.pvparams import (
    PV_VERSION,
    StudyContext,
    acqp_params,
    frame_layout,
    method_params,
    reco_params,
    subject_params,
    visu_params,
)
from xnatpic.phantom.sequences import encoding_for
from xnatpic.phantom.signals import FORMULAE, add_rician_noise
from xnatpic.phantom.storage import encode_frames
from xnatpic.phantom.truth import write_truth

__all__ = ["PhantomReport", "ProgressCallback", "write_phantom"]

_log = logging.getLogger(__name__)

#: ``progress(description, done, total)``, called before each step and at the end.
ProgressCallback = Callable[[str, int, int], None]
_TITLE = f"Parameter List, ParaVision {PV_VERSION}"
_OWNER = "xnatpic"


@dataclass(frozen=True)
class PhantomReport:
    """What :func:`write_phantom` wrote.

    Attributes
    ----------
    out : pathlib.Path
        The study folder.
    scans : tuple of int
        Experiment numbers written.
    truth : pathlib.Path
        Path of truth.json.
    seconds : float
        Wall-clock time taken.
    n_bytes : int
        Total size of the files written.
    """

    out: Path
    scans: tuple[int, ...]
    truth: Path
    seconds: float
    n_bytes: int


def _prepare(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise XnatpicError(f"{out} exists and is not a folder; choose another OUT")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise XnatpicError(
                f"{out} exists and is not empty; choose an empty or new folder, "
                "or pass --force to overwrite the phantom study in it"
            )
        ours = {"subject", "truth", *(str(p.scan) for p in PROTOCOLS)}
        for entry in out.iterdir():
            if entry.name in ours:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            else:
                _log.warning("leaving %s in place: not part of the phantom study", entry)
    out.mkdir(parents=True, exist_ok=True)


def _frames(noisy: np.ndarray, proto: Protocol) -> np.ndarray:
    """(slices, rows, cols, n) -> (frames, rows, cols) in VisuFGOrderDesc order."""
    n_slices, rows, cols, n = noisy.shape
    if proto.group is not None and proto.group.fastest:
        ordered = np.transpose(noisy, (0, 3, 1, 2))  # slice slowest, group fastest
    else:
        ordered = np.transpose(noisy, (3, 0, 1, 2))  # group slowest, slice fastest
    return ordered.reshape(n_slices * n, rows, cols)


def _write_scan(
    out: Path, proto: Protocol, geom: SlicePack, maps: dict[str, np.ndarray],
    ctx: StudyContext, snr: float,
) -> dict[str, Any]:  # fmt: skip
    enc = encoding_for(proto, geom)
    signal = enc.signal(maps)
    sigma = float(signal.max()) / snr
    rng = np.random.default_rng([ctx.seed, proto.scan])
    frames = _frames(add_rician_noise(signal, sigma, rng), proto)
    stored = encode_frames(frames, proto.word_type, proto.scaling)
    scan_dir = out / str(proto.scan)
    reco_dir = scan_dir / "pdata" / "1"
    reco_dir.mkdir(parents=True, exist_ok=True)
    header = {"title": _TITLE, "owner": _OWNER}
    visu = visu_params(proto, geom, enc, ctx, stored, proto.word_type)
    write_jcamp(scan_dir / "acqp", acqp_params(proto, geom, enc, ctx), **header)
    write_jcamp(scan_dir / "method", method_params(proto, geom, enc), **header)
    write_jcamp(scan_dir / "visu_pars", visu, **header)
    write_jcamp(reco_dir / "visu_pars", visu, **header)
    reco = reco_params(proto, geom, enc, ctx, stored, proto.word_type)
    write_jcamp(reco_dir / "reco", reco, **header)
    (reco_dir / "2dseq").write_bytes(stored.tobytes())
    order, _ = frame_layout(proto, geom, enc)
    _log.info("scan %d %s: %d frames, sigma %.4g", proto.scan, proto.name, len(frames), sigma)
    return {
        "scan": proto.scan,
        "protocol": proto.name,
        "method": proto.method,
        "model": proto.model,
        "formula": FORMULAE[enc.formula],
        "geometry": geom.name,
        "truth_maps": f"maps/{geom.name}",
        "frame_groups_fastest_first": [
            {"count": n, "id": fg, "comment": c} for n, fg, c, _, _ in order
        ],
        "n_frames": len(frames),
        "matrix_columns_rows": list(geom.size),
        "word_type": proto.word_type,
        "scaling": proto.scaling if proto.word_type != "_32BIT_FLOAT" else "none",
        "noise_sigma": sigma,
        "noiseless_max": float(signal.max()),
        "flip_deg": proto.flip,
        "encoding": enc.truth,
    }


def write_phantom(
    out: str | Path,
    *,
    snr: float = 50.0,
    seed: int = 0,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> PhantomReport:
    """Write the multi-compartment phantom as a ParaVision 6.0.1 study with its truth.

    Parameters
    ----------
    out : str or pathlib.Path
        Study folder to create; must be absent or empty unless ``force``.
    snr : float
        Signal-to-noise ratio: the noise σ of each scan is its brightest noiseless
        voxel divided by ``snr``.
    seed : int
        Seed of the noise (non-negative); the same seed gives identical files.
    force : bool
        Overwrite the phantom study already in ``out``.
    progress : callable, optional
        ``progress(description, done, total)`` for a progress display.

    Returns
    -------
    PhantomReport

    Raises
    ------
    XnatpicError
        For a non-positive ``snr``, a negative ``seed``, or an ``out`` that is not empty.
    """
    if not np.isfinite(snr) or snr <= 0:
        raise XnatpicError(f"--snr must be a positive number, got {snr}")
    if seed < 0:
        raise XnatpicError(f"--seed must be zero or positive, got {seed}")
    started = time.perf_counter()
    target = Path(out)
    _prepare(target, force)
    ctx = StudyContext(seed=seed, snr=float(snr))
    total = len(PROTOCOLS) + 1
    report = progress or (lambda *_: None)
    maps: dict[str, dict[str, np.ndarray]] = {}
    scans: list[dict[str, Any]] = []
    write_jcamp(target / "subject", subject_params(ctx), title=_TITLE, owner=_OWNER)
    for done, proto in enumerate(PROTOCOLS):
        report(f"scan {proto.scan} {proto.name}", done, total)
        geom = GEOMETRIES[proto.geometry]
        if geom.name not in maps:
            maps[geom.name] = property_maps(geom.voxel_centres(), FREQUENCY_MHZ)
        scans.append(_write_scan(target, proto, geom, maps[geom.name], ctx, float(snr)))
    report("truth maps", len(PROTOCOLS), total)
    study = {
        "subject_id": "xnatpic^phantom",
        "study_instance_uid": ctx.uid("study"),
        "subject_uid": ctx.uid("subject"),
        "study_date": ctx.start.isoformat(),
    }
    truth = write_truth(target, snr=float(snr), seed=seed, maps=maps, scans=scans, study=study)
    report("done", total, total)
    n_bytes = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    elapsed = time.perf_counter() - started
    _log.info("phantom study written to %s: %d bytes in %.2f s", target, n_bytes, elapsed)
    return PhantomReport(target, tuple(p.scan for p in PROTOCOLS), truth, elapsed, n_bytes)

"""Synthetic ParaVision recos with known geometry for the NIfTI tests.

A reco is written with the project's JCAMP-DX writer: ``cols × rows`` images (non-square,
different row and column spacing), ``nslices`` parallel slices of an oblique plane at
positions given by the caller, and an inner frame group (echoes, or diffusion
directions) varying fastest, each frame with its own slope and offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xnatpic.paravision.jcamp_writer import Word, write_jcamp

__all__ = ["SyntheticReco", "oblique_orientation", "write_synthetic_reco"]


def oblique_orientation(a: float = 0.3, b: float = -0.5, c: float = 0.2) -> np.ndarray:
    """A proper rotation (rows: row direction, column direction, normal) from 3 angles."""
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return (rz @ ry @ rx).T


@dataclass
class SyntheticReco:
    """What was written: enough to derive every expected value by hand."""

    path: Path
    stored: np.ndarray  # (frames, rows, cols), 2dseq order
    slopes: np.ndarray
    offsets: np.ndarray
    orientation: np.ndarray  # 3×3 rows
    positions: np.ndarray  # (nslices, 3) in 2dseq slice order
    column_spacing: float
    row_spacing: float
    inner: int  # size of the inner (fastest) frame group


def write_synthetic_reco(
    scan_dir: Path,
    *,
    rows: int = 5,
    cols: int = 7,
    column_spacing: float = 0.3,
    row_spacing: float = 0.45,
    heights: tuple[float, ...] = (0.0, -1.7, -3.4, -5.1),
    orientation: np.ndarray | None = None,
    origin: tuple[float, float, float] = (-3.0, 2.0, 5.0),
    inner: str = "echo",
    seed: int = 1,
    one_scaling: bool = False,
) -> SyntheticReco:
    """Write ``scan_dir/{acqp,method,pdata/1/{visu_pars,2dseq}}``.

    ``heights`` are the slice positions along the normal, in 2dseq order (descending by
    default, so the slice axis runs against the normal). ``inner`` is ``echo`` (2
    echoes) or ``diffusion`` (b = 0, then b = 1000 along read, then along phase).
    Every frame has its own slope and offset, or, with ``one_scaling``, all share slope
    0.1 + 1e-9 and offset -1.5 (neither exact in float32, like ParaVision's).
    """
    orientation = oblique_orientation() if orientation is None else orientation
    nslices = len(heights)
    positions = np.array([np.asarray(origin) + h * orientation[2] for h in heights])
    n_inner = 2 if inner == "echo" else 3
    frames = n_inner * nslices
    rng = np.random.default_rng(seed)
    stored = rng.integers(-2000, 2000, (frames, rows, cols)).astype("<i2")
    if one_scaling:
        slopes, offsets = np.full(frames, 0.1 + 1e-9), np.full(frames, -1.5)
    else:
        slopes = 0.25 + 0.125 * np.arange(frames)
        offsets = -1.5 + 0.5 * np.arange(frames)
    fg_inner = "FG_ECHO" if inner == "echo" else "FG_DIFFUSION"
    visu = {
        "VisuCoreFrameCount": frames,
        "VisuCoreDim": 2,
        "VisuCoreSize": np.array([cols, rows]),
        "VisuCoreDimDesc": np.array(["spatial", "spatial"]),
        "VisuCoreExtent": np.array([cols * column_spacing, rows * row_spacing]),
        "VisuCoreFrameThickness": 1.0,
        "VisuCoreOrientation": np.tile(orientation.ravel(), (nslices, 1)),
        "VisuCorePosition": positions,
        "VisuCoreDataOffs": offsets,
        "VisuCoreDataSlope": slopes,
        "VisuCoreWordType": Word("_16BIT_SGN_INT"),
        "VisuCoreByteOrder": Word("littleEndian"),
        "VisuFGOrderDescDim": 2,
        "VisuFGOrderDesc": [(n_inner, Word(fg_inner), "", 0, 1 if inner == "echo" else 0),
                            (nslices, Word("FG_SLICE"), "", 1, 2)],
        "VisuGroupDepVals": [("VisuAcqEchoTime", 0), ("VisuCoreOrientation", 0),
                             ("VisuCorePosition", 0)],
        "VisuAcqEchoTime": np.array([8.0, 16.0]) if inner == "echo" else 20.0,
        "VisuAcqRepetitionTime": 1200.0,
        "VisuAcqFlipAngle": 30.0,
        "VisuAcqSequenceName": "Bruker:Synthetic",
    }
    reco_dir = scan_dir / "pdata" / "1"
    reco_dir.mkdir(parents=True)
    write_jcamp(reco_dir / "visu_pars", visu)
    stored.tofile(reco_dir / "2dseq")
    method: dict[str, object] = {"Method": Word("Bruker:Synthetic")}
    if inner == "diffusion":
        method["PVM_DwEffBval"] = np.array([0.0, 1000.0, 1000.0])
        method["PVM_DwGradVec"] = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    write_jcamp(scan_dir / "method", method)
    write_jcamp(scan_dir / "acqp", {"ACQ_method": Word("Bruker:Synthetic")})
    return SyntheticReco(scan_dir / "pdata" / "1", stored, slopes, offsets, orientation,
                         positions, column_spacing, row_spacing, n_inner)

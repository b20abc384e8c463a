"""PNG previews of the map steps: maps with their voxel status, status maps, the CEST
Z-spectrum and the DTI principal direction.

Slices are numbered from 1 (as everywhere in the outputs). Every figure is drawn with
matplotlib's object-oriented API (:class:`matplotlib.figure.Figure` on an Agg canvas),
imported inside each function: importing this module costs nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic.analysis.report import format_number
from xnatpic.models.results import VOXEL_STATUS_NAMES, VoxelStatus

__all__ = ["display_range", "write_direction_preview", "write_preview",
           "write_status_preview", "write_zspectrum_plot"]

#: Colour of each voxel status (index = code): outside dark, fitted green, long/short
#: blues, no signal grey, failures warm.
_STATUS_COLOURS = ("#202020", "#4daf4a", "#377eb8", "#80b1d3", "#999999", "#e41a1c",
                   "#ff7f00", "#a65628", "#f781bf", "#984ea3")

#: Overlay colours on a map preview: beyond range (long / short) and failed voxels.
_OVERLAY = {"beyond range": "#00e5ff", "no signal": "#9e9e9e", "failed": "#ff00ff"}

#: Colour maps by unit; diverging for signed quantities.
_CMAPS = {"ms": "viridis", "mm²/s": "magma", "ppm": "RdBu_r", "ratio": "inferno"}


def display_range(values: np.ndarray, unit: str, *, signed: bool | None = None,
                  valid: np.ndarray | None = None, fences: bool = False
                  ) -> tuple[float, float]:
    """Robust display range: the 2nd-98th percentile of the valid voxels (within Tukey's
    fences, quartiles ∓ 1.5 IQR, with ``fences``).

    Parameters
    ----------
    values : ndarray
    unit : str
        ``ppm`` maps are signed (symmetric about 0).
    signed : bool, optional
        Symmetric about 0 (B0, MTRasym); default: for ppm, or when the percentiles
        straddle 0.
    valid : ndarray of bool, optional
        The voxels that set the range (default: every finite voxel); failed and
        beyond-range voxels are left out so a few extreme values (a ratio whose
        denominator nears 0) do not flatten the map into noise.
    fences : bool
        Clip the range to Tukey's fences: for a ratio of two small differences (the
        ratiometric CEST index), whose tails are noise over noise. Not for maps of
        several compartments (T2, FA), whose minor compartments lie beyond the fences.
    """
    pick = np.isfinite(values) if valid is None else (np.asarray(valid) & np.isfinite(values))
    finite = values[pick]
    if finite.size == 0:
        finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, q1, q3, hi = (float(v) for v in np.percentile(finite, [2, 25, 75, 98]))
    if fences:  # heavy tails do not set the scale
        lo, hi = max(lo, q1 - 1.5 * (q3 - q1)), min(hi, q3 + 1.5 * (q3 - q1))
    if signed is None:
        signed = unit == "ppm" or (lo < 0 < hi)
    if signed:
        edge = max(abs(lo), abs(hi), 1e-6)
        return -edge, edge
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-3, 1e-6)
    return lo, hi


def _figure(n: int, shape: tuple[int, ...], extra_width: float) -> tuple[Any, list[Any]]:
    """A figure with one axis per slice (4 per row), no axes drawn."""
    from matplotlib.figure import Figure

    cols = min(n, 4)
    rows = math.ceil(n / cols)
    aspect = shape[1] / shape[0]
    fig = Figure(figsize=(3.0 * cols + extra_width, 3.0 * aspect * rows + 0.8))
    axes = [fig.add_subplot(rows, cols, k + 1) for k in range(rows * cols)]
    for ax in axes:
        ax.axis("off")
    return fig, axes[:n]


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def _overlay(status: np.ndarray) -> np.ndarray:
    """RGBA (Y, X, 4) of one status slice (X, Y): beyond range, no signal and failed
    voxels opaque in their colours, every other voxel transparent."""
    from matplotlib.colors import to_rgba

    rgba = np.zeros((*status.T.shape, 4), dtype=np.float32)
    codes = status.T
    for name, where in (("beyond range", (codes == VoxelStatus.LONG)
                         | (codes == VoxelStatus.SHORT)),
                        ("no signal", codes == VoxelStatus.NO_SIGNAL),
                        ("failed", codes >= VoxelStatus.FAILED_INPUT)):
        rgba[where] = to_rgba(_OVERLAY[name])
    return rgba


def write_preview(values: np.ndarray, path: Path, *, title: str, unit: str,
                  status: np.ndarray | None = None, signed: bool | None = None,
                  fences: bool = False) -> Path:
    """Write ``values`` (X, Y, Z) as a PNG grid of slices with a colour bar.

    Slices are shown as the DICOM viewer shows the stored grid: rows of the image down,
    columns across. NaN (outside the mask) is dark grey. With ``status`` the display
    range comes from the fitted voxels only, and beyond-range (cyan), no-signal (grey)
    and failed (magenta) voxels are painted over the map with a legend, so a mostly
    failed map cannot pass for a noisy one.
    """
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    n = values.shape[2]
    fig, axes = _figure(n, values.shape, 1.2 if status is None else 2.8)
    fitted = None if status is None else status == VoxelStatus.FITTED
    vmin, vmax = display_range(values, unit, signed=signed, valid=fitted, fences=fences)
    symmetric = vmin < 0 and vmin == -vmax
    cmap = colormaps["RdBu_r" if symmetric else _CMAPS.get(unit, "viridis")
                     ].with_extremes(bad="0.15")
    image = None
    for k, ax in enumerate(axes):
        image = ax.imshow(np.ma.masked_invalid(values[:, :, k].T), cmap=cmap, vmin=vmin,
                          vmax=vmax, interpolation="nearest")
        if status is not None:
            ax.imshow(_overlay(status[:, :, k]), interpolation="nearest")
        ax.set_title(f"slice {k + 1}", fontsize=9)
    fig.suptitle(title, fontsize=11)
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.85)
        bar.set_label(f"{unit} (display {format_number(vmin)} to {format_number(vmax)})")
    if status is not None:
        present = {name for name, codes in (
            ("beyond range", (VoxelStatus.LONG, VoxelStatus.SHORT)),
            ("no signal", (VoxelStatus.NO_SIGNAL,)),
            ("failed", tuple(c for c in VoxelStatus if c >= VoxelStatus.FAILED_INPUT)))
            if np.isin(status, [int(c) for c in codes]).any()}
        handles = [Patch(color=colour, label=name) for name, colour in _OVERLAY.items()
                   if name in present]
        if handles:
            fig.legend(handles=handles, loc="lower left", fontsize=8, frameon=False)
    return _save(fig, path)


def write_status_preview(status: np.ndarray, path: Path, *, title: str) -> Path:
    """Write a per-voxel status map (X, Y, Z) of
    :class:`~xnatpic.models.results.VoxelStatus` codes as a PNG grid with a legend of the
    statuses present."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, axes = _figure(status.shape[2], status.shape, 2.6)
    cmap = ListedColormap(_STATUS_COLOURS)
    for k, ax in enumerate(axes):
        ax.imshow(status[:, :, k].T, cmap=cmap, vmin=-0.5, vmax=len(_STATUS_COLOURS) - 0.5,
                  interpolation="nearest")
        ax.set_title(f"slice {k + 1}", fontsize=9)
    present = sorted({int(c) for c in np.unique(status)})
    handles = [Patch(color=_STATUS_COLOURS[c], label=VOXEL_STATUS_NAMES[VoxelStatus(c)])
               for c in present]
    fig.legend(handles=handles, loc="center right", fontsize=8)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def write_direction_preview(v1: np.ndarray, fa: np.ndarray, path: Path, *,
                            title: str) -> Path:
    """Colour-by-direction map of the principal eigenvector: red, green, blue = |x|, |y|,
    |z| of V1 (image axes) weighted by FA; black outside the fitted voxels."""
    fig, axes = _figure(v1.shape[2], v1.shape, 1.2)
    weight = np.clip(np.nan_to_num(fa, nan=0.0), 0.0, 1.0)
    rgb = np.clip(np.abs(np.nan_to_num(v1, nan=0.0)) * weight[..., None], 0.0, 1.0)
    for k, ax in enumerate(axes):
        ax.imshow(np.transpose(rgb[:, :, k, :], (1, 0, 2)), interpolation="nearest")
        ax.set_title(f"slice {k + 1}", fontsize=9)
    fig.suptitle(title + "\nred: x (image columns), green: y (rows), blue: z (slices); "
                 "brightness: FA", fontsize=10)
    return _save(fig, path)


def write_zspectrum_plot(offsets: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]],
                         path: Path, *, title: str) -> Path:
    """Z-spectrum plot: each curve's mean ± SD (a band) against the saturation offset,
    the offset axis reversed as CEST papers draw it.

    Parameters
    ----------
    offsets : ndarray, shape (N,)
        Saturation offsets (ppm).
    curves : dict
        Label -> (mean, sd), each shape (N,).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    order = np.argsort(offsets)
    x = np.asarray(offsets, dtype=float)[order]
    for label, (mean, sd) in curves.items():
        m, s = np.asarray(mean, dtype=float)[order], np.asarray(sd, dtype=float)[order]
        line, = ax.plot(x, m, marker="o", markersize=3, label=f"{label} (mean ± SD)")
        ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2)
    ax.set_xlim(float(x.max()), float(x.min()))
    ax.set_xlabel("saturation offset (ppm)")
    ax.set_ylabel("Z = S / S0")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)

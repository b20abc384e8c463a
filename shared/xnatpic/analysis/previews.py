"""PNG previews of a map: every slice in a grid, a colour bar with the unit."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from xnatpic.models.results import VOXEL_STATUS_NAMES, VoxelStatus

__all__ = ["display_range", "write_preview", "write_status_preview"]

#: Colour of each voxel status (index = code): outside dark, fitted green, long/short
#: blues, no signal grey, failures warm.
_STATUS_COLOURS = ("#202020", "#4daf4a", "#377eb8", "#80b1d3", "#999999", "#e41a1c",
                   "#ff7f00", "#a65628", "#f781bf", "#984ea3")

#: Colour maps by unit; diverging for signed quantities.
_CMAPS = {"ms": "viridis", "mm²/s": "magma", "ppm": "RdBu_r", "ratio": "inferno"}


def display_range(values: np.ndarray, unit: str) -> tuple[float, float]:
    """Robust display range: 1st-99th percentile, symmetric about 0 for ppm and signed maps."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99]))
    if unit == "ppm" or (lo < 0 < hi):
        edge = max(abs(lo), abs(hi), 1e-6)
        return -edge, edge
    if hi <= lo:
        hi = lo + 1e-6
    return lo, hi


def write_preview(values: np.ndarray, path: Path, *, title: str, unit: str) -> Path:
    """Write ``values`` (X, Y, Z) as a PNG grid of slices with a colour bar.

    Slices are shown in radiological convention of the stored grid: rows of the image
    down, columns across (as the DICOM viewer shows them). NaN is transparent (grey).
    """
    n = values.shape[2]
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    aspect = values.shape[1] / values.shape[0]
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 1.2, 3.0 * aspect * rows + 0.8),
                             squeeze=False)
    vmin, vmax = display_range(values, unit)
    cmap = plt.get_cmap(_CMAPS.get(unit, "viridis")).with_extremes(bad="0.15")
    image = None
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        image = ax.imshow(np.ma.masked_invalid(values[:, :, k].T), cmap=cmap, vmin=vmin,
                          vmax=vmax, interpolation="nearest")
        ax.set_title(f"slice {k + 1}", fontsize=9)
    fig.suptitle(title, fontsize=11)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85)
        bar.set_label(unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_status_preview(status: np.ndarray, path: Path, *, title: str) -> Path:
    """Write a per-voxel status map (X, Y, Z) of
    :class:`~xnatpic.models.results.VoxelStatus` codes as a PNG grid with a legend of the
    statuses present."""
    n = status.shape[2]
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    aspect = status.shape[1] / status.shape[0]
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 2.6, 3.0 * aspect * rows + 0.8),
                             squeeze=False)
    cmap = ListedColormap(_STATUS_COLOURS)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(status[:, :, k].T, cmap=cmap, vmin=-0.5, vmax=len(_STATUS_COLOURS) - 0.5,
                  interpolation="nearest")
        ax.set_title(f"slice {k + 1}", fontsize=9)
    present = sorted({int(c) for c in np.unique(status)})
    handles = [Patch(color=_STATUS_COLOURS[c], label=VOXEL_STATUS_NAMES[VoxelStatus(c)])
               for c in present]
    fig.legend(handles=handles, loc="center right", fontsize=8)
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

"""The BLI overlay picture: the signal, log-scaled in colour, on the grey photograph.

The photograph and the signal cover the same field of view, so both are drawn on the
same extent in cm (the photograph at its finer resolution). Signal below the display
floor (the larger of 5 % of the peak and 5 noise SDs) is transparent; the colour bar
names the unit; ROIs are outlined with their label and total flux.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xnatpic.optical.acquisition import IvisAcquisition
from xnatpic.optical.quant import RoiMeasure
from xnatpic.optical.rois import Roi, noise_sd

__all__ = ["render_overlay"]


def render_overlay(acq: IvisAcquisition, signal: np.ndarray, rois: list[Roi],
                   measures: list[RoiMeasure], path: Path) -> Path:
    """Write the overlay PNG of one click to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fov = acq.signal.info.fov_cm or float(signal.shape[1])
    extent = (0.0, fov, fov, 0.0)
    fig, ax = plt.subplots(figsize=(7.0, 6.0), dpi=110)
    photo = acq.photograph
    if photo is not None:
        ax.imshow(photo.read(), cmap="gray", extent=extent, interpolation="bilinear")
    peak = float(np.nanmax(signal)) if signal.size else 0.0
    if peak > 0:
        floor = max(0.05 * peak, 5.0 * noise_sd(signal), peak * 1e-6)
        shown = np.ma.masked_less(signal, floor)
        image = ax.imshow(shown, cmap="jet", norm=LogNorm(vmin=floor, vmax=peak),
                          extent=extent, alpha=0.75, interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label(f"{acq.calibration.quantity} ({acq.calibration.unit})")
    by_label = {m.roi: m for m in measures}
    rows_n, cols_n = signal.shape
    x = (np.arange(cols_n) + 0.5) * fov / cols_n  # pixel centres, cm
    y = (np.arange(rows_n) + 0.5) * fov / rows_n
    for roi in rois:
        ax.contour(x, y, roi.mask.astype(float), levels=[0.5], colors="white",
                   linewidths=1.2)
        rows, cols = np.nonzero(roi.mask)
        if rows.size:
            m = by_label.get(roi.label)
            text = roi.label if m is None else f"{roi.label}\n{m.total:.3g} {m.total_unit}"
            ax.text((cols.max() + 1) * fov / signal.shape[1],
                    rows.min() * fov / signal.shape[0], text, color="white", fontsize=8,
                    va="top")
    labels = acq.labels
    title = " · ".join(v for v in (labels.animal, labels.get("Group"),
                                   labels.get("Time Point"), acq.click_number) if v)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("cm")
    ax.set_ylabel("cm")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

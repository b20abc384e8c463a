"""Automatic foreground mask: Otsu's threshold on the per-voxel maximum over measurements."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["foreground_mask", "otsu_threshold"]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of finite ``values`` (maximises the between-class variance).

    References
    ----------
    Otsu N. A threshold selection method from gray-level histograms. IEEE Trans Syst Man
    Cybern 1979;9:62-66. doi:10.1109/TSMC.1979.4310076

    Examples
    --------
    >>> import numpy as np
    >>> 1.0 < otsu_threshold(np.r_[np.zeros(50), np.full(50, 10.0)]) < 10.0
    True
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        return float(v.min()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu0 = m / w0
        mu1 = (m[-1] - m) / w1
        between = w0 * w1 * (mu0 - mu1) ** 2
    between[~np.isfinite(between)] = -1
    return float(edges[int(np.argmax(between)) + 1])


def foreground_mask(data: np.ndarray, *, threshold: float | None = None) -> np.ndarray:
    """Foreground voxels of a 4-D series ``(X, Y, Z, N)``.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z, N)
        The series.
    threshold : float, optional
        Fraction (0-1) of the 99th percentile of the per-voxel maximum; default (None or
        0): Otsu's threshold of that maximum image. Small isolated specks (fewer than 4
        voxels in a slice) are removed.

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)
    """
    peak = np.nanmax(np.abs(data), axis=3)
    if threshold:
        cut = float(threshold) * float(np.nanpercentile(peak, 99))
    else:
        cut = otsu_threshold(peak)
    mask = peak > cut
    for k in range(mask.shape[2]):
        labels, n = ndimage.label(mask[:, :, k])
        if n:
            sizes = ndimage.sum(mask[:, :, k], labels, index=np.arange(1, n + 1))
            small = np.flatnonzero(sizes < 4) + 1
            mask[:, :, k][np.isin(labels, small)] = False
    return mask

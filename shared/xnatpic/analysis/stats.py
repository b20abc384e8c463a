"""Whole-map and per-slice statistics of a map inside a mask."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STAT_KEYS", "map_statistics"]

STAT_KEYS = ("n_voxels", "n_failed", "mean", "sd", "median", "q1", "q3", "iqr", "min", "max")


def _summary(values: np.ndarray, n_mask: int) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"n_voxels": int(n_mask), "n_failed": int(n_mask - finite.size)}
    if finite.size == 0:
        out.update({k: None for k in STAT_KEYS[2:]})
        return out
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    out.update({
        "mean": float(finite.mean()), "sd": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
        "median": float(median), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
        "min": float(finite.min()), "max": float(finite.max()),
    })
    return out


def map_statistics(values: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """Statistics of a 3-D map ``(X, Y, Z)`` inside ``mask``.

    ``n_voxels`` counts mask voxels, ``n_failed`` those whose value is not finite (failed
    fits); the other statistics use the finite values.

    Returns
    -------
    dict
        ``{"whole": {...}, "slices": [{...,"slice": k}, ...]}`` with the keys of
        :data:`STAT_KEYS`.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.arange(8.0).reshape(2, 2, 2); v[0, 0, 0] = np.nan
    >>> s = map_statistics(v, np.ones((2, 2, 2), bool))
    >>> s["whole"]["n_voxels"], s["whole"]["n_failed"], s["whole"]["median"]
    (8, 1, 4.0)
    """
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    whole = _summary(values[mask], int(mask.sum()))
    slices = []
    for k in range(values.shape[2]):
        m = mask[:, :, k]
        slices.append({"slice": k, **_summary(values[:, :, k][m], int(m.sum()))})
    return {"whole": whole, "slices": slices}

"""Whole-map and per-slice statistics of a map over every voxel of its mask.

Every mask voxel is counted: the fractions say how many were fitted, beyond the measurable
range (``long`` / ``short``: their value is kept), at the noise level (``no_signal``) or
failed. The location statistics (median, quartiles, mean, sd, min, max) use the voxels
with a value, i.e. fitted, long and short ones, so a tail beyond the measurable range is
not dropped (a median over successes only would be censored at that tail). A long or
short voxel without a finite value ranks above (below) every finite value in the
quantiles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnatpic.models.results import STATUS_GROUPS, VOXEL_STATUS_NAMES, VoxelStatus

__all__ = ["FRACTION_KEYS", "STAT_KEYS", "map_statistics", "status_counts"]

#: Keys of the ``fractions`` entry (groups of :class:`xnatpic.models.results.VoxelStatus`).
FRACTION_KEYS = tuple(STATUS_GROUPS)

STAT_KEYS = ("n_voxels", "n_failed", "n_valued", "mean", "sd", "median", "q1", "q3", "iqr",
             "min", "max", *(f"fraction_{k}" for k in FRACTION_KEYS))

_LOCATION = ("mean", "sd", "median", "q1", "q3", "iqr", "min", "max")


#: Status codes with a value to rank (fitted, or beyond the range on one side).
_VALUED = np.zeros(256, dtype=bool)
_VALUED[[VoxelStatus.FITTED, VoxelStatus.LONG, VoxelStatus.SHORT]] = True


def _code_counts(status: np.ndarray) -> np.ndarray:
    """Number of voxels with each status code (index = code)."""
    return np.bincount(np.asarray(status, dtype=np.uint8).ravel(), minlength=256)


def status_counts(status: np.ndarray, counts: np.ndarray | None = None) -> dict[str, int]:
    """Number of voxels with each in-mask status name (outside-mask voxels ignored);
    ``counts`` is :func:`_code_counts` of ``status`` when already made."""
    counts = _code_counts(status) if counts is None else counts
    return {VOXEL_STATUS_NAMES[VoxelStatus(int(c))]: int(counts[c])
            for c in np.flatnonzero(counts) if int(c) != VoxelStatus.OUTSIDE}


def _summary(values: np.ndarray, status: np.ndarray) -> dict[str, Any]:
    n = int(status.size)
    counts = _code_counts(status)
    groups = {g: int(sum(counts[int(c)] for c in codes)) for g, codes in STATUS_GROUPS.items()}
    out: dict[str, Any] = {"n_voxels": n, "n_failed": groups["failed"]}
    valued_status = _VALUED[np.asarray(status, dtype=np.uint8)]
    ranked = np.asarray(values[valued_status], dtype=np.float64).copy()
    codes = status[valued_status]
    missing = ~np.isfinite(ranked)
    ranked[missing & (codes == VoxelStatus.LONG)] = np.inf
    ranked[missing & (codes == VoxelStatus.SHORT)] = -np.inf
    ranked = ranked[~np.isnan(ranked)]
    finite = ranked[np.isfinite(ranked)]
    out["n_valued"] = int(ranked.size)
    if ranked.size == 0:
        out.update({k: None for k in _LOCATION})
    else:
        q1, median, q3 = (float(v) for v in np.quantile(ranked, [0.25, 0.5, 0.75],
                                                        method="linear"))
        out.update({
            "mean": float(finite.mean()) if finite.size else None,
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else None),
            "median": median if np.isfinite(median) else None,
            "q1": q1 if np.isfinite(q1) else None,
            "q3": q3 if np.isfinite(q3) else None,
            "iqr": float(q3 - q1) if np.isfinite(q3 - q1) else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
        })
    for g in FRACTION_KEYS:
        out[f"fraction_{g}"] = groups[g] / n if n else None
    out["status_counts"] = status_counts(status, counts)
    return out


def _status_from_values(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    status = np.where(np.isfinite(values), np.uint8(VoxelStatus.FITTED),
                      np.uint8(VoxelStatus.FAILED_NONFINITE)).astype(np.uint8)
    status[~mask] = VoxelStatus.OUTSIDE
    return status


def map_statistics(values: np.ndarray, mask: np.ndarray,
                   status: np.ndarray | None = None) -> dict[str, Any]:
    """Statistics of a 3-D map ``(X, Y, Z)`` over every voxel of ``mask``.

    Parameters
    ----------
    values : ndarray, shape (X, Y, Z)
        The map.
    mask : ndarray of bool, shape (X, Y, Z)
        The voxels the statistics describe.
    status : ndarray of uint8, shape (X, Y, Z), optional
        :class:`~xnatpic.models.results.VoxelStatus` per voxel; default: fitted where the
        value is finite, failed (non-finite) elsewhere.

    Returns
    -------
    dict
        ``{"whole": {...}, "slices": [{..., "slice": k}, ...]}`` (``k`` from 1: slice 1 is
        the first slice of the NIfTI z axis, as in the report and the CSV) with the keys of
        :data:`STAT_KEYS` and ``status_counts`` (status name -> voxels). ``n_failed``
        counts failed voxels, ``n_valued`` those entering the location statistics
        (fitted, long, short); ``fraction_<group>`` is over ``n_voxels``.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.arange(8.0).reshape(2, 2, 2); v[0, 0, 0] = np.nan
    >>> s = map_statistics(v, np.ones((2, 2, 2), bool))
    >>> s["whole"]["n_voxels"], s["whole"]["n_failed"], s["whole"]["median"]
    (8, 1, 4.0)
    >>> st = np.ones((2, 2, 2), np.uint8); st[0, 0, 0] = 2   # long, no finite value
    >>> s = map_statistics(v, np.ones((2, 2, 2), bool), st)["whole"]
    >>> s["n_failed"], s["median"], s["fraction_long"]
    (0, 4.5, 0.125)
    """
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if status is None:
        status = _status_from_values(values, mask)
    status = np.asarray(status, dtype=np.uint8)
    whole = _summary(values[mask], status[mask])
    slices = []
    for k in range(values.shape[2]):
        m = mask[:, :, k]
        slices.append({"slice": k + 1, **_summary(values[:, :, k][m], status[:, :, k][m])})
    return {"whole": whole, "slices": slices}

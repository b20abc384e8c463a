"""Statistics of a map inside a ROI, failed-fit voxels (NaN, inf) excluded and counted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xnatpic.roi.errors import RoiError

__all__ = ["FLAG_ALL_EXCLUDED", "FLAG_EMPTY", "RoiStats", "roi_stats"]

#: The ROI covers no voxel of the map.
FLAG_EMPTY = "empty_roi"
#: Every voxel of the ROI is NaN/inf in the map (every fit failed there).
FLAG_ALL_EXCLUDED = "all_excluded"


@dataclass(frozen=True)
class RoiStats:
    """Statistics of one map in one ROI.

    Attributes
    ----------
    mean, sd, median, q1, q3 : float
        Over the finite voxels; ``sd`` is the sample SD (ddof=1; NaN for one voxel);
        quartiles by linear interpolation (numpy's default). NaN when ``n == 0``.
    n : int
        Finite voxels used.
    n_excluded : int
        Voxels of the ROI whose value is NaN or inf (failed fits), not used.
    flag : str
        ``""``, :data:`FLAG_EMPTY` or :data:`FLAG_ALL_EXCLUDED`.
    """

    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    n: int
    n_excluded: int
    flag: str = ""

    @property
    def iqr(self) -> float:
        """Interquartile range ``q3 - q1``."""
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, Any]:
        """The statistics as a dict, with ``iqr`` (NaN kept as float NaN)."""
        return {**asdict(self), "iqr": self.iqr}


def roi_stats(values: np.ndarray, mask: np.ndarray) -> RoiStats:
    """Statistics of ``values`` where ``mask`` is True.

    Parameters
    ----------
    values : numpy.ndarray
        The map (any dtype convertible to float).
    mask : numpy.ndarray of bool
        Same shape as ``values``.

    Returns
    -------
    RoiStats

    Raises
    ------
    RoiError
        When the shapes differ.

    Examples
    --------
    >>> s = roi_stats(np.array([1.0, 2.0, 3.0, np.nan]), np.array([True, True, True, True]))
    >>> (s.mean, s.median, s.n, s.n_excluded)
    (2.0, 2.0, 3, 1)
    """
    values = np.asarray(values)
    mask = np.asarray(mask, dtype=bool)
    if values.shape != mask.shape:
        raise RoiError(f"roi_stats: values shape {values.shape} != mask shape {mask.shape}")
    inside = values[mask].astype(np.float64)
    finite = np.isfinite(inside)
    used = inside[finite]
    n, n_excluded = int(used.size), int(inside.size - used.size)
    if n == 0:
        flag = FLAG_EMPTY if inside.size == 0 else FLAG_ALL_EXCLUDED
        nan = float("nan")
        return RoiStats(nan, nan, nan, nan, nan, 0, n_excluded, flag)
    q1, median, q3 = (float(q) for q in np.percentile(used, [25, 50, 75]))
    sd = float(np.std(used, ddof=1)) if n > 1 else float("nan")
    return RoiStats(float(used.mean()), sd, median, q1, q3, n, n_excluded)

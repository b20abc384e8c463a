"""Numerics that numpy offers only at a start-up cost.

``numpy.median`` imports ``numpy.ma`` on its first call (to check for NaN): 7 ms of a
process's start on a quiet machine, 20 ms on a busy one, in every map step and every
conversion. :func:`median` computes the same value from ``numpy.partition``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["median"]


def median(values: object) -> float:
    """The median of ``values`` (flattened) exactly as ``numpy.median`` computes it.

    The middle value of an odd count, the mean of the two middle values (in the array's
    own precision, as numpy does) of an even one; NaN when a value is NaN or there is none.

    Examples
    --------
    >>> median([3.0, 1.0, 2.0]), median([4, 1, 3, 2]), median([])
    (2.0, 2.5, nan)
    """
    a = np.asarray(values).ravel()
    if a.size == 0 or (a.dtype.kind in "fc" and np.isnan(a).any()):
        return float("nan")
    half = a.size // 2
    if a.size % 2:
        return float(np.partition(a, half)[half])
    part = np.partition(a, (half - 1, half))
    return float(np.mean(part[half - 1:half + 1]))

"""Row-block processing: run a per-voxel computation on blocks of voxels.

NumPy evaluates every expression over whole arrays; with millions of voxels each temporary
is tens of megabytes and every operation streams from main memory. Blocks of about 16k
voxels keep the temporaries in cache, which measured ~30 % faster on the fits here, and
bound the peak memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

__all__ = ["ROW_BLOCK", "map_rows"]

#: Voxels per block.
ROW_BLOCK = 16384

T = TypeVar("T", bound=tuple)


def map_rows(func: Callable[..., T], *arrays: np.ndarray, block: int = ROW_BLOCK) -> T:
    """``func(*arrays)`` evaluated block by block along the first axis and concatenated.

    ``func`` must treat rows independently and return a tuple of arrays whose first axis
    is the row axis.
    """
    n = arrays[0].shape[0]
    if n <= block:
        return func(*arrays)
    outputs: list[np.ndarray] = []
    for start in range(0, n, block):
        part = func(*(a[start : start + block] for a in arrays))
        if not outputs:
            outputs = [np.empty((n, *np.shape(v)[1:]), dtype=np.asarray(v).dtype) for v in part]
        for out, value in zip(outputs, part, strict=True):
            out[start : start + block] = value
    return tuple(outputs)  # type: ignore[return-value]

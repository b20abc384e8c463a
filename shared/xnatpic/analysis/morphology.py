"""The few image operations the mask and the noise gate need, in numpy.

``scipy.ndimage`` costs 0.2-0.6 s to import (its array-API layer pulls in numpy.f2py,
numpy.testing and more), a fifth of a map step on a small series; these three operations
are all the analysis steps used from it. Each gives what its ``scipy.ndimage`` counterpart
gives (``tests/analysis/test_morphology.py`` compares them on random and real masks).
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_mean", "dilate_in_plane", "remove_small_components"]


def box_mean(a: np.ndarray, size: int | tuple[int, ...]) -> np.ndarray:
    """Mean over a box of odd width ``size`` (one per axis, or one for all), edges
    mirrored, as float64: ``scipy.ndimage.uniform_filter(a, size)`` (mode ``reflect``).
    """
    out = np.asarray(a, dtype=np.float64)
    sizes = (size,) * out.ndim if isinstance(size, int) else tuple(size)
    for axis, width in enumerate(sizes):
        if width == 1:
            continue
        half = width // 2
        n = out.shape[axis]
        lead = (slice(None),) * axis
        if n >= half:  # mirrored edges, as np.pad(mode="symmetric") gives them
            padded = np.concatenate((out[(*lead, slice(half - 1, None, -1) if half > 0
                                          else slice(0, 0))],
                                     out, out[(*lead, slice(n - 1, n - half - 1 if n > half
                                                            else None, -1))]), axis=axis)
        else:
            padded = np.pad(out, [(half, half) if i == axis else (0, 0)
                                  for i in range(out.ndim)], mode="symmetric")
        total = padded[(*lead, slice(0, n))] + padded[(*lead, slice(1, 1 + n))]
        for shift in range(2, width):
            total += padded[(*lead, slice(shift, shift + n))]
        out = total / width
    return out


def dilate_in_plane(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Dilate a 3-D mask ``iterations`` times by the in-plane cross (4-neighbours in x-y,
    nothing across slices; outside the volume counts as empty), as
    ``scipy.ndimage.binary_dilation`` with that structure."""
    out = np.asarray(mask, dtype=bool).copy()
    for _ in range(iterations):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _labels_4(mask: np.ndarray) -> np.ndarray:
    """Per voxel of a 2-D mask, the smallest flat index of its 4-connected component
    (``mask.size`` outside the mask).

    Connected components of the row runs of the mask: runs of neighbouring rows that share
    a column are linked (found for all rows at once by binary search in the sorted runs),
    and each run takes the smallest run index of its component by repeated minimum over
    the links with pointer jumping; the smallest run is the first in row-major order, so
    its start is the component's smallest flat index.
    """
    columns = mask.shape[1]
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    run_row, run_start = np.nonzero(edges == 1)  # row-major: runs in flat order
    run_end = np.nonzero(edges == -1)[1]  # one past each run's last column
    # Runs in flat coordinates (row * (columns + 1) + column): sorted starts and ends.
    width = columns + 1
    flat_start = run_row * width + run_start
    flat_end = run_row * width + run_end
    # Run j of row r + 1 overlaps run i of row r when start_j < end_i and start_i < end_j:
    # j from the first run below ending after start_i to the last starting before end_i.
    lo = np.searchsorted(flat_end, flat_start + width, side="right")
    hi = np.searchsorted(flat_start, flat_end + width, side="left")
    count = np.maximum(hi - lo, 0)
    first = np.repeat(np.arange(run_row.size), count)
    second = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())
    label = np.arange(run_row.size)
    while first.size:
        low = np.minimum(label[first], label[second])
        changed = (low < label[first]) | (low < label[second])
        if not changed.any():
            break
        np.minimum.at(label, first, low)
        np.minimum.at(label, second, low)
        label = label[label]  # pointer jumping: a run's label's label is smaller or equal
    run_label = run_row[label] * columns + run_start[label]
    flat = mask.ravel()
    run_of = np.zeros(mask.size, dtype=np.intp)
    run_of[run_row * columns + run_start] = 1
    labels = np.full(mask.size, mask.size, dtype=np.intp)
    labels[flat] = run_label[np.cumsum(run_of)[flat] - 1]
    return labels.reshape(mask.shape)


def remove_small_components(mask: np.ndarray, min_size: int) -> np.ndarray:
    """A 2-D mask without its 4-connected components of fewer than ``min_size`` pixels
    (``scipy.ndimage.label`` with its default structure, then the component sizes)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    labels = _labels_4(mask)
    sizes = np.bincount(labels[mask], minlength=mask.size)
    keep = mask.copy()
    keep[mask] = sizes[labels[mask]] >= min_size
    return keep

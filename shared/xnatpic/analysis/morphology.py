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
        padded = np.pad(out, [(half, half) if i == axis else (0, 0) for i in range(out.ndim)],
                        mode="symmetric")
        n = out.shape[axis]
        lead = (slice(None),) * axis
        total = padded[(*lead, slice(0, n))].copy()
        for shift in range(1, width):
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

    Union-find over the row runs of the mask: runs of neighbouring rows that share a
    column are one component; each component takes the start of its first run in
    row-major order, its smallest flat index.
    """
    rows, columns = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    run_row, run_start = np.nonzero(edges == 1)  # row-major: runs in flat order
    run_end = np.nonzero(edges == -1)[1]  # one past each run's last column
    parent = list(range(run_row.size))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = np.searchsorted(run_row, np.arange(rows + 1))  # runs of row r: first[r]:first[r+1]
    starts, ends = run_start.tolist(), run_end.tolist()
    for r in range(1, rows):
        i, i_end = int(first[r - 1]), int(first[r])
        j, j_end = i_end, int(first[r + 1])
        while i < i_end and j < j_end:
            if starts[i] < ends[j] and starts[j] < ends[i]:  # the runs share a column
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    roots = np.fromiter((root(i) for i in range(run_row.size)), dtype=np.intp,
                        count=run_row.size)
    run_label = run_row[roots] * columns + run_start[roots]
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

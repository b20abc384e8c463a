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
    (``mask.size`` outside the mask)."""
    flat_mask = mask.ravel()
    outside = mask.size
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape), outside)
    down = mask[1:] & mask[:-1]
    right = mask[:, 1:] & mask[:, :-1]
    while True:
        new = labels.copy()
        np.minimum(new[1:], np.where(down, labels[:-1], outside), out=new[1:])
        np.minimum(new[:-1], np.where(down, labels[1:], outside), out=new[:-1])
        np.minimum(new[:, 1:], np.where(right, labels[:, :-1], outside), out=new[:, 1:])
        np.minimum(new[:, :-1], np.where(right, labels[:, 1:], outside), out=new[:, :-1])
        flat = new.ravel()
        inside = flat[flat_mask]
        while True:  # pointer jumping: follow each label to its own label
            jumped = flat[inside]
            if np.array_equal(jumped, inside):
                break
            inside = jumped
        flat[flat_mask] = inside
        if np.array_equal(new, labels):
            return labels
        labels = new


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

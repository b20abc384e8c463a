"""Voxel grids in world coordinates and nearest-neighbour resampling between them.

World coordinates are NIfTI RAS millimetres (``(x, y, z)_RAS = (-x, -y, z)_LPS``); a grid
is a 3-D shape plus the 4x4 affine taking voxel indices ``(i, j, k)`` (voxel centres) to
RAS. Masks are mapped onto a map's grid by looking up, for every map voxel centre, the
mask voxel that contains it, whatever the two grids' sizes, resolutions and orientations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from xnatpic.roi.errors import RoiError

__all__ = ["Grid", "nearest_indices", "resample_masks"]


@dataclass(frozen=True)
class Grid:
    """A 3-D voxel grid.

    Attributes
    ----------
    shape : tuple of int
        ``(ni, nj, nk)``.
    affine : numpy.ndarray, shape (4, 4)
        Voxel index to RAS millimetres.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise RoiError(f"grid affine must be a finite 4x4 matrix, got {affine!r}")
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise RoiError(f"grid affine is singular: {affine[:3, :3].tolist()}")
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise RoiError(f"grid shape must be 3 positive sizes, got {self.shape}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))

    @property
    def voxel_sizes(self) -> np.ndarray:
        """Voxel edge lengths in mm along i, j, k."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def world(self) -> np.ndarray:
        """RAS coordinates of every voxel centre, shape ``shape + (3,)``."""
        ijk = np.indices(self.shape, dtype=np.float64).reshape(3, -1)
        xyz = self.affine[:3, :3] @ ijk + self.affine[:3, 3:4]
        return xyz.T.reshape(*self.shape, 3)


def nearest_indices(source: Grid, target: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Index of the ``source`` voxel containing each ``target`` voxel centre.

    Parameters
    ----------
    source, target : Grid

    Returns
    -------
    index : numpy.ndarray of intp, shape ``target.shape + (3,)``
        Source voxel indices (clipped into range where outside).
    inside : numpy.ndarray of bool, shape ``target.shape``
        Whether the target voxel centre falls inside the source grid.
    """
    to_source = np.linalg.inv(source.affine) @ target.affine
    ijk = np.indices(target.shape, dtype=np.float64).reshape(3, -1)
    src = to_source[:3, :3] @ ijk + to_source[:3, 3:4]
    # voxel centres exactly on a boundary go to the upper voxel, reproducibly
    idx = np.floor(src + 0.5 + 1e-9).astype(np.intp)
    upper = np.asarray(source.shape, dtype=np.intp)[:, None]
    inside = np.all((idx >= 0) & (idx < upper), axis=0)
    idx = np.clip(idx, 0, upper - 1)
    return idx.T.reshape(*target.shape, 3), inside.reshape(target.shape)


def resample_masks(masks: Mapping[str, np.ndarray], source: Grid, target: Grid
                   ) -> dict[str, np.ndarray]:
    """Map boolean masks from ``source`` onto ``target`` (nearest neighbour).

    Parameters
    ----------
    masks : mapping of str to numpy.ndarray of bool, each of shape ``source.shape``
    source, target : Grid

    Returns
    -------
    dict of str to numpy.ndarray of bool, each of shape ``target.shape``
        Voxels whose centre is outside the source grid are False.

    Raises
    ------
    RoiError
        When a mask does not have the source grid's shape.
    """
    index, inside = nearest_indices(source, target)
    i, j, k = index[..., 0], index[..., 1], index[..., 2]
    out: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != source.shape:
            raise RoiError(f"mask {name!r} has shape {mask.shape}, its grid {source.shape}")
        out[name] = mask[i, j, k] & inside
    return out

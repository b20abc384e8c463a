"""Slice-pack geometry of the phantom scans, in ParaVision's conventions.

Coordinates are millimetres in the subject frame ParaVision writes ``VisuCorePosition`` and
``VisuCoreOrientation`` in (the frame ParaVision's own DICOM export copies into
ImagePositionPatient / ImageOrientationPatient). A slice pack is described as ParaVision
describes it:

* ``orientation`` rows are the read direction (along a row of the image, increasing column
  index, the first ``VisuCoreSize`` dimension), the phase direction (down the image,
  increasing row index, the second ``VisuCoreSize`` dimension) and the slice normal;
* ``VisuCorePosition`` is the centre of the first voxel of each slice; the slice centre falls
  on voxel ``(size[0] // 2, size[1] // 2)`` as in an FFT reconstruction, so the position is
  ``centre - extent[0] / 2 * read - extent[1] / 2 * phase``;
* slices are ``distance`` apart along the normal, in increasing order, centred on ``centre``.

Voxel ``(slice k, row j, column i)`` is at ``position[k] + i * dx * read + j * dy * phase``
with ``(dx, dy) = extent / size``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GEOMETRIES", "SlicePack", "rotation_matrix"]


def rotation_matrix(axis: str, degrees: float) -> np.ndarray:
    """Return the 3×3 matrix of a right-handed rotation about ``x``, ``y`` or ``z``.

    Parameters
    ----------
    axis : {"x", "y", "z"}
        Rotation axis.
    degrees : float
        Angle in degrees.

    Returns
    -------
    numpy.ndarray, shape (3, 3)
    """
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    table = {
        "x": [[1, 0, 0], [0, c, -s], [0, s, c]],
        "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
        "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]],
    }
    return np.array(table[axis], dtype=float)


@dataclass(frozen=True)
class SlicePack:
    """One ParaVision slice package.

    Parameters
    ----------
    name : str
        Key of the geometry (``axial``, ``oblique``...).
    orientation : numpy.ndarray, shape (3, 3)
        Rows: read direction, phase direction, slice normal (orthonormal, right-handed).
    centre : numpy.ndarray, shape (3,)
        Centre of the pack in mm.
    size : tuple of int
        ``VisuCoreSize``: (columns along read, rows along phase).
    extent : tuple of float
        ``VisuCoreExtent`` in mm, same order as ``size``.
    n_slices : int
        Number of slices.
    thickness : float
        Slice thickness in mm.
    distance : float
        Centre-to-centre slice distance in mm.
    slice_orient, read_orient : str
        ParaVision's ``PVM_SPackArrSliceOrient`` and ``PVM_SPackArrReadOrient`` words.
    """

    name: str
    orientation: np.ndarray
    centre: np.ndarray
    size: tuple[int, int]
    extent: tuple[float, float]
    n_slices: int
    thickness: float
    distance: float
    slice_orient: str
    read_orient: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape of a volume: (slices, rows, columns)."""
        return (self.n_slices, self.size[1], self.size[0])

    @property
    def voxel_size(self) -> np.ndarray:
        """In-plane voxel size (read, phase) in mm."""
        return np.asarray(self.extent, dtype=float) / np.asarray(self.size, dtype=float)

    @property
    def slice_offsets(self) -> np.ndarray:
        """Signed distance of each slice centre from the pack centre along the normal (mm)."""
        return (np.arange(self.n_slices) - (self.n_slices - 1) / 2.0) * self.distance

    def slice_centres(self) -> np.ndarray:
        """Centre of each slice in mm, shape (n_slices, 3)."""
        return self.centre[None, :] + self.slice_offsets[:, None] * self.orientation[2][None, :]

    def positions(self) -> np.ndarray:
        """``VisuCorePosition``: centre of the first voxel of each slice, shape (n_slices, 3)."""
        half = np.asarray(self.extent, dtype=float) / 2.0
        corner = half[0] * self.orientation[0] + half[1] * self.orientation[1]
        return self.slice_centres() - corner[None, :]

    def voxel_centres(self) -> np.ndarray:
        """Centres of all voxels in mm, shape (n_slices, rows, columns, 3)."""
        dx, dy = self.voxel_size
        cols = np.arange(self.size[0]) * dx
        rows = np.arange(self.size[1]) * dy
        read, phase = self.orientation[0], self.orientation[1]
        in_plane = rows[:, None, None] * phase + cols[None, :, None] * read
        return self.positions()[:, None, None, :] + in_plane[None, :, :, :]

    def in_plane_offsets(self) -> tuple[float, float, float]:
        """Offsets of the pack centre along read, phase and slice (mm), as PVM_SPackArr*."""
        read, phase, normal = (float(self.orientation[i] @ self.centre) for i in range(3))
        return read, phase, normal

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description (lists of floats)."""
        return {
            "orientation_rows_read_phase_normal": self.orientation.tolist(),
            "centre_mm": self.centre.tolist(),
            "size_columns_rows": list(self.size),
            "extent_mm": list(self.extent),
            "voxel_size_mm_read_phase": self.voxel_size.tolist(),
            "n_slices": self.n_slices,
            "slice_thickness_mm": self.thickness,
            "slice_distance_mm": self.distance,
            "visu_core_position_mm": self.positions().tolist(),
            "map_shape_slices_rows_columns": list(self.shape),
        }


def _pack(name: str, orientation: np.ndarray, **kwargs: object) -> SlicePack:
    return SlicePack(name=name, orientation=np.asarray(orientation, dtype=float), **kwargs)  # type: ignore[arg-type]


_AXIAL = np.eye(3)
# Coronal: read along +x, phase down the image along -z (head at the top), normal +y.
_CORONAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Oblique: the axial pack turned 20 degrees about z, then tilted 12 degrees about x.
_OBLIQUE = (rotation_matrix("x", 12.0) @ rotation_matrix("z", 20.0) @ _AXIAL.T).T

_COMMON = {"size": (96, 64), "extent": (38.4, 32.0), "thickness": 1.0}

#: Every slice pack the phantom uses, by name. Non-square matrix and non-square pixels
#: (0.4 mm along read, 0.5 mm along phase); slice distance 1.5 mm for 1 mm slices.
GEOMETRIES: dict[str, SlicePack] = {
    "axial": _pack(
        "axial", _AXIAL, centre=np.array([0.6, -0.8, 0.5]), n_slices=5, distance=1.5,
        slice_orient="axial", read_orient="L_R", **_COMMON,
    ),
    "oblique": _pack(
        "oblique", _OBLIQUE, centre=np.array([0.6, -0.8, 0.5]), n_slices=5, distance=1.5,
        slice_orient="axial", read_orient="L_R", **_COMMON,
    ),
    "coronal": _pack(
        "coronal", _CORONAL, centre=np.array([0.0, 0.0, 0.0]), n_slices=3, distance=5.0,
        slice_orient="coronal", read_orient="L_R", **_COMMON,
    ),
}

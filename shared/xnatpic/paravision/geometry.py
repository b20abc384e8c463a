"""Geometry of a reco in the patient frame, from visu_pars.

ParaVision's own DICOM export copies VisuCorePosition to ImagePositionPatient and the
first two rows of VisuCoreOrientation to ImageOrientationPatient (checked on the PV 6.0.1
export in the corpus). So, for a 2D frame:

* row direction (along a row, increasing column) = VisuCoreOrientation[0:3];
* column direction (down a column, increasing row) = VisuCoreOrientation[3:6];
* slice normal = VisuCoreOrientation[6:9];
* position of the centre of the first stored voxel = VisuCorePosition;
* VisuCoreSize = (columns, rows[, slices]) and VisuCoreExtent in the same order, so the
  column spacing is Extent[0]/Size[0] and the row spacing Extent[1]/Size[1].

A 3D frame is split into slices along the normal with spacing Extent[2]/Size[2].
VisuCoreTransposition only records how read and phase were mapped when the 2dseq was
written; the orientation and extent already describe the stored array, so no transposition
is applied here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xnatpic.errors import MissingParameterError, ParaVisionError
from xnatpic.paravision.jcamp import ParameterSet

__all__ = ["CoreGeometry", "core_geometry", "orientation_matrix", "slice_packages"]


@dataclass(frozen=True)
class CoreGeometry:
    """Matrix and voxel sizes of one frame.

    Attributes
    ----------
    dim : int
        2 or 3 (VisuCoreDim).
    rows, columns : int
        Image matrix.
    slices_per_frame : int
        1 for 2D frames, the third VisuCoreSize for 3D frames.
    row_spacing, column_spacing : float
        mm between rows (along a column) and between columns (along a row).
    frame_thickness : float
        mm; for 3D frames the slice spacing.
    """

    dim: int
    rows: int
    columns: int
    slices_per_frame: int
    row_spacing: float
    column_spacing: float
    frame_thickness: float


def _floats(visu: ParameterSet, name: str) -> np.ndarray:
    value = visu.require(name)
    return np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()


def core_geometry(visu: ParameterSet) -> CoreGeometry:
    """Read the matrix and voxel size of a reco.

    Raises
    ------
    MissingParameterError
        When VisuCoreSize or VisuCoreExtent is missing.
    ParaVisionError
        When they are inconsistent with VisuCoreDim.
    """
    size = np.atleast_1d(np.asarray(visu.require("VisuCoreSize"), dtype=np.int64)).ravel()
    dim = int(visu.get("VisuCoreDim", size.size))
    extent = _floats(visu, "VisuCoreExtent")
    if size.size != dim or extent.size != dim or dim not in (1, 2, 3):
        raise ParaVisionError(
            f"{visu.path}: VisuCoreSize {size.tolist()} and VisuCoreExtent {extent.tolist()} "
            f"do not match VisuCoreDim {dim}"
        )
    if np.any(size <= 0) or np.any(extent <= 0):
        raise ParaVisionError(f"{visu.path}: non-positive VisuCoreSize or VisuCoreExtent")
    if dim == 1:
        raise ParaVisionError(f"{visu.path}: one-dimensional frames are not images")
    columns, rows = int(size[0]), int(size[1])
    column_spacing, row_spacing = extent[0] / size[0], extent[1] / size[1]
    if dim == 3:
        slices = int(size[2])
        thickness = float(extent[2] / size[2])
    else:
        slices = 1
        if "VisuCoreFrameThickness" in visu:
            thickness = float(_floats(visu, "VisuCoreFrameThickness")[0])
        else:
            thickness = float("nan")
    return CoreGeometry(dim, rows, columns, slices, float(row_spacing), float(column_spacing),
                        thickness)


def orientation_matrix(value: np.ndarray | list[float], *, path: str | None = None) -> np.ndarray:
    """Turn a 9-element VisuCoreOrientation row into a 3×3 matrix of unit rows.

    Raises
    ------
    ParaVisionError
        When the matrix is not (close to) orthonormal.
    """
    m = np.asarray(value, dtype=np.float64).reshape(3, 3)
    norms = np.linalg.norm(m, axis=1)
    if np.any(norms < 1e-6):
        raise ParaVisionError(f"{path}: VisuCoreOrientation has a zero row: {m.tolist()}")
    m = m / norms[:, None]
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-3):
        raise ParaVisionError(f"{path}: VisuCoreOrientation is not orthonormal: {m.tolist()}")
    return m


def slice_packages(orientations: list[np.ndarray]) -> list[int]:
    """Number the distinct imaging planes of a list of orientations (0, 1, ...)."""
    planes: list[np.ndarray] = []
    labels: list[int] = []
    for m in orientations:
        for k, plane in enumerate(planes):
            if np.array_equal(plane, m) or np.allclose(plane, m, atol=1e-4):
                labels.append(k)
                break
        else:
            planes.append(m)
            labels.append(len(planes) - 1)
    return labels


def require_position(visu: ParameterSet) -> None:
    """Raise a clear error when a reco has no position or orientation."""
    for name in ("VisuCorePosition", "VisuCoreOrientation"):
        if name not in visu:
            raise MissingParameterError(f"{visu.path}: {name} is missing; geometry unknown")

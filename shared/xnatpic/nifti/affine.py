"""Voxel-to-world affines of NIfTI volumes built from DICOM-style image geometry.

Conventions (the DICOM path's, so a NIfTI and the DICOM of the same reco agree):

* patient frame = DICOM LPS: +x towards the subject's left, +y posterior, +z superior;
  every :class:`~xnatpic.paravision.series.Image` position is the centre of its first
  stored voxel (ImagePositionPatient) and its orientation rows are the DICOM row
  direction, column direction and slice normal (ImageOrientationPatient + normal);
* NIfTI world = RAS: ``(x, y, z)_RAS = (-x, -y, z)_LPS``;
* voxel index ``i`` runs along a row (increasing column, the row direction), ``j`` down a
  column (increasing row, the column direction) and ``k`` through the slices in the
  order the volume stores them; the slice step is measured from the slice positions,
  never assumed to be ``+normal``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnatpic.errors import ConversionError

__all__ = [
    "LPS_TO_RAS",
    "affine_from_slices",
    "fsl_bvec",
    "image_space_direction",
    "lps_to_ras",
]

#: Homogeneous matrix taking DICOM LPS coordinates to NIfTI RAS coordinates.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras(affine_lps: np.ndarray) -> np.ndarray:
    """Return the RAS version of an LPS voxel-to-world affine (negate the x and y rows)."""
    return LPS_TO_RAS @ np.asarray(affine_lps, dtype=np.float64)


def affine_from_slices(
    positions: Sequence[np.ndarray],
    orientation: np.ndarray,
    pixel_spacing: tuple[float, float],
    single_slice_thickness: float,
    *,
    tolerance_mm: float = 1e-3,
    where: str = "",
) -> np.ndarray:
    """LPS voxel-to-world affine of a stack of parallel slices.

    Parameters
    ----------
    positions : sequence of numpy.ndarray, shape (3,)
        Centre of the first voxel of every slice, in the order of the volume's ``k``.
    orientation : numpy.ndarray, shape (3, 3)
        Rows: row direction, column direction, slice normal (unit vectors, LPS).
    pixel_spacing : tuple of float
        DICOM PixelSpacing order: (row spacing, column spacing) in mm.
    single_slice_thickness : float
        Length of the ``k`` axis (along the normal) when there is only one slice.
    tolerance_mm : float
        Largest allowed distance between a slice position and the regular grid
        ``positions[0] + k × step``.
    where : str
        Prefix for error messages (the reco label).

    Returns
    -------
    numpy.ndarray, shape (4, 4)
        ``world_lps = A @ (i, j, k, 1)``.

    Raises
    ------
    ConversionError
        When the slices are not equally spaced along one line (NIfTI cannot say that).
    """
    orientation = np.asarray(orientation, dtype=np.float64)
    row_spacing, column_spacing = pixel_spacing
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = len(p)
    if n == 1:
        thickness = single_slice_thickness
        if not np.isfinite(thickness) or thickness <= 0:
            thickness = 1.0
        step = orientation[2] * thickness
    else:
        step = (p[-1] - p[0]) / (n - 1)
        if np.linalg.norm(step) < tolerance_mm:
            raise ConversionError(f"{where}: slices share one position; not a volume")
        grid = p[0] + np.arange(n)[:, None] * step
        worst = float(np.max(np.linalg.norm(p - grid, axis=1)))
        if worst > max(tolerance_mm, 1e-3 * np.linalg.norm(step)):
            raise ConversionError(
                f"{where}: slice positions are not equally spaced along one line (largest "
                f"deviation {worst:.4f} mm); NIfTI cannot represent this stack, use DICOM"
            )
    affine = np.eye(4)
    affine[:3, 0] = orientation[0] * column_spacing
    affine[:3, 1] = orientation[1] * row_spacing
    affine[:3, 2] = step
    affine[:3, 3] = p[0]
    return affine


def image_space_direction(direction_lps: np.ndarray | None, affine: np.ndarray) -> np.ndarray:
    """Express a unit direction in the voxel axes ``(i, j, k)`` of an affine.

    ``affine`` may be LPS or RAS as long as ``direction_lps`` is given in the same frame
    (the function only uses the 3×3 part). Returns ``(0, 0, 0)`` for None (no gradient).
    The voxel axes are normalised first, so the result is a unit vector whenever the
    axes are orthogonal.
    """
    if direction_lps is None:
        return np.zeros(3)
    axes = np.asarray(affine, dtype=np.float64)[:3, :3]
    axes = axes / np.linalg.norm(axes, axis=0)
    return np.linalg.solve(axes, np.asarray(direction_lps, dtype=np.float64))


def fsl_bvec(image_direction: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FSL bvec of one volume from its image-space direction.

    FSL reads gradient directions in voxel coordinates of a radiologically stored image
    (negative determinant). When the voxel-to-world matrix has a positive determinant FSL
    flips the ``i`` axis internally, so the x component is negated here (dcm2niix and
    mrtrix do the same). The determinant is the same for the LPS and the RAS affine.
    """
    bvec = np.asarray(image_direction, dtype=np.float64).copy()
    if np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]) > 0:
        bvec[0] = -bvec[0]
    return bvec + 0.0  # no negative zeros in the text files

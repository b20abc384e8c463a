"""Where the pixels of an IVIS image are, in DICOM patient coordinates (mm).

Living Image gives no patient position; we define one so that ROIs drawn in a viewer
on the photograph or on the signal (DICOM SEG, RTSTRUCT, NIfTI label maps) land on the
same spot of the other image: the stage plane is z = 0, x runs along the image rows
(left to right), y down the columns, the field of view's top-left corner is the origin.
So pixel (r, c) of an image of spacing (Δr, Δc) mm has its centre at
((c + ½)·Δc, (r + ½)·Δr, 0), ImageOrientationPatient is (1, 0, 0, 0, 1, 0) and the
photograph and the binned signal of one click share a FrameOfReferenceUID.
"""

from __future__ import annotations

import numpy as np

from xnatpic.nifti.affine import LPS_TO_RAS
from xnatpic.optical.acquisition import IvisImage
from xnatpic.optical.errors import OpticalError
from xnatpic.roi.grid import Grid

__all__ = ["ORIENTATION", "image_grid", "image_position"]

#: ImageOrientationPatient of every IVIS image.
ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _spacing(image: IvisImage) -> tuple[float, float]:
    spacing = image.pixel_spacing_mm
    if spacing is None:
        raise OpticalError(f"{image.tiff.path}: no Field of View, so no pixel spacing; "
                           "cannot place ROIs drawn in patient coordinates")
    return spacing


def image_position(image: IvisImage) -> tuple[float, float, float]:
    """ImagePositionPatient (mm): the centre of the first pixel."""
    row_mm, col_mm = _spacing(image)
    return (col_mm / 2.0, row_mm / 2.0, 0.0)


def image_grid(image: IvisImage) -> Grid:
    """The image as a one-slice grid (index (row, column, 0) → RAS mm), as
    :mod:`xnatpic.roi.seg` builds the grid of a SEG frame."""
    row_mm, col_mm = _spacing(image)
    affine = np.eye(4)
    affine[:3, 0] = (0.0, row_mm, 0.0)  # index 0 = row number: down a column (+y)
    affine[:3, 1] = (col_mm, 0.0, 0.0)  # index 1 = column number: along a row (+x)
    affine[:3, 2] = (0.0, 0.0, 1.0)     # one slice, 1 mm thick
    affine[:3, 3] = image_position(image)
    rows, cols = image.shape
    return Grid((rows, cols, 1), LPS_TO_RAS @ affine)

"""Automatic foreground mask: Otsu's threshold on an image (by default the first map)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from xnatpic.analysis.mask import otsu_threshold as mask_otsu_threshold
from xnatpic.roi.errors import RoiError
from xnatpic.roi.grid import Grid
from xnatpic.roi.masks import GriddedMasks

__all__ = ["AUTO_ROI", "foreground_mask", "otsu_threshold"]

#: Name of the automatic ROI.
AUTO_ROI = "foreground"


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of the finite values, by :func:`xnatpic.analysis.mask.otsu_threshold`;
    an image without two distinct finite values is an error here (no ROI can be drawn).

    Parameters
    ----------
    values : numpy.ndarray
        Any shape; NaN and inf are ignored.
    bins : int
        Histogram bins.

    Returns
    -------
    float
        Values strictly above it are foreground.

    Raises
    ------
    RoiError
        When fewer than two distinct finite values exist.

    References
    ----------
    N. Otsu, IEEE Trans. Syst. Man Cybern. 9 (1979) 62-66, doi:10.1109/TSMC.1979.4310076

    Examples
    --------
    >>> t = otsu_threshold(np.array([1.0] * 50 + [9.0] * 50))
    >>> 1.0 <= t < 9.0
    True
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        raise RoiError("automatic mask: the image has fewer than two distinct finite "
                       "values, no foreground can be told from background")
    return mask_otsu_threshold(v, bins)  # the one Otsu routine (xnatpic.analysis.mask)


def foreground_mask(image: np.ndarray, affine: np.ndarray, *, source: str,
                    frame_of_reference_uid: str | None = None) -> GriddedMasks:
    """One ROI ``foreground``: voxels above Otsu's threshold, holes filled slice by slice.

    Parameters
    ----------
    image : numpy.ndarray, shape (ni, nj, nk) or (ni, nj, nk, n)
        Only the first volume of a 4-D image is used; NaN counts as background.
    affine : numpy.ndarray, shape (4, 4)
        Voxel to RAS.
    source : str
        What the image is, for messages and provenance.
    frame_of_reference_uid : str, optional

    Returns
    -------
    GriddedMasks

    Raises
    ------
    RoiError
        When the image is constant or all NaN.
    """
    img = np.asarray(image, dtype=np.float64)
    while img.ndim > 3:
        img = img[..., 0]
    if img.ndim == 2:
        img = img[..., None]
    try:
        threshold = otsu_threshold(img)
    except RoiError as exc:
        raise RoiError(f"{source}: {exc}") from exc
    mask = np.nan_to_num(img, nan=-np.inf) > threshold
    for k in range(mask.shape[2]):  # 2-D: a 3-D fill would see thin stacks as all border
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return GriddedMasks({AUTO_ROI: mask}, Grid(img.shape, affine),
                        f"auto (Otsu > {threshold:.6g} on {source})", frame_of_reference_uid)

"""The NIfTI-1 single-file header (348 bytes + 4-byte extension flag), built with numpy.

The writer needs no image library at run time: importing nibabel costs more than
converting a small study (it imports pydicom and every format it reads). The bytes are
those nibabel writes for ``Nifti1Image(data, affine)`` with the same sform, qform,
units, dim_info, pixdim[4], description and scaling (a test compares them): the qform
quaternion is nibabel's (polar decomposition of the rotation, then the quaternion of the
eigenvector of largest eigenvalue), kept even when qform_code is 0.
"""

from __future__ import annotations

import numpy as np

from xnatpic.errors import ConversionError

__all__ = ["HEADER_BYTES", "NIFTI_TYPES", "XFORM_SCANNER", "nifti1_header"]

#: NIFTI_XFORM_SCANNER_ANAT: the scanner's patient coordinates, as ParaVision reports them.
XFORM_SCANNER = 1
#: numpy type → (NIfTI datatype code, bitpix).
NIFTI_TYPES: dict[str, tuple[int, int]] = {
    "u1": (2, 8), "i2": (4, 16), "i4": (8, 32), "f4": (16, 32),
}
#: sizeof_hdr (348) + the extension flag: voxels start here (vox_offset).
HEADER_BYTES = 352
#: NIFTI_UNITS_MM | NIFTI_UNITS_SEC.
_MM_SEC = 2 | 8
#: slice_dim = 2 (third axis) in dim_info bits 4-5 (1-based).
_SLICE_DIM_INFO = 3 << 4

_HEADER = np.dtype([
    ("sizeof_hdr", "<i4"), ("data_type", "S10"), ("db_name", "S18"), ("extents", "<i4"),
    ("session_error", "<i2"), ("regular", "S1"), ("dim_info", "u1"), ("dim", "<i2", (8,)),
    ("intent_p1", "<f4"), ("intent_p2", "<f4"), ("intent_p3", "<f4"),
    ("intent_code", "<i2"), ("datatype", "<i2"), ("bitpix", "<i2"), ("slice_start", "<i2"),
    ("pixdim", "<f4", (8,)), ("vox_offset", "<f4"), ("scl_slope", "<f4"),
    ("scl_inter", "<f4"), ("slice_end", "<i2"), ("slice_code", "u1"),
    ("xyzt_units", "u1"), ("cal_max", "<f4"), ("cal_min", "<f4"),
    ("slice_duration", "<f4"), ("toffset", "<f4"), ("glmax", "<i4"), ("glmin", "<i4"),
    ("descrip", "S80"), ("aux_file", "S24"), ("qform_code", "<i2"), ("sform_code", "<i2"),
    ("quatern_b", "<f4"), ("quatern_c", "<f4"), ("quatern_d", "<f4"),
    ("qoffset_x", "<f4"), ("qoffset_y", "<f4"), ("qoffset_z", "<f4"),
    ("srow_x", "<f4", (4,)), ("srow_y", "<f4", (4,)), ("srow_z", "<f4", (4,)),
    ("intent_name", "S16"), ("magic", "S4"),
])
assert _HEADER.itemsize == 348


def _quaternion(rotation: np.ndarray) -> np.ndarray:
    """(b, c, d) of the unit quaternion of a proper rotation (nibabel's mat2quat)."""
    qxx, qyx, qzx, qxy, qyy, qzy, qxz, qyz, qzz = rotation.flat
    k = np.array([
        [qxx - qyy - qzz, 0, 0, 0],
        [qyx + qxy, qyy - qxx - qzz, 0, 0],
        [qzx + qxz, qzy + qyz, qzz - qxx - qyy, 0],
        [qyz - qzy, qzx - qxz, qxy - qyx, qxx + qyy + qzz],
    ]) / 3.0
    values, vectors = np.linalg.eigh(k)
    q = vectors[[3, 0, 1, 2], np.argmax(values)]
    if q[0] < 0:
        q *= -1
    return q[1:]


def nifti1_header(shape: tuple[int, ...], dtype: np.dtype, affine: np.ndarray, *,
                  qform: bool, repetition_s: float | None, descrip: bytes,
                  scaling: tuple[float, float] | None) -> bytes:
    """The 352 bytes before the voxels of a ``.nii`` file.

    Parameters
    ----------
    shape : tuple of int
        (x, y, z) or (x, y, z, t).
    dtype : numpy.dtype
        Voxel type (uint8, int16, int32 or float32), written little endian.
    affine : numpy.ndarray, shape (4, 4)
        Voxel → RAS mm: the sform (code 1) and, when ``qform``, the qform (code 1).
    qform : bool
        Set qform_code 1 (the voxel axes are orthogonal), else 0.
    repetition_s : float or None
        pixdim[4] of a 4D file (1 when None).
    descrip : bytes
        The description (at most 79 bytes are kept).
    scaling : (slope, intercept) or None
        scl_slope and scl_inter; None writes NaN (no scaling).

    Raises
    ------
    ConversionError
        When ``dtype`` has no NIfTI-1 code here.
    """
    code = NIFTI_TYPES.get(np.dtype(dtype).str[1:])
    if code is None:
        raise ConversionError(f"no NIfTI-1 data type for {np.dtype(dtype)}")
    h = np.zeros((), dtype=_HEADER)
    h["sizeof_hdr"] = 348
    h["dim_info"] = _SLICE_DIM_INFO
    h["dim"] = [len(shape), *shape, *([1] * (7 - len(shape)))]
    h["datatype"], h["bitpix"] = code
    affine = np.asarray(affine, dtype=np.float64)
    rzs = affine[:3, :3]
    zooms = np.sqrt(np.sum(rzs * rzs, axis=0))
    rotation = rzs / zooms
    qfac = 1.0
    if np.linalg.det(rotation) <= 0:
        qfac = -1.0
        rotation[:, -1] *= -1
    p, _, qs = np.linalg.svd(rotation)
    h["pixdim"] = [qfac, *zooms, 1.0, 1.0, 1.0, 1.0]
    if len(shape) == 4 and repetition_s:
        h["pixdim"][4] = repetition_s
    h["vox_offset"] = HEADER_BYTES
    h["scl_slope"], h["scl_inter"] = scaling if scaling is not None else (np.nan, np.nan)
    h["xyzt_units"] = _MM_SEC
    h["descrip"] = descrip[:79]
    h["qform_code"] = XFORM_SCANNER if qform else 0
    h["sform_code"] = XFORM_SCANNER
    h["quatern_b"], h["quatern_c"], h["quatern_d"] = _quaternion(p @ qs)
    h["qoffset_x"], h["qoffset_y"], h["qoffset_z"] = affine[:3, 3]
    h["srow_x"], h["srow_y"], h["srow_z"] = affine[0], affine[1], affine[2]
    h["magic"] = b"n+1"
    return h.tobytes() + b"\0\0\0\0"

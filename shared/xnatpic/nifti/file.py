"""One NIfTI-1 file on disk: the compressions and the writer of an image held in memory.

The converter streams a reco plane by plane through :func:`write_file`
(:mod:`xnatpic.nifti.writer`); the analysis steps write their maps, already in memory,
with :func:`write_nifti_array`. Both use the header of
:func:`~xnatpic.nifti.header.nifti1_header`, so no image library is imported to write
NIfTI. Compression (:data:`COMPRESSIONS`): ``fast`` (the default) is ISA-L's deflate
level 1, ``best`` zlib level 9, ``none`` an uncompressed ``.nii``; both gzip kinds are
single-member gzip files with mtime 0 (the same input gives the same bytes).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from isal import igzip

from xnatpic.nifti.header import nifti1_header

__all__ = ["COMPRESSIONS", "DEFAULT_COMPRESSION", "orthogonal", "write_file",
           "write_nifti_array"]

#: ``--nifti-compression`` → gzip writer class and level (None: uncompressed ``.nii``).
#: benchmarks/bench_nifti.py measures their time and size.
COMPRESSIONS: dict[str, tuple[type, int] | None] = {
    "none": None, "fast": (igzip.IGzipFile, 1), "best": (gzip.GzipFile, 9)}
DEFAULT_COMPRESSION = "fast"


def orthogonal(affine: np.ndarray) -> bool:
    """Whether the voxel axes of ``affine`` are orthogonal (then the qform can hold it)."""
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return bool(np.allclose(axes.T @ axes, np.eye(3), atol=1e-4))


def write_file(path: Path, compressor: tuple[type, int] | None,
               write: Callable[[BinaryIO], None]) -> None:
    """Open ``path`` (gzip by ``compressor``, a :data:`COMPRESSIONS` value, or plain) and
    let ``write`` fill it."""
    with open(path, "wb") as raw:
        if compressor is None:
            write(raw)
            return
        kind, level = compressor
        with kind(filename=path.name, mode="wb", compresslevel=level, fileobj=raw,
                  mtime=0) as f:
            write(f)


def write_nifti_array(data: np.ndarray, affine: np.ndarray, path: Path, *,
                      descrip: str = "", compression: str = DEFAULT_COMPRESSION) -> Path:
    """Write an image held in memory, (x, y, z) or (x, y, z, t), as one NIfTI-1 file.

    The header of a converted reco (:func:`~xnatpic.nifti.header.nifti1_header`): sform
    = ``affine`` (voxel → RAS mm, code 1), qform code 1 unless the voxel axes are not
    orthogonal, units mm and s, pixdim[4] = 1, no scaling (``scl_slope`` NaN); the
    voxels in ``data``'s own type (uint8, int16, int32 or float32), little endian.

    Parameters
    ----------
    data : numpy.ndarray
        The voxels.
    affine : numpy.ndarray, shape (4, 4)
    path : Path
        The file (``.nii.gz``; ``.nii`` with ``compression="none"``); its folder is made.
    descrip : str
        The header's description (at most 79 bytes are kept).
    compression : {"fast", "best", "none"}
        A :data:`COMPRESSIONS` key.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConversionError
        When ``data``'s type has no NIfTI-1 code here.
    """
    voxels = np.asarray(data, dtype=np.dtype(data.dtype).newbyteorder("<"))
    header = nifti1_header(voxels.shape, voxels.dtype, affine, qform=orthogonal(affine),
                           repetition_s=None, descrip=descrip.encode(), scaling=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def fill(f: BinaryIO) -> None:
        f.write(header)
        f.write(voxels.tobytes(order="F"))

    write_file(path, COMPRESSIONS[compression], fill)
    return path

"""A minimal PNG writer: 8-bit RGB images straight from numpy (or indices into a palette of
RGB colours), compressed with zlib.

Only what the previews need (one IDAT chunk, filter type 0 on every row, no interlace,
no ancillary chunks); any PNG decoder reads the result.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["encode_png", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


#: zlib level of the previews: on the colour mosaics level 1 is as small as 6 (often
#: smaller) in a third of the time (0.004 against 0.013 s for a 776x486 mosaic).
LEVEL = 1


def encode_png(image: np.ndarray, level: int = LEVEL, *,
               palette: np.ndarray | None = None) -> bytes:
    """The PNG bytes of an image.

    Parameters
    ----------
    image : ndarray of uint8, shape (rows, columns, 3)
        Rows top to bottom, red, green, blue; with ``palette``, an integer array (rows,
        columns) of indices into it.
    level : int
        zlib compression level (0-9).
    palette : ndarray of uint8, shape (colours, 3), optional
        The colour of each index (the file is RGB all the same: each pixel is written
        as its colour).

    Returns
    -------
    bytes
    """
    image = np.asarray(image)
    if palette is not None:
        palette = np.asarray(palette)
        if (image.ndim != 2 or image.dtype.kind not in "ui" or palette.dtype != np.uint8
                or palette.ndim != 2 or palette.shape[1] != 3):
            raise ValueError(f"encode_png: expected integer (rows, columns) indices and a "
                             f"uint8 (colours, 3) palette, got {image.dtype} {image.shape}, "
                             f"{palette.dtype} {palette.shape}")
        if image.size and not 0 <= int(image.min()) <= int(image.max()) < len(palette):
            raise ValueError(f"encode_png: indices outside the {len(palette)} colours")
    elif image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png: expected uint8 (rows, columns, 3), got {image.dtype} "
                         f"{image.shape}")
    rows, columns = image.shape[:2]
    raw = np.empty((rows, 1 + 3 * columns), dtype=np.uint8)
    raw[:, 0] = 0  # filter byte 0 per row
    pixels = raw[:, 1:].reshape(rows, columns, 3)
    if palette is None:
        pixels[...] = image
    else:  # the colours gathered straight into the rows (indices checked above)
        np.take(palette, image, axis=0, out=pixels, mode="clip")
    header = struct.pack(">IIBBBBB", columns, rows, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b""))


def write_png(image: np.ndarray, path: Path, *, palette: np.ndarray | None = None) -> Path:
    """Write ``image`` (with ``palette``: see :func:`encode_png`) to ``path`` (folders
    created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(image, palette=palette))
    return path

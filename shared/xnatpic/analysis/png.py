"""A minimal PNG writer: 8-bit RGB images straight from numpy, compressed with zlib.

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


def encode_png(rgb: np.ndarray, level: int = LEVEL) -> bytes:
    """The PNG bytes of an image.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (rows, columns, 3)
        Rows top to bottom, red, green, blue.
    level : int
        zlib compression level (0-9).

    Returns
    -------
    bytes
    """
    image = np.asarray(rgb)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"encode_png: expected uint8 (rows, columns, 3), got {image.dtype} "
                         f"{image.shape}")
    rows, columns = image.shape[:2]
    raw = np.zeros((rows, 1 + 3 * columns), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = image.reshape(rows, 3 * columns)
    header = struct.pack(">IIBBBBB", columns, rows, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _chunk(b"IEND", b""))


def write_png(rgb: np.ndarray, path: Path) -> Path:
    """Write ``rgb`` (see :func:`encode_png`) to ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(rgb))
    return path

"""The ``2dseq`` image file: a lazy, memory-mapped stack of frames with per-frame scaling.

Values on disk are stored integers or floats; the real value of frame ``f`` is
``stored × VisuCoreDataSlope[f] + VisuCoreDataOffs[f]``. Nothing is read until a frame
is asked for, and the byte count is checked against the header before any reshaping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xnatpic.errors import ParaVisionError

__all__ = ["WORD_TYPES", "FrameStack", "word_dtype"]

#: VisuCoreWordType → numpy type code (byte order added from VisuCoreByteOrder).
WORD_TYPES: dict[str, str] = {
    "_8BIT_UNSGN_INT": "u1",
    "_16BIT_SGN_INT": "i2",
    "_32BIT_SGN_INT": "i4",
    "_32BIT_FLOAT": "f4",
}

_BYTE_ORDERS = {"littleEndian": "<", "bigEndian": ">"}


def word_dtype(word_type: str, byte_order: str = "littleEndian", *, path: str = "") -> np.dtype:
    """Return the numpy dtype of a ParaVision word type and byte order.

    Raises
    ------
    ParaVisionError
        For a word type or byte order ParaVision does not define (corrupt data: the reco
        fails, it is not skipped).
    """
    code = WORD_TYPES.get(word_type)
    if code is None:
        raise ParaVisionError(
            f"{path}: unknown VisuCoreWordType {word_type!r} "
            f"(expected one of {', '.join(WORD_TYPES)})"
        )
    order = _BYTE_ORDERS.get(byte_order)
    if order is None:
        raise ParaVisionError(
            f"{path}: unknown VisuCoreByteOrder {byte_order!r} "
            "(expected littleEndian or bigEndian)"
        )
    return np.dtype(order + code)


@dataclass
class FrameStack:
    """Frames of a 2dseq file, read lazily.

    Parameters
    ----------
    path : Path
        The 2dseq file.
    dtype : numpy.dtype
        Stored type, with byte order.
    frame_shape : tuple of int
        Shape of one frame in C order: ``(rows, columns)`` for 2D, ``(z, rows, columns)``
        for 3D frames (the first VisuCoreSize dimension varies fastest on disk).
    frame_count : int
        Number of frames (VisuCoreFrameCount).
    slopes, offsets : numpy.ndarray, shape (frame_count,)
        Per-frame scaling to real values.
    """

    path: Path
    dtype: np.dtype
    frame_shape: tuple[int, ...]
    frame_count: int
    slopes: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        expected = self.nbytes
        if not self.path.is_file():
            what = "missing" if not self.path.exists() else "not a regular file"
            raise ParaVisionError(f"{self.path}: 2dseq is {what}")
        actual = self.path.stat().st_size
        if actual != expected:
            kind = "truncated" if actual < expected else "larger than its header says"
            raise ParaVisionError(
                f"{self.path}: 2dseq is {kind}: {actual} bytes on disk, expected {expected} "
                f"({self.frame_count} frames of {'x'.join(map(str, self.frame_shape))} "
                f"{self.dtype.name})"
            )
        if self.frame_count == 0:
            raise ParaVisionError(f"{self.path}: the reco has zero frames")
        scaling = (("VisuCoreDataSlope", self.slopes), ("VisuCoreDataOffs", self.offsets))
        for name, values in scaling:
            if values.shape != (self.frame_count,):
                raise ParaVisionError(
                    f"{self.path}: {name} has {values.size} values for {self.frame_count} frames"
                )

    @property
    def shape(self) -> tuple[int, ...]:
        """``(frame_count, *frame_shape)``."""
        return (self.frame_count, *self.frame_shape)

    @property
    def nbytes(self) -> int:
        """Size of the 2dseq file the header implies, in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def stored(self) -> np.ndarray:
        """All stored values as a read-only memory map of shape :attr:`shape`."""
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape)

    def _read(self, start: int, shape: tuple[int, ...]) -> np.ndarray:
        """``prod(shape)`` stored values from value number ``start``, native byte order.

        One read of just those bytes (no memory map of the whole file to set up per call:
        writers that stream a series frame by frame call this once per image).
        """
        count = int(np.prod(shape, dtype=np.int64))
        values = np.fromfile(self.path, dtype=self.dtype, count=count,
                             offset=start * self.dtype.itemsize)
        if values.size != count:
            raise ParaVisionError(f"{self.path}: 2dseq ended before value {start + count} "
                                  "(the file changed while it was read)")
        return values.reshape(shape).astype(self.dtype.newbyteorder("="), copy=False)

    def stored_frame(self, index: int) -> np.ndarray:
        """Stored values of one frame (native byte order), reading only that frame."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} of {self.frame_count}")
        size = int(np.prod(self.frame_shape, dtype=np.int64))
        return self._read(index * size, self.frame_shape)

    def stored_plane(self, index: int, plane: int) -> np.ndarray:
        """Stored values of one plane of a 3D frame, reading only that plane."""
        depth, *plane_shape = self.frame_shape
        if not (0 <= index < self.frame_count and 0 <= plane < depth):
            raise IndexError(f"plane {plane} of frame {index} ({self.frame_count} frames "
                             f"of {depth} planes)")
        size = int(np.prod(plane_shape, dtype=np.int64))
        return self._read((index * depth + plane) * size, tuple(plane_shape))

    def frame(self, index: int, dtype: type = np.float64) -> np.ndarray:
        """Real values of frame ``index``: stored × slope + offset."""
        stored = self.stored_frame(index).astype(dtype)
        return stored * dtype(self.slopes[index]) + dtype(self.offsets[index])

    def frames(self, dtype: type = np.float32) -> np.ndarray:
        """Real values of every frame, shape :attr:`shape` (reads the whole file)."""
        data = np.asarray(self.stored(), dtype=dtype)
        expand = (slice(None),) + (None,) * len(self.frame_shape)
        return data * self.slopes.astype(dtype)[expand] + self.offsets.astype(dtype)[expand]

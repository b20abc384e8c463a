"""Frames to 2dseq bytes, with ParaVision's per-frame slope and offset.

A reconstructed value is ``stored × VisuCoreDataSlope[f] + VisuCoreDataOffs[f]`` for frame
``f``. Integer storage maps each frame (or the whole scan) onto the signed 16-bit range;
float storage keeps the values with slope 1 and offset 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xnatpic.errors import XnatpicError

__all__ = ["SCALINGS", "WORD_TYPES", "Stored", "encode_frames"]

#: numpy dtype (little endian) of each VisuCoreWordType the phantom writes.
WORD_TYPES: dict[str, str] = {"_16BIT_SGN_INT": "<i2", "_32BIT_FLOAT": "<f4"}
_INT16_TOP = 32766.0


@dataclass(frozen=True)
class Stored:
    """A scan's frames as stored.

    Attributes
    ----------
    data : numpy.ndarray, shape (frames, rows, columns)
        The stored numbers, in the 2dseq dtype.
    slope, offset : numpy.ndarray, shape (frames,)
        VisuCoreDataSlope and VisuCoreDataOffs.
    minimum, maximum : numpy.ndarray, shape (frames,)
        VisuCoreDataMin and VisuCoreDataMax: extremes of the reconstructed values.
    """

    data: np.ndarray
    slope: np.ndarray
    offset: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray

    def values(self) -> np.ndarray:
        """The reconstructed values, stored × slope + offset, float64."""
        return self.data * self.slope[:, None, None] + self.offset[:, None, None]

    def tobytes(self) -> bytes:
        """The 2dseq file content (frames in order, first index fastest in each frame)."""
        return np.ascontiguousarray(self.data).tobytes()


def _global(fmin: np.ndarray, fmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = max(float(fmax.max()), 1e-12)
    return np.full(fmax.shape, top / _INT16_TOP), np.zeros(fmax.shape)


def _per_frame(fmin: np.ndarray, fmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(fmax, 1e-12) / _INT16_TOP, np.zeros(fmax.shape)


def _per_frame_offset(fmin: np.ndarray, fmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    span = np.maximum(fmax - fmin, 1e-12)
    return span / (2.0 * _INT16_TOP), (fmax + fmin) / 2.0


#: Integer scalings: (frame minima, frame maxima) -> (slopes, offsets).
SCALINGS: dict[str, Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "global": _global,
    "per_frame": _per_frame,
    "per_frame_offset": _per_frame_offset,
}


def encode_frames(frames: np.ndarray, word_type: str, scaling: str) -> Stored:
    """Store frames as ParaVision would.

    Parameters
    ----------
    frames : numpy.ndarray, shape (frames, rows, columns)
        Reconstructed values.
    word_type : str
        A key of :data:`WORD_TYPES`.
    scaling : str
        A key of :data:`SCALINGS` (ignored for float storage).

    Returns
    -------
    Stored

    Raises
    ------
    XnatpicError
        For an unknown word type or scaling.
    """
    if word_type not in WORD_TYPES:
        raise XnatpicError(f"word type {word_type!r} not supported; use one of {list(WORD_TYPES)}")
    dtype = np.dtype(WORD_TYPES[word_type])
    frames = np.asarray(frames, dtype=float)
    if dtype.kind == "f":
        data = frames.astype(dtype)
        ones = np.ones(frames.shape[0])
        stored = Stored(data, ones, np.zeros_like(ones), ones, ones)
    else:
        if scaling not in SCALINGS:
            raise XnatpicError(f"scaling {scaling!r} not supported; use one of {list(SCALINGS)}")
        fmin = frames.min(axis=(1, 2))
        fmax = frames.max(axis=(1, 2))
        slope, offset = SCALINGS[scaling](fmin, fmax)
        scaled = np.rint((frames - offset[:, None, None]) / slope[:, None, None])
        data = np.clip(scaled, -32767, 32767).astype(dtype)
        stored = Stored(data, slope, offset, slope, slope)
    values = stored.values()
    return Stored(
        stored.data, stored.slope, stored.offset, values.min(axis=(1, 2)), values.max(axis=(1, 2))
    )

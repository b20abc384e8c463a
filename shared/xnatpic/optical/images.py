"""Lazy TIFF images of a Living Image folder, read with Pillow (a matplotlib dependency).

Opening reads only the TIFF header (size, sample format); pixels are read on
:meth:`LazyTiff.read`. Living Image writes single-page grey TIFFs: 16-bit unsigned
counts for the CCD images, 8- or 16-bit grey for the photograph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xnatpic.optical.errors import OpticalError

__all__ = ["LazyTiff"]

#: numpy dtype per Pillow mode of a single-sample image.
_MODES = {"L": np.uint8, "I;16": np.uint16, "I;16L": np.uint16, "I;16B": np.uint16,
          "I": np.int32, "F": np.float32}


def _open(path: Path):  # -> PIL.Image.Image
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except FileNotFoundError as exc:
        raise OpticalError(f"{path}: image named in the Living Image text file is missing"
                           ) from exc
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise OpticalError(f"{path}: not a readable TIFF ({exc})") from exc


@dataclass(frozen=True)
class LazyTiff:
    """A grey TIFF whose pixels are read on demand.

    Attributes
    ----------
    path : Path
        The file.
    shape : tuple of int
        (rows, columns).
    dtype : numpy.dtype
        Pixel type.
    """

    path: Path
    shape: tuple[int, int]
    dtype: np.dtype

    @classmethod
    def open(cls, path: Path) -> LazyTiff:
        """Read the header of ``path``.

        Raises
        ------
        OpticalError
            When the file is missing, not a TIFF, multi-page or not single-sample grey.
        """
        path = Path(path)
        with _open(path) as image:
            if getattr(image, "n_frames", 1) != 1:
                raise OpticalError(f"{path}: {image.n_frames} pages; Living Image images "
                                   "have one")
            dtype = _MODES.get(image.mode)
            if dtype is None:
                raise OpticalError(f"{path}: pixel mode {image.mode!r}; expected grey "
                                   f"({', '.join(_MODES)})")
            columns, rows = image.size
        return cls(path, (rows, columns), np.dtype(dtype))

    def read(self) -> np.ndarray:
        """The pixels, shape :attr:`shape`, dtype :attr:`dtype`.

        Raises
        ------
        OpticalError
            When the pixel data cannot be decoded (truncated file...).
        """
        with _open(self.path) as image:
            try:
                array = np.asarray(image, dtype=self.dtype)
            except (OSError, ValueError, SyntaxError) as exc:
                raise OpticalError(f"{self.path}: pixel data unreadable ({exc})") from exc
        if array.shape != self.shape:
            raise OpticalError(f"{self.path}: decoded {array.shape}, header says {self.shape}")
        return array

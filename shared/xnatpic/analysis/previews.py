"""Previews of the map steps: maps with their voxel status, status maps and the DTI
principal direction (PNG), the CEST Z-spectrum (SVG).

A map, status or direction preview is one mosaic PNG of every slice (4 per row, slice 1
top left), coloured straight from numpy through a 256-entry lookup table
(:mod:`xnatpic.analysis.colormaps`), upscaled nearest-neighbour and written by
:mod:`xnatpic.analysis.png`. Slices are shown as the DICOM viewer shows the stored grid:
rows of the image down, columns across. What a picture cannot say without a plotting
library (the title, slice numbers from 1, the colour bar with its range and unit, the
legend of the status colours) is returned as a :class:`Preview` and drawn by the HTML
report (:mod:`xnatpic.analysis.report`). Only the Z-spectrum is a true plot: an SVG
written by :mod:`xnatpic.analysis.svg_plot`, so no step imports a plotting library.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic.analysis.colormaps import lookup_table
from xnatpic.analysis.png import write_png
from xnatpic.analysis.stats import linear_quantiles, partially_sorted
from xnatpic.analysis.svg_plot import line_plot_svg
from xnatpic.models.results import VOXEL_STATUS_NAMES, VoxelStatus

__all__ = ["ColourBar", "Preview", "display_range", "write_direction_preview",
           "write_preview", "write_status_preview", "write_zspectrum_plot"]

#: Colour of each voxel status (index = code): outside dark, fitted green, long/short
#: blues, no signal grey, failures warm.
_STATUS_COLOURS = ("#202020", "#4daf4a", "#377eb8", "#80b1d3", "#999999", "#e41a1c",
                   "#ff7f00", "#a65628", "#f781bf", "#984ea3")

#: Overlay colours on a map preview: beyond range (long / short) and failed voxels.
_OVERLAY = {"beyond range": "#00e5ff", "no signal": "#9e9e9e", "failed": "#ff00ff"}

#: Colour of voxels without a value and no status (outside the mask): dark grey.
_NO_VALUE = "#262626"

#: Colour maps by unit; diverging for signed quantities.
_CMAPS = {"ms": "viridis", "mm²/s": "magma", "ppm": "RdBu_r", "ratio": "inferno"}

#: The display range's percentiles (2, 25, 75, 98 %) as fractions, as np.percentile
#: divides them.
_PERCENTILES = (2 / 100, 25 / 100, 75 / 100, 98 / 100)

#: Slices per mosaic row.
_COLUMNS = 4
#: Smallest drawn side of a slice (pixels): small matrices are upscaled by a whole factor.
_TILE = 192
#: White border (pixels) right of and below each slice.
_GAP = 2


@dataclass(frozen=True)
class ColourBar:
    """The colour scale of a map preview: ``colormap`` (a
    :data:`~xnatpic.analysis.colormaps.COLORMAP_NAMES` entry) from ``low`` to ``high``
    in ``unit``."""

    colormap: str
    low: float
    high: float
    unit: str


@dataclass(frozen=True)
class Preview(os.PathLike):
    """A mosaic PNG and what the report draws around it.

    Attributes
    ----------
    path : Path
        The PNG (the object is path-like: ``Path(preview)`` is this path).
    title : str
    slices : int
        Slices in the mosaic, numbered from 1, :attr:`columns` per row.
    columns : int
    colour_bar : ColourBar, optional
    legend : tuple of (str, str)
        (label, ``#rrggbb``) of the colours present besides the colour bar.
    note : str
        How to read the colours, when not by a bar or legend.
    """

    path: Path
    title: str
    slices: int
    columns: int
    colour_bar: ColourBar | None = None
    legend: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def describe(self) -> dict[str, Any]:
        """What the report draws around the PNG, as JSON (``stats.json`` keeps it, so the
        session index draws the same scale): ``slices``, ``columns``, ``colour_bar``
        (``colormap``, ``low``, ``high``, ``unit``; None), ``legend`` and ``note``."""
        bar = self.colour_bar
        return {"slices": self.slices, "columns": self.columns,
                "colour_bar": None if bar is None else {
                    "colormap": bar.colormap, "low": bar.low, "high": bar.high,
                    "unit": bar.unit},
                "legend": [list(item) for item in self.legend], "note": self.note}

    @classmethod
    def described(cls, path: Path, title: str, description: dict[str, Any]) -> Preview:
        """The preview :meth:`describe` wrote, its PNG at ``path``.

        Raises
        ------
        KeyError, TypeError, ValueError
            When ``description`` is not what :meth:`describe` writes.
        """
        bar = description.get("colour_bar")
        return cls(path=Path(path), title=title, slices=int(description["slices"]),
                   columns=int(description["columns"]),
                   colour_bar=None if bar is None else ColourBar(
                       str(bar["colormap"]), float(bar["low"]), float(bar["high"]),
                       str(bar["unit"])),
                   legend=tuple((str(label), str(colour))
                                for label, colour in description.get("legend") or ()),
                   note=str(description.get("note") or ""))


def display_range(values: np.ndarray, unit: str, *, signed: bool | None = None,
                  valid: np.ndarray | None = None, fences: bool = False
                  ) -> tuple[float, float]:
    """Robust display range: the 2nd-98th percentile of the valid voxels (within Tukey's
    fences, quartiles ∓ 1.5 IQR, with ``fences``).

    Parameters
    ----------
    values : ndarray
    unit : str
        ``ppm`` maps are signed (symmetric about 0).
    signed : bool, optional
        Symmetric about 0 (B0, MTRasym); default: for ppm, or when the percentiles
        straddle 0.
    valid : ndarray of bool, optional
        The voxels that set the range (default: every finite voxel); failed and
        beyond-range voxels are left out so a few extreme values (a ratio whose
        denominator nears 0) do not flatten the map into noise.
    fences : bool
        Clip the range to Tukey's fences: for a ratio of two small differences (the
        ratiometric CEST index), whose tails are noise over noise. Not for maps of
        several compartments (T2, FA), whose minor compartments lie beyond the fences.
    """
    pick = np.isfinite(values) if valid is None else (np.asarray(valid) & np.isfinite(values))
    finite = values[pick]
    if finite.size == 0:
        finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    # np.percentile(finite, [2, 25, 75, 98]), bit for bit, from one partition
    lo, q1, q3, hi = linear_quantiles(partially_sorted(finite, _PERCENTILES), _PERCENTILES,
                                      finite.dtype)
    if fences:  # heavy tails do not set the scale
        lo, hi = max(lo, q1 - 1.5 * (q3 - q1)), min(hi, q3 + 1.5 * (q3 - q1))
    if signed is None:
        signed = unit == "ppm" or (lo < 0 < hi)
    if signed:
        edge = max(abs(lo), abs(hi), 1e-6)
        return -edge, edge
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-3, 1e-6)
    return lo, hi


def _rgb(colour: str) -> np.ndarray:
    """``#rrggbb`` as a uint8 triplet."""
    return np.frombuffer(bytes.fromhex(colour.lstrip("#")), dtype=np.uint8)


#: White: the border of the slices.
_WHITE = "#ffffff"

#: A map preview's palette after the 256 colours of its colour map: no value, the
#: overlays (:data:`_OVERLAY` order), the border.
_NO_VALUE_INDEX = 256
_OVERLAY_INDEX = {name: 257 + i for i, name in enumerate(_OVERLAY)}
_MAP_WHITE = 257 + len(_OVERLAY)
_MAP_EXTRA = np.stack([_rgb(c) for c in (_NO_VALUE, *_OVERLAY.values(), _WHITE)])

#: The status codes painted over a map, by :data:`_OVERLAY` name.
_OVERLAY_CODES = {"beyond range": (VoxelStatus.LONG, VoxelStatus.SHORT),
                  "no signal": (VoxelStatus.NO_SIGNAL,),
                  "failed": tuple(range(VoxelStatus.FAILED_INPUT, 256))}

#: Palette index painted over a map by status code (0: none; above every colour-map and
#: no-value index, so the larger index wins).
_OVERLAY_BY_CODE = np.zeros(256, dtype=np.uint16)
for _name, _codes in _OVERLAY_CODES.items():
    _OVERLAY_BY_CODE[list(_codes)] = _OVERLAY_INDEX[_name]

#: A status preview's palette: :data:`_STATUS_COLOURS`, then the border.
_STATUS_PALETTE = np.stack([_rgb(c) for c in (*_STATUS_COLOURS, _WHITE)])


def _slices(volume: np.ndarray) -> np.ndarray:
    """(X, Y, Z, ...) as (Z, Y, X, ...): slice k drawn with image rows down."""
    return np.swapaxes(np.moveaxis(volume, 2, 0), 1, 2)


def _mosaic_columns(n: int) -> int:
    """Slices per row of a mosaic of ``n`` slices."""
    return max(1, min(n, _COLUMNS))


def _layout(tiles: np.ndarray, fill: int) -> np.ndarray:
    """(Z, rows, columns[, 3]) slices as one mosaic image, :data:`_COLUMNS` per row, each
    upscaled (nearest neighbour) to at least :data:`_TILE` pixels with a :data:`_GAP`
    border of ``fill``."""
    n, height, width = tiles.shape[:3]
    scale = max(1, math.ceil(_TILE / max(height, width, 1)))
    cell_h, cell_w = height * scale + _GAP, width * scale + _GAP
    columns = _mosaic_columns(n)
    rows = max(1, math.ceil(n / columns))
    depth = tiles.shape[3:]
    image = np.full((rows * cell_h, columns * cell_w, *depth), fill, dtype=tiles.dtype)
    for k in range(n):
        top, left = (k // columns) * cell_h, (k % columns) * cell_w
        tile = tiles[k] if scale == 1 else tiles[k].repeat(scale, axis=0).repeat(scale, axis=1)
        image[top:top + height * scale, left:left + width * scale] = tile
    return image


def _preview(path: Path, n: int, *, title: str, colour_bar: ColourBar | None = None,
             legend: tuple[tuple[str, str], ...] = (), note: str = "") -> Preview:
    return Preview(path=Path(path), title=title, slices=n, columns=_mosaic_columns(n),
                   colour_bar=colour_bar, legend=legend, note=note)


def _colour_indices(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Lookup-table index (0-255, uint16) of each value: ``round(clip((v - low) / (high -
    low), 0, 1) * 255)`` in the values' type; 0 where the value is not finite."""
    finite = np.isfinite(values)
    fraction = np.where(finite, values, low)
    np.subtract(fraction, low, out=fraction)
    np.divide(fraction, high - low, out=fraction)
    np.clip(fraction, 0.0, 1.0, out=fraction)
    np.multiply(fraction, 255, out=fraction)
    np.rint(fraction, out=fraction)
    return fraction.astype(np.uint16)


def write_preview(values: np.ndarray, path: Path, *, title: str, unit: str,
                  status: np.ndarray | None = None, signed: bool | None = None,
                  fences: bool = False) -> Preview:
    """Write ``values`` (X, Y, Z) as a mosaic PNG of its slices.

    NaN (outside the mask) is dark grey. With ``status`` the display range comes from
    the fitted voxels only, and beyond-range (cyan), no-signal (grey) and failed
    (magenta) voxels are painted over the map, so a mostly failed map cannot pass for a
    noisy one. The returned :class:`Preview` holds the colour bar and the legend.
    """
    fitted = None if status is None else status == VoxelStatus.FITTED
    low, high = display_range(values, unit, signed=signed, valid=fitted, fences=fences)
    symmetric = low < 0 and low == -high
    colormap = "RdBu_r" if symmetric else _CMAPS.get(unit, "viridis")
    indices = _colour_indices(values, low, high)
    indices[~np.isfinite(values)] = _NO_VALUE_INDEX
    legend: list[tuple[str, str]] = []
    if status is not None:
        overlay = _OVERLAY_BY_CODE[np.asarray(status, dtype=np.uint8)]
        if overlay.any():
            for name in _OVERLAY:
                if (overlay == _OVERLAY_INDEX[name]).any():
                    legend.append((name, _OVERLAY[name]))
            np.maximum(indices, overlay, out=indices)
    palette = np.concatenate([lookup_table(colormap), _MAP_EXTRA])
    write_png(_layout(_slices(indices), _MAP_WHITE), path, palette=palette)
    return _preview(path, indices.shape[2], title=title,
                    colour_bar=ColourBar(colormap, low, high, unit), legend=tuple(legend))


def write_status_preview(status: np.ndarray, path: Path, *, title: str) -> Preview:
    """Write a per-voxel status map (X, Y, Z) of
    :class:`~xnatpic.models.results.VoxelStatus` codes as a mosaic PNG; the legend names
    the statuses present."""
    last = len(_STATUS_COLOURS) - 1
    codes = np.minimum(np.asarray(status, dtype=np.uint8), np.uint8(last))
    legend = tuple((VOXEL_STATUS_NAMES[VoxelStatus(c)], _STATUS_COLOURS[c])
                   for c in range(last + 1) if (codes == c).any())
    write_png(_layout(_slices(codes), last + 1), path, palette=_STATUS_PALETTE)
    return _preview(path, codes.shape[2], title=title, legend=legend)


def write_direction_preview(v1: np.ndarray, fa: np.ndarray, path: Path, *,
                            title: str) -> Preview:
    """Colour-by-direction map of the principal eigenvector: red, green, blue = |x|, |y|,
    |z| of V1 (image axes) weighted by FA; black outside the fitted voxels."""
    weight = np.clip(np.nan_to_num(fa, nan=0.0), 0.0, 1.0)
    rgb = np.clip(np.abs(np.nan_to_num(v1, nan=0.0)) * weight[..., None], 0.0, 1.0)
    tiles = np.rint(_slices(rgb) * 255).astype(np.uint8)
    write_png(_layout(tiles, 255), path)
    return _preview(path, tiles.shape[0], title=title,
                    note="red: x (image columns), green: y (rows), blue: z (slices); "
                         "brightness: FA")


def write_zspectrum_plot(offsets: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]],
                         path: Path, *, title: str) -> Path:
    """Z-spectrum plot (SVG): each curve's mean (line and markers) over a ±SD band
    against the saturation offset, the offset axis reversed (high ppm left) as CEST
    papers draw it.

    Parameters
    ----------
    offsets : ndarray, shape (N,)
        Saturation offsets (ppm); non-finite ones are left out.
    curves : dict
        Label -> (mean, sd), each shape (N,); non-finite values leave gaps.
    path : Path
        The ``.svg`` file (its folder is made).
    title : str
    """
    svg = line_plot_svg(offsets, curves, title=title, xlabel="saturation offset (ppm)",
                        ylabel="Z = S / S0", reverse_x=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path

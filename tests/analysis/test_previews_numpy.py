"""The previews drawn through a palette are the pictures drawn colour by colour: every
pixel of the PNG (decoded by PIL) against an RGB mosaic built directly with numpy (colour
map lookup, no-value grey, overlays painted over, slices upscaled with ``repeat``), and
the display range against ``np.percentile`` itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from xnatpic.analysis.colormaps import lookup_table
from xnatpic.analysis.png import encode_png, write_png
from xnatpic.analysis.previews import display_range, write_preview, write_status_preview
from xnatpic.models.results import VoxelStatus

_STATUS_HEX = ("#202020", "#4daf4a", "#377eb8", "#80b1d3", "#999999", "#e41a1c",
               "#ff7f00", "#a65628", "#f781bf", "#984ea3")


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def _decode(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _mosaic(tiles: np.ndarray) -> np.ndarray:
    """(Z, rows, columns, 3) slices, 4 per row, upscaled to >= 192 pixels, 2-pixel white
    border: the layout the previews promise."""
    n, height, width = tiles.shape[:3]
    scale = max(1, math.ceil(192 / max(height, width)))
    cell_h, cell_w = height * scale + 2, width * scale + 2
    columns = min(n, 4)
    image = np.full((math.ceil(n / columns) * cell_h, columns * cell_w, 3), 255, np.uint8)
    for k in range(n):
        top, left = (k // columns) * cell_h, (k % columns) * cell_w
        image[top:top + height * scale, left:left + width * scale] = \
            tiles[k].repeat(scale, axis=0).repeat(scale, axis=1)
    return image


def _numpy_range(values: np.ndarray, valid: np.ndarray | None) -> tuple[float, float]:
    pick = np.isfinite(values) if valid is None else valid & np.isfinite(values)
    lo, _, _, hi = (float(v) for v in np.percentile(values[pick], [2, 25, 75, 98]))
    return lo, hi


def _map(rng: np.random.Generator, shape: tuple[int, int, int], dtype: type
         ) -> tuple[np.ndarray, np.ndarray]:
    values = rng.lognormal(6, 0.6, shape).astype(dtype)
    status = rng.choice(np.array([0, 1, 1, 1, 1, 1, 2, 3, 4, 6, 9], np.uint8), shape)
    values[status == 0] = np.nan
    values[(status >= 4) & (rng.random(shape) < 0.5)] = np.nan
    return values, status


@pytest.mark.parametrize("shape", [(192, 160, 9), (20, 13, 5), (7, 9, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_map_preview_pixels_equal_a_numpy_drawing(shape, dtype, tmp_path):
    values, status = _map(np.random.default_rng(shape[2]), shape, dtype)
    preview = write_preview(values, tmp_path / "m.png", title="m", unit="ms", status=status)
    fitted = status == VoxelStatus.FITTED
    low, high = _numpy_range(values, fitted)
    assert (preview.colour_bar.low, preview.colour_bar.high) == (low, high)
    volume = np.swapaxes(np.moveaxis(values, 2, 0), 1, 2)  # (Z, rows = y, columns = x)
    codes = np.swapaxes(np.moveaxis(status, 2, 0), 1, 2)
    finite = np.isfinite(volume)
    fraction = (np.where(finite, volume, low) - low) / (high - low)
    rgb = lookup_table("viridis")[np.rint(np.clip(fraction, 0.0, 1.0) * 255).astype(int)]
    rgb[~finite] = _rgb("#262626")
    rgb[(codes == 2) | (codes == 3)] = _rgb("#00e5ff")
    rgb[codes == 4] = _rgb("#9e9e9e")
    rgb[codes >= 5] = _rgb("#ff00ff")
    assert (_decode(preview.path) == _mosaic(rgb)).all()
    assert [name for name, _ in preview.legend] == ["beyond range", "no signal", "failed"]


def test_map_preview_without_status_and_without_overlays(tmp_path):
    values, status = _map(np.random.default_rng(1), (30, 20, 3), np.float32)
    for given in (None, np.where(status > 0, 1, 0).astype(np.uint8)):
        preview = write_preview(values, tmp_path / "m.png", title="m", unit="ms",
                                status=given)
        assert preview.legend == ()
        low, high = _numpy_range(values, None if given is None else given == 1)
        volume = np.swapaxes(np.moveaxis(values, 2, 0), 1, 2)
        fraction = (np.where(np.isfinite(volume), volume, low) - low) / (high - low)
        rgb = lookup_table("viridis")[np.rint(np.clip(fraction, 0, 1) * 255).astype(int)]
        rgb[~np.isfinite(volume)] = _rgb("#262626")
        assert (_decode(preview.path) == _mosaic(rgb)).all()


@pytest.mark.parametrize("shape", [(192, 160, 9), (11, 6, 6)])
def test_status_preview_pixels_equal_a_numpy_drawing(shape, tmp_path):
    status = np.random.default_rng(2).choice(
        np.array([0, 1, 1, 2, 4, 8, 9, 12], np.uint8), shape)
    preview = write_status_preview(status, tmp_path / "s.png", title="s")
    codes = np.clip(np.swapaxes(np.moveaxis(status, 2, 0), 1, 2), 0, 9)
    table = np.stack([_rgb(c) for c in _STATUS_HEX])
    assert (_decode(preview.path) == _mosaic(table[codes])).all()
    assert [colour for _, colour in preview.legend] == [_STATUS_HEX[c]
                                                       for c in (0, 1, 2, 4, 8, 9)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_display_range_is_np_percentile(dtype):
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 50, 51, 1000):
        values = rng.normal(10, 40, n).astype(dtype)
        values[rng.random(n) < 0.2] = values[0]
        lo, hi = _numpy_range(values, None)
        assert display_range(values, "ms", signed=False) == (
            (lo, hi) if hi > lo else (lo, lo + max(abs(lo) * 1e-3, 1e-6)))


def test_palette_png_is_the_rgb_png():
    rng = np.random.default_rng(4)
    palette = rng.integers(0, 256, (300, 3), dtype=np.uint8)
    indices = rng.integers(0, 300, (37, 41)).astype(np.uint16)
    assert encode_png(indices, palette=palette) == encode_png(palette[indices])
    with pytest.raises(ValueError, match="outside"):
        encode_png(indices + 300, palette=palette)


def test_palette_png_round_trip(tmp_path):
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    decoded = _decode(write_png(indices, tmp_path / "p.png", palette=palette))
    assert (decoded == palette[indices]).all()

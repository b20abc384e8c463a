"""Map previews written straight from numpy: the decoded PNG holds the expected colour at
known voxels, computed independently (matplotlib's colour maps, numpy's percentiles)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.browser import render
from xnatpic.analysis.colormaps import COLORMAP_NAMES, generate, lookup_table
from xnatpic.analysis.png import encode_png, write_png
from xnatpic.analysis.previews import (
    write_direction_preview,
    write_preview,
    write_status_preview,
)
from xnatpic.analysis.report import format_number, write_html_report
from xnatpic.models.results import VoxelStatus

X, Y, Z = 9, 6, 3  # a small, non-square matrix: upscaled, orientation visible


def _decode(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _voxel_pixel(image: np.ndarray, x: int, y: int, z: int) -> np.ndarray:
    """The RGB at the centre of voxel (x, y) of slice z in a one-row mosaic of Z slices,
    the scale and gap solved from the image size (width = Z (X s + g), height = Y s + g);
    image rows are y, columns x, slices left to right."""
    height, width = image.shape[:2]
    scale = (width // Z - height) // (X - Y)
    gap = height - Y * scale
    assert scale >= 1 and gap >= 0 and width == Z * (X * scale + gap)
    return image[y * scale + scale // 2, z * (X * scale + gap) + x * scale + scale // 2]


def _matplotlib_rgb(name: str, index: int) -> np.ndarray:
    from matplotlib import colormaps

    return np.asarray(colormaps[name](index, bytes=True)[:3]).astype(int)


def _hex(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


@pytest.fixture
def ramp() -> np.ndarray:
    """T2-like values (ms), distinct at every voxel, with one NaN (outside the mask)."""
    values = 20.0 + np.arange(X * Y * Z, dtype=float).reshape(X, Y, Z) * 1.7
    values[0, 0, 0] = np.nan
    return values


def test_lookup_tables_are_matplotlibs():
    for name in COLORMAP_NAMES:
        assert lookup_table(name).tobytes().hex() == generate(name), name


def test_png_writer_round_trip(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    decoded = _decode(write_png(rgb, tmp_path / "r.png"))
    assert decoded.shape == (17, 23, 3) and (decoded == rgb).all()
    with pytest.raises(ValueError, match="uint8"):
        encode_png(rgb.astype(np.float32))


def test_map_colours_at_known_voxels(ramp, tmp_path):
    preview = write_preview(ramp, tmp_path / "T2.png", title="T2", unit="ms")
    image = _decode(preview.path)
    finite = ramp[np.isfinite(ramp)]
    lo, hi = np.percentile(finite, [2, 98])
    assert preview.colour_bar is not None
    assert (preview.colour_bar.low, preview.colour_bar.high) == pytest.approx((lo, hi))
    for x, y, z in [(8, 0, 0), (1, 5, 0), (4, 3, 1), (0, 0, 2), (8, 5, 2), (2, 1, 1)]:
        index = int(np.rint(np.clip((ramp[x, y, z] - lo) / (hi - lo), 0, 1) * 255))
        assert (_voxel_pixel(image, x, y, z) == _matplotlib_rgb("viridis", index)).all(), \
            (x, y, z, index)
    # outside the mask: matplotlib's "0.15" grey, as the previews drew NaN before
    assert (_voxel_pixel(image, 0, 0, 0) == round(0.15 * 255)).all()


def test_status_painted_over_the_map(ramp, tmp_path):
    status = np.full(ramp.shape, VoxelStatus.FITTED, dtype=np.uint8)
    status[0, 0, 0] = VoxelStatus.OUTSIDE
    status[3, 2, 1] = VoxelStatus.FAILED_NOT_CONVERGED
    status[5, 4, 2] = VoxelStatus.LONG
    status[7, 1, 0] = VoxelStatus.NO_SIGNAL
    ramp[3, 2, 1] = np.nan
    preview = write_preview(ramp, tmp_path / "T2.png", title="T2", unit="ms", status=status)
    image = _decode(preview.path)
    assert (_voxel_pixel(image, 3, 2, 1) == (255, 0, 255)).all()  # failed: magenta
    assert (_voxel_pixel(image, 5, 4, 2) == _hex("#00e5ff")).all()  # beyond range: cyan
    assert (_voxel_pixel(image, 7, 1, 0) == _hex("#9e9e9e")).all()  # no signal: grey
    assert {label for label, _ in preview.legend} == {"failed", "beyond range", "no signal"}
    # the range comes from the fitted voxels only
    lo, hi = np.percentile(ramp[status == VoxelStatus.FITTED], [2, 98])
    index = int(np.rint(np.clip((ramp[6, 3, 1] - lo) / (hi - lo), 0, 1) * 255))
    assert (_voxel_pixel(image, 6, 3, 1) == _matplotlib_rgb("viridis", index)).all()


def test_signed_map_symmetric_diverging(tmp_path):
    values = np.linspace(-0.3, 0.5, X * Y * Z).reshape(X, Y, Z)
    preview = write_preview(values, tmp_path / "B0.png", title="B0", unit="ppm", signed=True)
    lo, hi = np.percentile(values, [2, 98])
    edge = max(abs(lo), abs(hi))
    assert preview.colour_bar is not None and preview.colour_bar.colormap == "RdBu_r"
    image = _decode(preview.path)
    for x, y, z in [(0, 0, 0), (4, 2, 1), (8, 5, 2)]:
        index = int(np.rint(np.clip((values[x, y, z] + edge) / (2 * edge), 0, 1) * 255))
        assert (_voxel_pixel(image, x, y, z) == _matplotlib_rgb("RdBu_r", index)).all()


def test_status_preview_colours(tmp_path):
    status = np.zeros((X, Y, Z), dtype=np.uint8)
    status[2:7, 1:5, :] = VoxelStatus.FITTED
    status[4, 3, 2] = VoxelStatus.FAILED_AT_BOUND
    preview = write_status_preview(status, tmp_path / "s.png", title="status")
    image = _decode(preview.path)
    assert (_voxel_pixel(image, 0, 0, 0) == _hex("#202020")).all()
    assert (_voxel_pixel(image, 2, 1, 1) == _hex("#4daf4a")).all()
    assert (_voxel_pixel(image, 4, 3, 2) == _hex("#a65628")).all()
    assert [label for label, _ in preview.legend] == [
        "outside mask", "fitted", "failed: at a fit bound"]


def test_direction_preview_colours(tmp_path):
    v1 = np.zeros((X, Y, Z, 3))
    v1[..., 0] = 1.0
    v1[2, 4, 1] = (0.0, 0.6, 0.8)
    fa = np.full((X, Y, Z), 0.5)
    fa[2, 4, 1] = 1.0
    image = _decode(write_direction_preview(v1, fa, tmp_path / "v1.png", title="V1").path)
    assert (_voxel_pixel(image, 2, 4, 1) == (0, round(0.6 * 255), round(0.8 * 255))).all()
    assert (_voxel_pixel(image, 5, 1, 2) == (round(0.5 * 255), 0, 0)).all()


def test_report_draws_slices_colour_bar_and_legend(ramp, tmp_path):
    status = np.full(ramp.shape, VoxelStatus.FITTED, dtype=np.uint8)
    status[3, 2, 1] = VoxelStatus.FAILED_NOT_CONVERGED
    preview = write_preview(ramp, tmp_path / "png" / "T2.png", title="T2 (test)", unit="ms",
                            status=status)
    stats = {"whole": {"status_counts": {}}, "slices": []}
    report = write_html_report(
        tmp_path / "report.html", title="t", subtitle="s", outcome=("complete", "done"),
        meta={}, parameters={}, sections=[{"name": "T2", "unit": "ms", "description": "d",
                                           "stats": stats, "png": preview}])
    page = render(report, screenshot=tmp_path / "shot.png")
    assert page.problems == []
    bar = preview.colour_bar
    assert bar is not None
    for text in ("T2 (test)", "slice 1", "slice 2", "slice 3", "failed",
                 f"ms: {format_number(bar.low)}", f"{format_number(bar.high)} (display range)"):
        assert text in page.text, text
    assert "slice 0" not in page.text and "slice 4" not in page.text

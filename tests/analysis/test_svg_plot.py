"""The Z-spectrum plot is an SVG of our own: read back with an XML parser, its drawn points
must map the data (offset axis reversed, Z up), gaps must stand where values are missing,
and headless Chromium must draw it, alone and inside the report."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.browser import render
from xnatpic.analysis.previews import write_zspectrum_plot
from xnatpic.analysis.report import write_html_report
from xnatpic.analysis.svg_plot import HEIGHT, WIDTH, nice_ticks, tick_label

_NS = {"s": "http://www.w3.org/2000/svg"}
#: Offsets as acquired, in no particular order (ppm).
OFFSETS = np.array([3.0, -6.0, 0.0, 1.5, -1.5, 6.0, -3.0, 0.5, -0.5, 4.5, -4.5, 2.0])


def _lorentzian_dip(offsets: np.ndarray, centre: float = 0.2, width: float = 1.6
                    ) -> np.ndarray:
    return 1.0 - 0.9 * (width / 2) ** 2 / ((width / 2) ** 2 + (offsets - centre) ** 2)


def _plot(tmp_path: Path, offsets: np.ndarray, curves: dict, name: str = "z.svg"
          ) -> tuple[Path, ET.Element]:
    path = write_zspectrum_plot(offsets, curves, tmp_path / name,
                                title="CEST <scan 7> & friends' \"data\": Z-spectrum")
    return path, ET.parse(path).getroot()


def _points(element: ET.Element) -> np.ndarray:
    return np.array([[float(v) for v in pair.split(",")]
                     for pair in element.get("points").split()])


def _of(root: ET.Element, tag: str, css: str, label: str | None = None) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{_NS['s']}}}{tag}") if e.get("class") == css
            and (label is None or e.get("data-label") == label)]


def _linear(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Slope, intercept and largest residual of b against a."""
    slope, intercept = np.polyfit(a, b, 1)
    return float(slope), float(intercept), float(np.abs(slope * a + intercept - b).max())


def test_points_map_the_data(tmp_path):
    z = _lorentzian_dip(OFFSETS)
    sd = np.full(OFFSETS.size, 0.02)
    _, root = _plot(tmp_path, OFFSETS, {"measured": (z, sd), "corrected": (z - 0.05, sd)})
    assert root.tag == f"{{{_NS['s']}}}svg"
    assert root.get("aria-label") == "CEST <scan 7> & friends' \"data\": Z-spectrum"
    assert (int(root.get("width")), int(root.get("height"))) == (WIDTH, HEIGHT) == (560, 336)
    (line,) = _of(root, "polyline", "mean", "measured")
    xy = _points(line)
    order = np.argsort(OFFSETS)
    # the points follow the offsets upwards, each further left: the axis is reversed
    assert np.all(np.diff(xy[:, 0]) < 0)
    x_slope, x_zero, x_err = _linear(OFFSETS[order], xy[:, 0])
    y_slope, y_zero, y_err = _linear(z[order], xy[:, 1])
    assert x_slope < 0 and y_slope < 0 and max(x_err, y_err) < 0.01  # linear, 2 decimals
    assert xy[:, 1].argmax() == z[order].argmin()  # the smallest Z lies lowest
    assert xy[:, 1].argmin() == z[order].argmax()
    assert xy[:, 0].argmin() == OFFSETS[order].argmax()  # the highest offset leftmost
    # the band is mean ± SD on the same scale
    (band,) = _of(root, "polygon", "band", "measured")
    edge = _points(band)
    n = OFFSETS.size
    assert np.allclose(edge[:n, 1], y_slope * (z[order] + 0.02) + y_zero, atol=0.02)
    assert np.allclose(edge[n:, 1], (y_slope * (z[order] - 0.02) + y_zero)[::-1], atol=0.02)
    assert len(_of(root, "circle", "marker", "measured")) == n
    # the second curve lies 0.05 lower: larger pixel y everywhere
    (other,) = _of(root, "polyline", "mean", "corrected")
    assert np.allclose(_points(other)[:, 1] - xy[:, 1], -0.05 * y_slope, atol=0.02)
    # ticks sit where the data mapping puts their values, and read as round numbers
    for axis, slope, zero in (("x", x_slope, x_zero), ("y", y_slope, y_zero)):
        ticks = [e for e in root.iter(f"{{{_NS['s']}}}text")
                 if e.get("class") == f"tick {axis}"]
        assert len(ticks) >= 4, axis
        for tick in ticks:
            value = float(tick.get("data-value"))
            assert float(tick.text.replace("\u2212", "-")) == pytest.approx(value)
            where = float(tick.get("x" if axis == "x" else "y")) - (0 if axis == "x" else 4)
            assert where == pytest.approx(slope * value + zero, abs=0.1), (axis, value)
    text = ET.tostring(root, encoding="unicode", method="text")
    for words in ("saturation offset (ppm)", "Z = S / S0", "CEST <scan 7> & friends' \"data\"",
                  "measured", "corrected", "\u00b1 SD"):
        assert words in text


def test_missing_values_leave_gaps(tmp_path):
    offsets = OFFSETS.copy()
    offsets[4] = np.nan  # an offset without a value: the point is left out
    z = _lorentzian_dip(OFFSETS)
    sd = np.full(OFFSETS.size, 0.03)
    order = np.argsort(OFFSETS)
    z[order[2]] = np.nan    # a mean missing inside the curve: the line breaks there
    sd[order[8]] = np.nan   # an SD missing: the band breaks, the line goes on
    _, root = _plot(tmp_path, offsets, {"m": (z, sd), "empty": (np.full(12, np.nan), sd)})
    lines = _of(root, "polyline", "mean", "m")
    finite = np.isfinite(offsets) & np.isfinite(z)
    assert len(lines) == 2
    assert sum(len(_points(e)) for e in lines) == len(_of(root, "circle", "marker", "m")) \
        == int(finite.sum())
    assert len(_of(root, "polygon", "band", "m")) == 3
    assert _of(root, "polyline", "mean", "empty") == []
    for element in root.iter():
        for key in ("points", "x", "y", "cx", "cy"):
            assert "nan" not in (element.get(key) or "").lower()


@pytest.mark.parametrize("offsets", [np.array([np.nan, np.nan]), np.array([2.0, 2.0])])
def test_degenerate_data_still_draw(tmp_path, offsets):
    """No finite offset, or a single one: axes with ticks, no crash."""
    _, root = _plot(tmp_path, offsets, {"m": (np.array([0.5, np.nan]), np.zeros(2))})
    assert [e for e in root.iter() if e.get("class") == "tick x"]


def test_nice_ticks_and_labels():
    assert nice_ticks(-6.0, 6.0) == ([-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0], 2.0)
    ticks, step = nice_ticks(-0.04, 1.03, most=6)
    assert step == 0.2 and ticks == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for low, high in ((0.013, 0.0171), (-250.0, 3100.0), (0.91, 0.99), (-3.3, 7.1)):
        ticks, step = nice_ticks(low, high)
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert min(abs(mantissa - m) for m in (1, 2, 2.5, 5)) < 1e-9, step
        assert 2 <= len(ticks) <= 7 and low <= ticks[0] and ticks[-1] <= high
        assert all(abs(t / step - round(t / step)) < 1e-6 for t in ticks)
    assert tick_label(-0.0, 0.2) == "0.0"
    assert tick_label(-4.0, 2.0) == "\u22124"
    assert tick_label(7.5, 2.5) == "7.5" and tick_label(0.25, 0.25) == "0.25"


@pytest.fixture(scope="module")
def real_spectrum(tmp_path_factory):
    """A Z-spectrum of 50 offsets like a CEST scan's, with a broad SD band."""
    offsets = np.linspace(6.0, -6.0, 49)
    z = _lorentzian_dip(offsets)
    sd = 0.02 + 0.05 * np.exp(-(offsets - 1.0) ** 2)
    folder = tmp_path_factory.mktemp("zspectrum")
    path, _ = _plot(folder, offsets, {"measured, 15400 voxels": (z, sd),
                                      "B0-corrected, 15400 voxels": (z - 0.02, sd)},
                    name="zspectrum.svg")
    return path


def _coloured_pixels(png: Path, colour: str) -> int:
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    target = np.frombuffer(bytes.fromhex(colour.lstrip("#")), dtype=np.uint8).astype(int)
    return int((np.abs(rgb - target).sum(axis=2) < 30).sum())


def test_chromium_draws_the_plot(real_spectrum, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(f"<!DOCTYPE html><html><body><img alt='Z' src='{real_spectrum.name}'>"
                    "</body></html>")
    real_spectrum_copy = tmp_path / real_spectrum.name
    real_spectrum_copy.write_bytes(real_spectrum.read_bytes())
    shot = tmp_path / "page.png"
    rendered = render(page, screenshot=shot)
    assert rendered.problems == []  # the <img> decoded, nothing failed
    # both curves drawn (matplotlib's blue and orange lines and markers)
    assert _coloured_pixels(shot, "#1f77b4") > 300
    assert _coloured_pixels(shot, "#ff7f0e") > 300


def test_report_embeds_the_plot(real_spectrum, tmp_path):
    report = write_html_report(tmp_path / "report.html", title="CEST", subtitle="scan 7",
                               outcome=("complete", "Complete"), meta={}, parameters={},
                               sections=[], figures=[("Z-spectrum", real_spectrum)])
    assert report.read_text().count("<img alt='Z-spectrum' src='data:image/svg+xml;base64,") \
        == 1
    shot = tmp_path / "report.png"
    rendered = render(report, screenshot=shot)
    assert rendered.problems == []
    assert _coloured_pixels(shot, "#1f77b4") > 300

"""Line plots of mean ± SD curves as SVG text, written by our own code (no plotting library).

One figure: a frame with round-numbered ticks (:func:`nice_ticks`) and a light grid, each
curve as its mean (a line with markers) over a translucent ±SD band, axis labels, a title
and, between the title and the frame, a legend row (never over the data). Values that
are not finite make gaps: a point without an abscissa is left out, a missing mean breaks
the line, a missing SD breaks the band. Every element says what it is (``class``
``mean``, ``band``, ``marker``, ``tick``, ``legend``; ``data-label`` on the curves), so
a test can read the figure back with an XML parser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape  # quotes too: every attribute here is in ''

import numpy as np

__all__ = ["HEIGHT", "WIDTH", "Axes", "line_plot_svg", "nice_ticks", "tick_label"]

#: Figure size in pixels (the 7 × 4.2 inch figure at 80 dpi the plot replaced).
WIDTH, HEIGHT = 560, 336
#: Space around the plotting area: left, right, bottom (pixels); the top holds the title
#: (baseline at 20) and the legend rows (:data:`_ROW` apart from :data:`_LEGEND_TOP`).
_LEFT, _RIGHT, _BOTTOM = 66, 18, 48
_LEGEND_TOP, _ROW = 38, 17
#: Curve colours (matplotlib's tab10, in order).
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
_FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
#: Rough advance of one character of the 11 px legend font (pixels), for the layout.
_CHAR = 6.2
#: Width of a legend key (band, line and marker) and the space after it (pixels).
_KEY, _KEY_GAP, _ENTRY_GAP = 24, 6, 18
#: Fraction of the data range added on each side of the value axis.
_PAD = 0.05


def nice_ticks(low: float, high: float, most: int = 7) -> tuple[list[float], float]:
    """Round ticks within [low, high]: a step of 1, 2, 2.5 or 5 × 10^k, at most ``most``.

    Returns
    -------
    (list of float, float)
        The ticks (multiples of the step, ascending) and the step.
    """
    span = high - low
    if not (math.isfinite(low) and math.isfinite(high)) or span <= 0:
        return ([low] if math.isfinite(low) else []), 1.0
    power = 10.0 ** math.floor(math.log10(span / most))
    step = next(m * power for m in (1, 2, 2.5, 5, 10, 20) if span / (m * power) <= most)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(k * step, 12) + 0.0 for k in range(first, last + 1)], step


def tick_label(value: float, step: float) -> str:
    """``value`` with as many decimals as ``step`` needs, a true minus sign, no ``-0``."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step / 10.0 ** -decimals) * 10.0 ** -decimals - step) > 1e-9 * step:
        decimals += 1  # 2.5 × 10^k
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\u2212")


@dataclass(frozen=True)
class Axes:
    """Data → pixel mapping of the plotting area (abscissa reversed with ``reverse_x``)."""

    x_low: float
    x_high: float
    y_low: float
    y_high: float
    reverse_x: bool = False
    left: float = _LEFT
    right: float = WIDTH - _RIGHT
    top: float = _LEGEND_TOP
    bottom: float = HEIGHT - _BOTTOM

    def px(self, x: np.ndarray | float) -> np.ndarray:
        fraction = (np.asarray(x, dtype=float) - self.x_low) / (self.x_high - self.x_low)
        if self.reverse_x:
            fraction = 1.0 - fraction
        return self.left + fraction * (self.right - self.left)

    def py(self, y: np.ndarray | float) -> np.ndarray:
        fraction = (np.asarray(y, dtype=float) - self.y_low) / (self.y_high - self.y_low)
        return self.bottom - fraction * (self.bottom - self.top)


def _runs(keep: np.ndarray) -> list[slice]:
    """The runs of consecutive True in ``keep``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], keep.astype(np.int8), [0]))))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.2f},{y:.2f}" for x, y in zip(xs, ys, strict=True))


def _span(values: np.ndarray, pad: float) -> tuple[float, float]:
    """(low, high) of the finite values widened by ``pad`` of the range; (0, 1) if none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        half = max(abs(low) * 0.05, 0.05)
        return low - half, high + half
    return low - pad * (high - low), high + pad * (high - low)


def _text(x: float, y: float, text: str, *, size: float = 11, anchor: str = "middle",
          extra: str = "") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}'"
            f"{extra}>{escape(text)}</text>")


def _legend_layout(entries: list[str], left: float, right: float
                   ) -> list[tuple[float, int]]:
    """(x, row) of each legend entry: left to right from ``left``, a new row when the
    next entry would pass ``right``."""
    places: list[tuple[float, int]] = []
    x, row = left, 0
    for text in entries:
        width = _KEY + _KEY_GAP + _CHAR * len(text)
        if x > left and x + width > right:
            x, row = left, row + 1
        places.append((x, row))
        x += width + _ENTRY_GAP
    return places


def _legend(labels: list[str], note: str, places: list[tuple[float, int]]) -> list[str]:
    """The legend row(s): per curve a key (band, line, marker) and its label; ``note``
    (grey) last."""
    out = ["<g class='legend'>"]
    for k, ((x, row), text) in enumerate(zip(places, [*labels, note], strict=True)):
        y = _LEGEND_TOP + _ROW * row
        if k < len(labels):
            colour = _COLOURS[k % len(_COLOURS)]
            out.append(f"<rect x='{x:.1f}' y='{y - 5:.1f}' width='{_KEY}' height='10' "
                       f"fill='{colour}' fill-opacity='0.2'/><line x1='{x:.1f}' y1='{y:.1f}' "
                       f"x2='{x + _KEY:.1f}' y2='{y:.1f}' stroke='{colour}' "
                       f"stroke-width='1.6'/><circle cx='{x + _KEY / 2:.1f}' cy='{y:.1f}' "
                       f"r='2.6' fill='{colour}'/>")
        out.append(_text(x + _KEY + _KEY_GAP if k < len(labels) else x, y + 4, text,
                         anchor="start",
                         extra=" fill='#222222'" if k < len(labels) else " fill='#666666'"))
    out.append("</g>")
    return out


def line_plot_svg(x: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]], *,
                  title: str, xlabel: str, ylabel: str, reverse_x: bool = False,
                  legend_note: str = "line: mean, band: \u00b1 SD") -> str:
    """An SVG document: each curve's mean (line and markers) over its ±SD band.

    Parameters
    ----------
    x : ndarray, shape (N,)
        Abscissae, in any order (sorted here; non-finite ones left out).
    curves : dict
        Legend label -> (mean, sd), each shape (N,).
    title, xlabel, ylabel : str
    reverse_x : bool
        Draw the abscissa from high (left) to low (right).
    legend_note : str
        Grey text after the legend entries.

    Returns
    -------
    str
        The SVG text (UTF-8), :data:`WIDTH` × :data:`HEIGHT` pixels.
    """
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    order = order[np.isfinite(x[order])]
    xs = x[order]
    data = {label: (np.asarray(mean, dtype=float)[order], np.asarray(sd, dtype=float)[order])
            for label, (mean, sd) in curves.items()}
    x_low, x_high = (float(xs[0]), float(xs[-1])) if xs.size else (0.0, 1.0)
    if x_high <= x_low:
        x_low, x_high = x_low - 1.0, x_high + 1.0
    extent = np.concatenate([np.concatenate([m, m - np.where(np.isfinite(s), s, 0),
                                             m + np.where(np.isfinite(s), s, 0)])
                             for m, s in data.values()] or [np.array([])])
    labels = list(data)
    places = _legend_layout([*labels, legend_note], _LEFT, WIDTH - _RIGHT)
    top = _LEGEND_TOP + _ROW * (places[-1][1] + 1) - 4
    axes = Axes(x_low, x_high, *_span(extent, _PAD), reverse_x=reverse_x, top=top)
    x_ticks, x_step = nice_ticks(x_low, x_high)
    y_ticks, y_step = nice_ticks(axes.y_low, axes.y_high, most=6)
    width, height = axes.right - axes.left, axes.bottom - axes.top

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
           f"viewBox='0 0 {WIDTH} {HEIGHT}' font-family='{_FONT}' role='img' "
           f"aria-label='{escape(title)}'>",
           f"<title>{escape(title)}</title>",
           f"<rect width='{WIDTH}' height='{HEIGHT}' fill='#ffffff'/>",
           f"<defs><clipPath id='plot-area'><rect x='{axes.left}' y='{axes.top}' "
           f"width='{width}' height='{height}'/></clipPath></defs>",
           "<g class='grid' stroke='#000000' stroke-opacity='0.12' stroke-width='0.8'>"]
    for value in x_ticks:
        px = float(axes.px(value))
        out.append(f"<line x1='{px:.2f}' y1='{axes.top}' x2='{px:.2f}' y2='{axes.bottom}'/>")
    for value in y_ticks:
        py = float(axes.py(value))
        out.append(f"<line x1='{axes.left}' y1='{py:.2f}' x2='{axes.right}' y2='{py:.2f}'/>")
    out.append("</g><g class='ticks' fill='#222222'>")
    for value in x_ticks:
        px = float(axes.px(value))
        out.append(f"<line class='tick' stroke='#444444' x1='{px:.2f}' y1='{axes.bottom}' "
                   f"x2='{px:.2f}' y2='{axes.bottom + 4}'/>")
        out.append(_text(px, axes.bottom + 16, tick_label(value, x_step),
                         extra=f" class='tick x' data-value='{value!r}'"))
    for value in y_ticks:
        py = float(axes.py(value))
        out.append(f"<line class='tick' stroke='#444444' x1='{axes.left - 4}' y1='{py:.2f}' "
                   f"x2='{axes.left}' y2='{py:.2f}'/>")
        out.append(_text(axes.left - 7, py + 4, tick_label(value, y_step), anchor="end",
                         extra=f" class='tick y' data-value='{value!r}'"))
    out.append("</g><g clip-path='url(#plot-area)'>")
    for k, (label, (mean, sd)) in enumerate(data.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        attrs = f"data-label='{escape(label)}'"
        for run in _runs(np.isfinite(mean) & np.isfinite(sd)):
            upper, lower = axes.py(mean[run] + sd[run]), axes.py(mean[run] - sd[run])
            band = _points(np.concatenate([axes.px(xs[run]), axes.px(xs[run])[::-1]]),
                           np.concatenate([upper, lower[::-1]]))
            out.append(f"<polygon class='band' {attrs} fill='{colour}' fill-opacity='0.2' "
                       f"stroke='none' points='{band}'/>")
        for run in _runs(np.isfinite(mean)):
            px, py = axes.px(xs[run]), axes.py(mean[run])
            out.append(f"<polyline class='mean' {attrs} fill='none' stroke='{colour}' "
                       f"stroke-width='1.6' stroke-linejoin='round' "
                       f"points='{_points(px, py)}'/>")
            out.extend(f"<circle class='marker' {attrs} cx='{cx:.2f}' cy='{cy:.2f}' r='2.6' "
                       f"fill='{colour}'/>" for cx, cy in zip(px, py, strict=True))
    out.append("</g>")
    out.append(f"<rect x='{axes.left}' y='{axes.top}' width='{width}' height='{height}' "
               "fill='none' stroke='#444444' stroke-width='1'/>")
    out.extend(_legend(labels, legend_note, places))
    out.append(_text((axes.left + axes.right) / 2, 20, title, size=12.5,
                     extra=" fill='#111111'"))
    out.append(_text((axes.left + axes.right) / 2, HEIGHT - 10, xlabel, size=12,
                     extra=" fill='#111111'"))
    mid = (axes.top + axes.bottom) / 2
    out.append(_text(16, mid, ylabel, size=12,
                     extra=f" fill='#111111' transform='rotate(-90 16 {mid:.1f})'"))
    out.append("</svg>")
    return "\n".join(out) + "\n"

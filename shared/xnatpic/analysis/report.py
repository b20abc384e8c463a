"""The one-page HTML report of a map run: who and what, the outcome, readable parameters,
previews (embedded) and the statistics tables."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from xnatpic.analysis.colormaps import lookup_table
from xnatpic.analysis.previews import Preview

__all__ = ["PREVIEW_STYLE", "format_number", "format_value", "parameter_rows",
           "preview_figure", "write_html_report"]

#: The style of :func:`preview_figure` (the step report and the session index).
PREVIEW_STYLE = """figure.preview{margin:0.5em 0 1em}
figure.preview figcaption{font-weight:bold;margin:0.3em 0}
.mosaic{position:relative;display:inline-block;max-width:100%}.mosaic img{display:block}
.slices{position:absolute;inset:0;display:grid;pointer-events:none}
.slices span{align-self:start;justify-self:start;color:#fff;font-size:75%;padding:1px 4px;
text-shadow:0 0 2px #000,0 0 2px #000}
.scale{margin:0.3em 0;font-size:90%}.ramp{display:inline-block;width:16em;height:1em;
vertical-align:middle;border:1px solid #888;margin:0 0.4em}
.swatch{display:inline-block;width:1em;height:1em;vertical-align:middle;
border:1px solid #888;margin:0 0.3em 0 0.8em}"""

_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:70em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;
padding:2px 8px;text-align:right}th{background:#eee}img{max-width:100%}
.meta td,.params td{text-align:left}.meta th,.params th{text-align:left}
.outcome{padding:0.6em 1em;margin:1em 0;border-radius:4px;font-weight:bold}
.complete{background:#e6f4e6;border:1px solid #4daf4a}
.warning{background:#fdecea;border:2px solid #e41a1c;color:#8b0000}
.sub{color:#555;font-size:90%}
""" + PREVIEW_STYLE


#: Colour stops of a colour bar's CSS gradient (every 8th entry of the 256 and the last).
_RAMP_STOPS = (*range(0, 256, 8), 255)

_COLUMNS = ("n_voxels", "mean", "sd", "median", "iqr", "fraction_fitted", "fraction_long",
            "fraction_short", "fraction_no_signal", "fraction_failed")
_HEADERS = {"fraction_fitted": "fitted", "fraction_long": "long", "fraction_short": "short",
            "fraction_no_signal": "no signal", "fraction_failed": "failed",
            "n_voxels": "voxels"}

#: Parameter name endings shown as a unit.
_UNIT_SUFFIXES = (("_ms", "ms"), ("_ppm", "ppm"), ("_deg", "°"), ("_ml_per_g", "mL/g"))

#: Longest list shown in full; longer ones are elided in the middle.
_LIST_MAX = 8


def format_number(value: float | int) -> str:
    """A number as a reader wants it: integers as such, others to 4 significant digits
    (``0.1 + 0.2`` reads ``0.3``), large ones whole (``10180``, not ``1.018e+04``).

    Examples
    --------
    >>> format_number(0.1 + 0.2), format_number(10183.7), format_number(0.000123456)
    ('0.3', '10184', '0.0001235')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    text = f"{value:.4g}"
    return f"{value:.0f}" if "e+" in text and abs(value) < 1e12 else text  # 10180, not 1.018e+04


def format_value(value: Any) -> str:
    """A parameter value as text: numbers rounded, lists elided past 8 items with their
    count, booleans yes/no, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, (bool, int, float)):
        return format_number(value)
    if isinstance(value, (list, tuple)):
        items = [format_value(v) for v in value]
        if len(items) > _LIST_MAX:
            items = [*items[:_LIST_MAX - 2], "…", items[-1]]
            return ", ".join(items) + f" ({len(value)} values)"
        return ", ".join(items) or "none"
    return str(value)


def _label(key: str) -> str:
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            return f"{key[:-len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def parameter_rows(parameters: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(label, text) rows of a parameter dictionary, nested ones flattened as
    ``outer › inner``."""
    rows: list[tuple[str, str]] = []
    for key, value in parameters.items():
        label = f"{prefix}{_label(str(key))}"
        if isinstance(value, dict):
            rows += parameter_rows(value, f"{label} › ")
        else:
            rows.append((label, format_value(value)))
    return rows


def _fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if column.startswith("fraction_"):
        return f"{100 * value:.1f} %"
    return format_number(value)


def _table(stats: dict[str, Any], unit: str) -> str:
    head = "".join(f"<th>{_HEADERS.get(c, c)}</th>" for c in ("slice", *_COLUMNS))
    rows = [("all", stats["whole"])] + [(str(s["slice"]), s) for s in stats["slices"]]
    body = "".join(
        "<tr><td>" + label + "</td>"
        + "".join(f"<td>{_fmt(s.get(c), c)}</td>" for c in _COLUMNS) + "</tr>"
        for label, s in rows)
    counts = stats["whole"].get("status_counts") or {}
    detail = "; ".join(f"{html.escape(name)}: {n}" for name, n in counts.items())
    note = ("statistics over every mask voxel (slices numbered from 1): median, quartiles, "
            "mean and sd use the fitted and beyond-range (long/short) voxels; fractions are "
            "of the mask")
    return (f"<table><caption>unit: {html.escape(unit)}; {note}</caption><tr>{head}</tr>"
            f"{body}</table><p>voxel status (whole mask): {detail or '-'}</p>")


def _image(picture: Path, alt: str) -> str:
    data = base64.b64encode(Path(picture).read_bytes()).decode("ascii")
    kind = "svg+xml" if Path(picture).suffix == ".svg" else "png"
    return f"<img alt='{html.escape(alt)}' src='data:image/{kind};base64,{data}'>"


def _ramp(colormap: str) -> str:
    """A CSS linear gradient through the colour map's lookup table, low to high."""
    table = lookup_table(colormap)
    stops = ", ".join(f"rgb({r},{g},{b}) {100 * i / 255:.1f}%"
                      for i in _RAMP_STOPS for r, g, b in [table[i]])
    return f"linear-gradient(to right, {stops})"


def preview_figure(preview: Preview, image: str) -> str:
    """A mosaic preview as HTML: its title, ``image`` (the ``<img>`` of its PNG, embedded
    or linked) with the slice numbers (from 1) over each slice, the colour bar (range and
    unit) and the legend of the other colours; styled by :data:`PREVIEW_STYLE`."""
    rows = -(-preview.slices // preview.columns)
    labels = "".join(f"<span>slice {k}</span>" for k in range(1, preview.slices + 1))
    parts = [f"<figure class='preview'><figcaption>{html.escape(preview.title)}</figcaption>"
             f"<div class='mosaic'>{image}<div class='slices' style="
             f"'grid-template-columns:repeat({preview.columns},1fr);"
             f"grid-template-rows:repeat({rows},1fr)'>{labels}</div></div>"]
    bar = preview.colour_bar
    if bar is not None:
        parts.append(f"<div class='scale'>{html.escape(bar.unit)}: "
                     f"{format_number(bar.low)}<span class='ramp' role='img' "
                     f"aria-label='colour scale' style='background:{_ramp(bar.colormap)}'>"
                     f"</span>{format_number(bar.high)} (display range)</div>")
    if preview.legend:
        parts.append("<div class='scale'>" + "".join(
            f"<span class='swatch' style='background:{colour}'></span>{html.escape(label)}"
            for label, colour in preview.legend) + "</div>")
    if preview.note:
        parts.append(f"<div class='scale'>{html.escape(preview.note)}</div>")
    return "".join(parts) + "</figure>"


def _picture(picture: Path | Preview, alt: str) -> str:
    """A preview with its scale, or a plain picture (the Z-spectrum plot, SVG)."""
    if isinstance(picture, Preview):
        return preview_figure(picture, _image(picture.path, alt))
    return _image(picture, alt)


def _rows(pairs: list[tuple[str, str]], css: str) -> str:
    return (f"<table class='{css}'>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
        + "</table>")


def write_html_report(path: Path, *, title: str, subtitle: str, outcome: tuple[str, str],
                      meta: dict[str, str], parameters: dict[str, Any],
                      sections: list[dict[str, Any]],
                      figures: list[tuple[str, Path | Preview]] | None = None) -> Path:
    """Write the report.

    Parameters
    ----------
    path : Path
        The HTML file.
    title : str
        Page title (the step and run).
    subtitle : str
        Subject and session, shown under the title.
    outcome : (str, str)
        CSS class (``complete`` or ``warning``) and the outcome sentence, shown as a
        banner.
    meta : dict
        Key/value lines shown at the top (scan, series, mask, model).
    parameters : dict
        The step's parameters, shown as readable rows (:func:`parameter_rows`).
    sections : list of dict
        One per map: ``name``, ``unit``, ``description``, ``stats`` (see
        :func:`xnatpic.analysis.stats.map_statistics`), ``png`` and ``status_png``
        (:class:`~xnatpic.analysis.previews.Preview`, drawn with their slice numbers,
        colour bar and legend, or plain PNG paths; optional).
    figures : list of (str, Path or Preview), optional
        Further figures (caption, picture): the Z-spectrum (SVG), the DTI direction map.
    """
    css, sentence = outcome
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
             f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>",
             f"<div class='outcome {css}'>{html.escape(sentence)}</div>",
             _rows(list(meta.items()), "meta"),
             "<h2>Parameters</h2>", _rows(parameter_rows(parameters), "params")]
    for caption, png in figures or []:
        parts.append(f"<h2>{html.escape(caption)}</h2>{_picture(png, caption)}")
    for section in sections:
        parts.append(f"<h2>{html.escape(section['name'])}</h2><p>"
                     f"{html.escape(section['description'])}</p>")
        for key, label in (("png", section["name"]),
                           ("status_png", f"{section['name']} voxel status")):
            if section.get(key) is not None:
                parts.append(_picture(section[key], label))
        parts.append(_table(section["stats"], section["unit"]))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

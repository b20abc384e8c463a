"""A one-page HTML report: the previews (embedded) and the statistics tables."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

__all__ = ["write_html_report"]

_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:70em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;
padding:2px 8px;text-align:right}th{background:#eee}img{max-width:100%}
.meta td{text-align:left}"""

_COLUMNS = ("n_voxels", "mean", "sd", "median", "iqr", "fraction_fitted", "fraction_long",
            "fraction_short", "fraction_no_signal", "fraction_failed")
_HEADERS = {"fraction_fitted": "fitted", "fraction_long": "long", "fraction_short": "short",
            "fraction_no_signal": "no signal", "fraction_failed": "failed"}


def _fmt(value: Any, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if column.startswith("fraction_"):
        return f"{100 * value:.1f} %"
    return f"{value:.4g}"


def _table(stats: dict[str, Any], unit: str) -> str:
    head = "".join(f"<th>{_HEADERS.get(c, c)}</th>" for c in ("slice", *_COLUMNS))
    rows = [("all", stats["whole"])] + [(str(s["slice"] + 1), s) for s in stats["slices"]]
    body = "".join(
        "<tr><td>" + label + "</td>"
        + "".join(f"<td>{_fmt(s.get(c), c)}</td>" for c in _COLUMNS) + "</tr>"
        for label, s in rows)
    counts = stats["whole"].get("status_counts") or {}
    detail = "; ".join(f"{html.escape(name)}: {n}" for name, n in counts.items())
    note = ("statistics over every mask voxel: median, quartiles, mean and sd use the fitted "
            "and beyond-range (long/short) voxels; fractions are of the mask")
    return (f"<table><caption>unit: {html.escape(unit)}; {note}</caption><tr>{head}</tr>"
            f"{body}</table><p>voxel status (whole mask): {detail or '-'}</p>")


def write_html_report(path: Path, *, title: str, meta: dict[str, str],
                      sections: list[dict[str, Any]]) -> Path:
    """Write the report.

    Parameters
    ----------
    path : Path
        The HTML file.
    title : str
        Page title.
    meta : dict
        Key/value lines shown at the top (scan, series, parameters).
    sections : list of dict
        One per map: ``name``, ``unit``, ``description``, ``stats`` (see
        :func:`xnatpic.analysis.stats.map_statistics`), ``png`` and ``status_png``
        (Paths, optional).
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             "<table class='meta'>"]
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
              for k, v in meta.items()]
    parts.append("</table>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section['name'])}</h2><p>"
                     f"{html.escape(section['description'])}</p>")
        for key, label in (("png", section["name"]),
                           ("status_png", f"{section['name']} voxel status")):
            png = section.get(key)
            if png is not None:
                data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
                parts.append(f"<img alt='{html.escape(label)}' "
                             f"src='data:image/png;base64,{data}'>")
        parts.append(_table(section["stats"], section["unit"]))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

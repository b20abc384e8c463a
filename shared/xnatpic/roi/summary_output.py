"""Files of the project summary: tidy CSVs (R's ``read.csv`` and pandas' ``read_csv`` load
them as they are: one header row, one observation per row, NaN as an empty cell), the same
tables in one JSON, and the HTML page with the plots."""

from __future__ import annotations

import csv
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from xnatpic.roi.summary import KEY, natural_key
from xnatpic.roi.summary_plots import plot_title

__all__ = ["cell", "write_csv", "write_html", "write_json"]


def cell(value: Any) -> str:
    """A CSV cell: NaN/None empty, floats to 10 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def write_csv(rows: list[dict[str, Any]], path: Path, columns: tuple[str, ...]) -> Path:
    """Write rows with a header of ``columns``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c, "")) for c in columns])
    return path


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, **tables: Any) -> Path:
    """Write the tables (lists of dicts; NaN as null) and other entries as one JSON object."""
    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [clean(v) for v in obj]
        return _json_value(obj)

    path.write_text(json.dumps(clean(tables), indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def _num(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def _p(value: float) -> str:
    if math.isnan(value):
        return "–"
    return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"


_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #aaa;padding:2px 8px}
td.n{text-align:right}th{background:#eee}h2{border-top:2px solid #ccc;padding-top:0.6em}
img{max-width:100%}.note{color:#555}.warn{color:#a40}"""


def _cell(text: str) -> str:
    """A table cell; numbers (and ranges, mean ± SD) right-aligned."""
    numeric = re.fullmatch(r"[-+0-9.e<;&lt ±–]+", text) is not None
    return f"<td class='n'>{text}</td>" if numeric else f"<td>{text}</td>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
            + "</table>")


def _key_of(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in KEY)


def _section(key: tuple[str, ...], groups: list[dict[str, Any]],
             comparisons: list[dict[str, Any]], animals: list[dict[str, Any]],
             plot: str | None) -> list[str]:
    named = dict(zip(KEY, key, strict=True))
    unit = f" ({html.escape(named['units'])})" if named["units"] else ""
    parts = [f"<h2 id='{html.escape(plot or '_'.join(key))}'>{html.escape(plot_title(named))}"
             "</h2>"]
    if plot:
        parts.append(f"<p><img src='plots/{html.escape(plot)}' "
                     f"alt='{html.escape(plot_title(named))}'></p>")
    parts.append(f"<h3>By group and timepoint{unit}</h3>")
    parts.append(_table(["timepoint", "group", "n animals", "mean ± SD", "median",
                         "min – max"], [
        [html.escape(g["timepoint"]), html.escape(g["group"]), str(g["n_animals"]),
         f"{_num(g['mean'])} ± {_num(g['sd'])}", _num(g["median"]),
         f"{_num(g['min'])} – {_num(g['max'])}"] for g in groups]))
    if comparisons:
        parts.append("<h3>Comparison of the groups at each timepoint</h3>")
        parts.append(_table(["timepoint", "groups (n)", "test", "statistic", "p", "effect size",
                             "note"], [
            [html.escape(c["timepoint"]), html.escape(c["n_per_group"]), html.escape(c["test"]),
             _num(c["statistic"]), _p(c["p_value"]),
             (f"{html.escape(c['effect_size_name'])} = {_num(c['effect_size'])}"
              if c["effect_size_name"] else "–"), html.escape(c["note"])]
            for c in comparisons]))
    else:
        parts.append("<p class='note'>No comparison: one group at every timepoint.</p>")
    parts.append("<details><summary>Animals</summary>" + _table(
        ["timepoint", "group", "animal", f"value{unit}", "sessions"], [
            [html.escape(a["timepoint"]), html.escape(a["group"]), html.escape(a["animal"]),
             _num(a["value"]), html.escape(a["sessions"])] for a in animals]) + "</details>")
    return parts


def write_html(path: Path, *, project: str, sessions: list[dict[str, Any]],
               groups: list[dict[str, Any]], comparisons: list[dict[str, Any]],
               animals: list[dict[str, Any]], plots: dict[tuple[str, ...], Path],
               left_out: dict[str, list[str]], notes: list[str]) -> Path:
    """The summary page: one section per map × ROI (plot, group table, comparisons,
    animals), the sessions with links to their index pages, and what was left out.

    Parameters
    ----------
    sessions : list of dict
        ``session``, ``subject``, ``group``, ``timepoint``, ``runs`` and ``index`` (link
        relative to the page, or "").
    left_out : dict
        ``--include`` word (byproducts, spectra) -> names of maps kept out of the
        comparisons.
    notes : list of str
        Warnings shown at the top (rows not attributed, animals with several values...).
    """
    esc = html.escape
    keys = sorted({_key_of(g) for g in groups}, key=lambda k: tuple(map(natural_key, k)))
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>{esc(project)}: study summary</title>", f"<style>{_STYLE}</style>",
             "</head><body>", f"<h1>{esc(project)}: study summary</h1>",
             f"<p>{len(sessions)} session(s), {len({a['animal'] for a in animals})} animal(s), "
             f"{len(keys)} map × ROI combination(s). Each value is an animal's ROI mean; "
             "maps are compared only with the same map, unit, step, method and ROI. Tables: "
             "<a href='summary.csv'>summary.csv</a> (per session), "
             "<a href='animals.csv'>animals.csv</a>, <a href='groups.csv'>groups.csv</a>, "
             "<a href='comparisons.csv'>comparisons.csv</a>, "
             "<a href='summary.json'>summary.json</a>.</p>",
             "<p class='note'>Tests: Welch t-test with Hedges' g and Mann-Whitney U with "
             "Cliff's delta for two groups; one-way ANOVA with eta squared and Kruskal-Wallis "
             "with epsilon squared for more; no correction for multiple comparisons.</p>"]
    parts += [f"<p class='warn'>{esc(n)}</p>" for n in notes]
    if left_out:
        parts.append("<p class='note'>Kept out of the comparisons (ask with include=" +
                     ",".join(sorted(left_out)) + "): " + "; ".join(
                         f"{esc(role)}: {esc(', '.join(sorted(names, key=natural_key)))}"
                         for role, names in sorted(left_out.items())) + ".</p>")
    if keys:
        parts.append("<h2>Contents</h2><ul>" + "".join(
            f"<li><a href='#{esc(plots[k].name if k in plots else '_'.join(k))}'>"
            f"{esc(plot_title(dict(zip(KEY, k, strict=True))))}</a></li>" for k in keys)
            + "</ul>")
    for key in keys:
        parts += _section(key, [g for g in groups if _key_of(g) == key],
                          [c for c in comparisons if _key_of(c) == key],
                          [a for a in animals if _key_of(a) == key],
                          plots[key].name if key in plots else None)
    parts.append("<h2>Sessions</h2>")
    parts.append(_table(["session", "subject", "group", "timepoint", "map runs"], [
        [f"<a href='{esc(s['index'])}'>{esc(s['session'])}</a>" if s["index"]
         else esc(s["session"]), esc(s["subject"]), esc(s["group"]), esc(s["timepoint"]),
         esc(s["runs"])] for s in sessions]))
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path

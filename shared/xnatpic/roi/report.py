"""Project summary outputs: the CSV, box/strip plots per group, a small HTML page."""

from __future__ import annotations

import csv
import html
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic.roi.summary import SUMMARY_COLUMNS

__all__ = ["group_table", "plot_groups", "write_csv", "write_html"]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.7g}"
    return str(value)


def write_csv(rows: list[dict[str, Any]], path: Path,
              columns: tuple[str, ...] = SUMMARY_COLUMNS) -> Path:
    """Write rows (NaN as empty cells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row.get(c, "")) for c in columns])
    return path


def _key(row: dict[str, Any]) -> str:
    group = row.get("group") or "(no group)"
    return f"{group} | {row['timepoint']}" if row.get("timepoint") else group


def group_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per map, ROI and group (and timepoint): sessions, mean and SD of the ROI means."""
    buckets: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for row in rows:
        buckets[(row["map"], row["roi"], _key(row), row.get("units", ""))].append(row["mean"])
    out = []
    for (map_name, roi, group, units), values in sorted(buckets.items()):
        finite = np.array([v for v in values if not math.isnan(v)])
        out.append({
            "map": map_name, "roi": roi, "group": group, "units": units,
            "sessions": len(values), "valid": int(finite.size),
            "mean": float(finite.mean()) if finite.size else float("nan"),
            "sd": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        })
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "x"


def plot_groups(rows: list[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per map and ROI: box plot of the session ROI means per group, points on top.

    Returns
    -------
    list of Path
        The PNG files, named ``<map>_<roi>.png``.
    """
    import matplotlib  # imported here: the rest of the package does not need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    by_plot: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_plot[(row["map"], row["roi"])].append(row)
    written = []
    rng = np.random.default_rng(0)  # jitter only; fixed so the PNGs are reproducible
    for (map_name, roi), items in sorted(by_plot.items()):
        groups = sorted({_key(r) for r in items})
        data = [[r["mean"] for r in items if _key(r) == g and not math.isnan(r["mean"])]
                for g in groups]
        fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(groups), 3.6), dpi=100)
        ax.boxplot([d if d else [np.nan] for d in data], showfliers=False)
        ax.set_xticks(range(1, len(groups) + 1), groups, rotation=20, ha="right")
        for i, values in enumerate(data, start=1):
            ax.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, "o", alpha=0.7)
        units = next((r.get("units") for r in items if r.get("units")), "")
        ax.set_ylabel(f"{map_name} ROI mean" + (f" ({units})" if units else ""))
        ax.set_title(f"{map_name} in {roi}")
        fig.tight_layout()
        path = folder / f"{_safe(map_name)}_{_safe(roi)}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def write_html(path: Path, *, project: str, rows: list[dict[str, Any]], plots: list[Path],
               empty: list[str]) -> Path:
    """A one-page summary: counts, the per-group table, flagged rows and the plots."""
    esc = html.escape
    table = group_table(rows)
    sessions = sorted({r["session"] for r in rows})
    flagged = [r for r in rows if r.get("flag")]
    parts = [
        "<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
        f"<title>{esc(project)}: ROI summary</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:2px 6px;text-align:right}</style>",
        "</head><body>", f"<h1>{esc(project)}: ROI summary</h1>",
        f"<p>{len(sessions)} session(s), {len(rows)} row(s) in "
        "<a href='summary.csv'>summary.csv</a>.</p>",
    ]
    if empty:
        parts.append(f"<p>Sessions without statistics: {esc(', '.join(empty))}</p>")
    parts.append("<h2>Per group</h2><table><tr><th>map</th><th>ROI</th><th>group</th>"
                 "<th>sessions</th><th>valid</th><th>mean of ROI means</th><th>SD</th>"
                 "<th>units</th></tr>")
    for t in table:
        parts.append("<tr>" + "".join(f"<td>{esc(_text(t[k]))}</td>" for k in (
            "map", "roi", "group", "sessions", "valid", "mean", "sd", "units")) + "</tr>")
    parts.append("</table>")
    if flagged:
        parts.append("<h2>Flagged</h2><ul>" + "".join(
            f"<li>{esc(r['session'])} {esc(r['map'])} {esc(r['roi'])}: {esc(r['flag'])}</li>"
            for r in flagged) + "</ul>")
    parts.append("<h2>Plots</h2>")
    for plot in plots:
        rel = plot.relative_to(path.parent).as_posix()
        parts.append(f"<p><img src='{esc(rel)}' alt='{esc(plot.stem)}'></p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path

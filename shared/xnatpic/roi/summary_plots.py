"""Plots of the project summary: one PNG per map × ROI (matplotlib's object API, Agg).

Left panel: per timepoint, a box per group with every animal as a point on it. Right
panel: every animal's trajectory over the timepoints, coloured by group. The title names
the map with its unit, the step and method that made it and the ROI, in full.
"""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic.roi.summary import KEY, natural_key

__all__ = ["plot_name", "plot_summary", "plot_title"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf")


def plot_title(key: dict[str, Any]) -> str:
    """``T1 (ms) in tumour — t1map, method vtr``."""
    unit = f" ({key['units']})" if key.get("units") else ""
    how = key["step"] + (f", method {key['method']}" if key.get("method") else "")
    return f"{key['map']}{unit} in ROI {key['roi']} — {how}"


def plot_name(key: dict[str, Any]) -> str:
    """File name of a key's plot: ``<step>_<method>_<map>_<roi>.png`` (safe characters)."""
    parts = [key["step"], key.get("method") or "", key["map"], key["roi"]]
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p).strip("-") or "x"
                    for p in parts if p) + ".png"


def _figure(key: dict[str, Any], items: list[dict[str, Any]]):
    from matplotlib.figure import Figure  # imported here: only the summary draws

    groups = sorted({a["group"] for a in items}, key=natural_key)
    timepoints = sorted({a["timepoint"] for a in items}, key=natural_key)
    colour = {g: _COLOURS[i % len(_COLOURS)] for i, g in enumerate(groups)}
    fig = Figure(figsize=(10, 4.4), dpi=100, layout="constrained")
    box, traj = fig.subplots(1, 2)
    width = 0.8 / len(groups)
    rng = np.random.default_rng(0)  # jitter only; fixed so the PNGs are reproducible
    labelled: set[str] = set()
    for gi, group in enumerate(groups):
        for ti, tp in enumerate(timepoints):
            values = [a["value"] for a in items if a["group"] == group and a["timepoint"] == tp]
            if not values:
                continue
            x = ti + (gi - (len(groups) - 1) / 2) * width
            box.boxplot([values], positions=[x], widths=width * 0.8, showfliers=False,
                        medianprops={"color": colour[group]}, manage_ticks=False)
            box.plot(x + rng.uniform(-width / 5, width / 5, len(values)), values, "o",
                     color=colour[group], alpha=0.8,
                     label=None if group in labelled else group)
            labelled.add(group)
    box.set_xticks(range(len(timepoints)), timepoints)
    box.set_xlim(-0.6, len(timepoints) - 0.4)
    box.set_xlabel("timepoint")
    unit = f" ({key['units']})" if key.get("units") else ""
    box.set_ylabel(f"{key['map']}{unit}, ROI mean per animal")
    box.set_title("by group and timepoint (each point an animal)", fontsize=10)
    fig.legend(*box.get_legend_handles_labels(), title="group", loc="outside right upper",
               fontsize=9)
    tracks: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for a in items:
        tracks[(a["group"], a["animal"])].append((timepoints.index(a["timepoint"]), a["value"]))
    for (group, _animal), points in sorted(tracks.items(), key=lambda kv: (
            natural_key(kv[0][0]), natural_key(kv[0][1]))):
        points.sort()
        traj.plot([p[0] for p in points], [p[1] for p in points], "o-", color=colour[group],
                  alpha=0.7)
    traj.set_xticks(range(len(timepoints)), timepoints)
    traj.set_xlim(-0.3, len(timepoints) - 0.7)
    traj.set_xlabel("timepoint")
    traj.set_ylabel(f"{key['map']}{unit}")
    traj.set_title("per-animal trajectories (colour: group)", fontsize=10)
    fig.suptitle("\n".join(textwrap.wrap(plot_title(key), 90)), fontsize=12)
    return fig


def plot_summary(animals: list[dict[str, Any]], folder: Path) -> dict[tuple[str, ...], Path]:
    """Write one PNG per key (map, units, step, method, ROI) of the animal values.

    Returns
    -------
    dict
        Key tuple (:data:`xnatpic.roi.summary.KEY` order) -> PNG path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    folder.mkdir(parents=True, exist_ok=True)
    by_key: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for a in animals:
        by_key[tuple(a[k] for k in KEY)].append(a)
    written = {}
    for key, items in sorted(by_key.items(), key=lambda kv: tuple(map(natural_key, kv[0]))):
        named = dict(zip(KEY, key, strict=True))
        fig = _figure(named, items)
        path = folder / plot_name(named)
        if path in written.values():  # same names, another unit: never one file for both
            path = path.with_name(f"{path.stem}_{len(written)}.png")
        FigureCanvasAgg(fig).print_png(str(path))
        written[key] = path
    return written

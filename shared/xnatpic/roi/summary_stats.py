"""Study statistics of the project summary: per map × ROI, by group and timepoint.

The unit of analysis is the animal (XNAT subject; the session when no subject is known):
its value is the ROI mean of the map in its session at that timepoint (the mean of them,
said in ``n_values``, when one animal has several sessions or runs at a timepoint).
Per group and timepoint: number of animals, mean, SD (n - 1), median, minimum and maximum.
Where two or more groups have animals at a timepoint, the groups are compared:

* two groups: Welch's t-test (:func:`scipy.stats.ttest_ind`, ``equal_var=False``) with
  Hedges' g (pooled SD, small-sample correction ``1 - 3 / (4 (n1 + n2) - 9)``), and the
  Mann-Whitney U test (:func:`scipy.stats.mannwhitneyu`, two-sided) with Cliff's delta;
* three or more: one-way ANOVA (:func:`scipy.stats.f_oneway`) with eta squared, and the
  Kruskal-Wallis H test (:func:`scipy.stats.kruskal`) with epsilon squared ``H / (N - 1)``.

A test needs at least :data:`MIN_ANIMALS` animals in every group; otherwise the row says
so (``note``) and carries no p-value. p-values are not corrected for multiple comparisons.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from xnatpic.arrays import median
from xnatpic.roi.summary import KEY, natural_key

__all__ = ["ANIMAL_COLUMNS", "COMPARISON_COLUMNS", "GROUP_COLUMNS", "MIN_ANIMALS",
           "NO_GROUP", "NO_TIMEPOINT", "animal_values", "cliffs_delta", "compare_groups",
           "group_statistics", "hedges_g"]

#: Fewest animals per group for a test.
MIN_ANIMALS = 2
NO_GROUP = "(no group)"
NO_TIMEPOINT = "(no timepoint)"
ANIMAL_COLUMNS = (*KEY, "group", "timepoint", "animal", "value", "n_values", "sessions")
GROUP_COLUMNS = (*KEY, "group", "timepoint", "n_animals", "mean", "sd", "median", "min",
                 "max")
COMPARISON_COLUMNS = (*KEY, "timepoint", "groups", "n_per_group", "test", "statistic",
                      "p_value", "effect_size_name", "effect_size", "note")


def _key(row: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(row.get(k, "")) for k in KEY)


def _sort(key: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(natural_key(k) for k in key)


def animal_values(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One value per key × group × timepoint × animal: the animal's ROI mean.

    Rows with a non-finite mean are left out (their ``n_values`` is not counted).
    """
    buckets: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for row in rows:
        value = float(row["mean"])
        if not math.isfinite(value):
            continue
        animal = row.get("subject") or row["session"]
        buckets[(_key(row), row.get("group") or NO_GROUP, row.get("timepoint") or NO_TIMEPOINT,
                 animal)].append((value, row["session"]))
    out = []
    for (key, group, timepoint, animal), items in sorted(
            buckets.items(), key=lambda kv: (_sort(kv[0][0]), *map(natural_key, kv[0][1:]))):
        out.append({**dict(zip(KEY, key, strict=True)), "group": group,
                    "timepoint": timepoint, "animal": animal,
                    "value": float(np.mean([v for v, _ in items])), "n_values": len(items),
                    "sessions": ";".join(sorted({s for _, s in items}, key=natural_key))})
    return out


def _by_cell(animals: list[dict[str, Any]]) -> dict[tuple, dict[str, dict[str, list[float]]]]:
    """(key, timepoint) -> group -> animal values."""
    cells: dict[tuple, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(list))
    for a in animals:
        cells[(_key(a), a["timepoint"])][a["group"]].append(a["value"])
    return cells


def group_statistics(animals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per key × group × timepoint: n animals, mean, SD, median, min, max of their values."""
    out = []
    cells = _by_cell(animals)
    for (key, timepoint) in sorted(cells, key=lambda c: (_sort(c[0]), natural_key(c[1]))):
        for group in sorted(cells[(key, timepoint)], key=natural_key):
            v = np.asarray(cells[(key, timepoint)][group], dtype=float)
            out.append({**dict(zip(KEY, key, strict=True)), "group": group,
                        "timepoint": timepoint, "n_animals": int(v.size),
                        "mean": float(v.mean()),
                        "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                        "median": median(v), "min": float(v.min()),
                        "max": float(v.max())})
    return out


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Hedges' g of ``a`` minus ``b`` (pooled SD, small-sample corrected); NaN when the
    pooled SD is 0 or a group has fewer than 2 values."""
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return float("nan")
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return float("nan")
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (n1 + n2) - 9)))


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Cliff's delta: P(a > b) - P(a < b) over all pairs."""
    diff = np.sign(a[:, None] - b[None, :])
    return float(diff.mean())


def _comparison(base: dict[str, Any], test: str, statistic: float, p: float,
                effect_name: str, effect: float, note: str = "") -> dict[str, Any]:
    return {**base, "test": test, "statistic": float(statistic), "p_value": float(p),
            "effect_size_name": effect_name, "effect_size": float(effect), "note": note}


def _tests(groups: list[str], data: list[np.ndarray], base: dict[str, Any]
           ) -> list[dict[str, Any]]:
    from scipy import stats  # imported here: only the summary needs scipy's tests

    if len(groups) == 2:
        a, b = data
        constant = a.var(ddof=1) == 0 and b.var(ddof=1) == 0
        if constant:
            t_row = {**base, "test": "Welch t-test", "statistic": float("nan"),
                     "p_value": float("nan"), "effect_size_name": "Hedges' g",
                     "effect_size": float("nan"),
                     "note": "no test: every animal of both groups has the same value "
                             "within its group (SD 0)"}
        else:
            t = stats.ttest_ind(a, b, equal_var=False)
            t_row = _comparison(base, "Welch t-test", t.statistic, t.pvalue, "Hedges' g",
                                hedges_g(a, b), f"{groups[0]} minus {groups[1]}")
        u = stats.mannwhitneyu(a, b, alternative="two-sided")
        return [t_row, _comparison(base, "Mann-Whitney U", u.statistic, u.pvalue,
                                   "Cliff's delta", cliffs_delta(a, b),
                                   f"P({groups[0]} > {groups[1]}) - P(<)")]
    pooled = np.concatenate(data)
    grand = pooled.mean()
    between = sum(d.size * (d.mean() - grand) ** 2 for d in data)
    total = float(((pooled - grand) ** 2).sum())
    f = stats.f_oneway(*data)
    h = stats.kruskal(*data)
    return [_comparison(base, "one-way ANOVA", f.statistic, f.pvalue, "eta squared",
                        between / total if total else float("nan")),
            _comparison(base, "Kruskal-Wallis H", h.statistic, h.pvalue, "epsilon squared",
                        h.statistic / (pooled.size - 1))]


def compare_groups(animals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparison of the groups at each timepoint of each key (see the module).

    Returns
    -------
    list of dict
        Keys :data:`COMPARISON_COLUMNS`; a cell with one group only gives no row, a
        cell where a group has fewer than :data:`MIN_ANIMALS` animals gives one row
        with ``test`` "none" and the reason in ``note``.
    """
    out = []
    cells = _by_cell(animals)
    for (key, timepoint) in sorted(cells, key=lambda c: (_sort(c[0]), natural_key(c[1]))):
        by_group = cells[(key, timepoint)]
        groups = sorted(by_group, key=natural_key)
        if len(groups) < 2:
            continue
        data = [np.asarray(by_group[g], dtype=float) for g in groups]
        base = {**dict(zip(KEY, key, strict=True)), "timepoint": timepoint,
                "groups": " vs ".join(groups),
                "n_per_group": "; ".join(f"{g}={d.size}" for g, d in zip(groups, data,
                                                                            strict=True))}
        small = [f"{g} has {d.size}" for g, d in zip(groups, data, strict=True)
                 if d.size < MIN_ANIMALS]
        if small:
            out.append({**base, "test": "none", "statistic": float("nan"),
                        "p_value": float("nan"), "effect_size_name": "",
                        "effect_size": float("nan"),
                        "note": f"n too small for a test: {', '.join(small)} animal(s); "
                                f"at least {MIN_ANIMALS} per group needed"})
            continue
        out += _tests(groups, data, base)
    return out

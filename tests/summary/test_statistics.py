"""The summary's statistics against an independent computation on the same rows.

The independent side computes everything from the formulas with numpy loops (mean, SD
with n - 1, median, Welch's t and its Welch-Satterthwaite degrees of freedom, Hedges' g,
the Mann-Whitney U by counting pairs, Cliff's delta by counting pairs, the ANOVA F from
sums of squares, the Kruskal-Wallis H from ranks); scipy is used only for the
distributions' tail probabilities (``t.sf``, ``f.sf``, ``chi2.sf``) and, for U, the exact
p-value of a sample without ties from the count of all rank arrangements.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import chi2, f, t

from xnatpic.roi.summary import natural_key
from xnatpic.roi.summary_stats import (
    MIN_ANIMALS,
    animal_values,
    cliffs_delta,
    compare_groups,
    group_statistics,
    hedges_g,
)

KEY = {"map": "T2", "units": "ms", "step": "t2map", "method": "nlls", "roi": "tumour"}


def _rows(values: dict[tuple[str, str], list[float]], **key: str) -> list[dict]:
    """Session rows: (group, timepoint) -> one ROI mean per animal."""
    rows = []
    for (group, timepoint), means in values.items():
        for i, mean in enumerate(means):
            rows.append({**KEY, **key, "group": group, "timepoint": timepoint,
                         "subject": f"{group}{i}", "session": f"{group}{i}_{timepoint}",
                         "mean": mean})
    return rows


@pytest.fixture
def study() -> dict[tuple[str, str], list[float]]:
    rng = np.random.default_rng(12)
    return {cell: [float(v) for v in rng.normal(mean, sd, n)] for cell, (mean, sd, n) in {
        ("control", "d0"): (60, 4, 5), ("treated", "d0"): (66, 5, 4),
        ("control", "d14"): (61, 4, 5), ("treated", "d14"): (80, 6, 4)}.items()}


def _mean(x):
    return sum(x) / len(x)


def _sd(x):
    m = _mean(x)
    return math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1))


def _median(x):
    s = sorted(x)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def test_group_statistics_by_hand(study):
    groups = group_statistics(animal_values(_rows(study)))
    # natural order of timepoints: d0 before d14
    assert [(g["timepoint"], g["group"]) for g in groups] == [
        ("d0", "control"), ("d0", "treated"), ("d14", "control"), ("d14", "treated")]
    for g in groups:
        x = study[(g["group"], g["timepoint"])]
        assert g["n_animals"] == len(x)
        assert g["mean"] == pytest.approx(_mean(x), rel=1e-12)
        assert g["sd"] == pytest.approx(_sd(x), rel=1e-12)
        assert g["median"] == pytest.approx(_median(x), rel=1e-12)
        assert (g["min"], g["max"]) == (min(x), max(x))
        assert {k: g[k] for k in KEY} == KEY


def _welch(a, b):
    va, vb = _sd(a) ** 2 / len(a), _sd(b) ** 2 / len(b)
    stat = (_mean(a) - _mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return stat, 2 * t.sf(abs(stat), df)


def _hedges(a, b):
    na, nb = len(a), len(b)
    pooled = math.sqrt(((na - 1) * _sd(a) ** 2 + (nb - 1) * _sd(b) ** 2) / (na + nb - 2))
    return (_mean(a) - _mean(b)) / pooled * (1 - 3 / (4 * (na + nb) - 9))


def _u_exact(a, b):
    """U of a and its exact two-sided p over every split of the pooled ranks (no ties)."""
    u = sum(1.0 for x in a for y in b if x > y)
    pooled = list(a) + list(b)
    ranks = {v: r for r, v in enumerate(sorted(pooled), start=1)}
    n1, n2 = len(a), len(b)
    us = []
    for chosen in itertools.combinations(range(1, n1 + n2 + 1), n1):
        us.append(sum(chosen) - n1 * (n1 + 1) / 2)
    assert len(ranks) == n1 + n2  # no ties
    mean_u = n1 * n2 / 2
    extreme = sum(1 for v in us if abs(v - mean_u) >= abs(u - mean_u) - 1e-9)
    return u, min(1.0, extreme / len(us))


def _cliff(a, b):
    return sum((x > y) - (x < y) for x in a for y in b) / (len(a) * len(b))


def test_two_groups_by_hand(study):
    comparisons = compare_groups(animal_values(_rows(study)))
    assert [(c["timepoint"], c["test"]) for c in comparisons] == [
        ("d0", "Welch t-test"), ("d0", "Mann-Whitney U"),
        ("d14", "Welch t-test"), ("d14", "Mann-Whitney U")]
    for c in comparisons:
        a, b = study[("control", c["timepoint"])], study[("treated", c["timepoint"])]
        assert c["groups"] == "control vs treated"
        assert c["n_per_group"] == f"control={len(a)}; treated={len(b)}"
        if c["test"] == "Welch t-test":
            stat, p = _welch(a, b)
            assert c["statistic"] == pytest.approx(stat, rel=1e-10)
            assert c["p_value"] == pytest.approx(p, rel=1e-8)
            assert c["effect_size_name"] == "Hedges' g"
            assert c["effect_size"] == pytest.approx(_hedges(a, b), rel=1e-12)
        else:
            u, p = _u_exact(a, b)
            assert c["statistic"] == u
            assert c["p_value"] == pytest.approx(p, rel=1e-10)
            assert c["effect_size_name"] == "Cliff's delta"
            assert c["effect_size"] == pytest.approx(_cliff(a, b))
    # the treated tumour at d14 is far above control: a small p, a large negative g
    late = next(c for c in comparisons if c["timepoint"] == "d14" and c["test"] == "Welch t-test")
    assert late["p_value"] < 0.01 and late["effect_size"] < -2


def _ranks(values):
    order = sorted(values)
    return [order.index(v) + 1 for v in values]  # no ties in these samples


def test_three_groups_by_hand():
    data = {("a", "d0"): [1.0, 2.5, 3.1, 2.2], ("b", "d0"): [2.9, 3.8, 4.4],
            ("c", "d0"): [5.0, 4.1, 6.3, 5.5, 4.9]}
    comparisons = compare_groups(animal_values(_rows(data)))
    assert [c["test"] for c in comparisons] == ["one-way ANOVA", "Kruskal-Wallis H"]
    groups = list(data.values())
    pooled = [v for g in groups for v in g]
    n, k, grand = len(pooled), len(groups), _mean(pooled)
    between = sum(len(g) * (_mean(g) - grand) ** 2 for g in groups)
    within = sum((v - _mean(g)) ** 2 for g in groups for v in g)
    stat = (between / (k - 1)) / (within / (n - k))
    anova, kruskal = comparisons
    assert anova["statistic"] == pytest.approx(stat, rel=1e-10)
    assert anova["p_value"] == pytest.approx(f.sf(stat, k - 1, n - k), rel=1e-8)
    assert anova["effect_size"] == pytest.approx(between / (between + within), rel=1e-12)
    ranks = _ranks(pooled)
    start, h = 0, 0.0
    for g in groups:
        r = ranks[start:start + len(g)]
        start += len(g)
        h += sum(r) ** 2 / len(g)
    h = 12 / (n * (n + 1)) * h - 3 * (n + 1)
    assert kruskal["statistic"] == pytest.approx(h, rel=1e-10)
    assert kruskal["p_value"] == pytest.approx(chi2.sf(h, k - 1), rel=1e-8)
    assert kruskal["effect_size"] == pytest.approx(h / (n - 1), rel=1e-12)
    assert anova["groups"] == "a vs b vs c" and anova["n_per_group"] == "a=4; b=3; c=5"


def test_too_few_animals_says_so_instead_of_a_p_value():
    data = {("control", "d0"): [60.0, 62.0], ("treated", "d0"): [80.0]}
    (row,) = compare_groups(animal_values(_rows(data)))
    assert row["test"] == "none" and math.isnan(row["p_value"])
    assert row["note"] == (f"n too small for a test: treated has 1 animal(s); at least "
                           f"{MIN_ANIMALS} per group needed")


def test_one_group_gives_no_comparison():
    assert compare_groups(animal_values(_rows({("control", "d0"): [1.0, 2.0, 3.0]}))) == []


def test_constant_groups_have_no_t_test():
    data = {("control", "d0"): [60.0, 60.0], ("treated", "d0"): [80.0, 80.0]}
    welch, mann = compare_groups(animal_values(_rows(data)))
    assert math.isnan(welch["p_value"]) and "SD 0" in welch["note"]
    assert mann["effect_size"] == -1.0


def test_an_animal_is_counted_once_per_timepoint():
    """Two sessions of one animal at a timepoint: one value (their mean), n = 1 animal."""
    rows = _rows({("control", "d0"): [60.0, 70.0]})
    rows.append({**rows[0], "session": "control0_d0_repeat", "mean": 64.0})
    rows.append({**rows[0], "session": "control0_d0_failed", "mean": float("nan")})
    animals = animal_values(rows)
    assert [(a["animal"], a["value"], a["n_values"]) for a in animals] == [
        ("control0", 62.0, 2), ("control1", 70.0, 1)]
    (g,) = group_statistics(animals)
    assert g["n_animals"] == 2 and g["mean"] == 66.0


def test_keys_never_pool():
    """The same map name from two methods (or two units) stays two keys."""
    rows = (_rows({("c", "d0"): [1.0, 2.0]}, method="vtr")
            + _rows({("c", "d0"): [10.0, 20.0]}, method="ir")
            + _rows({("c", "d0"): [5.0, 6.0]}, method="ir", units="s"))
    groups = group_statistics(animal_values(rows))
    assert sorted((g["method"], g["units"], g["mean"]) for g in groups) == [
        ("ir", "ms", 15.0), ("ir", "s", 5.5), ("vtr", "ms", 1.5)]


def test_effect_size_helpers_on_known_values():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])
    # pooled SD 1, difference -1, correction 1 - 3/15
    assert hedges_g(a, b) == pytest.approx(-0.8)
    assert cliffs_delta(a, b) == pytest.approx((1 - 6) / 9)


def test_natural_sort():
    names = ["Z_B0corrected_10", "Z_B0corrected_2", "Z_B0corrected_1", "d14", "d7", "d0"]
    assert sorted(names, key=natural_key) == [  # letters without regard to case
        "d0", "d7", "d14", "Z_B0corrected_1", "Z_B0corrected_2", "Z_B0corrected_10"]

"""The map statistics are numpy's, bit for bit: quantiles as ``np.quantile(...,
method="linear")`` (sorted float32 values, numpy's ``_lerp`` rounding, ±inf of long and
short voxels), mean and sd as numpy sums the float64 values, per slice as
``values[:, :, k][mask[:, :, k]]``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnatpic.analysis.stats import linear_quantiles, map_statistics, partially_sorted
from xnatpic.models.results import VOXEL_STATUS_NAMES, VoxelStatus


def _same(a: float | None, b: float | None) -> bool:
    """Equal bits (NaN equals NaN, -0.0 differs from 0.0), or both None."""
    if a is None or b is None:
        return a is b
    return np.float64(a).tobytes() == np.float64(b).tobytes()


def _numpy_summary(values: np.ndarray, status: np.ndarray) -> dict:
    """What the statistics of a region are, straight from numpy (float64 values)."""
    values = np.asarray(values, dtype=np.float64)
    valued = np.isin(status, [VoxelStatus.FITTED, VoxelStatus.LONG, VoxelStatus.SHORT])
    ranked = values[valued].copy()
    codes = status[valued]
    missing = ~np.isfinite(ranked)
    ranked[missing & (codes == VoxelStatus.LONG)] = np.inf
    ranked[missing & (codes == VoxelStatus.SHORT)] = -np.inf
    ranked = ranked[~np.isnan(ranked)]
    finite = ranked[np.isfinite(ranked)]
    out = {"n_voxels": status.size, "n_valued": ranked.size,
           "n_failed": int((status >= VoxelStatus.FAILED_INPUT).sum()),
           "status_counts": {VOXEL_STATUS_NAMES[VoxelStatus(c)]: int((status == c).sum())
                             for c in sorted(set(status.tolist())) if c}}
    if ranked.size == 0:
        return out | dict.fromkeys(("mean", "sd", "median", "q1", "q3", "iqr", "min", "max"))
    with np.errstate(invalid="ignore"):
        q1, median, q3 = (float(v) for v in np.quantile(ranked, [0.25, 0.5, 0.75]))
    return out | {
        "mean": float(finite.mean()) if finite.size else None,
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else None),
        "median": median if math.isfinite(median) else None,
        "q1": q1 if math.isfinite(q1) else None, "q3": q3 if math.isfinite(q3) else None,
        "iqr": q3 - q1 if math.isfinite(q3 - q1) else None,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None}


def _check(ours: dict, values: np.ndarray, status: np.ndarray) -> None:
    expected = _numpy_summary(values, status)
    for key, value in expected.items():
        assert key in ours, key
        if key in ("status_counts", "n_voxels", "n_valued", "n_failed"):
            assert ours[key] == value, key
        else:
            assert _same(ours[key], value), (key, ours[key], value)


def _random_map(rng: np.random.Generator, shape: tuple[int, int, int], dtype: type
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values with ties, NaN and ±inf; a mask; statuses of every kind (long/short voxels
    with and without a finite value)."""
    values = rng.lognormal(6, 1, shape).astype(dtype)
    values[rng.random(shape) < 0.3] = np.round(values[rng.random(shape) < 0.3][:1].sum())
    values[rng.random(shape) < 0.05] = np.nan
    values[rng.random(shape) < 0.02] = np.inf
    values[rng.random(shape) < 0.02] = -np.inf
    mask = rng.random(shape) < 0.7
    status = rng.choice(np.array([1, 1, 1, 1, 2, 3, 4, 5, 8, 9], dtype=np.uint8), shape)
    status[~mask] = VoxelStatus.OUTSIDE
    return values, mask, status


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5, 3), (8, 6, 4), (1, 1, 2), (3, 1, 5)])
def test_map_statistics_equal_numpy_bit_for_bit(dtype: type, shape: tuple[int, int, int]
                                                ) -> None:
    rng = np.random.default_rng(sum(shape) + (dtype is np.float32))
    for _ in range(30):
        values, mask, status = _random_map(rng, shape, dtype)
        mask[..., 0] = False  # an empty slice
        for given in (status, None):
            stats = map_statistics(values, mask, given)
            default = np.where(np.isfinite(values), 1, 8).astype(np.uint8)
            used = default if given is None else status
            values64 = values.astype(np.float64)
            _check(stats["whole"], values64[mask], used[mask])
            assert [s["slice"] for s in stats["slices"]] == list(range(1, shape[2] + 1))
            for k, entry in enumerate(stats["slices"]):
                m = mask[:, :, k]
                _check(entry, values64[:, :, k][m], used[:, :, k][m])


def test_map_statistics_of_all_fitted_float32_map_equal_numpy() -> None:
    """The common case (every mask voxel fitted and finite, a float32 map): no copy path."""
    rng = np.random.default_rng(3)
    values = rng.normal(1000, 300, (40, 30, 5)).astype(np.float32)
    mask = rng.random(values.shape) < 0.6
    status = np.where(mask, 1, 0).astype(np.uint8)
    stats = map_statistics(values, mask, status)
    _check(stats["whole"], values.astype(np.float64)[mask], status[mask])
    for k, entry in enumerate(stats["slices"]):
        m = mask[:, :, k]
        _check(entry, values.astype(np.float64)[:, :, k][m], status[:, :, k][m])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_quantiles_equal_np_quantile(dtype: type) -> None:
    """Odd and even sizes, one value, ties, ±inf at either end (numpy's NaN from inf - inf
    included), quartiles and the display range's percentiles."""
    rng = np.random.default_rng(7)
    qs = (0.25, 0.5, 0.75, 2 / 100, 98 / 100, 0.0, 1.0)
    for n in [1, 2, 3, 4, 5, 10, 11, 100, 101, 1001]:
        for _ in range(20):
            a = rng.normal(0, 1e3, n).astype(dtype)
            a[rng.random(n) < 0.3] = a[0]
            a[rng.random(n) < 0.1] = np.inf
            a[rng.random(n) < 0.1] = -np.inf
            with np.errstate(invalid="ignore"):
                expected = np.quantile(a, list(qs), method="linear")
            ours = linear_quantiles(np.sort(a), qs, dtype)
            assert all(_same(o, float(e)) for o, e in zip(ours, expected, strict=True)), \
                (n, a, ours, expected)
            # from a partition instead of a sort: the same quantiles, minimum and maximum
            parted = partially_sorted(a, qs)
            from_partition = linear_quantiles(parted, qs, dtype)
            assert all(_same(o, p) for o, p in zip(ours, from_partition, strict=True))
            assert (parted[0], parted[-1]) == (a.min(), a.max())
            if dtype is np.float32:  # float32 values, numpy given the float64 copy
                with np.errstate(invalid="ignore"):
                    wide = np.quantile(a.astype(np.float64), list(qs), method="linear")
                ours = linear_quantiles(np.sort(a), qs, np.float64)
                assert all(_same(o, float(e)) for o, e in zip(ours, wide, strict=True))


def test_map_statistics_refuses_a_map_or_status_of_another_shape():
    mask = np.ones((3, 4, 2), bool)
    with pytest.raises(ValueError, match="map"):
        map_statistics(np.zeros((4, 3, 2)), mask)
    with pytest.raises(ValueError, match="status"):
        map_statistics(np.zeros((3, 4, 2)), mask, np.ones((3, 4, 1), np.uint8))

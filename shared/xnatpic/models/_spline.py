"""Not-a-knot cubic splines of many rows sampled on the same knots.

With shared knots the second derivatives of every row's spline are one fixed linear map of
its samples, ``M = S y`` with ``S = A⁻¹ B`` (K x K) computed once; evaluating the splines
of a whole volume is then one matrix product and four gathers per point, instead of one
banded solve per voxel.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from xnatpic.arrays import distinct
from xnatpic.models._blocks import map_rows

__all__ = ["second_derivative_map", "spline_eval"]

#: Rows per block of :func:`spline_eval`: its (rows, points) temporaries stay in cache.
_BLOCK = 1024
#: Evaluation points per block at least: with few points per row (MTRasym reads 2) a block
#: of :data:`_BLOCK` rows is too little work to hand to a thread (2 threads took 1.14x
#: one thread's time on 262k MTRasym voxels).
_BLOCK_POINTS = 32768


@lru_cache(maxsize=32)
def _second_derivative_map(knots: tuple[float, ...]) -> np.ndarray:
    x = np.asarray(knots)
    k = x.size
    h = np.diff(x)
    a = np.zeros((k, k))
    b = np.zeros((k, k))
    for i in range(1, k - 1):
        a[i, i - 1 : i + 2] = (h[i - 1], 2.0 * (h[i - 1] + h[i]), h[i])
        b[i, i - 1 : i + 2] = (6.0 / h[i - 1], -6.0 / h[i - 1] - 6.0 / h[i], 6.0 / h[i])
    # Not-a-knot: the third derivative is continuous at the second and penultimate knots.
    a[0, :3] = (h[1], -(h[0] + h[1]), h[0])
    a[-1, -3:] = (h[-1], -(h[-2] + h[-1]), h[-2])
    return np.linalg.solve(a, b)


def second_derivative_map(x: np.ndarray) -> np.ndarray:
    """``S`` (K, K) with the spline second derivatives ``M = S @ y`` (K >= 4 knots)."""
    return _second_derivative_map(tuple(float(v) for v in x))


def spline_eval(x: np.ndarray, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Not-a-knot cubic spline of every row at ``q`` ((Q,) shared or (n, Q) per row).

    Parameters
    ----------
    x : ndarray, shape (K,)
        Strictly increasing knots.
    rows : ndarray, shape (n, K)
        Samples. Rows may have non-finite samples at their ends (e.g. B0-corrected
        spectra): such a row is interpolated over its finite run only.
    q : ndarray, shape (Q,) or (n, Q)
        Evaluation points.

    Returns
    -------
    ndarray, shape (n, Q), float64
        NaN outside the interpolated range, and for rows with a gap inside their finite
        run or fewer than 4 finite samples. float32 rows are interpolated in float32.
    """
    n, k = rows.shape
    out = np.full((n, q.shape[-1]), np.nan)
    if n == 0:
        return out
    finite = np.isfinite(rows)
    if finite.all():
        _fill(x, rows, q, np.arange(n), out)
        return out
    first = np.argmax(finite, axis=1)
    last = k - 1 - np.argmax(finite[:, ::-1], axis=1)
    count = finite.sum(axis=1)
    usable = (count == last - first + 1) & (count >= 4)
    key = first * (k + 1) + last
    for run in distinct(key[usable]):
        lo, hi = divmod(int(run), k + 1)
        group = np.flatnonzero(usable & (key == run))
        _fill(x[lo : hi + 1], rows[group, lo : hi + 1], q[group] if q.ndim == 2 else q, group, out)
    return out


def _fill(
    x: np.ndarray, rows: np.ndarray, q: np.ndarray, group: np.ndarray, out: np.ndarray
) -> None:
    s_t = second_derivative_map(x).T
    h = np.diff(x)
    tol = 1e-9 * (x[-1] - x[0])

    def block(yb: np.ndarray, *qb: np.ndarray) -> tuple[np.ndarray]:
        # float32 samples stay float32 (1e-7 relative), others are evaluated in float64.
        work = np.float32 if yb.dtype == np.float32 else np.float64
        yw = np.asarray(yb, dtype=work)
        qq = qb[0] if qb else np.broadcast_to(q, (yb.shape[0], q.size))
        inside = (qq >= x[0] - tol) & (qq <= x[-1] + tol)
        qc = np.clip(np.where(np.isfinite(qq), qq, x[0]), x[0], x[-1])
        seg = np.clip(np.searchsorted(x, qc, side="right") - 1, 0, x.size - 2)
        # Second derivatives at every knot: one small product, cheaper than sorting out
        # the knots that bound an evaluation point, and the same whatever points are asked.
        m = yw @ s_t.astype(work)
        hs = h[seg]
        left = qc - x[seg]
        right = hs - left
        # Gathers from the flattened rows (much faster than 2-D fancy indexing).
        flat = seg + (np.arange(yb.shape[0]) * x.size)[:, None]
        y_flat, m_flat = yw.ravel(), m.ravel()
        y0, y1 = y_flat.take(flat), y_flat.take(flat + 1)
        m0, m1 = m_flat.take(flat), m_flat.take(flat + 1)
        return (np.where(inside, _cubic(y0, y1, m0, m1, hs, left, right), np.nan),)

    per_row = q.shape[-1]
    values = map_rows(block, rows, *((q,) if q.ndim == 2 else ()),
                      block=max(_BLOCK, _BLOCK_POINTS // max(per_row, 1)))[0]
    out[group] = values


def _cubic(y0: np.ndarray, y1: np.ndarray, m0: np.ndarray, m1: np.ndarray, hs: np.ndarray,
           left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``(m0 r³ + m1 l³) / (6 h) + (y0 / h - m0 h / 6) r + (y1 / h - m1 h / 6) l``: the
    spline on a segment of width ``h`` with end values ``y0, y1`` and second derivatives
    ``m0, m1``, at ``l`` from its left end (``r = h - l``). Evaluated in place, operation
    by operation as the formula reads (the same rounding), without its temporaries."""
    val = right**3
    val *= m0
    term = left**3
    term *= m1
    val += term
    val /= 6.0 * hs
    slope = y0 / hs
    np.multiply(m0, hs, out=term)
    term /= 6.0
    slope -= term
    slope *= right
    other = y1 / hs
    np.multiply(m1, hs, out=term)
    term /= 6.0
    other -= term
    other *= left
    slope += other
    val += slope
    return val

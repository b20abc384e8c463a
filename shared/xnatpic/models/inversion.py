"""Inversion recovery with the acquisition's real timing (finite TR, readout, slice order).

The model
---------
One inversion every ``TR`` ms (inversion to inversion: ParaVision's MultiRepTime); the
slice is excited ``TI`` ms after the inversion (its *effective* inversion time: the
protocol TI plus the slice's delay in the acquisition order) and read by a train that
leaves no longitudinal magnetisation when it ends, ``T_read`` ms after the excitation (a
90° excitation and a spin-echo train, as RARE). The magnetisation then recovers from zero
until the next inversion, which turns ``Mz`` into ``-α Mz`` (``α = 1``: a perfect
inversion). In the steady state (reached after the first shot, because the readout resets
``Mz``)::

    Mz(TI) = M0 [1 - (1 + α) exp(-TI/T1) + α exp(-(TR - T_read)/T1)]

and the magnitude image is ``S = |M0 Mz(TI) / M0|`` up to the receive gain. The last term
does not depend on the slice: for every slice, ``TI + (recovery after its readout)`` equals
``TR - T_read``. With ``TR → ∞`` the model is the classic ``|M0 (1 - k exp(-TI/T1))|``
with ``k = 1 + α``.

Assumptions: mono-exponential T1; the readout saturates its own slice and no other (no
slice cross-talk: with contiguous interleaved slices the slices read after their
neighbours are partly saturated and their T1 comes out short); the inversion is uniform
over the slice; steady state (dummy shots or a k-space centre read after the first shot).

Two fits: ``inversion_factor`` fixed (``M0`` and ``T1``; 3 distinct TIs minimum, so that
one degree of freedom is left: with 3 TIs the inversion factor cannot be fitted) or free
(``M0``, ``α``, ``T1``; 4 distinct TIs minimum). Both are grid searches on ``log(1/T1)``
with the linear parameters in closed form, refined by zooming the grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnatpic.arrays import distinct
from xnatpic.errors import FittingError
from xnatpic.models._blocks import map_rows
from xnatpic.models._validate import as_bounds, goodness, prepare
from xnatpic.models.results import FitStatus, T1IRFit

__all__ = ["fit_t1_ir_timed", "ir_signal"]

#: Half-widths ``h`` (in log rate) of the successive parabolic interpolations after the
#: grid: each moves to the vertex of the parabola through the cost at ``x - h``, ``x``,
#: ``x + h`` (a Newton step with a central-difference slope): its error is about the
#: square of the previous one, plus ``h**2`` times the cost's third over second
#: derivative, plus the cost's rounding (a difference of sums of squares) over ``h``.
#: These three steps (10 cost evaluations) reach 1.5e-7 in T1 on noise-free data from
#: 150 ms to 15 s, better than the 30-evaluation golden-section search they replaced
#: (3.4e-7); a smaller last ``h`` is worse, as rounding takes over. CBF is a difference
#: of two fitted rates a few per mille apart, so the rates need this precision.
_PARABOLA_STEPS = (5e-2, 5e-3, 5e-4)
#: Grid points per decade of 1/T1. The fits work on signed data (one polarity split at a
#: time): a smooth cost, so a coarse grid and one start suffice.
_SIGNED_GRID_PER_DECADE = 16


def ir_signal(
    t1: object,
    ti: object,
    *,
    tr: object = np.inf,
    readout: object = 0.0,
    inversion_factor: object = 1.0,
) -> np.ndarray:
    """Signed steady-state ``Mz(TI) / M0`` of the timed inversion-recovery model.

    ``1 - (1 + α) exp(-TI/T1) + α exp(-(TR - T_read)/T1)`` (module docstring).

    Parameters
    ----------
    t1, ti, tr, readout, inversion_factor : array_like
        T1, effective inversion time, inversion-to-inversion time and readout duration in
        ms, and ``α``; broadcast together.

    Returns
    -------
    ndarray
        The signed longitudinal magnetisation over ``M0``.

    Examples
    --------
    >>> round(float(ir_signal(1000.0, 1000.0 * np.log(2))), 6)
    0.0
    >>> round(float(ir_signal(1000.0, 0.0, tr=3000.0)), 4)
    -0.9502
    """
    t1 = np.asarray(t1, dtype=np.float64)
    alpha = np.asarray(inversion_factor, dtype=np.float64)
    recovery = np.asarray(tr, dtype=np.float64) - np.asarray(readout, dtype=np.float64)
    with np.errstate(over="ignore"):
        return (1.0 - (1.0 + alpha) * np.exp(-np.asarray(ti, dtype=np.float64) / t1)
                + alpha * np.exp(-recovery / t1))


def _per_voxel(values: object, name: str, shape: tuple[int, ...], n: int,
               default: float | None) -> np.ndarray:
    """``values`` as a (voxels, M) float64 array (broadcast from (M,) or (..., M))."""
    if values is None:
        if default is None:
            raise FittingError(f"{name} is required")
        values = default
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FittingError(f"{name} must be numbers in ms: {exc}") from exc
    try:
        full = np.broadcast_to(arr, (*shape, n))
    except ValueError as exc:
        raise FittingError(
            f"{name} has shape {arr.shape}; it must be one value, (M,) = ({n},) or the "
            f"signal's shape {(*shape, n)} (per-voxel times)") from exc
    return full.reshape(-1, n)


def fit_t1_ir_timed(
    signal: object,
    ti: object,
    *,
    tr: object = None,
    readout: object = 0.0,
    inversion_factor: float | None = 1.0,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
) -> T1IRFit:
    """Fit T1 to magnitude inversion-recovery data with the real timing (module docstring).

    Parameters
    ----------
    signal : array_like, shape (..., M)
        Magnitude signal, the M images on the last axis.
    ti : array_like, shape (M,) or (..., M)
        Effective inversion time of every image in ms (inversion to the excitation of the
        slice); per voxel when slices were excited at different delays.
    tr : array_like, shape (M,) or (..., M), optional
        Inversion-to-inversion time in ms; None or ``inf``: full recovery (TR ≫ T1).
    readout : float or array_like
        Duration in ms from the excitation to the end of the slice's readout (RARE: echo
        train length × echo spacing); 0 when unknown.
    inversion_factor : float or None
        ``α`` in (0, 1]: fixed (default 1, a perfect inversion) with 2 fitted parameters
        (at least 3 distinct inversion times); None fits it (3 parameters, at least 4).
    mask : array_like of bool, shape (...), optional
        Voxels to fit.
    bounds : (float, float), optional
        Allowed T1 range in ms (default 10 ms to 10 × the longest of TI and TR).

    Returns
    -------
    T1IRFit
        ``a = M0``, ``b = -(1 + α) M0`` (so ``inversion_efficiency`` is ``1 + α``), ``t1``,
        ``r_squared`` and ``rmse`` on the magnitude data, ``failed``, ``status``;
        ``model`` is ``"timed"`` (α fixed) or ``"timed-free"``.

    Raises
    ------
    FittingError
        If the times do not broadcast to the signal, are negative or non-finite (TR may
        be ``inf``), a recovery ``TR - readout`` is not longer than the inversion time,
        there are too few distinct inversion times (3 with α fixed, 4 free),
        ``inversion_factor`` is outside (0, 1], or ``mask`` / ``bounds`` are invalid.

    Notes
    -----
    Fits with ``M0 <= 0`` or (free α) ``α <= 0`` are flagged ``NONPHYSICAL``; a T1 on a
    bound ``AT_BOUND``. Polarity restoration: the data are fitted signed for three
    candidate splits in TI order (repeated TIs share one sign): just before and just after
    the smallest signal, and none, which with ``M0 < 0`` is also "all points inverted"; the
    lowest residual wins (a magnitude fit has narrow false minima where a point crosses
    the null).

    References
    ----------
    Kingsley PB. Methods of measuring spin-lattice (T1) relaxation times: an annotated
    bibliography. Concepts Magn Reson 1999;11:243-276 (inversion recovery with finite
    repetition time, inversion efficiency).

    Barral JK et al. A robust methodology for in vivo T1 mapping. Magn Reson Med
    2010;64:1057-1067. doi:10.1002/mrm.22497 (polarity restoration).

    Examples
    --------
    >>> import numpy as np
    >>> ti = np.array([15.0, 300.0, 1000.0])
    >>> tr = ti + 5568.0
    >>> s = 900.0 * np.abs(ir_signal(2500.0, ti, tr=tr, readout=57.0))
    >>> fit = fit_t1_ir_timed(s, ti, tr=tr, readout=57.0)
    >>> round(float(fit.t1), 1), fit.model
    (2500.0, 'timed')
    """
    arr = np.asarray(signal)
    layout = prepare(arr, mask, min_measurements=2, what="inversion times")
    n = arr.shape[-1]
    shape = arr.shape[:-1]
    free = inversion_factor is None
    if not free:
        try:
            alpha = float(inversion_factor)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise FittingError(
                f"inversion_factor must be a number in (0, 1] or None, got "
                f"{inversion_factor!r}") from exc
        if not (np.isfinite(alpha) and 0 < alpha <= 1):
            raise FittingError(f"inversion_factor must be in (0, 1], got {inversion_factor!r}")
    else:
        alpha = np.nan
    ti_rows = _per_voxel(ti, "ti", shape, n, None)[layout.rows]
    tr_rows = _per_voxel(np.inf if tr is None else tr, "tr", shape, n, None)[layout.rows]
    read_rows = _per_voxel(readout, "readout", shape, n, 0.0)[layout.rows]
    _check_times(ti_rows, tr_rows, read_rows, free)
    finite_tr = tr_rows[np.isfinite(tr_rows)]
    longest = max(float(ti_rows.max(initial=0.0)),
                  float(finite_tr.max(initial=0.0)))
    tb = as_bounds(bounds, (10.0, 10.0 * max(longest, 100.0)), "bounds")
    r_bounds = (1.0 / tb[1], 1.0 / tb[0])
    sub = layout.ok()
    y = np.asarray(layout.rows_of(sub), dtype=np.float64)
    recovery = tr_rows[sub] - read_rows[sub]
    keys = np.concatenate([ti_rows[sub], recovery], axis=1)
    m0 = np.full(sub.size, np.nan)
    beta = np.full(sub.size, np.nan)
    rate = np.full(sub.size, np.nan)
    sse = np.full(sub.size, np.nan)
    if sub.size:
        groups, inverse = _distinct_rows(keys)
        for g, key in enumerate(groups):
            members = np.flatnonzero(inverse == g)
            t, rec = key[:n], key[n:]
            if free:
                out = map_rows(lambda rows, t=t, rec=rec: _free_block(rows, t, rec, r_bounds),
                               y[members])
            else:
                out = map_rows(lambda rows, t=t, rec=rec: _fixed_block(
                    rows, t, rec, alpha, r_bounds), y[members])
            m0[members], beta[members], rate[members], sse[members] = out
    r2, rmse = goodness(y, sse)
    with np.errstate(invalid="ignore", divide="ignore"):
        t1 = 1.0 / rate
        factor = beta / m0 if free else np.full(sub.size, alpha)
        at_bound = (rate <= r_bounds[0] * (1 + 1e-6)) | (rate >= r_bounds[1] * (1 - 1e-6))
        nonphysical = ~(m0 > 0) | (free & ~(factor > 0))
    bad = ~(np.isfinite(m0) & np.isfinite(rate) & np.isfinite(r2) & np.isfinite(rmse))
    layout.flag(bad, FitStatus.NONFINITE_RESULT, sub)
    layout.flag(at_bound & ~bad, FitStatus.AT_BOUND, sub)
    layout.flag(nonphysical & ~bad, FitStatus.NONPHYSICAL, sub)
    status, failed = layout.status_map()
    return T1IRFit(
        layout.scatter(m0, sub),
        layout.scatter(-(1.0 + factor) * m0, sub),
        layout.scatter(t1, sub),
        layout.scatter(r2, sub),
        layout.scatter(rmse, sub),
        failed,
        status,
        model="timed-free" if free else "timed",
    )


def _check_times(ti: np.ndarray, tr: np.ndarray, readout: np.ndarray, free: bool) -> None:
    for name, values in (("ti", ti), ("readout", readout)):
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise FittingError(f"{name} must be finite and >= 0 ms")
    if np.any(np.isnan(tr)) or np.any(tr <= 0):
        raise FittingError("tr must be > 0 ms (inf for full recovery)")
    if ti.size and 0 < ti.max() < 20.0:
        raise FittingError(
            f"ti must be in milliseconds; its longest value {ti.max():g} is below 20 ms, "
            "which looks like seconds (multiply by 1000)")
    if np.any(tr - readout <= ti):
        raise FittingError("tr - readout must be longer than ti: the next inversion comes "
                           "after the readout (tr is the inversion-to-inversion time in ms)")
    minimum = 4 if free else 3
    n_distinct = min((distinct(row).size for row in _distinct_rows(ti)[0]),
                     default=minimum)
    if n_distinct < minimum:
        raise FittingError(
            f"ti has {n_distinct} distinct value(s); the timed inversion-recovery fit "
            f"{'with a free inversion factor ' if free else ''}needs at least {minimum}")


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``rows`` (voxels, K) and each row's index among them, as
    ``np.unique(rows, axis=0, return_inverse=True)`` but in any order of the groups.

    The times of a series take a few distinct rows (one per slice) over many voxels:
    rows are grouped by one weighted sum each (a 1-D sort instead of a row-wise one) and
    the grouping is checked exactly; a collision falls back to ``np.unique``.
    """
    if rows.size == 0:
        groups, inverse = np.unique(rows, axis=0, return_inverse=True)
        return groups, inverse.reshape(-1)
    weights = np.sqrt(np.arange(2.0, rows.shape[1] + 2.0))  # incommensurate
    with np.errstate(invalid="ignore", over="ignore"):
        key = rows @ weights
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    groups = rows[first]
    inverse = inverse.reshape(-1)
    if np.array_equal(groups[inverse], rows):
        return groups, inverse
    groups, inverse = np.unique(rows, axis=0, return_inverse=True)
    return groups, inverse.reshape(-1)


def _log_grid(r_bounds: tuple[float, float], per_decade: int) -> tuple[np.ndarray, float]:
    lo, hi = np.log(r_bounds[0]), np.log(r_bounds[1])
    points = max(int(np.ceil((hi - lo) / np.log(10) * per_decade)) + 1, 8)
    grid = np.linspace(lo, hi, points)
    return grid, float(grid[1] - grid[0])


def _zoom(cost, n: int, r_bounds: tuple[float, float], *,
          per_decade: int) -> tuple[np.ndarray, tuple]:
    """Grid search, then successive parabolic interpolation on log(rate) around the grid's
    minimum; ``cost(rates)`` -> (sse, *params), each (n, K), for rates of shape (n, K) or,
    on the grid every voxel shares, (1, K).

    Each refinement fits a parabola to the cost at ``x - h``, ``x``, ``x + h`` and moves
    to its vertex (towards the lower side where the three points are not convex), kept
    inside the bracket of one grid interval each side of the grid's minimum; ``h`` takes
    the values of :data:`_PARABOLA_STEPS`. The result is the
    lowest cost evaluated, so a refinement never makes a voxel worse than the grid.
    """
    grid, step0 = _log_grid(r_bounds, per_decade)
    lo, hi = np.log(r_bounds[0]), np.log(r_bounds[1])
    # one row of rates for all voxels: the model curves are computed once, not per voxel
    sse, *_ = cost(np.exp(grid)[None, :])
    rows = np.arange(sse.shape[0])
    centre = np.argmin(sse, axis=1)
    inner = np.clip(centre, 1, grid.size - 2)
    x = _vertex(grid[inner], step0, sse[rows, inner - 1], sse[rows, inner],
                sse[rows, inner + 1])
    x = np.where(centre == inner, x, grid[centre])  # a minimum on the grid's edge
    a = np.maximum(grid[centre] - step0, lo)
    b = np.minimum(grid[centre] + step0, hi)
    x = np.clip(x, a, b)

    def at(log_rate: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(v[:, 0] for v in cost(np.exp(log_rate)[:, None]))

    best_x = grid[centre]
    best_f = sse[rows, centre]
    for h in _PARABOLA_STEPS:
        f_minus, f_mid, f_plus = (at(np.clip(x + d, lo, hi))[0] for d in (-h, 0.0, h))
        better = f_mid < best_f
        best_x, best_f = np.where(better, x, best_x), np.where(better, f_mid, best_f)
        x = np.clip(_vertex(x, h, f_minus, f_mid, f_plus), a, b)
    found = at(x)
    keep = found[0] <= best_f
    log_rate = np.where(keep, x, best_x)
    if not np.all(keep):
        found = tuple(np.where(keep, u, v) for u, v in zip(found, at(log_rate), strict=True))
    return np.exp(log_rate), found


def _vertex(x: np.ndarray, h: float | np.ndarray, f_minus: np.ndarray, f_mid: np.ndarray,
            f_plus: np.ndarray) -> np.ndarray:
    """The vertex of the parabola through ``(x - h, f_minus)``, ``(x, f_mid)``,
    ``(x + h, f_plus)``; ``x + h`` or ``x - h``, whichever is lower, where the three
    points are not convex; ``x`` where the costs are not finite."""
    curvature = f_plus - 2.0 * f_mid + f_minus
    slope = f_plus - f_minus
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(curvature > 0, -0.5 * h * slope / curvature,
                        np.where(slope < 0, h, np.where(slope > 0, -h, 0.0)))
    step = np.where(np.isfinite(step), step, 0.0)
    return x + step


def _project(curves: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Dot product of each voxel's data (n, m) with each of its model curves (n or 1,
    K, m): (n, K)."""
    return np.matmul(curves, data[:, :, None])[:, :, 0]


def _signed_candidates(y: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """The data with each candidate polarity split applied (points before it negated).

    Splits are between distinct TIs in ascending order (equal TIs share a sign). The sign
    change lies next to the smallest signal, so the candidates are the splits just before
    and just after the distinct TI of smallest mean magnitude, and no split at all, which
    is also "every point inverted": the magnitude ``|M0 g|`` is blind to a global sign, a
    fit with ``M0 < 0`` is turned over at the end (:func:`_turn_over`).
    """
    times = distinct(t)
    group = np.searchsorted(times, t)
    means = np.stack([y[:, group == k].mean(axis=1) for k in range(times.size)], axis=1)
    k_min = np.argmin(means, axis=1)
    out = [y]
    for extra in (0, 1):
        negative = group[None, :] < (k_min + extra)[:, None]
        out.append(np.where(negative, -y, y))
    return out


def _turn_over(m0: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flip = np.where(m0 < 0, -1.0, 1.0)
    return m0 * flip, beta * flip


def _best(found: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Element-wise the candidate with the lowest SSE (first element of each tuple)."""
    best = found[0]
    for other in found[1:]:
        better = other[0] < best[0]
        best = tuple(np.where(better, a, b) for a, b in zip(other, best, strict=True))
    return best


def _fixed_block(y: np.ndarray, t: np.ndarray, rec: np.ndarray, alpha: float,
                 r_bounds: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """M0 and the rate with α fixed: signed least squares for each polarity candidate."""
    found = []
    for signed in _signed_candidates(y, t):
        yy = np.einsum("nm,nm->n", signed, signed)[:, None]

        def cost(rates: np.ndarray, signed: np.ndarray = signed,
                 yy: np.ndarray = yy) -> tuple[np.ndarray, np.ndarray]:
            r = rates[:, :, None]
            g = 1.0 - (1.0 + alpha) * np.exp(-r * t) + alpha * np.exp(-r * rec)
            gy = _project(g, signed)
            gg = np.einsum("nkm,nkm->nk", g, g)
            with np.errstate(divide="ignore", invalid="ignore"):
                m0 = gy / gg
            sse = np.maximum(yy - gy * m0, 0.0)
            return np.where(np.isfinite(sse), sse, np.inf), m0

        rate, (sse, m0) = _zoom(cost, y.shape[0], r_bounds, per_decade=_SIGNED_GRID_PER_DECADE)
        found.append((sse, m0, rate))
    sse, m0, rate = _best(found)
    m0, beta = _turn_over(m0, alpha * m0)
    return m0, beta, rate, sse


def _free_block(y: np.ndarray, t: np.ndarray, rec: np.ndarray,
                r_bounds: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """M0, α M0 and the rate with α free, for each polarity candidate."""
    found = []
    for signed in _signed_candidates(y, t):
        yy = np.einsum("nm,nm->n", signed, signed)[:, None]

        def cost(rates: np.ndarray, signed: np.ndarray = signed,
                 yy: np.ndarray = yy) -> tuple[np.ndarray, ...]:
            r = rates[:, :, None]
            e_ti = np.exp(-r * t)
            u = 1.0 - e_ti  # coefficient of M0
            w = np.exp(-r * rec) - e_ti  # coefficient of α M0
            uu = np.einsum("nkm,nkm->nk", u, u)
            ww = np.einsum("nkm,nkm->nk", w, w)
            uw = np.einsum("nkm,nkm->nk", u, w)
            uy = _project(u, signed)
            wy = _project(w, signed)
            det = uu * ww - uw * uw
            with np.errstate(divide="ignore", invalid="ignore"):
                m0 = (ww * uy - uw * wy) / det
                beta = (uu * wy - uw * uy) / det
            sse = np.maximum(yy - m0 * uy - beta * wy, 0.0)
            return np.where(np.isfinite(sse), sse, np.inf), m0, beta

        rate, (sse, m0, beta) = _zoom(cost, y.shape[0], r_bounds,
                                      per_decade=_SIGNED_GRID_PER_DECADE)
        found.append((sse, m0, beta, rate))
    sse, m0, beta, rate = _best(found)
    m0, beta = _turn_over(m0, beta)
    return m0, beta, rate, sse

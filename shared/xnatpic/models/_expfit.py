"""The separable exponential model behind the relaxometry and ADC fits.

``S(t) = alpha + beta * h(k t)`` with ``h = exp(-k t)`` (decay, inversion recovery) or
``h = 1 - exp(-k t)`` (saturation recovery), ``k`` a relaxation rate and ``alpha`` an
optional constant. For a fixed ``k`` the model is linear in ``(alpha, beta)``, so a grid
over ``k`` with closed-form linear least squares at every grid point (variable projection,
Golub & Pereyra 1973, doi:10.1137/0710036) finds the global minimum to grid precision for
all voxels with two matrix products; Levenberg-Marquardt then refines it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xnatpic.models._blocks import map_rows
from xnatpic.models._validate import row_count, row_sum

__all__ = ["ExpFit", "fit_exponential", "grid_search", "loglinear", "residual_sse"]

_CHUNK = 4096


@dataclass(frozen=True, eq=False)
class ExpFit:
    """Per-voxel solution: ``alpha`` (0 without constant), ``beta``, rate ``k``, ``cost``."""

    alpha: np.ndarray
    beta: np.ndarray
    k: np.ndarray
    cost: np.ndarray
    converged: np.ndarray


def _basis(t: np.ndarray, k: np.ndarray, recovery: bool) -> np.ndarray:
    e = np.exp(-np.multiply.outer(t, k))
    return 1.0 - e if recovery else e


def grid_search(
    y: np.ndarray,
    t: np.ndarray,
    k_grid: np.ndarray,
    *,
    recovery: bool,
    constant: bool,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best ``(alpha, beta, k, sse)`` over ``k_grid`` (log-spaced), refined by a parabola.

    Parameters
    ----------
    y : ndarray, shape (n, M)
    t : ndarray, shape (M,)
    k_grid : ndarray, shape (K,), increasing and log-spaced
    recovery, constant : bool
        Model variant (see module docstring).
    weights : ndarray, shape (M,), optional
        Weights of the measurements in the sum of squares (default 1).

    Returns
    -------
    alpha, beta, k, sse : ndarray, shape (n,)
        ``k`` is interpolated between grid points; ``alpha``, ``beta`` and ``sse`` are those
        of the best grid point.
    """
    h = _basis(t, k_grid, recovery)  # (M, K)
    w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=np.float64)
    m = float(w.sum())
    # With a constant, project it out: against the (weighted-)centred basis h - mean(h)
    # the constant and the exponential are orthogonal, so every grid point is a one-column
    # problem (and float32 is safe: no determinant of nearly collinear columns).
    h_mean = (w @ h) / m if constant else np.zeros(k_grid.size)
    basis = h - h_mean
    hh = np.einsum("m,mk,mk->k", w, basis, basis)
    # Unit-norm columns: a late first sample (t_min >> 1/k at the fast end of the grid)
    # makes |h|² underflow float32 and 1/|h|² overflow it; normalised in float64, every
    # column is O(1) and a column with nothing left (|h|² = 0) is never chosen.
    usable = np.isfinite(hh) & (hh > 0)
    norm = np.where(usable, np.sqrt(np.where(usable, hh, 1.0)), 1.0)
    basis32 = (w[:, None] * basis / norm).astype(np.float32)
    unusable = ~usable
    any_unusable = bool(unusable.any())
    w32 = w.astype(np.float32)
    n = y.shape[0]
    alpha = np.zeros(n)
    beta = np.empty(n)
    k = np.empty(n)
    sse = np.empty(n)
    kk = k_grid.size
    logk = np.log(k_grid)
    step = logk[1] - logk[0] if kk > 1 else 0.0
    for start in range(0, n, _CHUNK):
        yc = np.asarray(y[start : start + _CHUNK], dtype=np.float32)
        rows = np.arange(yc.shape[0])
        c = yc @ basis32  # (c, K), projections on the unit-norm columns
        # SSE_j = |y|² (- M mean(y)²) - c_j²: maximise the projection.
        proj = c * c
        if any_unusable:
            proj[:, unusable] = -1.0
        j = np.argmax(proj, axis=1)
        jm = np.clip(j - 1, 0, kk - 1)
        jp = np.clip(j + 1, 0, kk - 1)
        # Row r, column i is element r K + i of the flat arrays (a 1-D take is faster).
        base = rows * kk
        flat_proj, flat_c = proj.ravel(), c.ravel()
        pm, p0, pp = (flat_proj[base + i].astype(np.float64) for i in (jm, j, jp))
        # Parabola through the SSE at the neighbouring grid points, in log k.
        denom = 2.0 * p0 - pm - pp
        inner = (j > 0) & (j < kk - 1) & (denom > 0) & np.isfinite(denom)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(inner, 0.5 * (pp - pm) / np.where(inner, denom, 1.0), 0.0)
        frac = np.clip(frac, -0.5, 0.5)
        # Linear parameters interpolated towards the neighbour on the side of the minimum.
        jn = np.where(frac >= 0, jp, jm)
        f = np.abs(frac)
        beta_j = flat_c[base + j] / norm[j]
        beta_n = flat_c[base + jn] / norm[jn]
        s1 = (yc @ w32).astype(np.float64)
        yy = np.einsum("nm,nm,m->n", yc, yc, w32, dtype=np.float64)
        sl = slice(start, start + yc.shape[0])
        beta[sl] = beta_j + f * (beta_n - beta_j)
        if constant:
            mean = s1 / m
            alpha[sl] = mean - beta[sl] * (h_mean[j] + f * (h_mean[jn] - h_mean[j]))
            yy -= s1 * mean
        k[sl] = np.exp(logk[j] + frac * step)
        sse[sl] = yy - p0
    return alpha, beta, k, sse


class _VarProProblem:
    """The rate ``k`` alone, with ``(alpha, beta)`` projected out (variable projection).

    For a rate ``k`` the linear parameters come from the normal equations of the basis
    ``[h]`` or ``[h, 1]``; the cost, the Gauss-Newton gradient and curvature of Kaufman's
    approximation (Kaufman 1975, doi:10.1007/BF01932995) follow from nine per-voxel sums, so
    one exponential and three small matrix products per evaluation cover every voxel and
    the solver state is a few numbers per voxel rather than residual arrays.
    """

    def __init__(
        self, t: np.ndarray, recovery: bool, constant: bool, weights: np.ndarray | None = None
    ):
        self.t = t.astype(np.float32)
        w = np.ones(t.size) if weights is None else np.asarray(weights, dtype=np.float64)
        tw = np.asarray(t, dtype=np.float64)
        self.weights = w.astype(np.float32)
        self.p2 = np.stack([w, w * tw], axis=1).astype(np.float32)
        self.p3 = np.stack([w, w * tw, w * tw * tw], axis=1).astype(np.float32)
        self.recovery = recovery
        self.constant = constant
        self.m = float(w.sum())

    def data(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(y float32, weighted sum of y, weighted sum of y²)`` for :meth:`solve`."""
        y32 = np.asarray(y, dtype=np.float32)
        return (
            y32,
            (y32 @ self.weights).astype(np.float64),
            np.einsum("nm,nm,m->n", y32, y32, self.weights, dtype=np.float64),
        )

    def solve(self, k: np.ndarray, data: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        """Linear parameters, cost, gradient ``g`` and curvature ``a`` at rates ``k``.

        ``data`` comes from :meth:`data`; all sums are weighted.
        """
        y, s_y, s_yy = data
        e = np.exp(-(k.astype(np.float32)[:, None] * self.t))
        s_e = (e @ self.p2).astype(np.float64)  # sum e, t e
        s_e2 = ((e * e) @ self.p3).astype(np.float64)  # sum e², t e², t² e²
        s_ye = (np.multiply(y, e, out=e) @ self.p2).astype(np.float64)  # sum y e, t y e
        m = self.m
        if self.recovery:  # h = 1 - e, d = dh/dk = t e
            b1 = s_y - s_ye[:, 0]
            g11 = m - 2.0 * s_e[:, 0] + s_e2[:, 0]
            g12 = m - s_e[:, 0]
            f1 = s_e[:, 1] - s_e2[:, 1]
            f2 = s_e[:, 1]
            dy = s_ye[:, 1]
        else:  # h = e, d = -t e
            b1 = s_ye[:, 0]
            g11 = s_e2[:, 0]
            g12 = s_e[:, 0]
            f1 = -s_e2[:, 1]
            f2 = -s_e[:, 1]
            dy = -s_ye[:, 1]
        dd = s_e2[:, 2]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.constant:
                b2 = s_y
                det = g11 * m - g12 * g12
                beta = (m * b1 - g12 * b2) / det
                alpha = (g11 * b2 - g12 * b1) / det
                proj = beta * b1 + alpha * b2
                d_fit = beta * f1 + alpha * f2
                f_proj = (m * f1 * f1 - 2.0 * g12 * f1 * f2 + g11 * f2 * f2) / det
            else:
                beta = b1 / g11
                alpha = np.zeros_like(beta)
                proj = beta * b1
                d_fit = beta * f1
                f_proj = f1 * f1 / g11
        cost = np.maximum(s_yy - proj, 0.0)
        grad = beta * (dy - d_fit)
        curv = beta * beta * np.maximum(dd - f_proj, 0.0)
        return {"alpha": alpha, "beta": beta, "cost": cost, "g": grad, "a": curv}

    def evaluate(
        self, p: np.ndarray, y: np.ndarray, w: np.ndarray | None
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        sol = self.solve(p[:, 0], y)
        return sol["cost"], (sol["a"], sol["g"], sol["alpha"], sol["beta"])

    def normal_equations(
        self, p: np.ndarray, cache: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        a, g = cache[0], cache[1]
        return a[:, None, None], g[:, None]


#: The solver state of each voxel, in the order blocks return it.
_STATE = ("k", "alpha", "beta", "cost", "a", "g", "lam", "it")
#: A block leaves its last voxels to a pooled pass over every block once fewer than this
#: fraction of it is still iterating: the slow tail (tens of iterations of a few voxels,
#: each iteration a fixed Python/numpy overhead) then runs once, not once per block.
_TAIL = 0.05


def _start_rate(
    problem: _VarProProblem, data: tuple[np.ndarray, ...], k0: np.ndarray,
    k_bounds: tuple[float, float],
) -> dict[str, np.ndarray]:
    """The solver state at the starting rates ``k0`` (clipped to the bounds)."""
    k = np.clip(np.asarray(k0, dtype=np.float64), *k_bounds)
    sol = problem.solve(k, data)
    return {"k": k, "alpha": sol["alpha"], "beta": sol["beta"],
            "cost": np.where(np.isfinite(sol["cost"]), sol["cost"], np.inf),
            "a": sol["a"], "g": sol["g"], "lam": np.full(k.size, 1e-3),
            "it": np.zeros(k.size, dtype=np.int64)}


def _refine_rate(
    problem: _VarProProblem,
    data: tuple[np.ndarray, ...],
    state: dict[str, np.ndarray],
    k_bounds: tuple[float, float],
    *,
    max_iter: int,
    xtol: float = 1e-6,
    ftol: float = 1e-7,
    tail: float = 0.0,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Levenberg-Marquardt on the rate alone, from ``state`` (:func:`_start_rate`).

    The iterations of :func:`xnatpic.models._lm.levenberg_marquardt` for one parameter
    (same damping, acceptance and convergence tests, the 1x1 normal equation solved as a
    division), on per-voxel scalars instead of (n, 1, 1) matrices, with each voxel's own
    iteration count (``state["it"]``), so that a voxel's iterations can stop and resume.

    Returns
    -------
    state : dict of ndarray
        Every voxel's final state, or its current one where ``pending``.
    converged : ndarray of bool
        A convergence criterion was met before ``max_iter``.
    pending : ndarray of bool
        Still iterating when fewer than ``tail`` (fraction) of the voxels were (0: never).
    """
    k_lo, k_hi = k_bounds
    out = {name: np.array(v, copy=True) for name, v in state.items()}
    n = out["k"].size
    converged = np.zeros(n, dtype=bool)
    pending = np.zeros(n, dtype=bool)
    idx = np.arange(n)
    k, alpha, beta, cost, a, g, lam, it = (np.array(state[name], copy=True) for name in _STATE)
    # float32 exponentials and sums leave ~1e-7 relative noise on |y|² minus the
    # projection, and ~1e-13 |y|² on the predicted decrease of a step.
    ta, fa = 1e-6 * data[2], 1e-11 * data[2]
    live = np.ones(n, dtype=bool)
    while live.size:
        it += 1
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            damped = a + lam * np.maximum(a, 1e-12 * np.maximum(a, 1e-300))
            delta = g / damped
            ok = (damped > 0) & np.isfinite(delta)
        delta[~ok] = 0.0
        trial = np.clip(k + delta, k_lo, k_hi)
        new = problem.solve(trial, data)
        cost_t = new["cost"]
        accept = ok & np.isfinite(cost_t) & (cost_t <= cost + ta)
        step = trial - k
        predicted = 2.0 * step * g - step * a * step
        small = np.abs(step) <= xtol * (np.abs(k) + k_lo)
        small |= ok & (predicted <= np.maximum(ftol * cost, fa))
        small |= accept & (np.abs(cost - cost_t) <= ftol * cost_t)
        k = np.where(accept, trial, k)
        cost = np.where(accept, cost_t, cost)
        a = np.where(accept, new["a"], a)
        g = np.where(accept, new["g"], g)
        alpha = np.where(accept, new["alpha"], alpha)
        beta = np.where(accept, new["beta"], beta)
        lam = np.where(accept, np.maximum(lam * 0.2, 1e-12), lam * 8.0)
        # Converged: a tiny step, a tiny (predicted or achieved) cost decrease, or damping
        # so large that no step lowers the cost any more (a minimum to working precision).
        done = small | (lam > 1e12)
        finished = live & (done | (it >= max_iter))
        n_live = int(live.sum()) - int(finished.sum())
        stop = n_live < tail * n
        if stop:
            finished = live
        if finished.any():
            sel = idx[finished]
            for name, value in zip(_STATE, (k, alpha, beta, cost, a, g, lam, it), strict=True):
                out[name][sel] = value[finished]
            converged[sel] = done[finished]
            pending[sel] = ~done[finished] & (it[finished] < max_iter)
            live &= ~finished
            if n_live == 0 or stop:
                break
            # Dropping rows copies the data rows: only worth it once enough finished.
            if n_live < 0.8 * live.size:
                idx, k, cost, lam, ta, fa, it = (v[live] for v in (idx, k, cost, lam, ta, fa, it))
                a, g, alpha, beta = (v[live] for v in (a, g, alpha, beta))
                data = tuple(v[live] for v in data)
                live = np.ones(n_live, dtype=bool)
    return out, converged, pending


def fit_exponential(
    y: np.ndarray,
    t: np.ndarray,
    *,
    recovery: bool,
    constant: bool,
    k_bounds: tuple[float, float],
    refine: bool = True,
    max_iter: int = 50,
    grid_per_decade: int = 12,
    p0: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> ExpFit:
    """Fit ``alpha + beta * h(k t)`` to every row of ``y``.

    Parameters
    ----------
    y : ndarray, shape (n, M)
        Signal rows (any real dtype; the solver works in float32 with float64 normal
        equations).
    t : ndarray, shape (M,)
        Measurement times.
    recovery : bool
        ``h = 1 - exp(-k t)`` instead of ``exp(-k t)``.
    constant : bool
        Fit ``alpha`` (otherwise ``alpha = 0``).
    k_bounds : (float, float)
        Allowed rate range.
    refine : bool
        Levenberg-Marquardt after the grid search.
    max_iter : int
        Levenberg-Marquardt iteration limit.
    grid_per_decade : int
        Grid density of the initial search.
    p0 : (alpha, beta, k), optional
        Starting point replacing the grid search.

    Returns
    -------
    ExpFit
    """
    k_lo, k_hi = k_bounds
    decades = np.log10(k_hi / k_lo)
    k_grid = np.geomspace(k_lo, k_hi, max(int(np.ceil(decades * grid_per_decade)) + 1, 8))
    # Repeated times (e.g. several diffusion directions per b-value) share the model value:
    # the least-squares problem equals the one on the group means weighted by the group
    # sizes, plus the (constant) spread within the groups.
    times, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    grouped = times.size < t.size
    weights = counts.astype(np.float64) if grouped else None
    average = np.zeros((t.size, times.size))
    average[np.arange(t.size), inverse] = 1.0 / counts[inverse]
    tt = times if grouped else t
    # A decay is fitted on times counted from the first sample, ``beta exp(-k t) =
    # beta' exp(-k (t - t0))`` with ``beta = beta' exp(k t0)``: with a late first sample the
    # exponentials stay within the float32 range (no underflow of every sample at fast rates).
    t0 = 0.0 if recovery else float(np.min(tt))
    tt = tt - t0
    problem = _VarProProblem(tt, recovery, constant, weights)

    def group(yb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows as fitted (group means when times repeat) and the spread within."""
        if not grouped:
            return yb, np.zeros(yb.shape[0])
        y64 = np.asarray(yb, dtype=np.float64)
        means = y64 @ average
        within = np.einsum("nm,nm->n", y64, y64) - np.einsum(
            "nu,nu,u->n", means, means, weights
        )
        return means.astype(np.float32), np.maximum(within, 0.0)

    def block(yb: np.ndarray, *start: np.ndarray) -> tuple[np.ndarray, ...]:
        n = yb.shape[0]
        yb, within = group(yb)
        if start:
            alpha, beta, k = (np.asarray(v, dtype=np.float64) for v in start)
            with np.errstate(over="ignore", invalid="ignore"):
                beta = beta * np.exp(-k * t0)
            sse = np.full(n, np.nan)
        else:
            alpha, beta, k, sse = grid_search(
                yb, tt, k_grid, recovery=recovery, constant=constant, weights=weights
            )
        if not refine or n == 0:
            return alpha, beta, k, sse + within, np.ones(n, dtype=bool)
        data = problem.data(yb)
        state, converged, pending = _refine_rate(
            problem, data, _start_rate(problem, data, k, k_bounds), k_bounds,
            max_iter=max_iter, tail=_TAIL)
        # The solver's cost is a difference of large float32 sums; report the residuals'.
        sse = residual_sse(yb, tt, state["alpha"], state["beta"], state["k"],
                           recovery=recovery, weights=weights)
        return (state["alpha"], state["beta"], state["k"], sse + within, converged, pending,
                *(state[name] for name in _STATE[3:]))

    def tail(yb: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
        yb, within = group(yb)
        data = problem.data(yb)
        state, converged, _ = _refine_rate(
            problem, data, dict(zip(_STATE, values, strict=True)), k_bounds, max_iter=max_iter)
        sse = residual_sse(yb, tt, state["alpha"], state["beta"], state["k"],
                           recovery=recovery, weights=weights)
        return state["alpha"], state["beta"], state["k"], sse + within, converged

    starts = () if p0 is None else tuple(np.asarray(v, dtype=np.float64) for v in p0)
    alpha, beta, k, sse, converged, *rest = map_rows(block, y, *starts)
    if rest and rest[0].any():
        # The slow voxels of every block, iterated together to the end.
        rows = np.flatnonzero(rest[0])
        resumed = map_rows(tail, y[rows], k[rows], alpha[rows], beta[rows],
                           *(v[rows] for v in rest[1:]))
        for full, part in zip((alpha, beta, k, sse, converged), resumed, strict=True):
            full[rows] = part
    return ExpFit(alpha, _unshift(beta, k, t0), k, sse, converged)


def _unshift(beta: np.ndarray, k: np.ndarray, t0: float) -> np.ndarray:
    """``beta' exp(k t0)``: the amplitude at t = 0 of a decay fitted from ``t0``."""
    if t0 == 0.0:
        return beta
    with np.errstate(over="ignore", invalid="ignore"):
        return beta * np.exp(k * t0)


def loglinear(
    y: np.ndarray, t: np.ndarray, *, reweight: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted log-linear fit of ``log S = log S0 - k t``: returns ``(S0, k)`` per row.

    var(log S) ~ σ²/S², so the weights are S²: first the measured, then (``reweight``)
    the fitted signal squared, which removes the bias of noisy weights. Non-positive
    samples get weight 0 and rows with fewer than two positive samples get ``k = NaN``.
    The per-sample work is float32 with ``t`` centred (no cancellation in the sums).
    """
    return map_rows(lambda rows: _loglinear_block(rows, t, reweight), y)


def _loglinear_block(
    y: np.ndarray, t: np.ndarray, reweight: bool
) -> tuple[np.ndarray, np.ndarray]:
    y32 = np.asarray(y, dtype=np.float32)
    t0 = float(np.mean(t))
    tc = (np.asarray(t, dtype=np.float64) - t0).astype(np.float32)
    powers = np.stack([np.ones_like(tc), tc, tc * tc], axis=1)
    powers2 = np.ascontiguousarray(powers[:, :2])  # BLAS wants contiguous operands
    tiny = np.float32(np.finfo(np.float32).tiny)
    logy = np.log(np.maximum(y32, tiny))  # finite; non-positive samples get weight 0
    # Weights are scaled by the row mean to stay well inside the float32 range.
    scale = (row_sum(y32) / y32.shape[1])[:, None]
    scale[~(scale > 0)] = 1.0

    def solve(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sw, st, stt = (w @ powers).astype(np.float64).T
        sl, stl = (np.multiply(w, logy, out=w) @ powers2).astype(np.float64).T
        with np.errstate(divide="ignore", invalid="ignore"):
            det = sw * stt - st * st
            slope = (sw * stl - st * sl) / det
            intercept = (stt * sl - st * stl) / det
        return intercept, slope

    # Weights relative to the row mean (float32 range), zero for non-positive samples.
    rel = np.maximum(y32, 0) / scale
    intercept, slope = solve(np.multiply(rel, rel, out=rel))
    positive = y32 > 0
    if reweight:
        log_scale = np.log(scale[:, 0].astype(np.float64))
        with np.errstate(over="ignore", invalid="ignore"):
            fitted = (2.0 * (intercept - log_scale)).astype(np.float32)[:, None] + (
                (2.0 * slope).astype(np.float32)[:, None] * tc
            )
            w = np.exp(fitted, out=fitted)
        w *= positive
        intercept, slope = solve(w)
    with np.errstate(over="ignore", invalid="ignore"):
        s0 = np.exp(intercept - slope * t0)
    slope[row_count(positive) < 2] = np.nan
    return s0, -slope


def residual_sse(
    y: np.ndarray,
    t: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    k: np.ndarray,
    *,
    recovery: bool = False,
    magnitude: bool = False,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(Weighted) sum of squared residuals of ``alpha + beta h(k t)``.

    float32 work with float64 sums; ``magnitude`` compares ``|alpha + beta h|``.
    """
    t32 = t.astype(np.float32)
    w32 = np.ones(t.size, np.float32) if weights is None else weights.astype(np.float32)

    def block(yb: np.ndarray, a: np.ndarray, b: np.ndarray, kb: np.ndarray) -> tuple:
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(-(kb.astype(np.float32)[:, None] * t32))
            if recovery:
                e = np.subtract(1.0, e, out=e)
            pred = e * b.astype(np.float32)[:, None]
            pred += a.astype(np.float32)[:, None]
            if magnitude:
                np.abs(pred, out=pred)
            r = np.subtract(np.asarray(yb, dtype=np.float32), pred, out=pred)
        return (np.einsum("nm,nm,m->n", r, r, w32, dtype=np.float64),)

    return map_rows(block, y, alpha, beta, k)[0]

"""A Levenberg-Marquardt solver vectorised over voxels.

All voxels share the measurement points (echo times, b-values...) and the model; each voxel
has its own parameters, damping and convergence state. Voxels leave the working set once
they converge, so late iterations only touch the slow voxels.

Reference: Marquardt, J. Soc. Ind. Appl. Math. 11:431 (1963), doi:10.1137/0111030.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from xnatpic.models._linalg import solve_spd

__all__ = ["JacobianProblem", "LMResult", "Model", "Problem", "levenberg_marquardt"]

#: ``model(params (n, P) float64) -> (prediction (n, M), jacobian (n, P, M))``.
Model = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class Problem(Protocol):
    """A least-squares problem the solver can evaluate on any subset of voxels.

    ``evaluate`` returns the cost and a tuple of per-voxel arrays (first axis n) that
    ``normal_equations`` turns into ``JᵀWJ`` (n, P, P) and ``JᵀW r`` (n, P), with
    ``r = y - prediction``. Problems with structure (e.g. the exponential family) compute
    the normal equations from a few sums instead of a full Jacobian.
    """

    def evaluate(
        self, p: np.ndarray, y: np.ndarray, w: np.ndarray | None
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]: ...

    def normal_equations(
        self, p: np.ndarray, cache: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray]: ...


def _normal_equations(jac: np.ndarray, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, p, _ = jac.shape
    a = np.empty((n, p, p), dtype=np.float64)
    g = np.empty((n, p), dtype=np.float64)
    for i in range(p):
        ji = jac[:, i]
        g[:, i] = np.einsum("nm,nm->n", ji, res)
        for j in range(i + 1):
            a[:, i, j] = np.einsum("nm,nm->n", ji, jac[:, j])
            a[:, j, i] = a[:, i, j]
    return a, g


class JacobianProblem:
    """Adapt a :data:`Model` (prediction and full Jacobian) to :class:`Problem`."""

    def __init__(self, model: Model):
        self.model = model

    def evaluate(
        self, p: np.ndarray, y: np.ndarray, w: np.ndarray | None
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        pred, jac = self.model(p)
        res = y - pred
        if w is not None:
            res = res * w
            jac = jac * w[:, None, :]
        cost = np.einsum("nm,nm->n", res, res).astype(np.float64)
        return cost, (res, jac)

    def normal_equations(
        self, p: np.ndarray, cache: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        res, jac = cache
        return _normal_equations(jac, res)


@dataclass(frozen=True, eq=False)
class LMResult:
    """Solution of :func:`levenberg_marquardt` for every voxel.

    Attributes
    ----------
    params : ndarray, shape (n, P)
        Final parameters (float64).
    cost : ndarray, shape (n,)
        Final (weighted) sum of squared residuals.
    converged : ndarray of bool, shape (n,)
        True where a convergence criterion was met before ``max_iter``.
    n_iter : ndarray of int, shape (n,)
        Iterations used.
    cache : tuple of ndarray
        The problem's evaluation cache at the final parameters (each with first axis n),
        when requested with ``keep_cache``; empty otherwise.
    """

    params: np.ndarray
    cost: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    cache: tuple[np.ndarray, ...] = ()


def levenberg_marquardt(
    problem: Problem | Model,
    y: np.ndarray | tuple[np.ndarray, ...],
    p0: np.ndarray,
    *,
    lower: np.ndarray,
    upper: np.ndarray,
    x_scale: np.ndarray,
    weights: np.ndarray | None = None,
    max_iter: int = 50,
    xtol: float = 1e-6,
    ftol: float = 1e-8,
    lambda0: float = 1e-3,
    keep_cache: bool = False,
) -> LMResult:
    """Minimise ``sum_m (w (y - model(p)))**2`` independently for every row of ``y``.

    Parameters
    ----------
    problem : Problem or callable
        A :class:`Problem`, or a :data:`Model` ``model(p) -> (prediction (n, M),
        jacobian (n, P, M))``.
    y : ndarray, shape (n, M), or tuple of arrays with first axis n
        Data, one row per voxel (its dtype, e.g. float32, is the working precision of the
        residuals; normal equations are solved in float64). A :class:`Problem` may take a
        tuple (data plus per-voxel constants); the solver only selects its rows.
    p0 : ndarray, shape (n, P)
        Starting parameters.
    lower, upper : ndarray, shape (P,)
        Box bounds (may be infinite); steps are projected onto the box.
    x_scale : ndarray, broadcastable to (n, P)
        Typical magnitude of each parameter, for the step-size convergence test
        ``|Δp| <= xtol * (|p| + x_scale)``.
    weights : ndarray, shape (n, M) or (M,), optional
        Square roots of the residual weights (0 excludes a point).
    max_iter : int
        Iteration limit.
    xtol : float
        Relative step tolerance.
    ftol : float
        Relative cost tolerance: a step whose achieved or predicted cost decrease is below
        ``ftol * cost`` ends the iterations of that voxel.
    lambda0 : float
        Initial Marquardt damping (relative to the diagonal of JᵀJ).
    keep_cache : bool
        Return the problem's evaluation cache at the final parameters (saves a final
        evaluation when it holds derived quantities, e.g. projected linear parameters).

    Returns
    -------
    LMResult
    """
    if not hasattr(problem, "evaluate"):
        problem = JacobianProblem(problem)  # type: ignore[arg-type]
    n, p = p0.shape
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    params = np.clip(np.asarray(p0, dtype=np.float64), lower, upper)
    scale = np.broadcast_to(np.asarray(x_scale, dtype=np.float64), (n, p))
    cost_out = np.full(n, np.inf)
    converged = np.zeros(n, dtype=bool)
    n_iter = np.zeros(n, dtype=np.int64)
    if n == 0:
        return LMResult(params, cost_out, converged, n_iter)

    idx = np.arange(n)
    pa = params.copy()
    ya = y
    wa = None if weights is None else np.broadcast_to(weights, np.shape(y))
    sa = scale
    cost, cache = problem.evaluate(pa, ya, wa)
    cost = np.where(np.isfinite(cost), cost, np.inf)
    cache = tuple(np.array(c, copy=True) for c in cache)  # updated in place below
    cache_out = tuple(np.empty_like(c) for c in cache) if keep_cache else ()
    lam = np.full(n, lambda0)
    live = np.ones(n, dtype=bool)
    diag_idx = np.arange(p)
    for it in range(1, max_iter + 1):
        a, g = problem.normal_equations(pa, cache)
        diag = a[:, diag_idx, diag_idx]
        floor = 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300)
        damped = a.copy()
        damped[:, diag_idx, diag_idx] += lam[:, None] * np.maximum(diag, floor)
        delta, ok = solve_spd(damped, g)
        trial = np.clip(pa + delta, lower, upper)
        cost_t, cache_t = problem.evaluate(trial, ya, wa)
        accept = ok & np.isfinite(cost_t) & (cost_t <= cost)
        step = trial - pa
        # Reduction of the cost predicted by the linearised model for the projected step.
        predicted = 2.0 * np.einsum("np,np->n", step, g) - np.einsum("np,npq,nq->n", step, a, step)
        small = np.all(np.abs(step) <= xtol * (np.abs(pa) + sa), axis=1)
        small |= ok & (predicted <= ftol * cost)
        small |= accept & (np.abs(cost - cost_t) <= ftol * cost_t)
        np.copyto(pa, trial, where=accept[:, None])
        for old, new in zip(cache, cache_t, strict=True):
            np.copyto(old, new, where=accept.reshape((-1,) + (1,) * (new.ndim - 1)))
        np.copyto(cost, cost_t, where=accept)
        lam = np.where(accept, np.maximum(lam * 0.2, 1e-12), lam * 8.0)
        # Converged: a tiny step, a tiny (predicted or achieved) cost decrease, or damping so
        # large that no step lowers the cost any more (a minimum to working precision).
        done = small | (lam > 1e12)
        finished = live.copy() if it == max_iter else (done & live)
        if finished.any():
            sel = idx[finished]
            params[sel] = pa[finished]
            cost_out[sel] = cost[finished]
            for full, part in zip(cache_out, cache, strict=False):
                full[sel] = part[finished]
            converged[sel] = done[finished]
            n_iter[sel] = it
            live &= ~finished
            n_live = int(live.sum())
            if n_live == 0:
                break
            # Dropping rows copies every working array: only worth it once enough finished.
            if n_live < 0.8 * live.size:
                idx, pa, sa = idx[live], pa[live], sa[live]
                cost, lam = cost[live], lam[live]
                ya = tuple(v[live] for v in ya) if isinstance(ya, tuple) else ya[live]
                cache = tuple(c[live] for c in cache)
                if wa is not None:
                    wa = wa[live]
                live = np.ones(n_live, dtype=bool)
    return LMResult(params, cost_out, converged, n_iter, cache_out)

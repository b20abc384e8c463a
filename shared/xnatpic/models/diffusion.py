"""Diffusion: mono-exponential ADC and the diffusion tensor (DTI).

b-values are in s/mm² and diffusivities in mm²/s. Gradient directions are unit vectors in
image space; the tensor and its eigenvectors come out in the same frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from xnatpic.arrays import distinct
from xnatpic.errors import FittingError
from xnatpic.models._blocks import map_rows
from xnatpic.models._expfit import fit_exponential, loglinear, residual_sse
from xnatpic.models._linalg import eigh_sym3, solve_spd_components
from xnatpic.models._validate import (
    as_axis,
    as_bounds,
    goodness,
    prepare,
    row_count,
    row_sum,
)
from xnatpic.models.results import ADCFit, DTIFit, FitStatus

__all__ = ["fit_adc", "fit_dti"]

#: Default ADC range in mm²/s.
ADC_BOUNDS = (1e-6, 1e-2)
#: b-values at or below this (s/mm²) count as unweighted; their direction is ignored.
B0_THRESHOLD = 50.0


def _bvals(values: object, n: int) -> np.ndarray:
    b = as_axis(values, "bvals", n, unit=" (s/mm²)")
    if np.any(b < 0):
        raise FittingError(f"bvals must be >= 0 s/mm², got {b.tolist()}")
    top = float(np.max(b)) if b.size else 0.0
    if 0 < top <= 10:
        raise FittingError(
            f"bvals must be in s/mm²; the largest is {top:g}, which looks like ms/µm² "
            f"(multiply by 1000)"
        )
    if top > 1e5:
        raise FittingError(
            f"bvals must be in s/mm²; the largest is {top:g}, which looks like s/m² "
            f"(divide by 1e6)"
        )
    return b


def _selection(
    b: np.ndarray, select: object | None, b_range: Sequence[float] | None
) -> np.ndarray:
    keep = np.ones(b.size, dtype=bool)
    if select is not None:
        sel = np.asarray(select)
        if sel.dtype == bool:
            if sel.shape != b.shape:
                raise FittingError(
                    f"select is a boolean mask of shape {sel.shape}; bvals has shape {b.shape}"
                )
            keep &= sel
        elif sel.dtype.kind in "iu" and sel.ndim == 1:
            if np.any((sel < -b.size) | (sel >= b.size)):
                raise FittingError(
                    f"select indices {sel.tolist()} out of range for {b.size} b-values"
                )
            chosen = np.zeros(b.size, dtype=bool)
            chosen[sel] = True
            keep &= chosen
        else:
            raise FittingError(
                f"select must be a boolean mask or 1-D integer indices, got {sel!r}"
            )
    if b_range is not None:
        try:
            lo, hi = (float(v) for v in b_range)
        except (TypeError, ValueError) as exc:
            raise FittingError(
                f"b_range must be a (low, high) pair in s/mm², got {b_range!r}"
            ) from exc
        keep &= (b >= lo) & (b <= hi)
    return keep


def fit_adc(
    signal: object,
    bvals: object,
    *,
    method: Literal["loglinear", "nlls"] = "loglinear",
    select: object | None = None,
    b_range: Sequence[float] | None = None,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
    max_iter: int = 50,
) -> ADCFit:
    """Fit the apparent diffusion coefficient, ``S = S0 exp(-b ADC)``.

    Every selected measurement enters the fit as it is (all directions of a shell together:
    with directions evenly covering the sphere this is the trace ADC).

    Parameters
    ----------
    signal : array_like, shape (..., N)
        Diffusion-weighted magnitude signal, measurements on the last axis.
    bvals : array_like, shape (N,)
        b-values in s/mm².
    method : {"loglinear", "nlls"}
        Weighted linear fit of log S (weights S², then the fitted signal squared) or
        non-linear least squares (Levenberg-Marquardt on the rate with S0 projected out,
        started from the log-linear fit).
    select : array_like, optional
        Boolean mask or integer indices of the measurements to use.
    b_range : (float, float), optional
        Use only b-values in ``[low, high]`` s/mm² (combined with ``select``), e.g.
        ``(200, 1000)`` to suppress perfusion.
    mask : array_like of bool, shape (...), optional
        Voxels to fit.
    bounds : (float, float), optional
        Measurable ADC range in mm²/s (default ``(1e-6, 1e-2)``); results on or beyond
        the lower bound (including negative log-linear ADCs) are flagged ``LONG``, on or
        beyond the upper ``SHORT``; their values are kept (not failed).
    max_iter : int
        Levenberg-Marquardt iteration limit (``"nlls"``).

    Returns
    -------
    ADCFit
        ``s0``, ``adc`` (mm²/s), ``r_squared``, ``rmse``, ``failed``, ``status``.

    Raises
    ------
    FittingError
        If ``bvals`` does not match the last axis of ``signal``, is negative or looks like
        ms/µm² (largest <= 10) or s/m² (largest > 1e5), fewer than two distinct b-values
        are selected, ``select`` / ``b_range`` / ``mask`` /
        ``bounds`` are invalid or ``method`` is unknown.

    References
    ----------
    Le Bihan D et al. MR imaging of intravoxel incoherent motions: application to
    diffusion and perfusion in neurologic disorders. Radiology 1986;161:401-407.
    doi:10.1148/radiology.161.2.3763909

    Examples
    --------
    >>> import numpy as np
    >>> b = np.array([0.0, 250.0, 500.0, 750.0, 1000.0])
    >>> fit = fit_adc(1000.0 * np.exp(-b * 0.8e-3), b)
    >>> round(float(fit.adc) * 1e3, 4)
    0.8
    """
    if method not in ("loglinear", "nlls"):
        raise FittingError(f"method must be 'loglinear' or 'nlls', got {method!r}")
    arr = np.asarray(signal)
    layout = prepare(arr, mask, what="diffusion measurements")
    b = _bvals(bvals, arr.shape[-1])
    keep = _selection(b, select, b_range)
    if distinct(b[keep]).size < 2:
        raise FittingError(
            f"fitting an ADC needs at least 2 distinct selected b-values, got "
            f"{distinct(b[keep]).tolist()} (bvals {b.tolist()})"
        )
    k_bounds = as_bounds(bounds, ADC_BOUNDS, "bounds")
    b = b[keep]
    sub = layout.ok()
    y = layout.rows_of(sub)
    if not keep.all():
        y = y[:, keep]
    converged = np.ones(sub.size, dtype=bool)
    if method == "nlls":
        # The weighted log-linear fit is an excellent, cheap start; rows where it fails
        # (or leaves the bounds) start from the grid search instead.
        s0, adc = loglinear(y, b, reweight=False)
        usable = np.isfinite(adc) & (adc > k_bounds[0]) & (adc < k_bounds[1]) & (s0 > 0)
        start = (np.zeros_like(s0), np.where(usable, s0, 1.0), np.where(usable, adc, 1e-3))
        fit = fit_exponential(
            y,
            b,
            recovery=False,
            constant=False,
            k_bounds=k_bounds,
            max_iter=max_iter,
            p0=start,
        )
        if not usable.all():
            again = np.flatnonzero(~usable)
            redo = fit_exponential(
                y[again],
                b,
                recovery=False,
                constant=False,
                k_bounds=k_bounds,
                max_iter=max_iter,
            )
            for field in ("beta", "k", "cost", "converged"):
                getattr(fit, field)[again] = getattr(redo, field)
        s0, adc, sse, converged = fit.beta, fit.k, fit.cost, fit.converged
    else:
        s0, adc = loglinear(y, b)
        sse = residual_sse(y, b, np.zeros_like(s0), s0, adc)
    r2, rmse = goodness(y, sse)
    layout.flag(~converged, FitStatus.NOT_CONVERGED, sub)
    with np.errstate(invalid="ignore"):
        at_bound = (adc <= k_bounds[0] * (1 + 1e-6)) | (adc >= k_bounds[1] * (1 - 1e-6))
    finite = np.isfinite(s0) & np.isfinite(adc) & np.isfinite(r2) & np.isfinite(rmse)
    layout.flag(~finite, FitStatus.NONFINITE_RESULT, sub)
    # Beyond the bounds is beyond the measurable range, not a failure: a (near-)zero or
    # negative ADC (no decay measured: noise, or diffusion too slow for these b-values) is
    # LONG in terms of the decay constant, an ADC above the upper bound SHORT; the value
    # is kept so statistics over the mask keep both tails.
    with np.errstate(invalid="ignore"):
        low = at_bound & finite & (adc <= k_bounds[0] * (1 + 1e-6))
    layout.flag(low, FitStatus.LONG, sub)
    layout.flag(at_bound & finite & ~low, FitStatus.SHORT, sub)
    with np.errstate(invalid="ignore"):
        layout.flag(finite & ~(s0 > 0), FitStatus.NONPHYSICAL, sub)
    status, failed = layout.status_map()
    return ADCFit(
        layout.scatter(s0, sub),
        layout.scatter(adc, sub),
        layout.scatter(r2, sub),
        layout.scatter(rmse, sub),
        failed,
        status,
    )


def _design(b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Rows ``[1, -b gx², -b gy², -b gz², -2b gx gy, -2b gx gz, -2b gy gz]``."""
    gx, gy, gz = g[:, 0], g[:, 1], g[:, 2]
    return np.stack(
        [
            np.ones_like(b),
            -b * gx * gx,
            -b * gy * gy,
            -b * gz * gz,
            -2 * b * gx * gy,
            -2 * b * gx * gz,
            -2 * b * gy * gz,
        ],
        axis=1,
    )


def _bvecs(values: object, b: np.ndarray) -> np.ndarray:
    try:
        g = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FittingError(f"bvecs must be an (N, 3) array of numbers: {exc}") from exc
    if g.ndim == 2 and g.shape == (3, b.size) and b.size != 3:
        g = g.T  # FSL layout (3, N)
    if g.shape != (b.size, 3):
        raise FittingError(f"bvecs must have shape ({b.size}, 3) to match bvals, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise FittingError("bvecs contains non-finite values")
    weighted = b > B0_THRESHOLD
    norms = np.linalg.norm(g, axis=1)
    bad = weighted & (np.abs(norms - 1.0) > 0.05)
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise FittingError(
            f"bvecs rows {rows.tolist()} (b > {B0_THRESHOLD:g} s/mm²) have norms "
            f"{np.round(norms[rows], 3).tolist()}; unit vectors are expected"
        )
    out = np.zeros_like(g)
    out[weighted] = g[weighted] / norms[weighted, None]
    return out


def fit_dti(
    signal: object,
    bvals: object,
    bvecs: object,
    *,
    mask: object | None = None,
) -> DTIFit:
    """Fit the diffusion tensor by weighted linear least squares, with FA, MD, AD and RD.

    ``log S = log S0 - b gᵀ D g`` is solved first by ordinary least squares, then by
    weighted least squares with weights ``exp(2 x_OLS)`` (the squared predicted signal,
    Veraart et al. 2013). Samples <= 0 get zero weight.

    Parameters
    ----------
    signal : array_like, shape (..., N)
        Diffusion-weighted magnitude signal, measurements on the last axis.
    bvals : array_like, shape (N,)
        b-values in s/mm²; values <= 50 count as b = 0.
    bvecs : array_like, shape (N, 3) (or (3, N))
        Unit gradient directions in image space (ignored where b <= 50).
    mask : array_like of bool, shape (...), optional
        Voxels to fit.

    Returns
    -------
    DTIFit
        ``s0``, ``tensor`` (..., 6) as (Dxx, Dyy, Dzz, Dxy, Dxz, Dyz) in mm²/s,
        ``eigenvalues`` (..., 3) descending, ``v1`` (..., 3), ``fa``, ``md``, ``ad``, ``rd``,
        ``r_squared``, ``rmse`` (signal domain), ``failed``, ``status``.

    Raises
    ------
    FittingError
        If ``bvals`` / ``bvecs`` do not match the last axis of ``signal``, are negative,
        non-finite, in the wrong unit (as :func:`fit_adc`) or not unit vectors, the
        design has rank < 7 (fewer than 6 non-collinear directions with b > 0, or fewer
        than 7 measurements), or ``mask`` is invalid.

    Notes
    -----
    A tensor with a negative eigenvalue is flagged ``NONPHYSICAL`` (failed); voxels with
    fewer than 7 positive samples are flagged ``INVALID_INPUT``.

    References
    ----------
    Basser PJ, Mattiello J, LeBihan D. MR diffusion tensor spectroscopy and imaging.
    Biophys J 1994;66:259-267. doi:10.1016/S0006-3495(94)80775-1
    Veraart J et al. Weighted linear least squares estimation of diffusion MRI parameters:
    strengths, limitations, and pitfalls. NeuroImage 2013;81:335-346.
    doi:10.1016/j.neuroimage.2013.05.028

    Examples
    --------
    >>> import numpy as np
    >>> g = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]])
    >>> g = np.vstack([[0, 0, 0], g / np.linalg.norm(g, axis=1, keepdims=True)])
    >>> b = np.array([0.0] + [1000.0] * 6)
    >>> d = np.diag([1.7e-3, 0.3e-3, 0.3e-3])
    >>> s = 1000.0 * np.exp(-b * np.einsum("ni,ij,nj->n", g, d, g))
    >>> fit = fit_dti(s, b, g)
    >>> round(float(fit.fa), 3), round(float(fit.md) * 1e3, 3), np.abs(fit.v1).round(3).tolist()
    (0.799, 0.767, [1.0, 0.0, 0.0])
    """
    arr = np.asarray(signal)
    layout = prepare(arr, mask, what="diffusion measurements", min_measurements=7)
    b = _bvals(bvals, arr.shape[-1])
    g = _bvecs(bvecs, b)
    design = _design(np.where(b > B0_THRESHOLD, b, 0.0), g)
    rank = np.linalg.matrix_rank(design)
    if rank < 7:
        n_dirs = np.unique(np.round(g[b > B0_THRESHOLD], 6), axis=0).shape[0]
        raise FittingError(
            f"the diffusion design matrix has rank {rank} < 7: the tensor needs at least 6 "
            f"non-collinear gradient directions with b > {B0_THRESHOLD:g} s/mm² and 7 "
            f"measurements (got {n_dirs} distinct directions, {b.size} measurements)"
        )
    # Scale the columns to unit norm so that the normal equations are well conditioned;
    # the per-sample work runs in float32, the 7x7 solves in float64 with voxels on the
    # last axis (matrix products write that layout directly, no transposition).
    col = np.linalg.norm(design, axis=0)
    x_mat = (design / col).astype(np.float32)
    pinv = np.linalg.pinv(x_mat.astype(np.float64)).T.astype(np.float32)
    iu, ju = np.tril_indices(7)
    outer_t = np.ascontiguousarray((x_mat[:, iu] * x_mat[:, ju]).T)  # (28, M)
    design32 = design.T.astype(np.float32)
    weight_mat = np.ascontiguousarray(2.0 * x_mat[:, 1:].T)
    tiny = np.finfo(np.float32).tiny

    def block(y: np.ndarray) -> tuple[np.ndarray, ...]:
        y = np.asarray(y, dtype=np.float32)
        positive = y > 0
        all_positive = bool(positive.all())
        if all_positive:
            logy = np.log(y)
        else:
            # Non-positive samples are replaced by a small fraction of the row mean for
            # the OLS step; they only shape the weights, their own weight is zero.
            floor = np.maximum(1e-3 * row_sum(y) / y.shape[1], tiny)
            logy = np.log(np.maximum(y, floor[:, None]))
        x_ols = logy @ pinv
        # Weights: squared OLS-predicted signal relative to the predicted S0.
        w = x_ols[:, 1:] @ weight_mat
        np.exp(w, out=w)
        if not all_positive:
            w *= positive
        packed = outer_t @ w.T  # (28, n)
        rhs = x_mat.T @ np.multiply(w, logy, out=w).T  # (7, n)
        x, ok = solve_spd_components(packed, rhs)
        for i in range(7):
            x[i] /= col[i]
        coef = np.stack(x, axis=1)  # (n, 7)
        with np.errstate(over="ignore", invalid="ignore"):
            pred = np.exp(coef.astype(np.float32) @ design32)
        resid = np.subtract(y, pred, out=pred)
        sse = np.einsum("nm,nm->n", resid, resid, dtype=np.float64)
        r2, rmse = goodness(y, sse)
        with np.errstate(over="ignore"):
            s0 = np.exp(x[0])
        evals, v1 = eigh_sym3(*x[1:])
        l1, l2, l3 = evals[:, 0], evals[:, 1], evals[:, 2]
        md = (l1 + l2 + l3) / 3.0
        with np.errstate(divide="ignore", invalid="ignore"):
            fa = np.sqrt(
                0.5
                * ((l1 - l2) ** 2 + (l2 - l3) ** 2 + (l3 - l1) ** 2)
                / (l1 * l1 + l2 * l2 + l3 * l3)
            )
        few = np.zeros(y.shape[0], dtype=bool) if all_positive else row_count(positive) < 7
        return s0, coef[:, 1:], evals, v1, fa, md, l1, 0.5 * (l2 + l3), r2, rmse, ok, few

    sub = layout.ok()
    s0, tensor, evals, v1, fa, md, ad, rd, r2, rmse, ok, few = map_rows(block, layout.rows_of(sub))
    layout.flag(few, FitStatus.INVALID_INPUT, sub)
    finite = (
        ok & np.isfinite(s0) & np.isfinite(r2) & np.isfinite(fa) & np.isfinite(evals).all(axis=1)
    )
    layout.flag(~finite, FitStatus.NONFINITE_RESULT, sub)
    with np.errstate(invalid="ignore"):
        layout.flag(finite & (evals[:, 2] < 0), FitStatus.NONPHYSICAL, sub)
    status, failed = layout.status_map()
    return DTIFit(
        s0=layout.scatter(s0, sub),
        tensor=layout.scatter(tensor, sub, tail=(6,)),
        eigenvalues=layout.scatter(evals, sub, tail=(3,)),
        v1=layout.scatter(v1, sub, tail=(3,)),
        fa=layout.scatter(fa, sub),
        md=layout.scatter(md, sub),
        ad=layout.scatter(ad, sub),
        rd=layout.scatter(rd, sub),
        r_squared=layout.scatter(r2, sub),
        rmse=layout.scatter(rmse, sub),
        failed=failed,
        status=status,
    )

"""Relaxometry: T2 and T2* decay, T1 saturation recovery (variable TR) and inversion recovery.

All times (TE, TR, TI and the fitted T1/T2/T2*) share one unit, milliseconds by
convention. The signal's measurement axis is the last one; any number of leading
(spatial) axes is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from xnatpic.arrays import distinct
from xnatpic.errors import FittingError
from xnatpic.models._blocks import map_rows
from xnatpic.models._expfit import (
    ExpFit,
    fit_exponential,
    grid_search,
    loglinear,
    residual_sse,
)
from xnatpic.models._validate import Layout, as_axis, as_bounds, goodness, prepare
from xnatpic.models.inversion import _signed_candidates, _turn_over
from xnatpic.models.results import FitStatus, T1Fit, T1IRFit, T2Fit, T2StarFit

__all__ = ["fit_t1_ir", "fit_t1_vtr", "fit_t2", "fit_t2star"]

DecayMethod = Literal["nlls", "loglinear", "arlo"]
_METHODS = ("nlls", "loglinear", "arlo")
IRModel = Literal["three", "two", "auto"]
_IR_MODELS = ("three", "two", "auto")
#: Zoom rounds of the fixed-efficiency IR refinement (each shrinks the log-rate step 4x).
_ZOOM_ROUNDS = 12
_ZOOM_POINTS = 9


def _default_bounds(t: np.ndarray) -> tuple[float, float]:
    """0.1 x the smallest spacing of the times to 10 x the longest time."""
    times = distinct(t)
    return 0.1 * float(np.min(np.diff(times))), 10.0 * float(np.max(times))


#: Longest time (ms) below which a protocol is implausible in ms and probably in seconds.
_SECONDS_HINT = {"T2": 1.0, "T2*": 0.1, "T1": 20.0, "T1 by inversion recovery": 20.0}


def _times(values: object, name: str, n: int, *, minimum: int, quantity: str) -> np.ndarray:
    t = as_axis(values, name, n, unit=" (ms)")
    if np.any(t < 0):
        raise FittingError(f"{name} must be >= 0 ms, got {t.tolist()}")
    limit = _SECONDS_HINT[quantity]
    if t.size and 0 < np.max(t) < limit:
        raise FittingError(
            f"{name} must be in milliseconds; its longest value {np.max(t):g} is below "
            f"{limit:g} ms, which looks like seconds (multiply by 1000)"
        )
    n_distinct = distinct(t).size
    if n_distinct < minimum:
        raise FittingError(
            f"{name} has {n_distinct} distinct value(s); fitting {quantity} needs at least "
            f"{minimum}"
        )
    return t


def _flag_common(
    layout: Layout,
    sub: np.ndarray,
    *,
    k: np.ndarray,
    k_bounds: tuple[float, float],
    converged: np.ndarray,
    finite: list[np.ndarray],
    nonphysical: np.ndarray,
) -> None:
    layout.flag(~converged, FitStatus.NOT_CONVERGED, sub)
    with np.errstate(invalid="ignore"):
        at_bound = (k <= k_bounds[0] * (1 + 1e-6)) | (k >= k_bounds[1] * (1 - 1e-6))
    layout.flag(at_bound, FitStatus.AT_BOUND, sub)
    bad = np.zeros(sub.size, dtype=bool)
    for values in finite:
        bad |= ~np.isfinite(values)
    layout.flag(bad, FitStatus.NONFINITE_RESULT, sub)
    layout.flag(nonphysical & ~bad, FitStatus.NONPHYSICAL, sub)


#: Physical ceiling (ms) of the hard fit bounds: pure water near body temperature has
#: T2 ~ 2-3 s and T1 ~ 3-4 s; a fit ending there is "long" (at least this long).
_PHYSICAL_MAX = {"T2": 5000.0, "T2*": 5000.0, "T1": 10000.0}


def _hard_bounds(t: np.ndarray, quantity: str) -> tuple[float, float]:
    """Default fit bounds: 0.1 x the smallest spacing of the times to the larger of
    10 x the longest time and the physical ceiling of ``quantity``."""
    lo, hi = _default_bounds(t)
    return lo, max(hi, _PHYSICAL_MAX[quantity])


def _measurable(t: np.ndarray, recovery: bool) -> tuple[float, float]:
    """The range of time constants the sampled times can measure (protocol rule).

    Decay (T2, T2*): from half the smallest echo spacing (the signal falls by e² between
    two echoes) to 10 x the last echo time (the decay over the train is below ~10 %).
    Recovery (T1 by variable TR): from a third of the shortest TR (every sample within 5 %
    of full recovery) to 5 x the longest TR (the recovery curve is nearly a straight line).
    """
    times = distinct(t)
    if recovery:
        return float(times[0]) / 3.0, 5.0 * float(times[-1])
    return 0.5 * float(np.min(np.diff(times))), 10.0 * float(times[-1])


def _flag_range(
    layout: Layout,
    sub: np.ndarray,
    *,
    k: np.ndarray,
    k_bounds: tuple[float, float],
    measurable: tuple[float, float],
) -> None:
    """``LONG`` / ``SHORT`` for rates beyond the measurable time constants or on a bound."""
    with np.errstate(invalid="ignore", divide="ignore"):
        long_ = (k <= k_bounds[0] * (1 + 1e-6)) | (k < 1.0 / measurable[1])
        short = (k >= k_bounds[1] * (1 - 1e-6)) | (k > 1.0 / measurable[0])
    layout.flag(long_ & np.isfinite(k), FitStatus.LONG, sub)
    layout.flag(short & ~long_ & np.isfinite(k), FitStatus.SHORT, sub)


def _no_bounds() -> tuple[float, float]:
    """Rate bounds that :func:`_flag_common` never reaches (bounds are ``LONG``/``SHORT``)."""
    return 0.0, np.inf


def _arlo(y: np.ndarray, t: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """ARLO (Pei et al. 2015, doi:10.1002/mrm.25137; formula as in its 2019 erratum)."""
    order = np.argsort(t)
    ts = t[order]
    spacing = np.diff(ts)
    if ts.size < 3:
        raise FittingError(f"method='arlo' needs at least 3 echoes in {name}, got {ts.size}")
    if np.ptp(spacing) > 1e-3 * np.mean(spacing) or np.any(spacing <= 0):
        raise FittingError(
            f"method='arlo' needs equally spaced {name}, got spacings {spacing.tolist()}; "
            f"use method='nlls' or 'loglinear'"
        )
    dt = float(np.mean(spacing))
    return map_rows(lambda rows: _arlo_block(rows, t, order, dt), y)


def _arlo_block(
    y: np.ndarray, t: np.ndarray, order: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    y32 = np.asarray(y, dtype=np.float32)
    ys = y32[:, order]
    third = np.float32(dt / 3.0)
    s = third * (ys[:, :-2] + 4.0 * ys[:, 1:-1] + ys[:, 2:])
    d = ys[:, :-2] - ys[:, 2:]
    ss = np.einsum("nm,nm->n", s, s, dtype=np.float64)
    sd = np.einsum("nm,nm->n", s, d, dtype=np.float64)
    dd = np.einsum("nm,nm->n", d, d, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tau = (ss + dt / 3.0 * sd) / (dt / 3.0 * dd + sd)
        k = 1.0 / tau
        # S0 by linear least squares at the ARLO rate.
        e = np.exp(-(k.astype(np.float32)[:, None] * t.astype(np.float32)))
        s0 = np.einsum("nm,nm->n", y32, e, dtype=np.float64) / np.einsum(
            "nm,nm->n", e, e, dtype=np.float64
        )
    return s0, k


def _decay(
    signal: object,
    te: object,
    *,
    te_name: str,
    quantity: str,
    method: str,
    offset: bool,
    drop_first_echo: bool,
    mask: object | None,
    bounds: Sequence[float] | None,
    max_iter: int,
    measurable: Sequence[float] | None = None,
) -> tuple[Layout, np.ndarray, dict[str, np.ndarray]]:
    if method not in _METHODS:
        raise FittingError(f"method must be one of {_METHODS}, got {method!r}")
    if offset and method != "nlls":
        raise FittingError(f"offset=True needs method='nlls' (got method={method!r})")
    n_params = 3 if offset else 2
    minimum = {"nlls": n_params, "loglinear": 2, "arlo": 3}[method]
    arr = np.asarray(signal)
    layout = prepare(arr, mask, min_measurements=1, what="echoes")
    n_meas = arr.shape[-1]
    t = _times(te, te_name, n_meas, minimum=1, quantity=quantity)
    keep = np.ones(n_meas, dtype=bool)
    if drop_first_echo:
        keep[np.argmin(t)] = False
    t = t[keep]
    if distinct(t).size < minimum:
        dropped = " after dropping the first echo" if drop_first_echo else ""
        raise FittingError(
            f"{te_name} has {distinct(t).size} distinct echo time(s){dropped}; "
            f"method={method!r}{' with offset' if offset else ''} needs at least {minimum}"
        )
    k_bounds_t = as_bounds(bounds, _hard_bounds(t, quantity), "bounds")
    k_bounds = (1.0 / k_bounds_t[1], 1.0 / k_bounds_t[0])
    measurable_t = as_bounds(measurable, _measurable(t, recovery=False), "measurable")
    sub = layout.ok()
    y = layout.rows_of(sub)
    if not keep.all():
        y = y[:, keep]
    n = sub.size
    converged = np.ones(n, dtype=bool)
    alpha = np.zeros(n)
    if method == "nlls":
        fit: ExpFit = fit_exponential(
            y, t, recovery=False, constant=offset, k_bounds=k_bounds, max_iter=max_iter
        )
        alpha, s0, k, sse, converged = fit.alpha, fit.beta, fit.k, fit.cost, fit.converged
    else:
        s0, k = loglinear(y, t) if method == "loglinear" else _arlo(y, t, te_name)
        # The closed forms are not clipped: a rate outside the bounds is flagged as such.
        with np.errstate(invalid="ignore"):
            outside = (k < k_bounds[0]) | (k > k_bounds[1])
        k = np.where(outside, np.clip(k, *k_bounds), k)
        sse = residual_sse(y, t, alpha, s0, k)
    r2, rmse = goodness(y, sse)
    with np.errstate(invalid="ignore"):
        nonphysical = ~(s0 > 0)
    _flag_common(
        layout,
        sub,
        k=k,
        k_bounds=_no_bounds(),
        converged=converged,
        finite=[s0, k, alpha, r2, rmse],
        nonphysical=nonphysical,
    )
    _flag_range(layout, sub, k=k, k_bounds=k_bounds, measurable=measurable_t)
    with np.errstate(divide="ignore"):
        tau = 1.0 / k
    maps = {
        "s0": layout.scatter(s0, sub),
        "tau": layout.scatter(tau, sub),
        "offset": layout.scatter(alpha, sub),
        "r_squared": layout.scatter(r2, sub),
        "rmse": layout.scatter(rmse, sub),
    }
    return layout, t, maps


def fit_t2(
    signal: object,
    te: object,
    *,
    method: DecayMethod = "nlls",
    offset: bool = False,
    drop_first_echo: bool = False,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
    max_iter: int = 50,
    measurable: Sequence[float] | None = None,
) -> T2Fit:
    """Fit T2 to multi-echo spin-echo magnitude data, ``S = S0 exp(-TE/T2) (+ offset)``.

    Parameters
    ----------
    signal : array_like, shape (..., E)
        Magnitude signal with the E echoes on the last axis (real, non-negative).
    te : array_like, shape (E,)
        Echo times in ms.
    method : {"nlls", "loglinear", "arlo"}
        ``"nlls"``: non-linear least squares (grid search on the rate with linear least
        squares for the amplitudes, then Levenberg-Marquardt), unbiased under Gaussian
        noise. ``"loglinear"``: weighted linear fit of log S (weights S²). ``"arlo"``:
        auto-regression on linear operations (Pei et al. 2015), equally spaced echoes only.
    offset : bool
        Add a constant offset term (``"nlls"`` only): a baseline such as a reconstruction
        offset or a crude noise-floor model. It costs precision when TE_max is short against
        T2, and the Rician floor is not constant where the signal approaches the noise, so
        at low SNR it over-corrects (T2 too short); dropping echoes at the floor is better.
    drop_first_echo : bool
        Ignore the shortest echo (stimulated-echo contamination in CPMG trains).
    mask : array_like of bool, shape (...), optional
        Voxels to fit; others are NaN with status ``MASKED``.
    bounds : (float, float), optional
        Hard T2 range of the fit in ms (default 0.1 x the echo spacing to the larger of
        10 x the last TE and 5000 ms, the physical ceiling). A fit ending on the upper
        (lower) bound is flagged ``LONG`` (``SHORT``) and keeps the bound as its value.
    measurable : (float, float), optional
        T2 range in ms the echo train can measure (default half the echo spacing to
        10 x the last TE); fitted values beyond it are flagged ``LONG`` / ``SHORT`` and
        kept (not failed), so statistics over the mask are not censored.
    max_iter : int
        Levenberg-Marquardt iteration limit.

    Returns
    -------
    T2Fit
        ``s0``, ``t2`` (ms), ``offset``, ``r_squared``, ``rmse``, ``failed`` and ``status``,
        each of shape (...); float32 input gives float32 maps, other input float64.

    Raises
    ------
    FittingError
        If ``signal`` is not a real array, ``te`` does not match its last axis, has
        negative or non-finite values or too few distinct echoes for ``method``, ``mask``
        has the wrong shape, ``method`` is unknown, ``offset`` is used with a closed-form
        method, ``"arlo"`` gets unequally spaced echoes, ``bounds`` is invalid, or the
        echo times look like seconds (longest below 1 ms; 0.1 ms for T2*).

    Notes
    -----
    Voxels with non-finite, negative or all-zero samples are flagged ``INVALID_INPUT``;
    constant signals end on a bound or with a non-finite R² and are flagged too.

    References
    ----------
    Pei M et al. Algorithm for fast monoexponential fitting based on Auto-Regression on
    Linear Operations (ARLO) of data. Magn Reson Med 2015;73:843-850.
    doi:10.1002/mrm.25137

    Examples
    --------
    >>> import numpy as np
    >>> te = np.arange(1, 13) * 10.0
    >>> signal = 1000.0 * np.exp(-te / np.array([[40.0], [80.0]]))
    >>> fit = fit_t2(signal, te)
    >>> np.round(fit.t2, 2).tolist(), fit.failed.tolist()
    ([40.0, 80.0], [False, False])
    >>> np.round(fit_t2(signal, te, method="arlo").t2, 2).tolist()
    [40.0, 80.0]
    """
    layout, _, maps = _decay(
        signal,
        te,
        te_name="te",
        quantity="T2",
        method=method,
        offset=offset,
        drop_first_echo=drop_first_echo,
        mask=mask,
        bounds=bounds,
        max_iter=max_iter,
        measurable=measurable,
    )
    status, failed = layout.status_map()
    return T2Fit(
        maps["s0"], maps["tau"], maps["offset"], maps["r_squared"], maps["rmse"], failed, status
    )


def fit_t2star(
    signal: object,
    te: object,
    *,
    method: DecayMethod = "nlls",
    offset: bool = False,
    drop_first_echo: bool = False,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
    max_iter: int = 50,
    measurable: Sequence[float] | None = None,
) -> T2StarFit:
    """Fit T2* to multi-gradient-echo magnitude data, ``S = S0 exp(-TE/T2*) (+ offset)``.

    The model, methods and checks are those of :func:`fit_t2`.

    Parameters
    ----------
    signal : array_like, shape (..., E)
        Magnitude signal with the E echoes on the last axis (real, non-negative).
    te : array_like, shape (E,)
        Echo times in ms.
    method : {"nlls", "loglinear", "arlo"}
        See :func:`fit_t2`; ARLO was designed for T2* mapping.
    offset : bool
        Constant offset / noise-floor term (``"nlls"`` only).
    drop_first_echo : bool
        Ignore the shortest echo.
    mask : array_like of bool, shape (...), optional
        Voxels to fit.
    bounds : (float, float), optional
        Hard T2* range in ms (see :func:`fit_t2`).
    measurable : (float, float), optional
        T2* range the echo train can measure (see :func:`fit_t2`).
    max_iter : int
        Levenberg-Marquardt iteration limit.

    Returns
    -------
    T2StarFit
        ``s0``, ``t2star`` (ms), ``offset``, ``r_squared``, ``rmse``, ``failed``,
        ``status``.

    Raises
    ------
    FittingError
        As :func:`fit_t2`.

    References
    ----------
    Pei M et al. Magn Reson Med 2015;73:843-850. doi:10.1002/mrm.25137

    Examples
    --------
    >>> import numpy as np
    >>> te = 2.0 + 3.0 * np.arange(10)
    >>> fit = fit_t2star(500.0 * np.exp(-te / 15.0), te, method="loglinear")
    >>> round(float(fit.t2star), 3)
    15.0
    """
    layout, _, maps = _decay(
        signal,
        te,
        te_name="te",
        quantity="T2*",
        method=method,
        offset=offset,
        drop_first_echo=drop_first_echo,
        mask=mask,
        bounds=bounds,
        max_iter=max_iter,
        measurable=measurable,
    )
    status, failed = layout.status_map()
    return T2StarFit(
        maps["s0"], maps["tau"], maps["offset"], maps["r_squared"], maps["rmse"], failed, status
    )


def fit_t1_vtr(
    signal: object,
    tr: object,
    *,
    offset: bool = False,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
    max_iter: int = 50,
    echo_train: float = 0.0,
    measurable: Sequence[float] | None = None,
) -> T1Fit:
    """Fit T1 to saturation-recovery / variable-TR data, ``S = S0 (1 - exp(-TR/T1)) (+ c)``.

    With ``echo_train`` the recovery time is ``TR - echo_train``: in a RARE-VTR
    acquisition the refocusing train keeps the longitudinal magnetisation near zero until
    its last echo, so it recovers only during ``TR`` minus the train (excitation to last
    echo). Using the nominal TR then overestimates T1 (by 3-5 % for a 12 ms train with
    TRs of 500-3000 ms and T1 ~ 3 s).

    Non-linear least squares: a grid search on 1/T1 with closed-form linear least squares
    for S0 (and c), refined by Levenberg-Marquardt. Also fits saturation-recovery data
    with a variable recovery delay (pass the delays as ``tr``).

    Parameters
    ----------
    signal : array_like, shape (..., R)
        Magnitude signal with the R repetition times on the last axis.
    tr : array_like, shape (R,)
        Repetition (or recovery) times in ms.
    offset : bool
        Add a constant offset term ``c``.
    mask : array_like of bool, shape (...), optional
        Voxels to fit.
    bounds : (float, float), optional
        Hard T1 range in ms (default 0.1 x the smallest recovery-time spacing to the
        larger of 10 x the longest recovery time and 10000 ms); a fit ending on a bound is
        ``LONG`` / ``SHORT`` with the bound as its value.
    max_iter : int
        Levenberg-Marquardt iteration limit.
    echo_train : float
        Duration (ms) from the excitation to the last echo of the readout train,
        subtracted from every TR (0: the nominal TR is the recovery time).
    measurable : (float, float), optional
        T1 range the recovery times measure (default a third of the shortest to 5 x the
        longest); values beyond it are ``LONG`` / ``SHORT`` (kept, not failed).

    Returns
    -------
    T1Fit
        ``s0``, ``t1`` (ms), ``offset``, ``r_squared``, ``rmse``, ``failed``, ``status``.

    Raises
    ------
    FittingError
        If ``tr`` does not match the last axis of ``signal``, has negative or non-finite
        values or fewer distinct values than parameters (2, or 3 with ``offset``), looks
        like seconds (longest below 20 ms), or ``mask`` / ``bounds`` are invalid.

    References
    ----------
    Golub G, Pereyra V. The differentiation of pseudo-inverses and nonlinear least squares
    problems whose variables separate. SIAM J Numer Anal 1973;10:413-432.
    doi:10.1137/0710036

    Examples
    --------
    >>> import numpy as np
    >>> tr = np.array([100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0])
    >>> fit = fit_t1_vtr(800.0 * (1 - np.exp(-tr / 1500.0)), tr)
    >>> round(float(fit.t1), 1), round(float(fit.s0), 1)
    (1500.0, 800.0)
    """
    n_params = 3 if offset else 2
    arr = np.asarray(signal)
    layout = prepare(arr, mask, what="repetition times")
    t = _times(tr, "tr", arr.shape[-1], minimum=n_params, quantity="T1")
    if not (np.isfinite(echo_train) and 0 <= echo_train < np.min(t)):
        raise FittingError(
            f"echo_train must be >= 0 ms and shorter than the shortest TR "
            f"({np.min(t):g} ms), got {echo_train!r}")
    t = t - float(echo_train)
    tb = as_bounds(bounds, _hard_bounds(t, "T1"), "bounds")
    k_bounds = (1.0 / tb[1], 1.0 / tb[0])
    measurable_t = as_bounds(measurable, _measurable(t, recovery=True), "measurable")
    sub = layout.ok()
    y = layout.rows_of(sub)
    fit = fit_exponential(
        y, t, recovery=True, constant=offset, k_bounds=k_bounds, max_iter=max_iter
    )
    r2, rmse = goodness(y, fit.cost)
    with np.errstate(invalid="ignore", divide="ignore"):
        nonphysical = ~(fit.beta > 0)
        t1 = 1.0 / fit.k
    _flag_common(
        layout,
        sub,
        k=fit.k,
        k_bounds=_no_bounds(),
        converged=fit.converged,
        finite=[fit.beta, fit.k, fit.alpha, r2, rmse],
        nonphysical=nonphysical,
    )
    _flag_range(layout, sub, k=fit.k, k_bounds=k_bounds, measurable=measurable_t)
    status, failed = layout.status_map()
    return T1Fit(
        layout.scatter(fit.beta, sub),
        layout.scatter(t1, sub),
        layout.scatter(fit.alpha, sub),
        layout.scatter(r2, sub),
        layout.scatter(rmse, sub),
        failed,
        status,
    )


def fit_t1_ir(
    signal: object,
    ti: object,
    *,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
    refine: bool = True,
    max_iter: int = 50,
    model: IRModel = "three",
    inversion_efficiency: float = 2.0,
) -> T1IRFit:
    """Fit T1 to magnitude inversion-recovery data, ``|S| = |a + b exp(-TI/T1)|``.

    RD-NLS with polarity restoration (Barral et al. 2010): the inversion time of smallest
    mean magnitude (equal TIs count together) and the ones before it are candidates for
    the negative branch. For three splits (that TI negated, not negated, and no point
    negated, which turned over is also "every point inverted", as when all TIs precede the
    null) a grid search on 1/T1 solves the linear least-squares problem for ``(a, b)`` in
    closed form at every grid point and Levenberg-Marquardt refines the best grid point
    (``refine=True``); the split with the lowest final residual wins.

    ``model="two"`` fits ``|S| = |S0 (1 - k exp(-TI/T1))|`` with the inversion efficiency
    ``k`` fixed (``inversion_efficiency``; 2 is a perfect inversion with full recovery
    between inversions, TR >> T1), so that 3 inversion times suffice. The polarity
    restoration is the same; for every split a grid search on 1/T1 gives ``S0`` in closed
    form, then the grid is zoomed around the optimum (12 rounds, each 4x finer) instead of
    Levenberg-Marquardt. A wrong ``k`` biases T1 (an efficiency of 1.9 fitted with 2
    underestimates T1 by a few per cent on typical protocols); use ``"three"`` when there
    are 4 or more inversion times.

    Parameters
    ----------
    signal : array_like, shape (..., I)
        Magnitude signal with the I inversion times on the last axis.
    ti : array_like, shape (I,)
        Inversion times in ms (any order).
    mask : array_like of bool, shape (...), optional
        Voxels to fit.
    bounds : (float, float), optional
        Allowed T1 range in ms (default 0.1 x the smallest TI spacing to 10 x the
        longest TI).
    refine : bool
        Refine the grid solution with Levenberg-Marquardt (otherwise the grid optimum,
        interpolated between grid points, is returned).
    max_iter : int
        Levenberg-Marquardt iteration limit (three-parameter model).
    model : {"three", "two", "auto"}
        ``"three"``: ``|a + b exp(-TI/T1)|``, at least 4 distinct TIs. ``"two"``:
        ``|S0 (1 - k exp(-TI/T1))|`` with ``k = inversion_efficiency`` fixed, at least 3
        distinct TIs. ``"auto"``: ``"three"`` with 4 or more distinct TIs, else ``"two"``.
    inversion_efficiency : float
        ``k`` of the two-parameter model, in (0, 2] (default 2: perfect inversion and full
        recovery); ignored by the three-parameter model.

    Returns
    -------
    T1IRFit
        ``a``, ``b``, ``t1`` (ms), ``r_squared``, ``rmse`` (on the magnitude data),
        ``failed`` and ``status``; ``inversion_efficiency`` is ``-b / a``; ``model`` is
        the model used (``"three"`` or ``"two"``). With the two-parameter model
        ``a = S0`` and ``b = -k S0``.

    Raises
    ------
    FittingError
        If ``ti`` does not match the last axis of ``signal``, has negative or non-finite
        values or fewer distinct values than the model needs (4 for ``"three"``, 3 for
        ``"two"`` and ``"auto"``), looks like seconds (longest below 20 ms), ``model`` is
        unknown, ``inversion_efficiency`` is outside (0, 2], or ``mask`` / ``bounds`` are
        invalid.

    Notes
    -----
    Fits with ``a <= 0`` or ``b >= 0`` (no inversion) are flagged ``NONPHYSICAL``.
    With 3 TIs the two-parameter fit has one degree of freedom left: R² is meaningful but
    noisy, and T1 far beyond the longest TI is poorly determined (the TIs should straddle
    the signal null, ``T1 ln k``).

    References
    ----------
    Barral JK et al. A robust methodology for in vivo T1 mapping. Magn Reson Med
    2010;64:1057-1067. doi:10.1002/mrm.22497

    Kingsley PB. Methods of measuring spin-lattice (T1) relaxation times: an annotated
    bibliography. Concepts Magn Reson 1999;11:243-276 (the two- and three-parameter
    inversion-recovery models, inversion efficiency).
    doi:10.1002/(SICI)1099-0534(1999)11:4<243::AID-CMR5>3.0.CO;2-C

    Examples
    --------
    >>> import numpy as np
    >>> ti = np.array([50.0, 150.0, 400.0, 800.0, 1500.0, 3000.0, 6000.0])
    >>> fit = fit_t1_ir(np.abs(1000.0 - 1900.0 * np.exp(-ti / 1200.0)), ti)
    >>> round(float(fit.t1), 1), round(float(fit.inversion_efficiency), 3)
    (1200.0, 1.9)
    """
    if model not in _IR_MODELS:
        raise FittingError(f"model must be one of {_IR_MODELS}, got {model!r}")
    arr = np.asarray(signal)
    layout = prepare(arr, mask, what="inversion times")
    minimum = 4 if model == "three" else 3
    t = _times(ti, "ti", arr.shape[-1], minimum=minimum, quantity="T1 by inversion recovery")
    if model == "two" or (model == "auto" and distinct(t).size < 4):
        return _fit_t1_ir_fixed(layout, t, bounds, inversion_efficiency)
    tb = as_bounds(bounds, _default_bounds(t), "bounds")
    k_bounds = (1.0 / tb[1], 1.0 / tb[0])
    order = np.argsort(t, kind="stable")
    t = t[order]
    sub = layout.ok()
    y = np.asarray(layout.rows_of(sub)[:, order], dtype=np.float32)
    decades = np.log10(k_bounds[1] / k_bounds[0])
    k_grid = np.geomspace(k_bounds[0], k_bounds[1], max(int(np.ceil(decades * 12)) + 1, 8))

    def block(yb: np.ndarray) -> tuple[np.ndarray, ...]:
        n = yb.shape[0]
        best: tuple[np.ndarray, ...] | None = None
        # Candidate polarities: the points (equal TIs together) before the split just
        # before or just after the smallest signal are negated, or none, which turned over
        # (a < 0) is also "every point inverted".
        for signed in _signed_candidates(yb, t):
            alpha, beta, k, sse = grid_search(signed, t, k_grid, recovery=False, constant=True)
            fit = (alpha, beta, k, sse, np.ones(n, dtype=bool))
            if refine and n:
                refined = fit_exponential(
                    signed,
                    t,
                    recovery=False,
                    constant=True,
                    k_bounds=k_bounds,
                    max_iter=max_iter,
                    p0=(alpha, beta, k),
                )
                fit = (refined.alpha, refined.beta, refined.k, refined.cost, refined.converged)
            if best is None:
                best = fit
            else:
                better = fit[3] < best[3]
                best = tuple(np.where(better, a, b) for a, b in zip(fit, best, strict=True))
        assert best is not None
        alpha, beta = _turn_over(best[0], best[1])
        return (alpha, beta, *best[2:])

    alpha, beta, k, _, converged = map_rows(block, y)
    sse = residual_sse(y, t, alpha, beta, k, magnitude=True)
    r2, rmse = goodness(y, sse)
    with np.errstate(invalid="ignore", divide="ignore"):
        nonphysical = ~(alpha > 0) | ~(beta < 0)
        t1 = 1.0 / k
    _flag_common(
        layout,
        sub,
        k=k,
        k_bounds=k_bounds,
        converged=converged,
        finite=[alpha, beta, k, r2, rmse],
        nonphysical=nonphysical,
    )
    status, failed = layout.status_map()
    return T1IRFit(
        layout.scatter(alpha, sub),
        layout.scatter(beta, sub),
        layout.scatter(t1, sub),
        layout.scatter(r2, sub),
        layout.scatter(rmse, sub),
        failed,
        status,
    )


def _fit_t1_ir_fixed(
    layout: Layout, t: np.ndarray, bounds: Sequence[float] | None, efficiency: float
) -> T1IRFit:
    """The two-parameter model ``|S0 (1 - k exp(-TI/T1))|`` of :func:`fit_t1_ir`."""
    try:
        k_eff = float(efficiency)
    except (TypeError, ValueError) as exc:
        raise FittingError(
            f"inversion_efficiency must be a number in (0, 2], got {efficiency!r}"
        ) from exc
    if not (np.isfinite(k_eff) and 0 < k_eff <= 2):
        raise FittingError(f"inversion_efficiency must be in (0, 2], got {efficiency!r}")
    tb = as_bounds(bounds, _default_bounds(t), "bounds")
    r_bounds = (1.0 / tb[1], 1.0 / tb[0])
    order = np.argsort(t, kind="stable")
    t = t[order]
    sub = layout.ok()
    y = np.asarray(layout.rows_of(sub)[:, order], dtype=np.float64)
    s0, rate, _ = map_rows(lambda rows: _ir_fixed_block(rows, t, r_bounds, k_eff), y)
    beta = -k_eff * s0
    sse = residual_sse(y, t, s0, beta, rate, magnitude=True)
    r2, rmse = goodness(y, sse)
    with np.errstate(invalid="ignore", divide="ignore"):
        t1 = 1.0 / rate
    _flag_common(
        layout,
        sub,
        k=rate,
        k_bounds=r_bounds,
        converged=np.ones(sub.size, dtype=bool),
        finite=[s0, rate, r2, rmse],
        nonphysical=~(s0 > 0),
    )
    status, failed = layout.status_map()
    return T1IRFit(
        layout.scatter(s0, sub),
        layout.scatter(beta, sub),
        layout.scatter(t1, sub),
        layout.scatter(r2, sub),
        layout.scatter(rmse, sub),
        failed,
        status,
        model="two",
    )


def _ir_fixed_cost(
    signed: np.ndarray, t: np.ndarray, rates: np.ndarray, k_eff: float
) -> tuple[np.ndarray, np.ndarray]:
    """SSE and closed-form S0 of ``S0 h`` with ``h = 1 - k exp(-r t)`` at rates (n, K)."""
    h = 1.0 - k_eff * np.exp(-rates[:, :, None] * t)  # (n, K, M)
    hy = np.einsum("nkm,nm->nk", h, signed)
    hh = np.einsum("nkm,nkm->nk", h, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        s0 = hy / hh
    yy = np.einsum("nm,nm->n", signed, signed)[:, None]
    return np.maximum(yy - hy * s0, 0.0), s0


def _ir_fixed_block(
    y: np.ndarray, t: np.ndarray, r_bounds: tuple[float, float], k_eff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polarity splits, grid search on the rate and zoomed refinement, for a row block."""
    n = y.shape[0]
    decades = np.log10(r_bounds[1] / r_bounds[0])
    log_grid = np.linspace(
        np.log(r_bounds[0]), np.log(r_bounds[1]), max(int(np.ceil(decades * 12)) + 1, 8)
    )
    lo, hi = np.log(r_bounds[0]), np.log(r_bounds[1])
    best_s0 = np.full(n, np.nan)
    best_r = np.full(n, np.nan)
    best_sse = np.full(n, np.inf)
    rows = np.arange(n)
    for signed in _signed_candidates(y, t):
        grid = np.broadcast_to(log_grid, (n, log_grid.size))
        sse, s0 = _ir_fixed_cost(signed, t, np.exp(grid), k_eff)
        j = np.argmin(sse, axis=1)
        centre = grid[rows, j]
        step = log_grid[1] - log_grid[0]
        offsets = np.linspace(-1.0, 1.0, _ZOOM_POINTS)
        for _ in range(_ZOOM_ROUNDS):
            grid = np.clip(centre[:, None] + step * offsets, lo, hi)
            sse, s0 = _ir_fixed_cost(signed, t, np.exp(grid), k_eff)
            j = np.argmin(sse, axis=1)
            centre = grid[rows, j]
            step /= 4.0
        final_sse = sse[rows, j]
        better = final_sse < best_sse
        best_sse = np.where(better, final_sse, best_sse)
        best_s0 = np.where(better, s0[rows, j], best_s0)
        best_r = np.where(better, np.exp(centre), best_r)
    return _turn_over(best_s0, best_s0)[0], best_r, best_sse

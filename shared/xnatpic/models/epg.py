"""T2 from a multi-echo spin-echo (CPMG) train with stimulated echoes: the EPG model.

With refocusing pulses below 180° (B1 error, slice profile) part of the magnetisation is
stored along z and returns later as stimulated echoes, so the echo train is not a single
exponential and a mono-exponential fit biases T2 (usually upwards, with the first echo
low). The extended phase graph (EPG; Hennig 1988, Weigel 2015) gives the train exactly
for a refocusing angle α; fitting α per voxel with T2 and S0 is the StimFit approach
(Lebel & Wilman 2010).

Model used here (the simple, slice-profile-free one): an ideal 90° excitation, a train of
identical refocusing pulses of angle α (one effective angle per voxel, which absorbs B1 and
the mean slice profile), CPMG phases, echoes at ``n x ESP``, T1 fixed (default 1000 ms;
T1 enters only through the stored z states and matters little), and no regrowth of
longitudinal magnetisation during the train (regrown magnetisation is not CPMG-phased;
it is below ~2 % of the echo for T1 > 1 s and trains below 100 ms). Under CPMG every
state stays real, so the graph is propagated in real arithmetic.

Fit: a dictionary of unit-norm echo trains on a grid of T2 (10 % steps) and α (4°
steps, 90-180°) gives each voxel's best atom with S0 projected out (one matrix product per
block of voxels); Gauss-Newton on (log T2, α) with S0 projected out (variable projection,
finite-difference Jacobian of the vectorised EPG) then refines it.

References
----------
Hennig J. Multiecho imaging sequences with low refocusing flip angles. J Magn Reson
1988;78:397-407. doi:10.1016/0022-2364(88)90128-X

Weigel M. Extended phase graphs: dephasing, RF pulses, and echoes - pure and simple.
J Magn Reson Imaging 2015;41:266-295. doi:10.1002/jmri.24619

Lebel RM, Wilman AH. Transverse relaxometry with stimulated echo compensation. Magn Reson
Med 2010;64:1005-1014. doi:10.1002/mrm.22487
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xnatpic.errors import FittingError
from xnatpic.models._blocks import map_rows
from xnatpic.models._validate import as_axis, as_bounds, goodness, prepare
from xnatpic.models.results import FitStatus

__all__ = ["EPGT2Fit", "cpmg_echo_train", "fit_t2_epg"]

#: Refocusing angles (degrees) the fit may use.
ANGLE_RANGE = (90.0, 180.0)
_T2_STEP = 1.1
_ANGLE_STEP = 4.0
_GN_ITERATIONS = 8


@dataclass(frozen=True, eq=False, slots=True)
class EPGT2Fit:
    """Stimulated-echo-compensated T2 (EPG, refocusing angle fitted).

    Attributes
    ----------
    s0 : ndarray, shape (...)
        Amplitude of the echo train (signal of an ideal 180° train at TE = 0).
    t2 : ndarray, shape (...)
        T2 in ms.
    angle : ndarray, shape (...)
        Effective refocusing angle in degrees (90-180).
    r_squared, rmse, failed, status : ndarray, shape (...)
        As in :class:`xnatpic.models.results.T2Fit`.
    """

    s0: np.ndarray
    t2: np.ndarray
    angle: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray


def cpmg_echo_train(t2: np.ndarray, angle_deg: np.ndarray, n_echoes: int, esp: float,
                    t1: float = 1000.0) -> np.ndarray:
    """Echo magnitudes ``(..., n_echoes)`` of a CPMG train (unit magnetisation).

    Parameters
    ----------
    t2, angle_deg : ndarray, broadcastable
        T2 (ms) and refocusing angle (degrees) per train.
    n_echoes : int
    esp : float
        Echo spacing (ms); echo n is at ``n x esp``.
    t1 : float
        T1 (ms) of the stored z states.

    Examples
    --------
    >>> import numpy as np
    >>> train = cpmg_echo_train(np.array(50.0), np.array(180.0), 4, 10.0)
    >>> np.allclose(train, np.exp(-10.0 * np.arange(1, 5) / 50.0))
    True
    """
    t2 = np.asarray(t2, dtype=np.float64)
    angle = np.deg2rad(np.asarray(angle_deg, dtype=np.float64))
    t2, angle = np.broadcast_arrays(t2, angle)
    shape = t2.shape
    t2 = t2.reshape(-1)
    angle = angle.reshape(-1)
    n = t2.size
    # States above order n_echoes + 1 cannot dephase back to order 0 before the last echo.
    k = n_echoes + 2
    fp = np.zeros((n, k))
    fm = np.zeros((n, k))
    z = np.zeros((n, k))  # Z = i z: real under CPMG
    fp[:, 0] = 1.0
    fm[:, 0] = 1.0
    with np.errstate(divide="ignore", over="ignore", under="ignore"):
        e2 = np.exp(-0.5 * esp / t2)[:, None]
    e1 = float(np.exp(-0.5 * esp / t1))
    c2 = (np.cos(angle / 2) ** 2)[:, None]
    s2 = (np.sin(angle / 2) ** 2)[:, None]
    sa = np.sin(angle)[:, None]
    ca = np.cos(angle)[:, None]
    echoes = np.empty((n, n_echoes))

    def relax_shift() -> None:
        fp[:] *= e2
        fm[:] *= e2
        z[:] *= e1
        fp[:, 1:] = fp[:, :-1].copy()
        fm[:, :-1] = fm[:, 1:].copy()
        fm[:, -1] = 0.0
        fp[:, 0] = fm[:, 0]

    for echo in range(n_echoes):
        relax_shift()
        new_fp = c2 * fp + s2 * fm + sa * z
        new_fm = s2 * fp + c2 * fm - sa * z
        z[:] = -0.5 * sa * (fp - fm) + ca * z
        fp[:] = new_fp
        fm[:] = new_fm
        relax_shift()
        echoes[:, echo] = np.abs(fp[:, 0])  # magnitude images
    return echoes.reshape(*shape, n_echoes)


def _spacing(te: np.ndarray) -> float:
    esp = float(te[0])
    expected = esp * np.arange(1, te.size + 1)
    if esp <= 0 or not np.allclose(te, expected, rtol=1e-3, atol=1e-3):
        raise FittingError(
            f"the EPG model needs a CPMG train with echoes at n x the echo spacing "
            f"(TE = ESP, 2 ESP, ...), got te {te.tolist()} ms; use method='nlls'")
    return esp


class _Dictionary:
    def __init__(self, t2_bounds: tuple[float, float], n_echoes: int, esp: float, t1: float):
        n_t2 = int(np.ceil(np.log(t2_bounds[1] / t2_bounds[0]) / np.log(_T2_STEP))) + 1
        self.log_t2 = np.linspace(np.log(t2_bounds[0]), np.log(t2_bounds[1]), n_t2)
        self.angles = np.arange(ANGLE_RANGE[0], ANGLE_RANGE[1] + 0.5 * _ANGLE_STEP,
                                _ANGLE_STEP)
        grid_t2, grid_angle = np.meshgrid(np.exp(self.log_t2), self.angles, indexing="ij")
        atoms = cpmg_echo_train(grid_t2, grid_angle, n_echoes, esp, t1)  # (T, A, E)
        norm = np.sqrt((atoms * atoms).sum(-1))
        norm[norm == 0] = np.inf
        self.shape = atoms.shape[:2]
        self.unit = (atoms / norm[..., None]).reshape(-1, n_echoes).T.astype(np.float32)

    def best(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid (log T2, angle) of the atom with the largest positive projection."""
        c = np.asarray(y, dtype=np.float32) @ self.unit
        j = np.argmax(c, axis=1)
        it, ia = np.unravel_index(j, self.shape)
        return self.log_t2[it], self.angles[ia].astype(np.float64)


def _project(y: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S0 and residuals of y against the train f with S0 projected out."""
    ff = np.einsum("ne,ne->n", f, f)
    with np.errstate(divide="ignore", invalid="ignore"):
        s0 = np.einsum("ne,ne->n", f, y) / ff
    return s0, y - s0[:, None] * f


def _refine(y: np.ndarray, log_t2: np.ndarray, angle: np.ndarray, n_echoes: int, esp: float,
            t1: float, log_bounds: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """Gauss-Newton on (log T2, angle) with S0 projected out, on the voxels still moving:
    a step that does not lower the cost is shortened once, then the voxel is done."""
    def cost_at(yv: np.ndarray, lt: np.ndarray,
                a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = cpmg_echo_train(np.exp(lt), a, n_echoes, esp, t1)
        s0_, r_ = _project(yv, f)
        return s0_, r_, np.einsum("ne,ne->n", r_, r_)

    s0, r, cost = cost_at(y, log_t2, angle)
    h_t, h_a = 1e-4, 1e-2
    active = np.arange(y.shape[0])
    for _ in range(_GN_ITERATIONS):
        if active.size == 0:
            break
        ya, lt, an, ra = y[active], log_t2[active], angle[active], r[active]
        _, r_t, _ = cost_at(ya, lt + h_t, an)
        a_step = np.where(an + h_a > ANGLE_RANGE[1], -h_a, h_a)
        _, r_a, _ = cost_at(ya, lt, an + a_step)
        j_t = (r_t - ra) / h_t
        j_a = (r_a - ra) / a_step[:, None]
        a11 = np.einsum("ne,ne->n", j_t, j_t)
        a12 = np.einsum("ne,ne->n", j_t, j_a)
        a22 = np.einsum("ne,ne->n", j_a, j_a)
        g1 = np.einsum("ne,ne->n", j_t, ra)
        g2 = np.einsum("ne,ne->n", j_a, ra)
        lam = 1e-9 * (a11 + a22) + 1e-30
        det = (a11 + lam) * (a22 + lam) - a12 * a12
        with np.errstate(divide="ignore", invalid="ignore"):
            d_t = -((a22 + lam) * g1 - a12 * g2) / det
            d_a = -((a11 + lam) * g2 - a12 * g1) / det
        d_t = np.where(np.isfinite(d_t), np.clip(d_t, -0.5, 0.5), 0.0)
        d_a = np.where(np.isfinite(d_a), np.clip(d_a, -15.0, 15.0), 0.0)
        moving = np.ones(active.size, dtype=bool)
        for scale in (1.0, 0.3):
            idx = np.flatnonzero(moving)
            if idx.size == 0:
                break
            lt_new = np.clip(lt[idx] + scale * d_t[idx], *log_bounds)
            a_new = np.clip(an[idx] + scale * d_a[idx], *ANGLE_RANGE)
            s0_new, r_new, c_new = cost_at(ya[idx], lt_new, a_new)
            rows = active[idx]
            better = c_new < cost[rows]
            done = rows[better]
            # Converged: the step barely changes the parameters.
            small = (np.abs(lt_new - log_t2[rows]) < 1e-7) & (np.abs(a_new - angle[rows]) < 1e-5)
            log_t2[done], angle[done] = lt_new[better], a_new[better]
            s0[done], r[done], cost[done] = s0_new[better], r_new[better], c_new[better]
            moving[idx[better]] = False
            moving[idx[better & small]] = False
            keep_active = np.zeros(active.size, dtype=bool)
            keep_active[idx[better & ~small]] = True
            if scale == 1.0:
                next_active = keep_active
            else:
                next_active |= keep_active
        active = active[next_active]
    return s0, np.exp(log_t2), angle, cost


def fit_t2_epg(
    signal: object,
    te: object,
    *,
    t1: float = 1000.0,
    mask: object | None = None,
    bounds: Sequence[float] | None = None,
    measurable: Sequence[float] | None = None,
) -> EPGT2Fit:
    """Fit T2, the refocusing angle and S0 of a CPMG echo train with the EPG model.

    Parameters
    ----------
    signal : array_like, shape (..., E)
        Magnitude echo train (E >= 3 echoes at n x ESP).
    te : array_like, shape (E,)
        Echo times in ms, ``ESP, 2 ESP, ..., E ESP``.
    t1 : float
        T1 (ms) of the stored magnetisation (fixed).
    mask : array_like of bool, shape (...), optional
        Voxels to fit.
    bounds : (float, float), optional
        T2 range of the fit in ms (default ESP / 10 to the larger of 10 x the last TE and
        5000 ms); a fit ending on a bound is ``LONG`` / ``SHORT`` with its value kept.
    measurable : (float, float), optional
        T2 range the train measures (default ESP / 2 to 10 x the last TE); values beyond
        it are ``LONG`` / ``SHORT`` (kept, not failed).

    Returns
    -------
    EPGT2Fit

    Raises
    ------
    FittingError
        If the echoes are not at ``n x ESP``, there are fewer than 3, or the inputs are
        invalid (see :func:`xnatpic.models.fit_t2`).

    Examples
    --------
    >>> import numpy as np
    >>> te = 10.0 * np.arange(1, 11)
    >>> y = 800.0 * cpmg_echo_train(np.array([60.0]), np.array([150.0]), 10, 10.0)
    >>> fit = fit_t2_epg(y, te)
    >>> round(float(fit.t2[0]), 2), round(float(fit.angle[0]), 2)
    (60.0, 150.0)
    """
    arr = np.asarray(signal)
    layout = prepare(arr, mask, min_measurements=3, what="echoes")
    t = as_axis(te, "te", arr.shape[-1], unit=" (ms)")
    order = np.argsort(t)
    t = t[order]
    esp = _spacing(t)
    n_echoes = t.size
    t2_bounds = as_bounds(bounds, (esp / 10.0, max(10.0 * t[-1], 5000.0)), "bounds")
    meas = as_bounds(measurable, (esp / 2.0, 10.0 * t[-1]), "measurable")
    if not (t1 > 0 and np.isfinite(t1)):
        raise FittingError(f"t1 must be a positive number of ms, got {t1!r}")
    dictionary = _Dictionary(t2_bounds, n_echoes, esp, float(t1))
    log_bounds = (float(np.log(t2_bounds[0])), float(np.log(t2_bounds[1])))
    sub = layout.ok()
    y = np.asarray(layout.rows_of(sub), dtype=np.float64)[:, order]

    def block(yb: np.ndarray) -> tuple[np.ndarray, ...]:
        lt, angle = dictionary.best(yb)
        return _refine(yb, lt, angle, n_echoes, esp, float(t1), log_bounds)

    s0, t2, angle, sse = map_rows(block, y, block=2048)
    r2, rmse = goodness(y, sse)
    with np.errstate(invalid="ignore"):
        long_ = (t2 >= t2_bounds[1] * (1 - 1e-6)) | (t2 > meas[1])
        short = ((t2 <= t2_bounds[0] * (1 + 1e-6)) | (t2 < meas[0])) & ~long_
        bad = ~(np.isfinite(s0) & np.isfinite(t2) & np.isfinite(r2) & np.isfinite(rmse))
        layout.flag(bad, FitStatus.NONFINITE_RESULT, sub)
        layout.flag(~bad & ~(s0 > 0), FitStatus.NONPHYSICAL, sub)
    layout.flag(long_ & ~bad, FitStatus.LONG, sub)
    layout.flag(short & ~bad, FitStatus.SHORT, sub)
    status, failed = layout.status_map()
    return EPGT2Fit(layout.scatter(s0, sub), layout.scatter(t2, sub),
                    layout.scatter(angle, sub), layout.scatter(r2, sub),
                    layout.scatter(rmse, sub), failed, status)

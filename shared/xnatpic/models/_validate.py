"""Input checks and the voxel bookkeeping shared by every model.

A fit flattens its signal to ``(N, M)`` rows, keeps the rows inside the mask, flags rows
whose samples cannot be fitted, fits the rest and scatters the results back to maps that
are NaN wherever nothing valid was obtained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnatpic.errors import FittingError
from xnatpic.models._blocks import map_rows, serial_blas
from xnatpic.models.results import FAILURE_BITS, FitStatus

__all__ = [
    "Layout",
    "as_axis",
    "as_bounds",
    "check_unique_sorted",
    "goodness",
    "prepare",
    "result_dtype",
    "row_count",
    "row_sum",
]


def result_dtype(arr: np.ndarray) -> np.dtype:
    """float32 input stays float32; everything else gives float64."""
    return np.dtype(np.float32) if arr.dtype == np.float32 else np.dtype(np.float64)


def _as_signal(signal: object, name: str) -> np.ndarray:
    arr = np.asarray(signal)
    if arr.dtype.kind not in "biuf":
        raise FittingError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim < 1:
        raise FittingError(f"{name} must have a measurement axis (last axis), got a scalar")
    return arr


def as_axis(
    values: object, name: str, n: int | None = None, *, unit: str = "", signal_name: str = "signal"
) -> np.ndarray:
    """A finite 1-D float64 array, of length ``n`` when given (the signal's last axis)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise FittingError(f"{name} must be a 1-D array of numbers{unit}: {exc}") from exc
    if arr.ndim != 1:
        raise FittingError(f"{name} must be 1-D{unit}, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise FittingError(
            f"{name} has {arr.size} values but {signal_name} has {n} measurements on its last "
            f"axis; they must match"
        )
    if not np.all(np.isfinite(arr)):
        raise FittingError(f"{name} contains non-finite values: {arr.tolist()}")
    return arr


class Layout:
    """Where the fitted rows of a flattened signal live, and their status so far.

    Attributes
    ----------
    shape : tuple of int
        Spatial shape (the signal shape without its last axis).
    rows : ndarray of int
        Indices of the in-mask voxels in the flattened spatial grid.
    y : ndarray, shape (len(rows), M)
        The in-mask signal rows, in the input dtype.
    status : ndarray of uint8, shape (len(rows),)
        :class:`FitStatus` bits of the in-mask voxels, updated by the fit.
    dtype : numpy dtype
        Floating dtype of the result maps.
    """

    def __init__(self, shape: tuple[int, ...], rows: np.ndarray, y: np.ndarray, dtype: np.dtype):
        self.shape = shape
        self.rows = rows
        self.y = y
        self.status = np.zeros(rows.size, dtype=np.uint8)
        self.dtype = dtype

    @property
    def n_total(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def flag(self, where: np.ndarray, bit: FitStatus, among: np.ndarray | None = None) -> None:
        """Set ``bit`` on the in-mask rows selected by ``where``.

        ``where`` is a boolean array over ``among`` (indices into the in-mask rows) or,
        when ``among`` is None, over all in-mask rows.
        """
        where = np.asarray(where, dtype=bool)
        if among is None:
            self.status[where] |= np.uint8(bit)
        else:
            self.status[among[where]] |= np.uint8(bit)

    def ok(self) -> np.ndarray:
        """Indices (into the in-mask rows) of rows with no status bit set."""
        return np.flatnonzero(self.status == 0)

    def rows_of(self, sub: np.ndarray) -> np.ndarray:
        """``y[sub]``, without a copy when ``sub`` selects every row."""
        if sub.size == self.y.shape[0]:
            return self.y
        return self.y[sub]

    def scatter(
        self, values: np.ndarray, among: np.ndarray, *, tail: tuple[int, ...] = ()
    ) -> np.ndarray:
        """A full map: ``values`` (one per ``among`` row) where no failure bit is set (a
        ``LONG`` / ``SHORT`` value is kept), else NaN."""
        good = (self.status[among] & np.uint8(FAILURE_BITS)) == 0
        if among.size == self.n_total and good.all():
            # Every voxel fitted (rows and ``among`` are then both the identity).
            out = np.asarray(values).astype(self.dtype, copy=True)
            return out.reshape(self.shape + tail)
        out = np.full((self.n_total, *tail), np.nan, dtype=self.dtype)
        out[self.rows[among[good]]] = np.asarray(values)[good]
        return out.reshape(self.shape + tail)

    def status_map(self) -> tuple[np.ndarray, np.ndarray]:
        """``(status, failed)`` maps over the full spatial grid."""
        status = np.full(self.n_total, np.uint8(FitStatus.MASKED), dtype=np.uint8)
        status[self.rows] = self.status
        failed = (status & np.uint8(FAILURE_BITS)) != 0
        return status.reshape(self.shape), failed.reshape(self.shape)


def prepare(
    signal: object,
    mask: object | None,
    *,
    name: str = "signal",
    min_measurements: int = 1,
    what: str = "measurements",
    require_positive: bool = True,
    allow_negative: bool = True,
) -> Layout:
    """Validate ``signal`` (measurement axis last) and ``mask``; flag unusable rows.

    Rows with a non-finite sample, with all samples zero, with no positive sample (when
    ``require_positive``) or with any negative sample (unless ``allow_negative``) get
    :attr:`FitStatus.INVALID_INPUT`.
    """
    arr = _as_signal(signal, name)
    n_meas = arr.shape[-1]
    if n_meas < min_measurements:
        raise FittingError(
            f"{name} has {n_meas} {what} on its last axis; at least {min_measurements} are needed"
        )
    shape = arr.shape[:-1]
    flat = arr.reshape(-1, n_meas)
    if mask is None:
        rows = np.arange(flat.shape[0])
        y = flat
    else:
        m = np.asarray(mask)
        if m.shape != shape:
            raise FittingError(
                f"mask has shape {m.shape} but {name} has spatial shape {shape} "
                f"(its shape without the last, measurement axis)"
            )
        if m.dtype != bool:
            if m.dtype.kind not in "biu":
                raise FittingError(f"mask must be boolean or integer, got dtype {m.dtype}")
            m = m != 0
        rows = np.flatnonzero(m.reshape(-1))
        y = flat[rows]
    layout = Layout(shape, rows, y, result_dtype(arr))
    if y.size:
        with np.errstate(invalid="ignore", over="ignore"), serial_blas():
            # Row reductions as matrix-vector products: far faster than ``axis=1``
            # reductions over a short last axis. A row sum is non-finite when any sample
            # is (or when it overflows float64, which no real image reaches).
            bad = ~np.isfinite(row_sum(y))
            if require_positive:
                bad |= row_count(y > 0) == 0
            else:
                bad |= row_count(y != 0) == 0
            if not allow_negative:
                bad |= row_count(y < 0) > 0
        layout.flag(bad, FitStatus.INVALID_INPUT)
    return layout


def goodness(y: np.ndarray, sse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R² and RMS residual of every row from its sum of squared residuals ``sse``.

    R² is NaN for rows without variation (total sum of squares below 1e-10 of the
    signal energy): a constant signal carries nothing to fit, and flags as non-finite.
    """
    return map_rows(_goodness_block, y, np.asarray(sse, dtype=np.float64))


def _goodness_block(y: np.ndarray, sse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = y.shape[1]
    mean = row_sum(y) / m
    centred = np.subtract(y, mean[:, None], dtype=np.float32 if y.dtype == np.float32 else None)
    sst = np.einsum("nm,nm->n", centred, centred).astype(np.float64)
    energy = m * mean.astype(np.float64) ** 2 + sst
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 1e-10 * energy, 1.0 - sse / sst, np.nan)
        rmse = np.sqrt(sse / m)
    return r2, rmse


def row_sum(a: np.ndarray) -> np.ndarray:
    """Sum over the last axis of a 2-D array (float32 input stays float32)."""
    dtype = np.float32 if a.dtype == np.float32 else np.float64
    return np.asarray(a, dtype=dtype) @ np.ones(a.shape[-1], dtype=dtype)


def row_count(mask: np.ndarray) -> np.ndarray:
    """Number of True values per row of a 2-D boolean array."""
    return mask @ np.ones(mask.shape[-1], dtype=np.float32)


def check_unique_sorted(values: np.ndarray, name: str) -> None:
    """Raise unless ``values`` is strictly increasing."""
    if values.size > 1 and not np.all(np.diff(values) > 0):
        raise FittingError(f"{name} must be strictly increasing, got {values.tolist()}")


def as_bounds(
    bounds: Sequence[float] | None, default: tuple[float, float], name: str
) -> tuple[float, float]:
    """A ``(low, high)`` pair with ``0 < low < high < inf``."""
    if bounds is None:
        return default
    try:
        lo, hi = (float(v) for v in bounds)
    except (TypeError, ValueError) as exc:
        raise FittingError(
            f"{name} must be a (low, high) pair of numbers, got {bounds!r}"
        ) from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise FittingError(f"{name} must satisfy 0 < low < high < inf, got ({lo}, {hi})")
    return lo, hi

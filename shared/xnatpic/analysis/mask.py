"""The one mask routine of the map steps.

:func:`foreground_mask` finds the anatomy (Otsu's threshold on the per-voxel maximum over
measurements); :func:`signal_mask` adds the noise gate: σ from the data
(:mod:`xnatpic.analysis.noise`), each anatomy voxel's SNR, the voxels below the SNR floor
("no signal": kept in the mask and counted, not fitted) and whether enough of the anatomy
carries signal for a map at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xnatpic.analysis.morphology import remove_small_components
from xnatpic.analysis.noise import NoiseEstimate, estimate_noise, voxel_snr
from xnatpic.arrays import median

__all__ = ["MIN_SIGNAL_FRACTION", "SNR_FLOOR", "SignalMask", "foreground_mask",
           "otsu_threshold", "signal_mask"]

#: Default SNR floor (Rician-corrected local SNR of the strongest measurement): below it a
#: voxel is "no signal". At SNR 5 a two-point decay still measures its rate to ~30 %.
SNR_FLOOR = 5.0
#: Fewest anatomy voxels (fraction) above the floor for a map to be reported at all.
MIN_SIGNAL_FRACTION = 0.5


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of finite ``values`` (maximises the between-class variance).

    References
    ----------
    Otsu N. A threshold selection method from gray-level histograms. IEEE Trans Syst Man
    Cybern 1979;9:62-66. doi:10.1109/TSMC.1979.4310076

    Examples
    --------
    >>> import numpy as np
    >>> 1.0 < otsu_threshold(np.r_[np.zeros(50), np.full(50, 10.0)]) < 10.0
    True
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        return float(v.min()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu0 = m / w0
        mu1 = (m[-1] - m) / w1
        between = w0 * w1 * (mu0 - mu1) ** 2
    between[~np.isfinite(between)] = -1
    # empty bins between the classes give a plateau of equal maxima (the same split of the
    # values): take its middle, not its first edge hugging the lower class
    best = np.flatnonzero(between >= between.max() * (1 - 1e-12))
    return float((edges[best[0] + 1] + edges[best[-1] + 1]) / 2)


def _peak(data: np.ndarray) -> np.ndarray:
    """``np.nanmax(np.abs(data), axis=3)``: frame by frame (``fmax`` skips NaN as
    ``nanmax`` does; all-NaN voxels stay NaN), without the reduction over the short
    innermost axis nor the ``|data|`` copy."""
    peak = np.abs(data[..., 0])
    for i in range(1, data.shape[3]):
        np.fmax(peak, np.abs(data[..., i]), out=peak)
    return peak


def foreground_mask(data: np.ndarray, *, threshold: float | None = None) -> np.ndarray:
    """Foreground voxels of a 4-D series ``(X, Y, Z, N)``.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z, N)
        The series.
    threshold : float, optional
        Fraction (0-1) of the 99th percentile of the per-voxel maximum; default (None or
        0): Otsu's threshold of that maximum image. Small isolated specks (fewer than 4
        voxels in a slice) are removed.

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)
    """
    peak = _peak(data)
    if threshold:
        cut = float(threshold) * float(np.nanpercentile(peak, 99))
    else:
        cut = otsu_threshold(peak)
    mask = peak > cut
    # The slices side by side along x with an empty row between them: one labelling pass,
    # the same components (4-connectivity does not cross the empty rows).
    x, y, z = mask.shape
    stacked = np.zeros((z, x + 1, y), dtype=bool)
    stacked[:, :x] = mask.transpose(2, 0, 1)
    kept = remove_small_components(stacked.reshape(z * (x + 1), y), 4)
    return np.ascontiguousarray(kept.reshape(z, x + 1, y)[:, :x].transpose(1, 2, 0))


@dataclass(frozen=True)
class SignalMask:
    """The anatomy mask and its noise gate.

    Attributes
    ----------
    mask : ndarray of bool, shape (X, Y, Z)
        The anatomy (what the statistics describe).
    no_signal : ndarray of bool, shape (X, Y, Z)
        Anatomy voxels below the SNR floor (not fitted, status "no signal").
    fit_mask : ndarray of bool, shape (X, Y, Z)
        ``mask & ~no_signal``: the voxels to fit.
    snr : ndarray, shape (X, Y, Z)
        Per-voxel SNR (NaN when σ is unknown).
    noise : NoiseEstimate
    snr_floor : float
    enough_signal : bool
        At least :data:`MIN_SIGNAL_FRACTION` of the anatomy is above the floor (True when
        σ is unknown: the gate cannot judge, and says so in :meth:`summary`).
    """

    mask: np.ndarray
    no_signal: np.ndarray
    fit_mask: np.ndarray
    snr: np.ndarray
    noise: NoiseEstimate
    snr_floor: float
    enough_signal: bool

    @property
    def signal_fraction(self) -> float:
        n = int(self.mask.sum())
        return float(self.fit_mask.sum()) / n if n else 0.0

    def summary(self) -> dict[str, Any]:
        """The gate's figures for the statistics and the report."""
        inside = self.snr[self.mask]
        finite = inside[np.isfinite(inside)]
        return {**self.noise.as_dict(), "snr_floor": self.snr_floor,
                "median_snr": median(finite) if finite.size else None,
                "signal_fraction": self.signal_fraction,
                "min_signal_fraction": MIN_SIGNAL_FRACTION,
                "gate": "applied" if self.noise.sigma else "not applied (noise unknown)"}

    def reason(self) -> str:
        """Why the data cannot support a map (empty when they can)."""
        if self.enough_signal:
            return ""
        s = self.summary()
        return (f"only {100 * s['signal_fraction']:.0f} % of the {int(self.mask.sum())} "
                f"anatomy voxels are above the SNR floor {self.snr_floor:g} (median SNR "
                f"{s['median_snr']:.2g}, noise sigma {s['sigma']:.3g} from the "
                f"{s['method']}); at least {100 * MIN_SIGNAL_FRACTION:.0f} % are needed")


def signal_mask(data: np.ndarray, *, threshold: float | None = None,
                snr_floor: float = SNR_FLOOR) -> SignalMask:
    """The anatomy mask of a series ``(X, Y, Z, N)`` with its noise gate.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z, N)
    threshold : float, optional
        As in :func:`foreground_mask`.
    snr_floor : float
        Voxels whose SNR (:func:`xnatpic.analysis.noise.voxel_snr`) is below it are "no
        signal"; 0 disables the gate.
    """
    mask = foreground_mask(data, threshold=threshold)
    noise = estimate_noise(data, mask)
    if noise.sigma is None or not noise.sigma > 0:
        snr = np.full(mask.shape, np.nan)
        no_signal = np.zeros(mask.shape, dtype=bool)
    else:
        snr = voxel_snr(data, mask, noise.sigma)
        no_signal = mask & (snr < snr_floor) if snr_floor > 0 else np.zeros_like(mask)
    fit_mask = mask & ~no_signal
    n = int(mask.sum())
    enough = n > 0 and float(fit_mask.sum()) >= MIN_SIGNAL_FRACTION * n
    return SignalMask(mask, no_signal, fit_mask, snr, noise, float(snr_floor), enough)

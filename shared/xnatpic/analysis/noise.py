"""The noise level of a series and the signal-to-noise ratio of its voxels.

The noise standard deviation σ comes from the background (voxels well away from the
anatomy mask): magnitude images have Rayleigh noise there, whose median is
σ √(2 ln 2); signed (real-valued) images have Gaussian noise, median |x| = 0.6745 σ.
Without enough background (a field of view filled by the object, a zeroed background)
σ is the mode of the local standard deviation inside the anatomy (Aja-Fernández et al.
2009), which homogeneous regions dominate.

The SNR of a voxel is the Rician-corrected amplitude of its strongest measurement,
``sqrt(max(<M²> - 2σ², 0)) / σ`` with ``<M²>`` averaged over a 5 x 5 in-plane
neighbourhood (E[M²] = A² + 2σ² for Rician magnitude), so pure noise scores about 0 and
a voxel of true amplitude A scores about A/σ.

References
----------
Gudbjartsson H, Patz S. The Rician distribution of noisy MRI data. Magn Reson Med
1995;34:910-914. doi:10.1002/mrm.1910340618

Aja-Fernández S, Tristán-Vega A, Alberola-López C. Noise estimation in single- and
multiple-coil magnetic resonance data based on statistical models. Magn Reson Imaging
2009;27:1397-1409. doi:10.1016/j.mri.2009.05.025
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xnatpic.analysis.morphology import box_mean, dilate_in_plane
from xnatpic.arrays import median

__all__ = ["MIN_BACKGROUND", "NoiseEstimate", "estimate_noise", "voxel_snr"]

#: Fewest background samples for the background estimate.
MIN_BACKGROUND = 1000
_RAYLEIGH_MEDIAN = float(np.sqrt(2.0 * np.log(2.0)))
_GAUSS_ABS_MEDIAN = 0.6744897501960817
_WINDOW = (5, 5, 1)


@dataclass(frozen=True)
class NoiseEstimate:
    """σ of the noise and how it was found.

    Attributes
    ----------
    sigma : float or None
        Noise standard deviation (signal units); None when it could not be estimated.
    method : str
        ``"background (Rayleigh)"``, ``"background (Gaussian)"``, ``"local variance mode"``
        or ``"none"``.
    n_samples : int
        Samples the estimate used.
    """

    sigma: float | None
    method: str
    n_samples: int

    def as_dict(self) -> dict[str, object]:
        return {"sigma": self.sigma, "method": self.method, "n_samples": self.n_samples}


def _strongest(data: np.ndarray, anatomy: np.ndarray) -> np.ndarray:
    """The measurement with the highest mean signal in the anatomy, as float64 (X, Y, Z)."""
    inside = np.compress(anatomy.ravel(), np.reshape(data, (-1, data.shape[3])), axis=0)
    # each frame's |values| made contiguous, as a 1-D mask selection gives them: the same
    # pairwise sums
    means = [float(np.mean(np.abs(inside[:, i]))) if inside.size else 0.0
             for i in range(data.shape[3])]
    return np.asarray(data[..., int(np.argmax(means))], dtype=np.float64)


def _local_sd_mode(frame: np.ndarray, anatomy: np.ndarray) -> NoiseEstimate:
    mean = box_mean(frame, _WINDOW)
    mean2 = box_mean(frame * frame, _WINDOW)
    sd = np.sqrt(np.maximum(mean2 - mean * mean, 0.0))[anatomy]
    sd = sd[np.isfinite(sd) & (sd > 0)]
    if sd.size < 50:
        return NoiseEstimate(None, "none", int(sd.size))
    hist, edges = np.histogram(sd, bins=200, range=(0.0, float(np.percentile(sd, 90))))
    j = int(np.argmax(hist))
    return NoiseEstimate(float((edges[j] + edges[j + 1]) / 2), "local variance mode",
                         int(sd.size))


def estimate_noise(data: np.ndarray, anatomy: np.ndarray, *, margin: int = 4) -> NoiseEstimate:
    """σ of the noise of a series ``(X, Y, Z, N)`` outside the anatomy mask ``(X, Y, Z)``.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z, N)
    anatomy : ndarray of bool, shape (X, Y, Z)
        The object (:func:`xnatpic.analysis.mask.foreground_mask`).
    margin : int
        In-plane dilation of the mask (voxels) before taking the background, to keep
        partial-volume edges and short ghosts out.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.random.default_rng(0)
    >>> noise = np.abs(g.normal(0, 2.0, (64, 64, 2, 3)) + 1j * g.normal(0, 2.0, (64, 64, 2, 3)))
    >>> anatomy = np.zeros((64, 64, 2), bool); anatomy[20:40, 20:40] = True
    >>> est = estimate_noise(noise, anatomy)
    >>> est.method, round(est.sigma, 1)
    ('background (Rayleigh)', 2.0)
    """
    anatomy = np.asarray(anatomy, dtype=bool)
    near = dilate_in_plane(anatomy, margin) if anatomy.any() else anatomy
    frames = np.reshape(data, (-1, data.shape[3]))
    background = np.compress(~near.ravel(), frames, axis=0).ravel()
    if background.dtype not in (np.float32, np.float64):  # integers: |x| may overflow
        background = background.astype(np.float64)
    # float32 samples as they are: their median is one of them (or the mean of two, taken
    # in float64), the value a float64 copy gives.
    background = background[np.isfinite(background) & (background != 0)]
    if background.size >= MIN_BACKGROUND:
        if np.count_nonzero(background < 0) > 0.05 * background.size:
            return NoiseEstimate(median(np.abs(background), float64=True) / _GAUSS_ABS_MEDIAN,
                                 "background (Gaussian)", int(background.size))
        return NoiseEstimate(median(background, float64=True) / _RAYLEIGH_MEDIAN,
                             "background (Rayleigh)", int(background.size))
    return _local_sd_mode(_strongest(data, anatomy), anatomy)


def voxel_snr(data: np.ndarray, anatomy: np.ndarray, sigma: float) -> np.ndarray:
    """Rician-corrected local SNR of the strongest measurement, per voxel ``(X, Y, Z)``."""
    frame = _strongest(data, np.asarray(anatomy, dtype=bool))
    mean2 = box_mean(frame * frame, _WINDOW)
    return np.sqrt(np.maximum(mean2 - 2.0 * sigma * sigma, 0.0)) / sigma

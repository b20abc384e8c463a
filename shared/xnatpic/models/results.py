"""Result containers returned by the model fits.

Every fit returns a small frozen dataclass of arrays shaped like the input signal without
its measurement (last) axis. Parameter maps are NaN wherever the fit failed or the voxel
was outside the mask. ``failed`` is True only for voxels that were fitted (inside the mask)
and failed; ``status`` says why, as a bit field of :class:`FitStatus` values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ADCFit",
    "B0Fit",
    "DTIFit",
    "FitStatus",
    "T1Fit",
    "T1IRFit",
    "T2Fit",
    "T2StarFit",
    "ZSpectrum",
]


class FitStatus(enum.IntFlag):
    """Why a voxel has no result; combined bitwise in the ``status`` arrays (uint8).

    ``failed`` in every result equals ``(status & ~MASKED) != 0``.
    """

    OK = 0
    #: Outside the mask: not fitted, parameters NaN, ``failed`` False.
    MASKED = 1
    #: Non-finite, negative or all-zero samples (or no M0 / non-positive M0 for CEST).
    INVALID_INPUT = 2
    #: The iterative solver reached its iteration limit.
    NOT_CONVERGED = 4
    #: A parameter ended on (or outside) its allowed range.
    AT_BOUND = 8
    #: A parameter or the goodness of fit is not finite (e.g. constant signal).
    NONFINITE_RESULT = 16
    #: A parameter has an impossible value (S0 <= 0, negative eigenvalue, no minimum...).
    NONPHYSICAL = 32


@dataclass(frozen=True, eq=False, slots=True)
class T2Fit:
    """Mono-exponential T2 decay ``S = s0 * exp(-TE / t2) + offset``.

    Attributes
    ----------
    s0 : ndarray, shape (...)
        Signal at TE = 0 (signal units).
    t2 : ndarray, shape (...)
        T2 in the unit of the echo times (ms).
    offset : ndarray, shape (...)
        Constant offset / noise floor (signal units); 0 where the model has no offset.
    r_squared : ndarray, shape (...)
        Coefficient of determination of the fitted points.
    rmse : ndarray, shape (...)
        Root-mean-square residual (signal units).
    failed : ndarray of bool, shape (...)
        Fitted voxels whose fit failed (parameters NaN).
    status : ndarray of uint8, shape (...)
        :class:`FitStatus` bits.
    """

    s0: np.ndarray
    t2: np.ndarray
    offset: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray


@dataclass(frozen=True, eq=False, slots=True)
class T2StarFit:
    """Mono-exponential T2* decay ``S = s0 * exp(-TE / t2star) + offset``.

    Attributes
    ----------
    s0 : ndarray, shape (...)
        Signal at TE = 0 (signal units).
    t2star : ndarray, shape (...)
        T2* in the unit of the echo times (ms).
    offset : ndarray, shape (...)
        Constant offset / noise floor (signal units); 0 where the model has no offset.
    r_squared, rmse, failed, status : ndarray, shape (...)
        As in :class:`T2Fit`.
    """

    s0: np.ndarray
    t2star: np.ndarray
    offset: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray


@dataclass(frozen=True, eq=False, slots=True)
class T1Fit:
    """Saturation recovery / variable TR ``S = s0 * (1 - exp(-TR / t1)) + offset``.

    Attributes
    ----------
    s0 : ndarray, shape (...)
        Fully relaxed signal (signal units).
    t1 : ndarray, shape (...)
        T1 in the unit of the repetition times (ms).
    offset : ndarray, shape (...)
        Constant offset (signal units); 0 where the model has no offset.
    r_squared, rmse, failed, status : ndarray, shape (...)
        As in :class:`T2Fit`.
    """

    s0: np.ndarray
    t1: np.ndarray
    offset: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray


@dataclass(frozen=True, eq=False, slots=True)
class T1IRFit:
    """Magnitude inversion recovery ``|S| = |a + b * exp(-TI / t1)|``.

    Attributes
    ----------
    a : ndarray, shape (...)
        Relaxed signal (signal units, > 0).
    b : ndarray, shape (...)
        Inversion term (signal units, < 0; ``b = -2a`` for a perfect inversion and TR >> T1).
    t1 : ndarray, shape (...)
        T1 in the unit of the inversion times (ms).
    r_squared, rmse, failed, status : ndarray, shape (...)
        As in :class:`T2Fit`, computed on the magnitude data.
    model : {"three", "two"}
        The model fitted: ``"three"`` (``a``, ``b``, ``t1`` free) or ``"two"``
        (``|s0 (1 - k exp(-TI / t1))|`` with the inversion efficiency ``k`` fixed;
        ``a = s0``, ``b = -k s0``).
    """

    a: np.ndarray
    b: np.ndarray
    t1: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray
    model: str = "three"

    @property
    def inversion_efficiency(self) -> np.ndarray:
        """``-b / a``: 2 for a perfect inversion with full recovery."""
        return -self.b / self.a


@dataclass(frozen=True, eq=False, slots=True)
class ADCFit:
    """Mono-exponential diffusion decay ``S = s0 * exp(-b * adc)``.

    Attributes
    ----------
    s0 : ndarray, shape (...)
        Signal at b = 0 (signal units).
    adc : ndarray, shape (...)
        Apparent diffusion coefficient in mm²/s (b-values in s/mm²).
    r_squared, rmse, failed, status : ndarray, shape (...)
        As in :class:`T2Fit`, computed in the signal domain.
    """

    s0: np.ndarray
    adc: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray


@dataclass(frozen=True, eq=False, slots=True)
class DTIFit:
    """Diffusion tensor ``S = s0 * exp(-b g^T D g)`` and its scalar maps.

    Attributes
    ----------
    s0 : ndarray, shape (...)
        Signal at b = 0 (signal units).
    tensor : ndarray, shape (..., 6)
        ``(Dxx, Dyy, Dzz, Dxy, Dxz, Dyz)`` in mm²/s, in the frame of the gradient
        directions (image space).
    eigenvalues : ndarray, shape (..., 3)
        λ1 >= λ2 >= λ3 in mm²/s.
    v1 : ndarray, shape (..., 3)
        Unit principal eigenvector (sign arbitrary).
    fa : ndarray, shape (...)
        Fractional anisotropy (0..1).
    md, ad, rd : ndarray, shape (...)
        Mean, axial (λ1) and radial ((λ2 + λ3) / 2) diffusivity in mm²/s.
    r_squared, rmse, failed, status : ndarray, shape (...)
        As in :class:`T2Fit`, computed in the signal domain.
    """

    s0: np.ndarray
    tensor: np.ndarray
    eigenvalues: np.ndarray
    v1: np.ndarray
    fa: np.ndarray
    md: np.ndarray
    ad: np.ndarray
    rd: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray


@dataclass(frozen=True, eq=False, slots=True)
class ZSpectrum:
    """A CEST Z-spectrum normalised by M0.

    Attributes
    ----------
    z : ndarray, shape (..., K)
        ``S(Δω) / M0`` at ``offsets`` (dimensionless); NaN for failed voxels.
    offsets : ndarray, shape (K,)
        Saturation offsets in ppm, strictly increasing, M0 frames removed and repeated
        offsets averaged.
    m0 : ndarray, shape (...)
        Mean of the M0 frames (signal units).
    failed, status : ndarray, shape (...)
        As in :class:`T2Fit`.
    """

    z: np.ndarray
    offsets: np.ndarray
    m0: np.ndarray
    failed: np.ndarray
    status: np.ndarray


@dataclass(frozen=True, eq=False, slots=True)
class B0Fit:
    """Water frequency offset from a WASSR spectrum or a Z-spectrum.

    Attributes
    ----------
    b0 : ndarray, shape (...)
        Offset of the water minimum in ppm (positive: water resonates above 0 ppm).
    r_squared, rmse : ndarray, shape (...)
        Goodness of the local parabola / Lorentzian fit around the minimum.
    failed, status : ndarray, shape (...)
        As in :class:`T2Fit`.
    """

    b0: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray

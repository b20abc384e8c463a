"""Result containers returned by the model fits.

Every fit returns a small frozen dataclass of arrays shaped like the input signal without
its measurement (last) axis. Parameter maps are NaN wherever the fit failed or the voxel
was outside the mask. ``failed`` is True only for voxels that were fitted (inside the mask)
and failed; ``status`` says why, as a bit field of :class:`FitStatus` values.

Two vocabularies:

* :class:`FitStatus` (bits, per fit): what the model saw. ``LONG`` / ``SHORT`` are not
  failures: the value is kept in the map (it is an extrapolation beyond what the
  acquisition can measure, or the hard physical bound itself) so statistics over the mask
  are not censored at one tail.
* :class:`VoxelStatus` (one code per voxel, per map): what the analysis reports and writes
  as ``<map>_status.nii.gz``; :func:`voxel_status` derives it from the bits and the noise
  gate, :data:`VOXEL_STATUS_NAMES` names it, :data:`STATUS_GROUPS` groups it for the
  fractions in the statistics.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FAILURE_BITS",
    "STATUS_GROUPS",
    "VOXEL_STATUS_NAMES",
    "ADCFit",
    "B0Fit",
    "DTIFit",
    "FitStatus",
    "T1Fit",
    "T1IRFit",
    "T2Fit",
    "T2StarFit",
    "VoxelStatus",
    "ZSpectrum",
    "status_group",
    "voxel_status",
]


class FitStatus(enum.IntFlag):
    """What the fit saw in a voxel; combined bitwise in the ``status`` arrays (uint8).

    ``failed`` in every result equals ``(status & FAILURE_BITS) != 0``; ``LONG`` and
    ``SHORT`` are not failures (the value stays in the map).
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
    #: The time constant (T1, T2, T2*; 1/ADC for diffusion) is above the range the
    #: acquisition can measure (e.g. T2 well beyond the last echo time: the decay over the
    #: echo train is too small). The value is kept: the fitted extrapolation, or the hard
    #: upper bound when the fit ended there; read it as "at least this long".
    LONG = 64
    #: The time constant is below the measurable range (the signal is gone by the second
    #: sample); the value is kept (at most this short).
    SHORT = 128


#: The bits that make a voxel failed (parameters NaN).
FAILURE_BITS = (FitStatus.INVALID_INPUT | FitStatus.NOT_CONVERGED | FitStatus.AT_BOUND
                | FitStatus.NONFINITE_RESULT | FitStatus.NONPHYSICAL)


class VoxelStatus(enum.IntEnum):
    """The per-voxel status of one map, as written to ``<map>_status.nii.gz``.

    One code per voxel (not bits). 0 is outside the mask; 1 a normal fit; 2 and 3 a value
    beyond the measurable range (kept in the map and in the statistics); 4 a voxel the
    noise gate found at the noise level (no value); 5 and above a failed fit with its
    reason (no value).
    """

    OUTSIDE = 0
    FITTED = 1
    LONG = 2
    SHORT = 3
    NO_SIGNAL = 4
    FAILED_INPUT = 5
    FAILED_NOT_CONVERGED = 6
    FAILED_AT_BOUND = 7
    FAILED_NONFINITE = 8
    FAILED_NONPHYSICAL = 9


#: Human-readable name of each :class:`VoxelStatus` (report, JSON, CSV).
VOXEL_STATUS_NAMES: dict[VoxelStatus, str] = {
    VoxelStatus.OUTSIDE: "outside mask",
    VoxelStatus.FITTED: "fitted",
    VoxelStatus.LONG: "beyond range: long",
    VoxelStatus.SHORT: "beyond range: short",
    VoxelStatus.NO_SIGNAL: "no signal",
    VoxelStatus.FAILED_INPUT: "failed: invalid input",
    VoxelStatus.FAILED_NOT_CONVERGED: "failed: not converged",
    VoxelStatus.FAILED_AT_BOUND: "failed: at a fit bound",
    VoxelStatus.FAILED_NONFINITE: "failed: non-finite result",
    VoxelStatus.FAILED_NONPHYSICAL: "failed: non-physical value",
}

#: Group (key of the ``fractions`` in the statistics) of each in-mask status.
STATUS_GROUPS: dict[str, tuple[VoxelStatus, ...]] = {
    "fitted": (VoxelStatus.FITTED,),
    "long": (VoxelStatus.LONG,),
    "short": (VoxelStatus.SHORT,),
    "no_signal": (VoxelStatus.NO_SIGNAL,),
    "failed": (VoxelStatus.FAILED_INPUT, VoxelStatus.FAILED_NOT_CONVERGED,
               VoxelStatus.FAILED_AT_BOUND, VoxelStatus.FAILED_NONFINITE,
               VoxelStatus.FAILED_NONPHYSICAL),
}


def status_group(code: int) -> str:
    """The :data:`STATUS_GROUPS` key of a :class:`VoxelStatus` code (``"outside"`` for 0)."""
    for group, codes in STATUS_GROUPS.items():
        if code in codes:
            return group
    return "outside"


#: Failure bits in order of precedence -> the code reported for them.
_FAILURE_CODES = (
    (FitStatus.INVALID_INPUT, VoxelStatus.FAILED_INPUT),
    (FitStatus.NONFINITE_RESULT, VoxelStatus.FAILED_NONFINITE),
    (FitStatus.NONPHYSICAL, VoxelStatus.FAILED_NONPHYSICAL),
    (FitStatus.NOT_CONVERGED, VoxelStatus.FAILED_NOT_CONVERGED),
    (FitStatus.AT_BOUND, VoxelStatus.FAILED_AT_BOUND),
)


def voxel_status(bits: np.ndarray, *, mask: np.ndarray | None = None,
                 no_signal: np.ndarray | None = None) -> np.ndarray:
    """One :class:`VoxelStatus` code per voxel from the :class:`FitStatus` ``bits``.

    Parameters
    ----------
    bits : ndarray of uint8
        A fit's ``status``.
    mask : ndarray of bool, optional
        Voxels of the map (default: those whose status is not ``MASKED``).
    no_signal : ndarray of bool, optional
        Voxels the noise gate found at the noise level: ``NO_SIGNAL`` whatever the fit said.

    Returns
    -------
    ndarray of uint8
        Precedence: outside, no signal, the failure reasons (invalid input, non-finite,
        non-physical, not converged, at bound), long, short, fitted.

    Examples
    --------
    >>> import numpy as np
    >>> bits = np.array([0, 1, 64, 128, 4, 64 | 8], np.uint8)
    >>> voxel_status(bits).tolist()
    [1, 0, 2, 3, 6, 7]
    """
    bits = np.asarray(bits, dtype=np.uint8)
    inside = (bits & np.uint8(FitStatus.MASKED)) == 0 if mask is None else np.asarray(mask, bool)
    out = np.full(bits.shape, np.uint8(VoxelStatus.FITTED), dtype=np.uint8)
    out[(bits & np.uint8(FitStatus.SHORT)) != 0] = VoxelStatus.SHORT
    out[(bits & np.uint8(FitStatus.LONG)) != 0] = VoxelStatus.LONG
    for bit, code in reversed(_FAILURE_CODES):
        out[(bits & np.uint8(bit)) != 0] = code
    if no_signal is not None:
        out[np.asarray(no_signal, bool)] = VoxelStatus.NO_SIGNAL
    out[~inside] = VoxelStatus.OUTSIDE
    return out


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
    b0_sd : ndarray, shape (...), optional
        Standard error of ``b0`` (ppm) from the fit: the parameter covariance of the
        Lorentzian, the delta-method error of the parabola vertex, or the sample noise
        propagated through the spline minimum; NaN where the fit has no residual degree
        of freedom.
    """

    b0: np.ndarray
    r_squared: np.ndarray
    rmse: np.ndarray
    failed: np.ndarray
    status: np.ndarray
    b0_sd: np.ndarray | None = None

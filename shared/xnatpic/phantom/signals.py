"""Signal equations of the phantom scans, and Rician noise.

Every model is a pure function of the truth maps (arrays over voxels) and the
acquisition's measurement values (TE, TR, TI, b-matrices or saturation offsets); it
returns the noiseless signal with the measurement axis LAST, shape ``(*voxels, n)``.
:data:`FORMULAE` holds the text of each equation as written to ``truth.json``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from xnatpic.models.inversion import ir_signal
from xnatpic.phantom.compartments import CEST_POOLS

__all__ = [
    "FORMULAE",
    "SIGNAL_SCALE",
    "add_rician_noise",
    "diffusion_weighted",
    "gradient_echo",
    "inversion_recovery",
    "lorentzian",
    "saturation_recovery",
    "spin_echo",
    "z_spectrum",
]

#: Signal of M0 = 1 at full relaxation, in reconstructed image units.
SIGNAL_SCALE = 1000.0

#: The equations, as documented in truth.json (times in ms, b in s/mm², D in mm²/s).
FORMULAE: dict[str, str] = {
    "spin_echo": "S = K·M0·(1 − exp(−TR/T1))·exp(−TE/T2)",
    "saturation_recovery": (
        "S = K·M0·(1 − exp(−(TR − Ttrain)/T1))·exp(−TE/T2), one TR per frame; Ttrain = RARE "
        "factor × TE (RARE-VTR: Mz recovers from the end of the echo train)"
    ),
    "inversion_recovery": (
        "S = |K·M0·exp(−TE/T2)·(1 − 2·exp(−TIeff/T1) + exp(−(TR − Tread)/T1))|, TR the "
        "inversion-to-inversion time (MultiRepTime), Tread = RARE factor × TE the echo train "
        "that saturates the slice, TIeff = TI + the slice's delay (acquisition position in "
        "PVM_ObjOrderList × slice period Tread); the steady state of "
        "xnatpic.models.inversion.ir_signal with a perfect inversion"
    ),
    "gradient_echo": (
        "S = K·M0·sin(α)·(1 − E1)/(1 − cos(α)·E1)·exp(−TE/T2*), E1 = exp(−TR/T1); "
        "B0 only adds a phase 2π·ΔB0_Hz·TE, invisible in the magnitude images"
    ),
    "diffusion": (
        "S = K·M0·(1 − exp(−TR/T1))·exp(−TE/T2)·exp(−Σij Bij·Dij), B = b_eff·g·gᵀ with g "
        "the unit gradient direction in the subject frame (B = 0 for A0 images), D the "
        "tensor in the subject frame"
    ),
    "z_spectrum": (
        "S = K·M0·(1 − exp(−TR/T1))·exp(−TE/T2)·Z(Δω), Z(Δω) = 1 − A_w·L(Δω − δB0; 0, Γ_w) "
        "− Σ_p s·A_p·L(Δω − δB0; δ_p, Γ_p), L(x; c, Γ) = (Γ/2)²/((Γ/2)² + (x − c)²), "
        "all in ppm; Δω the saturation offset, δB0 the B0 map (ppm), A_w, Γ_w the "
        "direct-saturation amplitude and width of the protocol, s its pool scale, A_p the "
        "pool amplitude map, δ_p, Γ_p the pool offset and width"
    ),
    "noise": (
        "magnitude of the complex signal plus independent Gaussian noise of standard "
        "deviation σ in the real and imaginary channels (Rician), σ = max(noiseless "
        "signal of the scan)/snr"
    ),
}


def _relaxed(maps: Mapping[str, np.ndarray], tr: float, te: float) -> np.ndarray:
    """K·M0·(1 − exp(−TR/T1))·exp(−TE/T2), 0 where M0 is 0."""
    m0 = maps["M0"]
    t1 = np.where(m0 > 0, maps["T1"], 1.0)
    t2 = np.where(m0 > 0, maps["T2"], 1.0)
    return SIGNAL_SCALE * m0 * (1.0 - np.exp(-tr / t1)) * np.exp(-te / t2)


def spin_echo(maps: Mapping[str, np.ndarray], *, te: np.ndarray, tr: float) -> np.ndarray:
    """Multi-echo spin echo: one frame per echo time ``te`` (ms)."""
    base = _relaxed(maps, tr, 0.0)[..., None]
    t2 = np.where(maps["M0"] > 0, maps["T2"], 1.0)[..., None]
    return base * np.exp(-np.asarray(te, dtype=float) / t2)


def saturation_recovery(
    maps: Mapping[str, np.ndarray], *, tr: np.ndarray, te: float, echo_train: float = 0.0
) -> np.ndarray:
    """Variable-TR saturation recovery: one frame per repetition time ``tr`` (ms); the
    magnetisation recovers during ``TR - echo_train`` (RARE-VTR)."""
    return np.stack([_relaxed(maps, float(t) - echo_train, te)
                     for t in np.asarray(tr, dtype=float)], -1)


def inversion_recovery(
    maps: Mapping[str, np.ndarray], *, ti: np.ndarray, te: float, tr: np.ndarray,
    readout: float, slice_delays: np.ndarray,
) -> np.ndarray:
    """Magnitude inversion recovery with the acquisition's timing: one frame per inversion
    time ``ti`` (ms).

    ``tr`` (per frame) is the inversion-to-inversion time, ``readout`` the echo train
    after each excitation and ``slice_delays`` (one per slice, the first axis of the maps)
    the time from the first slice's excitation to each slice's; the signal is
    :func:`xnatpic.models.inversion.ir_signal` (perfect inversion) at the effective TI.
    """
    m0 = maps["M0"]
    t1 = np.where(m0 > 0, maps["T1"], 1.0)[..., None]
    t2 = np.where(m0 > 0, maps["T2"], 1.0)
    base = (SIGNAL_SCALE * m0 * np.exp(-te / t2))[..., None]
    delays = np.asarray(slice_delays, dtype=float).reshape((-1,) + (1,) * (m0.ndim - 1) + (1,))
    ti_eff = np.asarray(ti, dtype=float) + delays
    return np.abs(base * ir_signal(t1, ti_eff, tr=np.asarray(tr, dtype=float),
                                   readout=readout))


def gradient_echo(
    maps: Mapping[str, np.ndarray], *, te: np.ndarray, tr: float, flip_deg: float
) -> np.ndarray:
    """Spoiled multi-gradient echo magnitude: one frame per echo time ``te`` (ms)."""
    m0 = maps["M0"]
    t1 = np.where(m0 > 0, maps["T1"], 1.0)
    t2s = np.where(m0 > 0, maps["T2s"], 1.0)[..., None]
    alpha = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / t1)
    s0 = SIGNAL_SCALE * m0 * np.sin(alpha) * (1.0 - e1) / (1.0 - np.cos(alpha) * e1)
    return s0[..., None] * np.exp(-np.asarray(te, dtype=float) / t2s)


def diffusion_weighted(
    maps: Mapping[str, np.ndarray], *, bmatrix: np.ndarray, tr: float, te: float
) -> np.ndarray:
    """Diffusion weighting: one frame per b-matrix (n, 3, 3) in s/mm², subject frame."""
    bdotd = np.einsum("nij,...ij->...n", np.asarray(bmatrix, dtype=float), maps["D"])
    return _relaxed(maps, tr, te)[..., None] * np.exp(-bdotd)


def lorentzian(x: np.ndarray, centre: float, fwhm: float) -> np.ndarray:
    """Unit-height Lorentzian ``(Γ/2)² / ((Γ/2)² + (x − c)²)``."""
    half = fwhm / 2.0
    return half**2 / (half**2 + (x - centre) ** 2)


def z_spectrum(
    maps: Mapping[str, np.ndarray],
    *,
    offsets_ppm: np.ndarray,
    water_amplitude: float,
    water_fwhm_ppm: float,
    pool_scale: float,
    tr: float,
    te: float,
) -> np.ndarray:
    """Saturation-transfer signal: one frame per saturation offset (ppm from water)."""
    offsets = np.asarray(offsets_ppm, dtype=float)
    shifted = offsets - maps["B0_ppm"][..., None]
    z = 1.0 - water_amplitude * lorentzian(shifted, 0.0, water_fwhm_ppm)
    for name, pool in CEST_POOLS.items():
        amplitude = pool_scale * maps[f"cest_{name}"][..., None]
        z = z - amplitude * lorentzian(shifted, pool.offset_ppm, pool.fwhm_ppm)
    return _relaxed(maps, tr, te)[..., None] * z


def add_rician_noise(
    signal: np.ndarray, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Return ``|signal + n_re + i·n_im|`` with n ~ N(0, sigma²) drawn from ``rng``.

    Parameters
    ----------
    signal : numpy.ndarray
        Noiseless magnitude signal (any shape).
    sigma : float
        Noise standard deviation of each channel, same units as ``signal``.
    rng : numpy.random.Generator
        Source of the noise (seeded by the caller for reproducibility).

    Returns
    -------
    numpy.ndarray
        Noisy magnitude, float64, same shape.
    """
    real = signal + rng.normal(0.0, sigma, signal.shape)
    imag = rng.normal(0.0, sigma, signal.shape)
    return np.hypot(real, imag)

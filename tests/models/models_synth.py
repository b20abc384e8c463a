"""Synthetic known-truth data for the model tests (imported by the test modules).

Everything is generated from an explicit ``numpy.random.Generator`` so that every test is
reproducible; noise levels are given as SNR relative to S0 (or M0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def rician(gen: np.random.Generator, clean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Magnitude of ``clean`` plus complex Gaussian noise of std ``sigma`` per channel."""
    sigma = np.asarray(sigma)[..., None] if np.ndim(sigma) else sigma
    real = clean + gen.normal(size=clean.shape) * sigma
    imag = gen.normal(size=clean.shape) * sigma
    return np.hypot(real, imag)


def gaussian(gen: np.random.Generator, clean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    sigma = np.asarray(sigma)[..., None] if np.ndim(sigma) else sigma
    return clean + gen.normal(size=clean.shape) * sigma


def rel_err(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(estimate, dtype=np.float64) / truth - 1.0)


def crlb_rel(
    model: Callable[[np.ndarray, np.ndarray], np.ndarray],
    theta: np.ndarray,
    x: np.ndarray,
    sigma: np.ndarray,
    index: int,
) -> np.ndarray:
    """Cramér-Rao bound of parameter ``index`` relative to its value, per voxel.

    ``model(theta (n, P), x (M,)) -> (n, M)``; the Jacobian is taken by central
    differences and the bound assumes Gaussian noise of std ``sigma`` (n,).
    """
    n, p = theta.shape
    jac = np.empty((n, x.size, p))
    for j in range(p):
        h = 1e-6 * np.maximum(np.abs(theta[:, j]), 1e-12)
        up, down = theta.copy(), theta.copy()
        up[:, j] += h
        down[:, j] -= h
        jac[:, :, j] = (model(up, x) - model(down, x)) / (2 * h[:, None])
    fisher = np.einsum("nmi,nmj->nij", jac, jac) / (sigma**2)[:, None, None]
    cov = np.linalg.inv(fisher)
    return np.sqrt(cov[:, index, index]) / np.abs(theta[:, index])


def sphere_directions(n: int) -> np.ndarray:
    """``n`` unit vectors spread over a hemisphere (golden-angle spiral)."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - i / n)
    azimuth = np.pi * (1.0 + 5**0.5) * i
    return np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1
    )


def random_rotations(gen: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(gen.normal(size=(n, 3, 3)))
    return q * np.sign(np.einsum("nii->ni", r))[:, None, :]


def lorentzian(x: np.ndarray, amplitude: float, centre: float, half_width: float) -> np.ndarray:
    return amplitude / (1.0 + ((x - centre) / half_width) ** 2)


def z_model(offsets: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """Z-spectra (n, K): direct water saturation, amide at +3.5 ppm, NOE at -3.5 ppm.

    ``b0`` (n,) shifts the whole spectrum (water resonates at ``+b0``).
    """
    x = offsets[None, :] - np.asarray(b0, dtype=np.float64)[:, None]
    return (
        1.0
        - lorentzian(x, 0.85, 0.0, 0.9)
        - lorentzian(x, 0.06, 3.5, 0.6)
        - lorentzian(x, 0.04, -3.5, 1.2)
    )


def wassr_model(offsets: np.ndarray, b0: np.ndarray) -> np.ndarray:
    """Narrow direct-saturation line of a WASSR acquisition (n, K)."""
    x = offsets[None, :] - np.asarray(b0, dtype=np.float64)[:, None]
    return 1.0 - lorentzian(x, 0.9, 0.0, 0.3)

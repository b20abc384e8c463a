"""ADC and DTI fits against synthetic known-truth data (fixed seeds, SNR 100 relative to S0)."""

from __future__ import annotations

import numpy as np
import pytest
from models_synth import random_rotations, rel_err, rician, rng, sphere_directions
from scipy.optimize import curve_fit

from xnatpic.errors import FittingError
from xnatpic.models import fit_adc, fit_dti

N = 4000
N_DIRS = 12
# 3 unweighted volumes and two shells of 12 directions (the second shell rotated).
BVECS = np.vstack(
    [np.zeros((3, 3)), sphere_directions(N_DIRS), sphere_directions(N_DIRS)[:, [1, 2, 0]]]
)
BVALS = np.array([0.0] * 3 + [500.0] * N_DIRS + [1000.0] * N_DIRS)


def tensors(gen: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random orientations and eigenvalues (mm²/s) covering FA ~0.1-0.9."""
    l1 = gen.uniform(1.0e-3, 2.0e-3, n)
    l2 = np.minimum(gen.uniform(0.2e-3, 1.0e-3, n), l1)
    l3 = np.maximum(gen.uniform(0.2, 1.0, n) * l2, 0.15e-3)
    evals = np.stack([l1, l2, l3], axis=1)
    rot = random_rotations(gen, n)
    d = np.einsum("nij,nj,nkj->nik", rot, evals, rot)
    return d, evals, rot[:, :, 0]


def dwi(d: np.ndarray, s0: np.ndarray, bvals: np.ndarray, bvecs: np.ndarray) -> np.ndarray:
    return s0[:, None] * np.exp(-bvals * np.einsum("mi,nij,mj->nm", bvecs, d, bvecs))


def fa_md(evals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    md = evals.mean(axis=1)
    dev = evals - md[:, None]
    return np.sqrt(1.5 * (dev**2).sum(1) / (evals**2).sum(1)), md


@pytest.mark.parametrize("method", ["loglinear", "nlls"])
def test_adc_accuracy(method: str) -> None:
    gen = rng(30)
    s0 = gen.uniform(500, 1500, N)
    adc = gen.uniform(0.3e-3, 3.0e-3, N)
    signal = rician(gen, s0[:, None] * np.exp(-BVALS * adc[:, None]), s0 / 100)
    fit = fit_adc(signal.astype(np.float32), BVALS, method=method)
    err = rel_err(fit.adc, adc)
    assert not fit.failed.any()
    assert fit.adc.dtype == np.float32
    assert np.median(err) <= 0.01
    assert np.percentile(err, 95) <= 0.05


@pytest.mark.parametrize("method", ["loglinear", "nlls"])
def test_adc_goodness_of_fit_is_on_the_raw_data(method: str) -> None:
    gen = rng(36)
    s0 = gen.uniform(500, 1500, 200)
    adc = gen.uniform(0.3e-3, 3.0e-3, 200)
    signal = rician(gen, s0[:, None] * np.exp(-BVALS * adc[:, None]), s0 / 100)
    fit = fit_adc(signal, BVALS, method=method)
    resid = signal - fit.s0[:, None] * np.exp(-BVALS * fit.adc[:, None])
    sse = (resid**2).sum(1)
    sst = ((signal - signal.mean(1, keepdims=True)) ** 2).sum(1)
    np.testing.assert_allclose(fit.rmse, np.sqrt(sse / BVALS.size), rtol=1e-4)
    np.testing.assert_allclose(fit.r_squared, 1 - sse / sst, rtol=1e-5)


def test_adc_b_range_excludes_perfusion() -> None:
    gen = rng(31)
    b = np.array([0.0, 20.0, 50.0, 100.0, 200.0, 400.0, 600.0, 800.0, 1000.0])
    s0 = np.full(2000, 1000.0)
    adc = 0.8e-3
    clean = s0[:, None] * (0.9 * np.exp(-b * adc) + 0.1 * np.exp(-b * 20e-3))
    signal = rician(gen, clean, s0 / 100)
    everything = np.median(fit_adc(signal, b).adc)
    diffusion_only = fit_adc(signal, b, b_range=(200, 1000)).adc
    by_index = fit_adc(signal, b, select=[4, 5, 6, 7, 8]).adc
    assert everything > 1.1 * adc
    assert abs(np.median(diffusion_only) / adc - 1.0) < 0.01
    np.testing.assert_array_equal(by_index, diffusion_only)


def test_adc_agrees_with_curve_fit() -> None:
    gen = rng(32)
    n = 60
    s0 = gen.uniform(500, 1500, n)
    adc = gen.uniform(0.3e-3, 3.0e-3, n)
    signal = rician(gen, s0[:, None] * np.exp(-BVALS * adc[:, None]), s0 / 100)
    ours = fit_adc(signal, BVALS, method="nlls").adc
    ref = np.array(
        [
            curve_fit(lambda b, a, d: a * np.exp(-b * d), BVALS, row, p0=[row[0], 1e-3])[0][1]
            for row in signal
        ]
    )
    assert abs(np.median(ours) / np.median(ref) - 1.0) <= 0.005
    assert np.median(rel_err(ours, ref)) <= 1e-3


def test_dti_accuracy() -> None:
    gen = rng(33)
    d, evals, v1 = tensors(gen, N)
    s0 = gen.uniform(500, 1500, N)
    signal = rician(gen, dwi(d, s0, BVALS, BVECS), s0 / 100)
    fit = fit_dti(signal, BVALS, BVECS)
    fa, md = fa_md(evals)
    assert not fit.failed.any()
    fa_err = np.abs(fit.fa - fa)
    assert np.median(fa_err) <= 0.01
    assert np.percentile(fa_err, 95) <= 0.02
    md_err = rel_err(fit.md, md)
    assert np.median(md_err) <= 0.01
    assert np.percentile(md_err, 95) <= 0.05
    assert np.median(rel_err(fit.ad, evals[:, 0])) <= 0.02
    assert np.median(rel_err(fit.rd, evals[:, 1:].mean(1))) <= 0.02
    anisotropic = fa > 0.6
    angle = np.degrees(np.arccos(np.clip(np.abs(np.sum(fit.v1 * v1, axis=1)), 0, 1)))
    assert np.median(angle[anisotropic]) < 3.0
    assert np.median(rel_err(fit.s0, s0)) <= 0.01


def test_dti_noise_free_is_exact_and_matches_weighted_lstsq() -> None:
    gen = rng(34)
    n = 50
    d, evals, v1 = tensors(gen, n)
    s0 = gen.uniform(500, 1500, n)
    fit = fit_dti(dwi(d, s0, BVALS, BVECS), BVALS, BVECS)
    # float32 working precision: ~1e-8 mm²/s, 1e-5 of a typical diffusivity.
    np.testing.assert_allclose(fit.eigenvalues, evals, rtol=1e-4, atol=2e-8)
    np.testing.assert_allclose(fit.tensor[:, :3], np.einsum("nii->ni", d), atol=2e-8)
    np.testing.assert_allclose(fit.tensor[:, 3:], d[:, [0, 0, 1], [1, 2, 2]], atol=2e-8)
    np.testing.assert_allclose(np.abs(np.sum(fit.v1 * v1, axis=1)), 1.0, atol=1e-6)

    # Noisy data: the vectorised WLLS equals a per-voxel weighted lstsq with the same
    # weights (squared OLS prediction).
    noisy = rician(gen, dwi(d, s0, BVALS, BVECS), s0 / 100)
    fit = fit_dti(noisy, BVALS, BVECS)
    g = BVECS
    design = np.stack(
        [
            np.ones_like(BVALS),
            -BVALS * g[:, 0] ** 2,
            -BVALS * g[:, 1] ** 2,
            -BVALS * g[:, 2] ** 2,
            -2 * BVALS * g[:, 0] * g[:, 1],
            -2 * BVALS * g[:, 0] * g[:, 2],
            -2 * BVALS * g[:, 1] * g[:, 2],
        ],
        axis=1,
    )
    for row, tensor in zip(noisy[:10], fit.tensor[:10], strict=True):
        logy = np.log(row)
        ols = np.linalg.lstsq(design, logy, rcond=None)[0]
        w = np.exp(design @ ols)
        ref = np.linalg.lstsq(design * w[:, None], logy * w, rcond=None)[0]
        np.testing.assert_allclose(tensor, ref[1:], rtol=1e-3, atol=2e-8)


def test_bvecs_in_fsl_layout_are_accepted() -> None:
    gen = rng(35)
    d, _, _ = tensors(gen, 5)
    signal = dwi(d, np.full(5, 1000.0), BVALS, BVECS)
    np.testing.assert_allclose(
        fit_dti(signal, BVALS, BVECS.T).fa, fit_dti(signal, BVALS, BVECS).fa, rtol=1e-6
    )


# --- documented errors -------------------------------------------------------------------


def test_adc_errors() -> None:
    signal = np.ones((2, 4))
    b = [0.0, 500.0, 1000.0, 1500.0]
    with pytest.raises(FittingError, match="bvals has 3 values but signal has 4"):
        fit_adc(signal, b[:3])
    with pytest.raises(FittingError, match=">= 0 s/mm"):
        fit_adc(signal, [-1.0, 500.0, 1000.0, 1500.0])
    with pytest.raises(FittingError, match="looks like ms/µm²"):
        fit_adc(signal, [0.0, 0.5, 1.0, 1.5])
    with pytest.raises(FittingError, match="looks like s/m²"):
        fit_adc(signal, [0.0, 5e8, 1e9, 1.5e9])
    with pytest.raises(FittingError, match="at least 2 distinct selected b-values"):
        fit_adc(signal, [1000.0] * 4)
    with pytest.raises(FittingError, match="at least 2 distinct selected b-values"):
        fit_adc(signal, b, b_range=(900, 1100))
    with pytest.raises(FittingError, match="select is a boolean mask of shape"):
        fit_adc(signal, b, select=np.ones(3, bool))
    with pytest.raises(FittingError, match="out of range"):
        fit_adc(signal, b, select=[0, 7])
    with pytest.raises(FittingError, match="b_range must be a"):
        fit_adc(signal, b, b_range=5)  # type: ignore[arg-type]
    with pytest.raises(FittingError, match="method must be"):
        fit_adc(signal, b, method="ivim")  # type: ignore[arg-type]
    with pytest.raises(FittingError, match="bounds must satisfy"):
        fit_adc(signal, b, bounds=(0.0, 1e-3))


def test_dti_errors() -> None:
    signal = np.ones((2, BVALS.size))
    with pytest.raises(FittingError, match=r"bvecs must have shape \(27, 3\)"):
        fit_dti(signal, BVALS, BVECS[:-1])
    with pytest.raises(FittingError, match="unit vectors are expected"):
        fit_dti(signal, BVALS, BVECS * 2.0)
    with pytest.raises(FittingError, match="non-finite"):
        fit_dti(signal, BVALS, np.where(BVECS == 0, np.nan, BVECS))
    five = np.vstack([np.zeros((2, 3)), sphere_directions(5)])
    with pytest.raises(FittingError, match="rank 6 < 7"):
        fit_dti(np.ones((2, 7)), np.array([0.0, 0.0] + [1000.0] * 5), five)
    with pytest.raises(FittingError, match="at least 7 are needed"):
        fit_dti(np.ones((2, 6)), np.ones(6), np.ones((6, 3)))
    with pytest.raises(FittingError, match="bvals has 26 values"):
        fit_dti(signal, BVALS[:-1], BVECS[:-1])

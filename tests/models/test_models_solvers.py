"""The vectorised numerical building blocks against NumPy / SciPy references."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy.interpolate import CubicSpline
from scipy.optimize import least_squares

import xnatpic.models.cest
import xnatpic.models.diffusion
import xnatpic.models.relaxometry
from xnatpic.models._expfit import fit_exponential, grid_search
from xnatpic.models._linalg import eigh_sym3, solve_spd, solve_spd_packed
from xnatpic.models._lm import levenberg_marquardt
from xnatpic.models._spline import spline_eval


@pytest.mark.parametrize("p", [1, 2, 3, 4, 7])
def test_solve_spd_matches_numpy(p: int) -> None:
    gen = np.random.default_rng(p)
    m = gen.normal(size=(500, p, p))
    a = m @ m.transpose(0, 2, 1) + 0.1 * np.eye(p)
    b = gen.normal(size=(500, p))
    ref = np.linalg.solve(a, b[..., None])[..., 0]
    x, ok = solve_spd(a, b)
    assert ok.all()
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10)
    iu, ju = np.tril_indices(p)
    x, ok = solve_spd_packed(a[:, iu, ju], b)
    assert ok.all()
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("p", [2, 3, 5])
def test_solve_spd_flags_indefinite(p: int) -> None:
    a = np.stack([np.eye(p), -np.eye(p), np.zeros((p, p))])
    x, ok = solve_spd(a, np.ones((3, p)))
    assert ok.tolist() == [True, False, False]
    assert np.all(x[~ok] == 0)


def test_eigh_sym3_matches_numpy() -> None:
    gen = np.random.default_rng(1)
    m = gen.normal(size=(2000, 3, 3))
    a = m + m.transpose(0, 2, 1)
    # Degenerate cases: isotropic, cylindrical (prolate and oblate), zero.
    a[0] = np.eye(3)
    a[1] = np.diag([3.0, 1.0, 1.0])
    a[2] = np.diag([1.0, 3.0, 3.0])
    a[3] = 0.0
    evals, v1 = eigh_sym3(a[:, 0, 0], a[:, 1, 1], a[:, 2, 2], a[:, 0, 1], a[:, 0, 2], a[:, 1, 2])
    w, v = np.linalg.eigh(a)
    np.testing.assert_allclose(evals, w[:, ::-1], atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-12)
    distinct = (w[:, 2] - w[:, 1]) > 1e-3
    alignment = np.abs(np.sum(v1 * v[:, :, 2], axis=1))
    np.testing.assert_allclose(alignment[distinct], 1.0, atol=1e-6)
    assert alignment[1] == pytest.approx(1.0)


def _gauss_model(x: np.ndarray):
    def model(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        amp, mu, sig = (p[:, i][:, None] for i in range(3))
        e = np.exp(-0.5 * ((x - mu) / sig) ** 2)
        jac = np.stack([e, amp * e * (x - mu) / sig**2, amp * e * (x - mu) ** 2 / sig**3], 1)
        return amp * e, jac

    return model


def test_levenberg_marquardt_matches_scipy() -> None:
    gen = np.random.default_rng(2)
    x = np.linspace(-5, 5, 40)
    n = 200
    truth = np.stack([gen.uniform(1, 3, n), gen.uniform(-1, 1, n), gen.uniform(0.5, 2, n)], axis=1)
    y = _gauss_model(x)(truth)[0] + 0.05 * gen.normal(size=(n, x.size))
    p0 = truth * gen.uniform(0.8, 1.2, truth.shape)
    res = levenberg_marquardt(
        _gauss_model(x),
        y,
        p0,
        lower=np.full(3, -np.inf),
        upper=np.full(3, np.inf),
        x_scale=np.ones(3),
    )
    assert res.converged.all()
    for i in range(20):
        ref = least_squares(
            lambda p, i=i: _gauss_model(x)(p[None])[0][0] - y[i], p0[i], method="lm"
        ).x
        np.testing.assert_allclose(res.params[i], ref, rtol=1e-5, atol=1e-7)


def test_levenberg_marquardt_bounds_weights_and_iteration_limit() -> None:
    x = np.linspace(-5, 5, 40)
    truth = np.array([[2.0, 0.5, 1.0]])
    y = _gauss_model(x)(truth)[0]
    common = {
        "lower": np.array([0.0, -0.2, 0.1]),
        "upper": np.array([10.0, 0.2, 5.0]),
        "x_scale": np.ones(3),
    }
    res = levenberg_marquardt(_gauss_model(x), y, np.array([[1.0, 0.0, 2.0]]), **common)
    assert res.params[0, 1] == pytest.approx(0.2)  # pinned on the bound
    # Zero weights remove corrupted points entirely.
    corrupted = y.copy()
    corrupted[0, :10] += 5.0
    weights = np.ones_like(y)
    weights[0, :10] = 0.0
    res = levenberg_marquardt(
        _gauss_model(x),
        corrupted,
        np.array([[1.5, 0.4, 1.2]]),
        lower=np.full(3, -np.inf),
        upper=np.full(3, np.inf),
        x_scale=np.ones(3),
        weights=weights,
    )
    np.testing.assert_allclose(res.params, truth, rtol=1e-6)
    res = levenberg_marquardt(
        _gauss_model(x),
        y,
        np.array([[1.0, 0.0, 2.0]]),
        lower=np.full(3, -np.inf),
        upper=np.full(3, np.inf),
        x_scale=np.ones(3),
        max_iter=1,
    )
    assert not res.converged[0]
    assert res.n_iter[0] == 1


@pytest.mark.parametrize(
    ("recovery", "constant"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_exponential_engine_recovers_parameters(recovery: bool, constant: bool) -> None:
    gen = np.random.default_rng(3)
    t = np.array([10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0])
    k = gen.uniform(1 / 500, 1 / 20, 300)
    beta = gen.uniform(100, 1000, 300)
    alpha = gen.uniform(-50, 50, 300) if constant else np.zeros(300)
    h = 1 - np.exp(-np.outer(k, t)) if recovery else np.exp(-np.outer(k, t))
    y = alpha[:, None] + beta[:, None] * h
    grid = np.geomspace(1 / 8000, 1.0, 60)
    _, _, k_grid, _ = grid_search(y, t, grid, recovery=recovery, constant=constant)
    assert np.max(np.abs(np.log(k_grid / k))) < np.log(grid[1] / grid[0])
    fit = fit_exponential(y, t, recovery=recovery, constant=constant, k_bounds=(1e-4, 1.0))
    assert fit.converged.all()
    np.testing.assert_allclose(fit.k, k, rtol=1e-4)
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-4)
    np.testing.assert_allclose(fit.alpha, alpha, atol=1e-3 * beta.max())


@pytest.mark.parametrize("k", [4, 5, 13, 49])
def test_spline_matches_scipy_not_a_knot(k: int) -> None:
    gen = np.random.default_rng(k)
    x = np.sort(gen.uniform(-6, 6, k)) if k != 49 else np.linspace(-6, 6, k)
    rows = gen.normal(size=(40, k))
    q = np.linspace(x[0], x[-1], 57)
    ref = CubicSpline(x, rows, axis=1)(q)
    np.testing.assert_allclose(spline_eval(x, rows, q), ref, rtol=1e-9, atol=1e-9)
    per_row = q[None, :] + gen.uniform(-0.1, 0.1, (40, 1))
    got = spline_eval(x, rows, per_row)
    inside = (per_row >= x[0]) & (per_row <= x[-1])
    expected = np.array([CubicSpline(x, r)(p) for r, p in zip(rows, per_row, strict=True)])
    np.testing.assert_allclose(got[inside], expected[inside], rtol=1e-9, atol=1e-9)
    assert np.all(np.isnan(got[~inside]))


def test_spline_uses_the_finite_run_of_each_row() -> None:
    x = np.linspace(-3, 3, 13)
    rows = np.cos(x)[None, :].repeat(3, axis=0)
    rows[1, :2] = np.nan
    rows[2, 5] = np.nan  # a gap inside: unusable
    got = spline_eval(x, rows, np.array([-2.9, 0.3]))
    assert np.isfinite(got[0]).all()
    assert np.isnan(got[1, 0]) and got[1, 1] == pytest.approx(CubicSpline(x[2:], rows[1, 2:])(0.3))
    assert np.isnan(got[2]).all()


@pytest.mark.parametrize(
    "module", [xnatpic.models.relaxometry, xnatpic.models.diffusion, xnatpic.models.cest]
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0

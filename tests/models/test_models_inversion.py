"""Inversion recovery with real timing (xnatpic.models.inversion).

The signal equation is checked against a step-by-step simulation of the sequence (an
independent oracle: inversion, free recovery, readout that saturates the slice, repeated
until the steady state), then the fits against known truth, including a multi-slice
acquisition whose slices are excited in an interleaved order after one inversion.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from xnatpic.errors import FittingError
from xnatpic.models.inversion import _distinct_rows, fit_t1_ir_timed, ir_signal

#: pv6 scan 13 (FAIR-RARE): protocol TIs, MultiRepTime, 9 slices in the order
#: 0 2 4 6 8 1 3 5 7, readout = 11 echoes x 5.175 ms.
TI = np.array([14.8, 300.0, 1000.0])
TR = np.array([5583.3, 5868.5, 6568.5])
ORDER = [0, 2, 4, 6, 8, 1, 3, 5, 7]
SLICE_PERIOD = 63.17
READOUT = 11 * 5.175


def _simulate(t1: float, ti: float, tr: float, readout: float, alpha: float,
              shots: int = 6) -> float:
    """Mz/M0 at the excitation of the last shot, event by event from Mz = M0."""
    mz = 1.0
    value = np.nan
    for _ in range(shots):
        mz = -alpha * mz                                   # inversion
        mz = 1.0 + (mz - 1.0) * np.exp(-ti / t1)           # recovery to the excitation
        value = mz
        mz = 0.0                                           # the readout saturates
        mz = 1.0 + (mz - 1.0) * np.exp(-(tr - ti - readout) / t1)  # until next inversion
    return value


def _slice_times() -> np.ndarray:
    """(9 slices, 3 TIs) effective inversion times of the interleaved acquisition."""
    position = np.array([ORDER.index(s) for s in range(9)])
    return TI[None, :] + position[:, None] * SLICE_PERIOD


class TestSignal:
    @pytest.mark.parametrize("t1", [300.0, 1200.0, 2700.0])
    @pytest.mark.parametrize("alpha", [1.0, 0.9])
    def test_matches_a_simulation_of_the_sequence(self, t1: float, alpha: float) -> None:
        for ti, tr in zip(TI + 4 * SLICE_PERIOD, TR, strict=True):
            expected = _simulate(t1, ti, tr, READOUT, alpha)
            got = float(ir_signal(t1, ti, tr=tr, readout=READOUT, inversion_factor=alpha))
            assert got == pytest.approx(expected, abs=1e-12)

    def test_full_recovery_is_the_classic_model(self) -> None:
        t1, ti = 900.0, np.array([50.0, 400.0, 2000.0])
        np.testing.assert_allclose(ir_signal(t1, ti), 1 - 2 * np.exp(-ti / t1))


class TestFixedFactor:
    def test_interleaved_slices_recovered(self) -> None:
        rng = np.random.default_rng(3)
        t1 = rng.uniform(300.0, 6000.0, (20, 15, 9))
        ti = np.broadcast_to(_slice_times()[None, None], (20, 15, 9, 3))
        signal = 800.0 * np.abs(ir_signal(t1[..., None], ti, tr=TR, readout=READOUT))
        fit = fit_t1_ir_timed(signal, ti, tr=TR, readout=READOUT)
        assert not fit.failed.any()
        np.testing.assert_allclose(fit.t1, t1, rtol=1e-5)
        np.testing.assert_allclose(fit.a, 800.0, rtol=1e-5)
        assert fit.model == "timed"

    def test_rates_refined_to_what_a_perfusion_difference_needs(self) -> None:
        """CBF is a difference of the selective and non-selective rates, a few per mille
        apart: noise-free, the fitted T1 must be exact to well below that (float64)."""
        t1 = np.geomspace(150.0, 15000.0, 997)
        signal = 1000.0 * np.abs(ir_signal(t1[:, None], TI, tr=TR, readout=READOUT))
        fit = fit_t1_ir_timed(signal, TI, tr=TR, readout=READOUT)
        assert not fit.failed.any()
        np.testing.assert_allclose(fit.t1, t1, rtol=1e-6)
        selective = fit_t1_ir_timed(
            1000.0 * np.abs(ir_signal(t1[:, None] * 0.997, TI, tr=TR, readout=READOUT)),
            TI, tr=TR, readout=READOUT)
        np.testing.assert_allclose(1.0 / selective.t1 - 1.0 / fit.t1,
                                   1.0 / (0.997 * t1) - 1.0 / t1, rtol=1e-3)

    def test_no_false_minimum_from_100_ms_to_20_s(self) -> None:
        """Where a point sits at the signal null a magnitude fit has narrow false minima."""
        t1 = np.linspace(100.0, 20000.0, 4001)
        for position in range(9):
            ti = TI + position * SLICE_PERIOD
            signal = np.abs(ir_signal(t1[:, None], ti, tr=TR, readout=READOUT))
            fit = fit_t1_ir_timed(signal, ti, tr=TR, readout=READOUT)
            np.testing.assert_allclose(fit.t1, t1, rtol=1e-5, err_msg=f"position {position}")

    def test_ignoring_the_timing_biases_t1(self) -> None:
        """The physics the model is for: nominal TIs and TR >> T1 give a short T1."""
        ti = _slice_times()[7]  # the slice read last (position 8)
        signal = np.abs(ir_signal(2800.0, ti, tr=TR, readout=READOUT))
        timed = fit_t1_ir_timed(signal, ti, tr=TR, readout=READOUT)
        naive = fit_t1_ir_timed(signal, TI)
        assert float(timed.t1) == pytest.approx(2800.0, rel=1e-5)
        assert float(naive.t1) < 0.8 * 2800.0

    def test_noise_leaves_the_median_unbiased(self) -> None:
        rng = np.random.default_rng(5)
        ti = _slice_times()[2]
        clean = 1000.0 * np.abs(ir_signal(2000.0, ti, tr=TR, readout=READOUT))
        noisy = np.abs(clean + rng.normal(0, 5.0, (4000, 3)))
        fit = fit_t1_ir_timed(noisy, ti, tr=TR, readout=READOUT)
        assert np.nanmedian(fit.t1) == pytest.approx(2000.0, rel=0.02)

    @pytest.mark.parametrize("free", [False, True])
    def test_noisy_fits_are_the_least_squares_minimum(self, free: bool) -> None:
        """On noisy data the fitted rate is the minimum of the signed least squares: scipy's
        trust-region solver, started 5 % away in T1 on the same signed data (signs from
        the fitted model), lands on the same M0, factor and T1."""
        rng = np.random.default_rng(11)
        ti = np.array([14.8, 300.0, 1000.0, 2500.0]) + 2 * SLICE_PERIOD
        tr = ti + 5568.0
        t1 = rng.uniform(300.0, 4000.0, 60)
        clean = 1000.0 * ir_signal(t1[:, None], ti, tr=tr, readout=READOUT,
                                   inversion_factor=0.9)
        noisy = np.abs(clean + rng.normal(0.0, 20.0, clean.shape))
        fit = fit_t1_ir_timed(noisy, ti, tr=tr, readout=READOUT,
                              inversion_factor=None if free else 1.0)
        assert fit.failed.sum() <= 2  # a long T1 with the factor free can fit as non-physical
        recovery = tr - READOUT

        def model(p: np.ndarray) -> np.ndarray:
            m0, factor, rate = (p[0], p[1], p[2]) if free else (p[0], 1.0, p[1])
            return m0 * (1.0 - (1.0 + factor) * np.exp(-rate * ti)
                         + factor * np.exp(-rate * recovery))

        for v in np.flatnonzero(~fit.failed):
            factor = float(fit.inversion_efficiency[v]) - 1.0
            ours = (np.array([fit.a[v], factor, 1.0 / fit.t1[v]]) if free
                    else np.array([fit.a[v], 1.0 / fit.t1[v]]))
            signed = noisy[v] * np.sign(model(ours))
            start = ours.copy()
            start[-1] /= 1.05
            oracle = least_squares(lambda p, s=signed: model(p) - s, start, xtol=1e-15,
                                   ftol=1e-15, gtol=1e-15, x_scale="jac").x
            np.testing.assert_allclose(ours, oracle, rtol=2e-6, err_msg=f"voxel {v}")

    def test_mask_and_float32(self) -> None:
        signal = np.abs(ir_signal(1000.0, TI, tr=TR)).astype(np.float32) * np.ones((4, 1),
                                                                              np.float32)
        mask = np.array([True, False, True, True])
        fit = fit_t1_ir_timed(signal, TI, tr=TR, mask=mask)
        assert fit.t1.dtype == np.float32
        assert np.isnan(fit.t1[1]) and not fit.failed[1]
        np.testing.assert_allclose(fit.t1[mask], 1000.0, rtol=1e-4)


class TestFreeFactor:
    def test_recovers_t1_and_the_inversion_factor(self) -> None:
        ti = np.array([20.0, 200.0, 600.0, 1500.0, 3000.0])
        tr = ti + 4000.0
        t1 = np.array([[500.0], [1500.0], [2500.0]])
        signal = 300.0 * np.abs(ir_signal(t1, ti, tr=tr, readout=30.0, inversion_factor=0.88))
        fit = fit_t1_ir_timed(signal, ti, tr=tr, readout=30.0, inversion_factor=None)
        np.testing.assert_allclose(fit.t1, t1[:, 0], rtol=1e-5)
        np.testing.assert_allclose(fit.inversion_efficiency, 1.88, rtol=1e-5)
        assert fit.model == "timed-free"

    def test_all_points_negative_with_repeated_times(self) -> None:
        """Selective/non-selective pairs: every TI twice, all before the null."""
        ti = np.repeat([10.0, 200.0, 500.0, 900.0], 2)
        tr = ti + 15000.0
        signal = np.abs(ir_signal(np.array([[3000.0], [6000.0]]), ti, tr=tr,
                                  inversion_factor=0.95)) * 500.0
        fit = fit_t1_ir_timed(signal, ti, tr=tr, inversion_factor=None)
        np.testing.assert_allclose(fit.t1, [3000.0, 6000.0], rtol=1e-4)
        np.testing.assert_allclose(fit.a, 500.0, rtol=1e-4)


class TestErrors:
    def test_too_few_inversion_times_for_a_free_factor(self) -> None:
        with pytest.raises(FittingError, match="needs at least 4"):
            fit_t1_ir_timed(np.ones((2, 3)), TI, tr=TR, inversion_factor=None)

    def test_factor_out_of_range(self) -> None:
        with pytest.raises(FittingError, match=r"inversion_factor must be in \(0, 1\]"):
            fit_t1_ir_timed(np.ones((2, 3)), TI, inversion_factor=1.5)

    def test_tr_shorter_than_ti(self) -> None:
        with pytest.raises(FittingError, match="tr - readout must be longer than ti"):
            fit_t1_ir_timed(np.ones((2, 3)), TI, tr=[900.0, 900.0, 900.0])

    def test_seconds(self) -> None:
        with pytest.raises(FittingError, match="looks like seconds"):
            fit_t1_ir_timed(np.ones((2, 3)), TI / 1000.0)

    def test_times_that_do_not_broadcast(self) -> None:
        with pytest.raises(FittingError, match="ti has shape"):
            fit_t1_ir_timed(np.ones((2, 3)), np.ones((3, 3)))


class TestDistinctRows:
    """The grouping of voxels by their times (``_distinct_rows``) against ``np.unique``."""

    @staticmethod
    def _as_sets(groups: np.ndarray, inverse: np.ndarray, rows: np.ndarray) -> set:
        np.testing.assert_array_equal(groups[inverse], rows)
        return {tuple(g) for g in groups}

    def test_same_groups_as_numpy(self) -> None:
        rng = np.random.default_rng(3)
        distinct = rng.uniform(0.0, 6000.0, (9, 6))
        rows = distinct[rng.integers(0, 9, 5000)]
        rows[:, 3:] = np.inf  # full recovery
        groups, inverse = _distinct_rows(rows)
        expected, _ = np.unique(rows, axis=0, return_inverse=True)
        assert self._as_sets(groups, inverse, rows) == {tuple(g) for g in expected}

    def test_a_collision_of_the_weighted_sums_falls_back(self) -> None:
        """(sqrt 3, 0) and (0, sqrt 2) have the same weighted sum sqrt 6 (weights sqrt 2,
        sqrt 3); shifted by a multiple of (sqrt 3, -sqrt 2), the sums stay equal."""
        rows = np.array([[np.sqrt(3.0), 0.0], [0.0, np.sqrt(2.0)], [np.sqrt(3.0), 0.0]])
        weights = np.sqrt([2.0, 3.0])
        assert abs(rows[0] @ weights - rows[1] @ weights) < 1e-12
        groups, inverse = _distinct_rows(rows)
        assert len(self._as_sets(groups, inverse, rows)) == 2

"""FAIR perfusion (xnatpic.models.perfusion) against known flow.

The oracle is the Bloch equation with a flow term (Kety single compartment), integrated
numerically: dM/dt = (M0 - M)/T1 + f (Ma(t) - M/λ), with relaxed inflowing blood for the
selective inversion and inverted blood for the non-selective one. With blood T1 equal to
tissue T1 the non-selective recovery is the tissue's and the selective one is
mono-exponential with rate 1/T1 + f/λ, which the flow formula must invert.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from xnatpic.errors import FittingError
from xnatpic.models.inversion import fit_t1_ir_timed, ir_signal
from xnatpic.models.perfusion import fair_flow

LAMBDA = 0.9  # mL/g
PER_MS_TO_ML_100G_MIN = 6e6


def _bloch(t1: float, flow: float, ti: np.ndarray, *, selective: bool) -> np.ndarray:
    """Mz/M0 after a perfect inversion (TR >> T1), flow in mL/g/ms, blood T1 = T1."""
    def rhs(t: float, m: np.ndarray) -> np.ndarray:
        blood = 1.0 if selective else 1.0 - 2.0 * np.exp(-t / t1)  # M0b = M0 / λ
        return (1.0 - m) / t1 + flow * (blood / LAMBDA - m / LAMBDA)

    solution = solve_ivp(rhs, (0.0, float(ti.max())), [-1.0], t_eval=ti, rtol=1e-10,
                         atol=1e-12)
    return solution.y[0]


class TestAgainstTheBlochEquation:
    @pytest.mark.parametrize("flow_ml_100g_min", [0.0, 60.0, 150.0, 400.0])
    def test_recovers_the_flow(self, flow_ml_100g_min: float) -> None:
        t1 = 1900.0
        flow = flow_ml_100g_min / PER_MS_TO_ML_100G_MIN
        ti = np.array([30.0, 300.0, 800.0, 1500.0, 2500.0, 4000.0])
        fits = {}
        for selective in (True, False):
            signal = 1000.0 * np.abs(_bloch(t1, flow, ti, selective=selective))
            fit = fit_t1_ir_timed(signal, ti)  # TR >> T1, perfect inversion
            assert not fit.failed
            fits[selective] = float(fit.t1)
        assert fits[False] == pytest.approx(t1, rel=1e-4)
        got = fair_flow(fits[True], fits[False], blood_t1=t1, partition=LAMBDA)
        assert float(got) == pytest.approx(flow_ml_100g_min, abs=0.05)


class TestFormula:
    def test_blood_t1_scales_the_flow(self) -> None:
        base = fair_flow(1700.0, 1900.0, blood_t1=1900.0)
        assert float(fair_flow(1700.0, 1900.0, blood_t1=2300.0)) == pytest.approx(
            float(base) * 1900.0 / 2300.0)

    def test_no_flow_without_noise_is_zero_and_noise_is_unbiased(self) -> None:
        rng = np.random.default_rng(7)
        ti = np.array([15.0, 300.0, 1000.0])
        tr = ti + 5500.0
        clean = 800.0 * np.abs(ir_signal(2500.0, ti, tr=tr, readout=57.0))
        noisy = lambda: np.abs(clean + rng.normal(0.0, 4.0, (3000, 3)))  # noqa: E731
        sel = fit_t1_ir_timed(noisy(), ti, tr=tr, readout=57.0).t1
        ns = fit_t1_ir_timed(noisy(), ti, tr=tr, readout=57.0).t1
        flow = fair_flow(sel, ns, blood_t1=2300.0)
        assert float(fair_flow(2500.0, 2500.0, blood_t1=2300.0)) == 0.0
        assert (flow < 0).mean() == pytest.approx(0.5, abs=0.05)  # negative values kept
        assert abs(np.median(flow)) < 0.05 * np.percentile(np.abs(flow), 90)

    def test_invalid_t1_gives_nan(self) -> None:
        flow = fair_flow([np.nan, 0.0, 1500.0], [1800.0, 1800.0, -1.0], blood_t1=2300.0)
        assert np.isnan(flow).all()


class TestErrors:
    def test_shapes(self) -> None:
        with pytest.raises(FittingError, match="same voxels"):
            fair_flow(np.ones(3), np.ones(4), blood_t1=2300.0)

    @pytest.mark.parametrize("name", ["blood_t1", "partition"])
    def test_constants(self, name: str) -> None:
        kwargs = {"blood_t1": 2300.0, "partition": 0.9, name: -1.0}
        with pytest.raises(FittingError, match=f"{name} must be a positive number"):
            fair_flow(1.0, 1.0, **kwargs)

    def test_blood_t1_in_seconds(self) -> None:
        with pytest.raises(FittingError, match="looks like seconds"):
            fair_flow(1700.0, 1900.0, blood_t1=2.3)

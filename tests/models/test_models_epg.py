"""The EPG (stimulated-echo) T2 model against an independent complex EPG and known truth.

The oracle is a textbook complex-valued EPG written here from Weigel 2015 (general RF
operator with phases, explicit F+/F-/Z states, CPMG: excitation at phase 90°, refocusing
at phase 0), not the real-valued propagation of xnatpic.models.epg.
"""

from __future__ import annotations

import numpy as np
import pytest
from models_synth import rician, rng

from xnatpic.errors import FittingError
from xnatpic.models import fit_t2
from xnatpic.models.epg import cpmg_echo_train, fit_t2_epg


def _rf(alpha: float, phi: float) -> np.ndarray:
    """Weigel 2015 eq. 15: the rotation of (F+, F-, Z)."""
    c2, s2 = np.cos(alpha / 2) ** 2, np.sin(alpha / 2) ** 2
    sa, ca = np.sin(alpha), np.cos(alpha)
    e = np.exp(1j * phi)
    return np.array([[c2, e * e * s2, -1j * e * sa],
                     [np.conj(e) ** 2 * s2, c2, 1j * np.conj(e) * sa],
                     [-0.5j * np.conj(e) * sa, 0.5j * e * sa, ca]])


def complex_epg(t2: float, alpha_deg: float, n_echoes: int, esp: float, t1: float) -> np.ndarray:
    k = 4 * n_echoes + 4
    states = np.zeros((3, k), dtype=complex)
    states[2, 0] = 1.0
    states = _rf(np.pi / 2, np.pi / 2) @ states
    refocus = _rf(np.deg2rad(alpha_deg), 0.0)
    e2, e1 = np.exp(-esp / 2 / t2), np.exp(-esp / 2 / t1)

    def relax_dephase(s: np.ndarray) -> np.ndarray:
        s = s * np.array([[e2], [e2], [e1]])  # no regrowth (the model's assumption)
        fp = np.concatenate([[0], s[0, :-1]])
        fm = np.concatenate([s[1, 1:], [0]])
        fp[0] = np.conj(fm[0])
        return np.vstack([fp, fm, s[2]])

    echoes = []
    for _ in range(n_echoes):
        states = relax_dephase(states)
        states = refocus @ states
        states = relax_dephase(states)
        echoes.append(abs(states[0, 0]))
    return np.array(echoes)


@pytest.mark.parametrize("alpha", [90.0, 120.0, 150.0, 165.0, 180.0])
@pytest.mark.parametrize("t2", [15.0, 80.0, 600.0])
def test_epg_matches_complex_oracle(alpha: float, t2: float) -> None:
    ours = cpmg_echo_train(np.array(t2), np.array(alpha), 12, 8.0, t1=900.0)
    assert np.allclose(ours, complex_epg(t2, alpha, 12, 8.0, 900.0), rtol=1e-10, atol=1e-12)


def test_perfect_refocusing_is_mono_exponential() -> None:
    te = 9.0 * np.arange(1, 17)
    train = cpmg_echo_train(np.array([33.0, 400.0]), np.array(180.0), 16, 9.0)
    assert np.allclose(train, np.exp(-te / np.array([[33.0], [400.0]])), rtol=1e-12)


def test_noise_free_truth_is_recovered() -> None:
    gen = rng(41)
    n = 2000
    t2 = gen.uniform(20.0, 300.0, n)
    alpha = gen.uniform(120.0, 178.0, n)
    te = 7.7 * np.arange(1, 8)
    signal = 1000.0 * cpmg_echo_train(t2, alpha, 7, 7.7)
    fit = fit_t2_epg(signal, te)
    assert not fit.failed.any()
    err = np.abs(fit.t2 / t2 - 1)
    assert np.median(err) < 1e-6 and np.percentile(err, 99) < 1e-3
    assert np.percentile(np.abs(fit.angle - alpha), 99) < 0.1
    assert np.median(np.abs(fit.s0 / 1000.0 - 1)) < 1e-6


def test_noisy_truth_is_unbiased_where_mono_exponential_is_not() -> None:
    """Angle 160° (as on pv6 scan 9), 16 echoes, Rician SNR 200: the EPG fit is unbiased;
    the mono-exponential fit of the same data overestimates T2."""
    gen = rng(42)
    n = 3000
    t2 = gen.uniform(40.0, 120.0, n)
    te = 10.0 * np.arange(1, 17)
    clean = 1000.0 * cpmg_echo_train(t2, np.full(n, 160.0), 16, 10.0)
    noisy = rician(gen, clean, 5.0)
    epg = fit_t2_epg(noisy, te)
    mono = fit_t2(noisy, te)
    bias_epg = np.median(epg.t2 / t2 - 1)
    bias_mono = np.median(mono.t2 / t2 - 1)
    assert abs(bias_epg) < 0.005, bias_epg
    assert abs(np.median(epg.angle) - 160.0) < 1.0
    assert bias_mono > 0.01, bias_mono  # measured +2 %


def test_beyond_measurable_is_long_not_failed() -> None:
    te = 7.7 * np.arange(1, 8)
    signal = 1000.0 * cpmg_echo_train(np.array([40.0, 2000.0]), np.array(165.0), 7, 7.7)
    signal[1] += 0.3 * (-1.0) ** np.arange(7)
    fit = fit_t2_epg(signal, te)
    assert not fit.failed.any()
    assert fit.status.tolist() == [0, 64]


def test_needs_a_cpmg_train() -> None:
    with pytest.raises(FittingError, match="n x the echo spacing"):
        fit_t2_epg(np.ones((2, 4)), [10.0, 20.0, 35.0, 40.0])
    with pytest.raises(FittingError, match="n x the echo spacing"):
        fit_t2_epg(np.ones((2, 4)), [20.0, 30.0, 40.0, 50.0])

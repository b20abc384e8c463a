"""Issue 10 items 1 and 5: per-voxel statuses, statistics over every mask voxel, noise gate.

Expected values are worked out by hand or from the noise distributions (Rayleigh median
σ√(2 ln 2)), never read back from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from xnatpic.analysis.mask import MIN_SIGNAL_FRACTION, signal_mask
from xnatpic.analysis.noise import estimate_noise, voxel_snr
from xnatpic.analysis.stats import FRACTION_KEYS, map_statistics
from xnatpic.models import fit_t2
from xnatpic.models.results import (
    FAILURE_BITS,
    VOXEL_STATUS_NAMES,
    FitStatus,
    VoxelStatus,
    status_group,
    voxel_status,
)


def test_voxel_status_precedence() -> None:
    bits = np.array([
        FitStatus.OK, FitStatus.MASKED, FitStatus.LONG, FitStatus.SHORT,
        FitStatus.INVALID_INPUT | FitStatus.LONG, FitStatus.NOT_CONVERGED | FitStatus.SHORT,
        FitStatus.AT_BOUND, FitStatus.NONFINITE_RESULT | FitStatus.NONPHYSICAL,
        FitStatus.NONPHYSICAL, FitStatus.OK,
    ], dtype=np.uint8)
    no_signal = np.zeros(bits.size, bool)
    no_signal[[1, 9]] = True  # outside the mask wins over no signal
    codes = voxel_status(bits, no_signal=no_signal).tolist()
    assert codes == [VoxelStatus.FITTED, VoxelStatus.OUTSIDE, VoxelStatus.LONG,
                     VoxelStatus.SHORT, VoxelStatus.FAILED_INPUT,
                     VoxelStatus.FAILED_NOT_CONVERGED, VoxelStatus.FAILED_AT_BOUND,
                     VoxelStatus.FAILED_NONFINITE, VoxelStatus.FAILED_NONPHYSICAL,
                     VoxelStatus.NO_SIGNAL]
    assert set(VOXEL_STATUS_NAMES) == set(VoxelStatus)
    assert [status_group(c) for c in (0, 1, 2, 3, 4, 5, 9)] == [
        "outside", "fitted", "long", "short", "no_signal", "failed", "failed"]
    assert not FAILURE_BITS & (FitStatus.LONG | FitStatus.SHORT | FitStatus.MASKED)


def test_long_voxels_keep_their_value_and_are_not_failed() -> None:
    te = 7.7 * np.arange(1, 8)
    tau = np.array([40.0, 2000.0])
    signal = 1000.0 * np.exp(-te / tau[:, None])
    signal[1] += 0.2 * (-1.0) ** np.arange(7)
    fit = fit_t2(signal, te)
    assert fit.failed.tolist() == [False, False]
    assert np.isfinite(fit.t2).all()
    assert voxel_status(fit.status).tolist() == [VoxelStatus.FITTED, VoxelStatus.LONG]


def test_statistics_cover_every_mask_voxel() -> None:
    # 10 voxels: 4 fitted (10, 20, 30, 40), 3 long (600, 700, NaN: no value), 1 short (1),
    # 1 no signal, 1 failed; the median ranks the valueless long voxel above everything.
    values = np.array([10, 20, 30, 40, 600, 700, np.nan, 1, np.nan, np.nan], float)
    status = np.array([1, 1, 1, 1, 2, 2, 2, 3, 4, 8], np.uint8)
    v3 = values.reshape(10, 1, 1)
    s = map_statistics(v3, np.ones((10, 1, 1), bool), status.reshape(10, 1, 1))["whole"]
    assert s["n_voxels"] == 10 and s["n_failed"] == 1 and s["n_valued"] == 8
    # ranked values: 1, 10, 20, 30, 40, 600, 700, +inf -> median (30 + 40) / 2
    assert s["median"] == 35.0
    assert s["max"] == 700.0 and s["min"] == 1.0
    assert s["mean"] == pytest.approx(np.mean([10, 20, 30, 40, 600, 700, 1]))
    expected = {"fitted": 0.4, "long": 0.3, "short": 0.1, "no_signal": 0.1, "failed": 0.1}
    assert {k: s[f"fraction_{k}"] for k in FRACTION_KEYS} == pytest.approx(expected)
    assert s["status_counts"] == {"fitted": 4, "beyond range: long": 3,
                                  "beyond range: short": 1, "no signal": 1,
                                  "failed: non-finite result": 1}


def test_dropping_long_voxels_would_censor_the_median() -> None:
    """The bug of issue 10: a median over successes only is pulled towards the short tail."""
    values = np.r_[np.full(60, 100.0), np.full(40, 900.0)]
    status = np.r_[np.ones(60), np.full(40, 2)].astype(np.uint8)
    mask = np.ones((100, 1, 1), bool)
    honest = map_statistics(values.reshape(100, 1, 1), mask, status.reshape(100, 1, 1))
    assert honest["whole"]["q3"] == 900.0
    censored = map_statistics(np.where(status == 1, values, np.nan).reshape(100, 1, 1), mask)
    assert censored["whole"]["q3"] == 100.0 and censored["whole"]["n_failed"] == 40


def _object_and_noise(gen: np.random.Generator, amplitude: float,
                      sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    shape = (64, 64, 3, 4)
    truth = np.zeros(shape)
    obj = np.zeros(shape[:3], bool)
    obj[16:48, 16:48] = True
    truth[obj] = amplitude * np.exp(-np.arange(4) / 6.0)
    noisy = np.hypot(truth + gen.normal(0, sigma, shape), gen.normal(0, sigma, shape))
    return noisy, obj


def test_noise_sigma_from_the_background() -> None:
    data, obj = _object_and_noise(np.random.default_rng(5), 100.0, sigma=3.0)
    est = estimate_noise(data, obj)
    assert est.method == "background (Rayleigh)"
    assert est.sigma == pytest.approx(3.0, rel=0.03)
    snr = voxel_snr(data, obj, est.sigma)
    assert np.median(snr[20:44, 20:44]) == pytest.approx(100.0 / 3.0, rel=0.05)  # interior
    assert np.median(snr[:8, :8]) < 1.0  # pure noise scores about 0


def test_noise_without_background_uses_the_local_variance() -> None:
    gen = np.random.default_rng(6)
    data = np.hypot(200.0 + gen.normal(0, 4.0, (48, 48, 2, 3)), gen.normal(0, 4.0,
                                                                            (48, 48, 2, 3)))
    est = estimate_noise(data, np.ones((48, 48, 2), bool))
    assert est.method == "local variance mode"
    assert est.sigma == pytest.approx(4.0, rel=0.15)


@pytest.mark.parametrize(("amplitude", "enough"), [(60.0, True), (3.0, False)])
def test_signal_mask_gate(amplitude: float, enough: bool) -> None:
    data, _ = _object_and_noise(np.random.default_rng(7), amplitude)
    gate = signal_mask(data)
    assert gate.enough_signal is enough
    if enough:
        assert gate.signal_fraction > 0.9 and gate.reason() == ""
    else:
        assert gate.signal_fraction < MIN_SIGNAL_FRACTION
        assert "SNR floor" in gate.reason()
    assert not (gate.fit_mask & gate.no_signal).any()
    assert ((gate.fit_mask | gate.no_signal) == gate.mask).all()


def test_gate_can_be_disabled() -> None:
    data, _ = _object_and_noise(np.random.default_rng(8), 3.0)
    gate = signal_mask(data, snr_floor=0.0)
    assert gate.enough_signal and not gate.no_signal.any()

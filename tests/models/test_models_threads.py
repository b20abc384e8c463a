"""Block threads of the fits (xnatpic.models._blocks): identical results on any number of
threads, the caller's context in every block, the threads setting and the CPU limit."""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np
import pytest
from models_synth import rician, rng, sphere_directions

from xnatpic.models import b0_map, fit_dti, fit_t1_ir, fit_t2
from xnatpic.models._blocks import (
    ROW_BLOCK,
    THREADS_ENV,
    _cgroup_cpu_quota,
    available_cpus,
    fit_threads,
    idle_cpus,
    map_rows,
    threads_setting,
)

#: Enough voxels for several blocks, so that a pool of threads shares them.
VOXELS = 4 * ROW_BLOCK + 123


def _fields(result: object) -> dict[str, np.ndarray]:
    return {f.name: np.asarray(getattr(result, f.name)) for f in dataclasses.fields(result)
            if isinstance(getattr(result, f.name), np.ndarray)}


def _assert_identical(one: object, many: object) -> None:
    a, b = _fields(one), _fields(many)
    assert a and a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name


def _t2_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gen = rng(7)
    te = 10.0 * np.arange(1, 13)
    s0 = gen.uniform(500, 1500, VOXELS)
    t2 = gen.uniform(20, 200, VOXELS)
    data = rician(gen, s0[:, None] * np.exp(-te / t2[:, None]), s0 / 50)
    data[::997] = 0.0  # rows that flag instead of fitting
    return data.astype(np.float32), te, t2


@pytest.mark.parametrize("threads", [2, 3])
def test_t2_fit_on_threads_is_identical_to_one_thread(threads):
    data, te, truth = _t2_data()
    with fit_threads(1):
        one = fit_t2(data, te)
    with fit_threads(threads):
        many = fit_t2(data, te)
    _assert_identical(one, many)
    fitted = np.isfinite(one.t2)
    assert fitted.mean() > 0.99
    assert np.median(np.abs(one.t2[fitted] / truth[fitted] - 1)) < 0.05


def test_t1_ir_dti_and_b0_on_threads_are_identical():
    gen = rng(3)
    ti = np.array([50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0])
    t1 = gen.uniform(500, 2500, VOXELS)
    ir = rician(gen, 1000 * np.abs(1 - 1.9 * np.exp(-ti / t1[:, None])), 10.0)
    bvecs = np.vstack([np.zeros((2, 3)), sphere_directions(12)])
    bvals = np.array([0.0, 0.0] + [800.0] * 12)
    adc = gen.uniform(0.5e-3, 2e-3, VOXELS)
    dwi = rician(gen, 1000 * np.exp(-bvals * adc[:, None]), 10.0)
    offsets = np.arange(-1.0, 1.0 + 1e-9, 0.1)
    shift = gen.uniform(-0.4, 0.4, VOXELS)
    wassr = rician(gen, 1000 * (1 - 0.9 / (1 + ((offsets - shift[:, None]) / 0.3) ** 2)), 10.0)
    for run in (lambda: fit_t1_ir(ir, ti), lambda: fit_dti(dwi, bvals, bvecs),
                lambda: b0_map(wassr, offsets)):
        with fit_threads(1):
            one = run()
        with fit_threads(2):
            many = run()
        _assert_identical(one, many)


def test_blocks_run_on_the_threads_asked_for():
    rows = np.arange(7 * 100, dtype=np.float64)[:, None]  # the first block + 3 pairs
    seen: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=10)
    main = threading.get_ident()

    def block(y: np.ndarray) -> tuple[np.ndarray]:
        with lock:
            seen.append(threading.get_ident())
        if threading.get_ident() != main:
            barrier.wait()  # two blocks at once, else BrokenBarrierError
        return (y * 2,)

    with fit_threads(2):
        (out,) = map_rows(block, rows, block=100)
    np.testing.assert_array_equal(out, rows * 2)
    assert len(set(seen) - {main}) == 2

    seen.clear()

    def serial(y: np.ndarray) -> tuple[np.ndarray]:
        seen.append(threading.get_ident())
        return (y + 1,)

    with fit_threads(1):
        (out,) = map_rows(serial, rows, block=100)
    assert set(seen) == {main} and len(seen) == 7
    np.testing.assert_array_equal(out, rows + 1)


def test_every_block_sees_the_callers_errstate_and_errors_propagate():
    rows = np.zeros((5 * 64, 1))

    def divide(y: np.ndarray) -> tuple[np.ndarray]:
        return (1.0 / y,)

    with fit_threads(2), np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        map_rows(divide, rows, block=64)
    with fit_threads(2), np.errstate(divide="ignore"):
        (out,) = map_rows(divide, rows, block=64)
    assert np.isinf(out).all()

    def fail_late(y: np.ndarray) -> tuple[np.ndarray]:
        if y[0, 0] >= 256:
            raise RuntimeError("block failed")
        return (y,)

    with fit_threads(2), pytest.raises(RuntimeError, match="block failed"):
        map_rows(fail_late, np.arange(320.0)[:, None], block=64)


def test_threads_setting_from_the_environment(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert threads_setting() == 3
    with fit_threads(1) as threads:
        assert threads == 1 and threads_setting() == 1
    assert threads_setting() == 3
    monkeypatch.setenv(THREADS_ENV, "two")
    with pytest.raises(ValueError, match=f"environment variable {THREADS_ENV} must be a "
                                         "positive whole number of threads, got 'two'"):
        threads_setting()
    monkeypatch.delenv(THREADS_ENV)
    monkeypatch.setattr("xnatpic.models._blocks.idle_cpus", lambda: 64)
    assert threads_setting() == available_cpus()
    monkeypatch.setattr("xnatpic.models._blocks.idle_cpus", lambda: 1)
    assert threads_setting() == 1
    with pytest.raises(ValueError, match="threads must be a positive"), fit_threads(0):
        pass


def test_available_cpus_is_the_affinity_when_unlimited(monkeypatch):
    monkeypatch.setattr("xnatpic.models._blocks._cgroup_cpu_quota", lambda: None)
    assert available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setattr("xnatpic.models._blocks._cgroup_cpu_quota", lambda: 0.5)
    assert available_cpus() == 1


def test_cgroup_quota_v2_and_v1(tmp_path):
    proc = tmp_path / "cgroup"
    root = tmp_path / "fs"
    (root / "job").mkdir(parents=True)
    proc.write_text("0::/job\n")
    (root / "job" / "cpu.max").write_text("150000 100000\n")
    (root / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    (root / "job" / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(root, proc) is None

    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    proc.write_text("4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n")
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_cpu_quota(v1, proc) == pytest.approx(2.0)
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _cgroup_cpu_quota(v1, proc) is None


def test_idle_cpus_from_the_load_average(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 0.0, 0.0))  # this process alone
    assert idle_cpus() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (2.1, 0.0, 0.0))  # one other busy core
    assert idle_cpus() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 0.0, 0.0))  # saturated
    assert idle_cpus() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 0.0, 0.0))
    assert idle_cpus() == 35

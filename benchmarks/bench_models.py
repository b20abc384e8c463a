"""Throughput of the quantitative models on a 128x128x16 volume versus per-voxel SciPy.

Every model fits synthetic float32 data (SNR 100) of 262,144 voxels; the figure is the best
of a few runs, in voxels per second. The baseline is the per-voxel SciPy route a script
would take (``scipy.optimize.curve_fit``, ``numpy.linalg.lstsq`` or ``CubicSpline`` in a
loop), timed on a subsample in the same run and extrapolated; the ratio is ours / baseline.

On a CPU shared with other work, multi-threaded OpenBLAS makes the small matrix products
here erratic (a busy core stalls the thread team); ``OPENBLAS_NUM_THREADS=1`` gives stable
figures that are as good or better.

The second table is the speed-up of the block threads (``xnatpic.models._blocks``): each
model on one thread and on every CPU available (``available_cpus``), in alternating pairs,
with min/median/max of both and of the per-pair ratio (one thread / all threads), the
ratio of their CPU times (the work threads add), after a check that both give identical
results. The first table runs with the default (``threads_setting``: the available CPUs
that are idle).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.optimize import curve_fit

from xnatpic.models import (
    b0_map,
    correct_b0,
    fit_adc,
    fit_dti,
    fit_t1_ir,
    fit_t1_vtr,
    fit_t2,
    fit_t2star,
    mtr_asym,
    normalize_zspectrum,
)
from xnatpic.models._blocks import available_cpus, fit_threads, threads_setting
from xnatpic.models.epg import cpmg_echo_train, fit_t2_epg

__all__ = ["main"]

SHAPE = (128, 128, 16)
N_VOXELS = int(np.prod(SHAPE))
SUBSAMPLE = 150
REPEATS = 5
#: Alternating pairs (one thread, all threads) per model in the thread table.
THREAD_PAIRS = 5

TE = 10.0 * np.arange(1, 17)
TE_STAR = 2.0 + 3.0 * np.arange(16)
TR = np.array([100.0, 200.0, 400.0, 800.0, 1500.0, 3000.0, 5000.0, 8000.0])
TI = np.array([50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0])
WASSR = np.arange(-1.0, 1.0 + 1e-9, 0.05)
Z_OFFSETS = np.arange(-6.0, 6.0 + 1e-9, 0.25)
CEST = np.concatenate([[-300.0], Z_OFFSETS, [300.0]])


def _directions(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - i / n)
    azimuth = np.pi * (1.0 + 5**0.5) * i
    return np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], 1
    )


BVECS = np.vstack([np.zeros((3, 3)), _directions(12), _directions(12)[:, [1, 2, 0]]])
BVALS = np.array([0.0] * 3 + [500.0] * 12 + [1000.0] * 12)


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[np.ndarray], object]
    baseline: Callable[[np.ndarray], object]  # one voxel (float64 row)
    data: np.ndarray  # (*SHAPE, M) float32
    target: float
    repeats: int = REPEATS


def _rician(gen: np.random.Generator, clean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    noise = gen.normal(size=(2, *clean.shape)) * sigma[..., None]
    return np.hypot(clean + noise[0], noise[1]).astype(np.float32)


def _lorentz(x: np.ndarray, centre: np.ndarray, amp: float, width: float) -> np.ndarray:
    return amp / (1.0 + ((x - centre[..., None]) / width) ** 2)


def _cases(gen: np.random.Generator) -> list[Case]:
    s0 = gen.uniform(500, 1500, SHAPE)
    sigma = s0 / 100
    t2 = gen.uniform(30, 150, SHAPE)
    t2s = gen.uniform(10, 40, SHAPE)
    t1 = gen.uniform(500, 2500, SHAPE)
    adc = gen.uniform(0.3e-3, 3e-3, SHAPE)
    b0 = gen.uniform(-0.5, 0.5, SHAPE)
    decay = _rician(gen, s0[..., None] * np.exp(-TE / t2[..., None]), sigma)
    epg_train = cpmg_echo_train(t2, np.full(SHAPE, 160.0), TE.size, float(TE[0]))
    epg = _rician(gen, s0[..., None] * epg_train, sigma)
    decay_star = _rician(gen, s0[..., None] * np.exp(-TE_STAR / t2s[..., None]), sigma)
    vtr = _rician(gen, s0[..., None] * (1 - np.exp(-TR / t1[..., None])), sigma)
    ir = _rician(gen, s0[..., None] * (1 - 1.9 * np.exp(-TI / t1[..., None])), sigma)
    dwi_iso = _rician(gen, s0[..., None] * np.exp(-BVALS * adc[..., None]), sigma)
    evals = np.array([1.7e-3, 0.4e-3, 0.3e-3])
    rot, _ = np.linalg.qr(gen.normal(size=(*SHAPE, 3, 3)))
    tensor = np.einsum("...ij,j,...kj->...ik", rot, evals, rot)
    dwi = _rician(
        gen,
        s0[..., None] * np.exp(-BVALS * np.einsum("mi,...ij,mj->...m", BVECS, tensor, BVECS)),
        sigma,
    )
    wassr = _rician(gen, s0[..., None] * (1 - _lorentz(WASSR, b0, 0.9, 0.3)), sigma)
    z = 1 - _lorentz(Z_OFFSETS, b0, 0.85, 0.9) - _lorentz(Z_OFFSETS, b0 + 3.5, 0.06, 0.6)
    cest = np.concatenate([np.ones((*SHAPE, 1)), z, np.ones((*SHAPE, 1))], axis=-1)
    cest = _rician(gen, s0[..., None] * cest, sigma)
    zs = normalize_zspectrum(cest, CEST)
    b0_est = b0_map(wassr, WASSR).b0
    z_np = np.asarray(zs.z, dtype=np.float32)

    def mono(t: np.ndarray, a: float, tau: float) -> np.ndarray:
        return a * np.exp(-t / tau)

    def rec(t: np.ndarray, a: float, tau: float) -> np.ndarray:
        return a * (1 - np.exp(-t / tau))

    def inv(t: np.ndarray, a: float, b: float, tau: float) -> np.ndarray:
        return np.abs(a + b * np.exp(-t / tau))

    def lor(x: np.ndarray, c: float, a: float, w: float, x0: float) -> np.ndarray:
        return c - a / (1 + ((x - x0) / w) ** 2)

    design = np.stack(
        [
            np.ones_like(BVALS),
            *(
                -BVALS * BVECS[:, i] * BVECS[:, j] * (1 if i == j else 2)
                for i, j in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
            ),
        ],
        axis=1,
    )

    def dti_voxel(y: np.ndarray) -> np.ndarray:
        logy = np.log(y)
        ols = np.linalg.lstsq(design, logy, rcond=None)[0]
        w = np.exp(design @ ols)
        x = np.linalg.lstsq(design * w[:, None], logy * w, rcond=None)[0]
        d = np.array([[x[1], x[4], x[5]], [x[4], x[2], x[6]], [x[5], x[6], x[3]]])
        return np.linalg.eigvalsh(d)

    def mtr_voxel(y: np.ndarray) -> float:
        spline = CubicSpline(Z_OFFSETS, y[:-1])
        return float(spline(-3.5 + y[-1]) - spline(3.5 + y[-1]))

    mtr_data = np.concatenate([z_np, b0_est[..., None].astype(np.float32)], axis=-1)
    # B0 from the Z-spectrum itself (no WASSR), as the cest step: minimum within +-1.5 ppm
    near = np.abs(Z_OFFSETS) <= 1.5
    fine = np.linspace(-1.5, 1.5, 3001)

    def spline_min_voxel(y: np.ndarray) -> float:
        return float(fine[np.argmin(CubicSpline(Z_OFFSETS, y)(fine))])

    def z_lorentz_voxel(y: np.ndarray) -> object:
        x, v = Z_OFFSETS[near], y[near]
        return curve_fit(lor, x, v, p0=(v.max(), v.max() - v.min(), 0.9, x[np.argmin(v)]))
    return [
        Case(
            "T2 NLLS",
            lambda d: fit_t2(d, TE),
            lambda y: curve_fit(mono, TE, y, p0=(y[0] * 1.2, 60.0)),
            decay,
            5e5,
        ),
        Case(
            "T2 NLLS + offset",
            lambda d: fit_t2(d, TE, offset=True),
            lambda y: curve_fit(
                lambda t, a, tau, c: a * np.exp(-t / tau) + c, TE, y, p0=(y[0] * 1.2, 60.0, 0.0)
            ),
            decay,
            5e5,
        ),
        Case(
            "T2 log-linear",
            lambda d: fit_t2(d, TE, method="loglinear"),
            lambda y: curve_fit(mono, TE, y, p0=(y[0] * 1.2, 60.0)),
            decay,
            1e6,
        ),
        Case(
            "T2 ARLO",
            lambda d: fit_t2(d, TE, method="arlo"),
            lambda y: curve_fit(mono, TE, y, p0=(y[0] * 1.2, 60.0)),
            decay,
            1e6,
        ),
        Case(
            "T2 EPG (angle fitted)",
            lambda d: fit_t2_epg(d, TE),
            lambda y: curve_fit(
                lambda t, a, tau, alpha: a * cpmg_echo_train(
                    np.array(tau), np.array(alpha), TE.size, float(TE[0]))[0],
                TE, y, p0=(y[0] * 1.2, 60.0, 170.0), bounds=([0, 1, 90], [np.inf, 5000, 180]),
            ),
            epg,
            0.0,
            repeats=1,
        ),
        Case(
            "T2* NLLS",
            lambda d: fit_t2star(d, TE_STAR),
            lambda y: curve_fit(mono, TE_STAR, y, p0=(y[0] * 1.2, 20.0)),
            decay_star,
            5e5,
        ),
        Case(
            "T1 VTR NLLS",
            lambda d: fit_t1_vtr(d, TR),
            lambda y: curve_fit(rec, TR, y, p0=(y[-1], 1000.0)),
            vtr,
            5e5,
        ),
        Case(
            "T1 IR RD-NLS-PR",
            lambda d: fit_t1_ir(d, TI),
            lambda y: curve_fit(inv, TI, y, p0=(y[-1], -2 * y[-1], 1000.0)),
            ir,
            3e4,
        ),
        Case(
            "ADC log-linear",
            lambda d: fit_adc(d, BVALS),
            lambda y: curve_fit(mono, BVALS, y, p0=(y[0], 1000.0)),
            dwi_iso,
            1e6,
        ),
        Case(
            "ADC NLLS",
            lambda d: fit_adc(d, BVALS, method="nlls"),
            lambda y: curve_fit(mono, BVALS, y, p0=(y[0], 1000.0)),
            dwi_iso,
            1e6,
        ),
        Case("DTI WLLS", lambda d: fit_dti(d, BVALS, BVECS), dti_voxel, dwi, 1e6),
        Case(
            "CEST normalise",
            lambda d: normalize_zspectrum(d, CEST),
            lambda y: y[1:-1] / y[[0, -1]].mean(),
            cest,
            1e6,
        ),
        Case(
            "WASSR B0 parabola",
            lambda d: b0_map(d, WASSR),
            lambda y: curve_fit(
                lor, WASSR, y, p0=(y.max(), y.max() - y.min(), 0.3, WASSR[np.argmin(y)])
            ),
            wassr,
            1e6,
        ),
        Case(
            "WASSR B0 Lorentzian",
            lambda d: b0_map(d, WASSR, method="lorentzian"),
            lambda y: curve_fit(
                lor, WASSR, y, p0=(y.max(), y.max() - y.min(), 0.3, WASSR[np.argmin(y)])
            ),
            wassr,
            0.0,
        ),
        Case(
            "CEST B0 spline (Z-spectrum)",
            lambda d: b0_map(d, Z_OFFSETS, method="spline", search_ppm=(-1.5, 1.5)),
            spline_min_voxel,
            z_np,
            0.0,
        ),
        Case(
            "CEST B0 Lorentzian (Z)",
            lambda d: b0_map(d, Z_OFFSETS, method="lorentzian", search_ppm=(-1.5, 1.5),
                             window_ppm=1.5),
            z_lorentz_voxel,
            z_np,
            0.0,
        ),
        Case(
            "MTRasym (B0-shifted)",
            lambda d: mtr_asym(d[..., :-1], Z_OFFSETS, 3.5, b0_ppm=d[..., -1]),
            mtr_voxel,
            mtr_data,
            1e6,
        ),
        Case(
            "B0 correction (49 offsets)",
            lambda d: correct_b0(d[..., :-1], Z_OFFSETS, d[..., -1]),
            lambda y: CubicSpline(Z_OFFSETS, y[:-1])(Z_OFFSETS + y[-1]),
            mtr_data,
            0.0,
        ),
    ]


def _best_time(func: Callable[[], object], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    gen = np.random.default_rng(0)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"volume {SHAPE} = {N_VOXELS} voxels, float32, SNR 100; CPUs: {os.cpu_count()}; "
        f"OPENBLAS_NUM_THREADS={threads}; block threads {threads_setting()}; best of "
        f"{REPEATS} runs; baseline on {SUBSAMPLE} voxels, extrapolated"
    )
    cases = _cases(gen)
    header = f"{'model':<28}{'voxels/s':>12}{'target':>10}{'ok':>4}{'baseline/s':>12}{'ratio':>9}"
    print(header)
    print("-" * len(header))
    picks = gen.choice(N_VOXELS, SUBSAMPLE, replace=False)
    for case in cases:
        data = case.data
        ours = N_VOXELS / _best_time(lambda d=data, c=case: c.run(d), case.repeats)
        rows = data.reshape(-1, data.shape[-1])[picks].astype(np.float64)

        def loop(rows: np.ndarray = rows, c: Case = case) -> None:
            for row in rows:
                c.baseline(row)

        base = SUBSAMPLE / _best_time(loop, 2)
        ok = "-" if case.target == 0 else ("yes" if ours >= case.target else "NO")
        target = "-" if case.target == 0 else f"{case.target:.0e}"
        print(
            f"{case.name:<28}{ours:>12,.0f}{target:>10}{ok:>4}{base:>12,.0f}{ours / base:>8,.0f}x",
            flush=True,
        )
    thread_speedup(cases)


def _arrays(result: object) -> list[np.ndarray]:
    """Every array of a model's result (a dataclass, a tuple or an array)."""
    if isinstance(result, np.ndarray):
        return [result]
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        values = [getattr(result, f.name) for f in dataclasses.fields(result)]
    elif isinstance(result, tuple):
        values = list(result)
    else:
        return []
    return [a for v in values for a in _arrays(v)]


def _identical(a: object, b: object) -> bool:
    left, right = _arrays(a), _arrays(b)
    return len(left) == len(right) > 0 and all(
        x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")
        for x, y in zip(left, right, strict=True)
    )


def _timed(case: Case, threads: int) -> tuple[float, float, object]:
    """Wall and CPU seconds (all threads) of one run on ``threads`` threads, and its result."""
    with fit_threads(threads):
        wall, cpu = time.perf_counter(), time.process_time()
        result = case.run(case.data)
        return time.perf_counter() - wall, time.process_time() - cpu, result


def _mmm(values: list[float], fmt: str = "{:.3f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def thread_speedup(cases: list[Case], pairs: int = THREAD_PAIRS) -> None:
    """Print one thread against every available CPU for each case (paired, alternating).

    Besides the wall times, the CPU time of both (all threads): its ratio is the work the
    threads add, which decides whether threads can pay at all; the wall-time speed-up is
    what they give on this machine at this load (printed with the load average).
    """
    cpus = available_cpus()
    print(f"\nblock threads: 1 vs {cpus} (available_cpus: affinity and cgroup CPU limit); "
          f"{pairs} alternating pairs; wall seconds min/median/max; speed-up = 1-thread / "
          f"{cpus}-thread wall time per pair; CPU = median CPU seconds {cpus} threads / 1 "
          f"thread; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    header = (f"{'model':<28}{'identical':>10}{'1 thread s':>22}{f'{cpus} threads s':>22}"
              f"{'speed-up min/med/max':>24}{'CPU':>7}")
    print(header)
    print("-" * len(header))
    for case in cases:
        n_pairs = max(1, pairs if case.repeats > 1 else 2)
        one = _timed(case, 1)[2]  # warm-up, and the results to compare
        many = _timed(case, cpus)[2]
        same = "yes" if _identical(one, many) else "NO"
        walls: dict[int, list[float]] = {1: [], cpus: []}
        cpu_s: dict[int, list[float]] = {1: [], cpus: []}
        for i in range(n_pairs):
            for threads in ((1, cpus) if i % 2 == 0 else (cpus, 1)):
                wall, cpu, _ = _timed(case, threads)
                walls[threads].append(wall)
                cpu_s[threads].append(cpu)
        ratios = [a / b for a, b in zip(walls[1], walls[cpus], strict=True)]
        work = statistics.median(cpu_s[cpus]) / statistics.median(cpu_s[1])
        print(f"{case.name:<28}{same:>10}{_mmm(walls[1]):>22}{_mmm(walls[cpus]):>22}"
              f"{_mmm(ratios, '{:.2f}'):>23}x{work:>6.2f}x", flush=True)

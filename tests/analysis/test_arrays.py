"""xnatpic.arrays: ``np.unique``'s and ``np.median``'s values without importing numpy.ma,
checked against numpy itself; and a session's maps computed without numpy.ma loaded."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT
from xnatpic.arrays import distinct, median

_RNG = np.random.default_rng(7)


_CASES = [
    np.array([]),
    np.array([5.0]),
    np.array(3),
    np.array([[3.0, 1.0], [3.0, np.nan]]),
    np.array([np.nan, np.nan, 2.0, np.nan, -np.inf, np.inf, 2.0]),
    np.array([0.0, -0.0, 1.0]),
    _RNG.integers(-5, 5, size=(40, 3)),
    _RNG.integers(0, 3, size=100).astype(np.uint8),
    np.round(_RNG.normal(size=500), 1).astype(np.float32),
    np.array([1 + 2j, np.nan + 0j, 1 + 2j, 0j]),
    _RNG.normal(size=(7, 6)).astype(np.float32),  # an even count: two middles, in float32
    _RNG.normal(size=101),
    np.array([1.0, np.nan, 3.0]),
    np.array([2**62, 2**62 + 2], dtype=np.int64),  # int64 middles averaged in float64
]


def _id(values: np.ndarray) -> str:
    return f"{values.dtype}{values.shape}"


@pytest.mark.parametrize("values", _CASES, ids=_id)
def test_distinct_is_numpys_unique(values):
    got, want = distinct(values), np.unique(values)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("values", [v for v in _CASES if v.size and v.dtype.kind != "c"],
                         ids=_id)
def test_median_is_numpys_median(values):
    want = float(np.median(values))
    got = median(values)
    assert got == want or (np.isnan(got) and np.isnan(want)), (got, want)


def test_the_median_of_nothing_is_nan():
    assert np.isnan(median(np.array([], dtype=np.float32)))


_PROBE = """
import runpy, sys
sys.argv = [sys.argv[1], "--input", sys.argv[2], "--output", sys.argv[3]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    print("EXIT", exc.code)
print("NUMPY.MA", "numpy.ma" in sys.modules)
"""


def test_a_sessions_maps_never_import_numpy_ma(phantom_session, tmp_path):
    # every map the phantom session supports (T2, T2*, T1 VTR and IR, ADC, DTI, CEST), in
    # one process: no np.unique left on their way that would load numpy.ma
    run = subprocess.run([sys.executable, "-c", _PROBE,
                          str(PROJECT_ROOT / "pipelines" / "session_maps" / "run.py"),
                          str(phantom_session), str(tmp_path / "out")],
                         capture_output=True, text=True, check=True)
    assert run.stdout.split()[-4:] == ["EXIT", "0", "NUMPY.MA", "False"], run.stderr[-2000:]

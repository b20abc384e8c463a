"""xnatpic.numeric.median against numpy.median, value for value."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from xnatpic.numeric import median


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint8])
@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 1000, 100001])
def test_same_value_as_numpy(dtype, size):
    rng = np.random.default_rng(size)
    values = (rng.normal(100.0, 30.0, size) if np.dtype(dtype).kind == "f"
              else rng.integers(0, 200, size)).astype(dtype)
    expected = np.median(values)
    got = median(values)
    assert got == float(expected) and type(got) is float
    assert np.array_equal(values, values.copy())  # the input is left as it was


def test_nan_empty_and_shape():
    assert np.isnan(median(np.array([1.0, np.nan, 3.0])))
    assert np.isnan(median([]))
    grid = np.arange(24.0).reshape(2, 3, 4)
    assert median(grid) == float(np.median(grid))


def test_numpy_ma_is_not_loaded():
    """The reason for the module: numpy.median loads numpy.ma on its first call."""
    code = ("import sys, numpy as np; from xnatpic.numeric import median; "
            "median(np.arange(5.0)); print('numpy.ma' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"

"""tidy: JSON-ready values, the common exact types (float, int, str, None, dict) and
the others (numpy scalars and arrays, bools, tuples, paths, subclasses) alike."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from xnatpic.analysis.run_info import PathScrubber, tidy


class _Ratio(float):
    """A float subclass: tidied as a float."""


def test_tidy_values():
    value = {1: 0.1 + 0.2, "nan": math.nan, "inf": -math.inf, "np32": np.float32(0.1),
             "np64": np.float64(1 / 3), "int": 7, "npint": np.int64(3), "bool": True,
             "npbool": np.bool_(False), "none": None, "text": "a", "tuple": (1, 2.5),
             "array": np.array([0.5, np.nan]), "path": Path("/x/y"), "sub": _Ratio(2.0),
             "nested": {"list": [1e-13 + 1, {"k": math.inf}]}}
    out = tidy(value)
    assert out == {"1": 0.3, "nan": None, "inf": None, "np32": 0.100000001490,
                   "np64": 0.333333333333, "int": 7, "npint": 3, "bool": True,
                   "npbool": False, "none": None, "text": "a", "tuple": [1, 2.5],
                   "array": [0.5, None], "path": "/x/y", "sub": 2.0,
                   "nested": {"list": [1.0, {"k": None}]}}
    assert [type(out[k]) for k in ("int", "npint", "bool", "npbool", "sub", "np32")] == \
        [int, int, bool, bool, float, float]
    json.dumps(out, allow_nan=False)


def test_scrubber_leaves_numbers_and_scrubs_text(tmp_path):
    scrub = PathScrubber(tmp_path / "in", None)
    value = {"a": 1.5, "b": [2, None, True, f"{tmp_path / 'in'}/SCANS/2"],
             "c": tmp_path / "in"}
    assert scrub(value) == {"a": 1.5, "b": [2, None, True, "SCANS/2"], "c": "/input"}

"""Type and range checks of the visu_pars parameters that planning and reading use.

A malformed value becomes a :class:`ParameterValueError` naming the file, the parameter
and the value, raised when the reco's visu_pars is first read
(:attr:`xnatpic.paravision.dataset.Reco.visu_pars`), so one bad reco fails on its own and
never stops the other recos, ``info`` or ``convert`` (issue 16).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from xnatpic.errors import ParaVisionError
from xnatpic.paravision.jcamp import ParameterSet

__all__ = ["MAX_MATRIX", "ParameterValueError", "check_visu_pars"]

#: Largest VisuCoreSize element accepted (no scanner matrix comes near).
MAX_MATRIX = 65_536
#: Most frames one reco may declare.
MAX_FRAMES = 10_000_000
_WORD_TYPES = ("_8BIT_UNSGN_INT", "_16BIT_SGN_INT", "_32BIT_SGN_INT", "_32BIT_FLOAT")
_BYTE_ORDERS = ("littleEndian", "bigEndian")
#: Geometry and scaling: finite numbers only (a NaN here is the parameter's fault, not a
#: missing DICOM attribute's).
_FINITE = ("VisuCoreExtent", "VisuCoreFrameThickness", "VisuCoreOrientation",
           "VisuCorePosition", "VisuCoreDataSlope", "VisuCoreDataOffs")
#: Numbers, possibly per frame.
_NUMERIC = ("VisuAcqEchoTime", "VisuAcqRepetitionTime", "VisuAcqInversionTime",
            "VisuAcqFlipAngle", "VisuCoreUnitsScale")


#: Words or strings, possibly one per dimension, that decide how a reco is read.
_WORDS = ("VisuCoreDimDesc",)


class ParameterValueError(ParaVisionError):
    """A parameter has a value of the wrong type or out of range."""


def _shown(value: Any) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(params: ParameterSet, name: str, value: Any, problem: str) -> ParameterValueError:
    return ParameterValueError(
        f"{params.path or 'visu_pars'}: parameter {name} = {_shown(value)}: {problem}")


def _integer(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _numbers(value: Any) -> np.ndarray | None:
    """``value`` as a float array, or None when any element is not a number."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iuf":
            return value.astype(np.float64).ravel()
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return np.array([float(value)])
    return None


def _scalar_int(params: ParameterSet, name: str, low: int, high: int) -> int | None:
    if name not in params:
        return None
    value = params[name]
    number = _integer(value)
    if number is None:
        raise _fail(params, name, value, "not an integer")
    if not low <= number <= high:
        raise _fail(params, name, value, f"out of range ({low} to {high})")
    return number


def _check_size(params: ParameterSet, dim: int | None) -> None:
    if "VisuCoreSize" not in params:
        return
    value = params["VisuCoreSize"]
    numbers = _numbers(value)
    if numbers is None or not all(_integer(v) is not None for v in numbers):
        raise _fail(params, "VisuCoreSize", value, "not integers")
    if numbers.size == 0 or (numbers < 1).any() or (numbers > MAX_MATRIX).any():
        raise _fail(params, "VisuCoreSize", value, f"each size must be 1 to {MAX_MATRIX}")
    if dim is not None and numbers.size != dim:
        raise _fail(params, "VisuCoreSize", value,
                    f"{numbers.size} sizes for VisuCoreDim {dim}")


def _check_numbers(params: ParameterSet, names: Iterable[str], *, finite: bool) -> None:
    for name in names:
        if name not in params:
            continue
        value = params[name]
        numbers = _numbers(value)
        if numbers is None:
            raise _fail(params, name, value, "not numbers")
        if finite and not np.isfinite(numbers).all():
            raise _fail(params, name, value, "not finite (NaN or infinity)")
    if "VisuCoreExtent" in params:
        extent = _numbers(params["VisuCoreExtent"])
        if extent is not None and (extent <= 0).any():
            raise _fail(params, "VisuCoreExtent", params["VisuCoreExtent"],
                        "each extent must be positive")


def _empty(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.size == 0
    return value is None or (isinstance(value, (str, list, tuple)) and len(value) == 0)


def _entries(value: Any) -> list[Any]:
    if isinstance(value, tuple):
        return [value]
    if isinstance(value, list):
        return value
    return [value]


def _check_groups(params: ParameterSet) -> None:
    deps = params.get("VisuGroupDepVals")
    dep_count = 0
    if not _empty(deps):
        for entry in _entries(deps):
            if not isinstance(entry, tuple) or len(entry) < 2:
                raise _fail(params, "VisuGroupDepVals", entry, "expected (<name>, start)")
            start = _integer(entry[1])
            if not isinstance(entry[0], str) or start is None or start < 0:
                raise _fail(params, "VisuGroupDepVals", entry,
                            "expected a parameter name and a start index >= 0")
            dep_count += 1
    desc = params.get("VisuFGOrderDesc")
    if _empty(desc):
        return
    frames = 1
    for entry in _entries(desc):
        if not isinstance(entry, tuple) or len(entry) < 5:
            raise _fail(params, "VisuFGOrderDesc", entry,
                        "expected (size, <id>, <comment>, start, count)")
        size, start, count = (_integer(entry[0]), _integer(entry[3]), _integer(entry[4]))
        if size is None or size < 1:
            raise _fail(params, "VisuFGOrderDesc", entry, "frame group size must be >= 1")
        if start is None or count is None or start < 0 or count < 0:
            raise _fail(params, "VisuFGOrderDesc", entry,
                        "dependent start and count must be integers >= 0")
        if start + count > dep_count:
            raise _fail(params, "VisuFGOrderDesc", entry,
                        f"its dependent values {start} to {start + count - 1} are not in "
                        f"VisuGroupDepVals ({dep_count} entries)")
        frames *= size
        if frames > MAX_FRAMES:
            raise _fail(params, "VisuFGOrderDesc", desc, f"more than {MAX_FRAMES} frames")


def check_visu_pars(params: ParameterSet) -> None:
    """Check the types and ranges of the visu_pars parameters xnatpic reads.

    Only parameters present are checked (absent ones are reported where they are needed).

    Raises
    ------
    ParameterValueError
        Naming the file, the parameter and its value.
    """
    _scalar_int(params, "VisuCoreFrameCount", 0, MAX_FRAMES)
    dim = _scalar_int(params, "VisuCoreDim", 1, 4)
    _scalar_int(params, "VisuFGOrderDescDim", 0, 64)
    _check_size(params, dim)
    _check_numbers(params, _FINITE, finite=True)
    _check_numbers(params, _NUMERIC, finite=False)
    _check_groups(params)
    for name in _WORDS:
        value = params.get(name)
        if value is None or isinstance(value, str):
            continue
        if not (isinstance(value, np.ndarray) and value.dtype.kind in "UO"
                and all(isinstance(v, str) for v in value.ravel())):
            raise _fail(params, name, value, "expected words or <strings>")
    for name, allowed in (("VisuCoreWordType", _WORD_TYPES),
                          ("VisuCoreByteOrder", _BYTE_ORDERS)):
        value = params.get(name)
        if value is not None and not (isinstance(value, str) and value in allowed):
            raise _fail(params, name, value,
                        f"unknown {name} {_shown(value)} (expected one of "
                        f"{', '.join(allowed)}); the data cannot be read")

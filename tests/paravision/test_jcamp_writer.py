"""Tests of the JCAMP-DX writer: exact text, ParaVision line wrapping, round trips, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.oracles import require_module
from xnatpic.errors import ParaVisionError
from xnatpic.paravision.jcamp_writer import (
    Strings,
    Text,
    Word,
    format_jcamp,
    format_value,
    write_jcamp,
)

SAMPLE = {
    "VisuVersion": 3,
    "VisuUid": "2.25.1234",
    "VisuCreationDate": Text("2016-07-18T12:44:12,538+0200", None),
    "VisuAcqSequenceName": Text("Bruker:MSME", 40),
    "VisuCoreSize": np.array([96, 64]),
    "VisuCoreExtent": np.array([38.4, 32.0]),
    "VisuCoreUnits": Strings(["mm", "mm"]),
    "VisuCoreDimDesc": np.array(["spatial", "spatial"]),
    "VisuCoreOrientation": np.tile(np.eye(3).ravel(), (5, 1)),
    "VisuCoreDataSlope": np.array([0.1, 1 / 3, 2.5e-7, 1e20, -3000.0]),
    "VisuCoreWordType": Word("_16BIT_SGN_INT"),
    "VisuCoreSlicePacksDef": (0, 1),
    "VisuCoreSlicePacksSlices": [(0, 5)],
    "VisuFGOrderDesc": [(12, "FG_ECHO", "", 0, 1), (5, "FG_SLICE", "", 1, 2)],
    "ExcPulse1": (2.625, 1600, 90, Word("Yes"), 0.236151639875348, "$ExcPulse1Shape"),
    "Nested": (((1, 0, 0), 0.5), 2, "a b"),
    "VisuFGElemComment": Strings(["VTR=  3000.0ms", "VTR=  1500.0ms"]),
    "PVM_FrqWork": np.array([300.3, 0, 0, 0, 0, 0, 0, 0]),
}


def _brkraw_parse(text: str, tmp_path: Path) -> dict:
    parameters = require_module("brkraw.core.parameters",
                                "brkraw (test extra) is the reference reader")
    path = tmp_path / "params"
    path.write_text(text)
    parsed = parameters.Parameters(path)
    names = list(parsed.keys())  # Parameters is not iterable itself
    return {key: parsed[key] for key in names}


def _strip(value):
    """brkraw keeps the angle brackets of strings and turns structs into lists."""
    if isinstance(value, str):
        return value[1:-1] if value.startswith("<") and value.endswith(">") else value
    if isinstance(value, list | tuple):
        return tuple(_strip(v) for v in value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return np.array([_strip(v) for v in value.ravel()]).reshape(value.shape)
    return value


def _expected(value):
    """The value a reader gives back for what was written."""
    if isinstance(value, Text):
        return value.text
    if isinstance(value, Strings):
        return np.array(value.values)
    if isinstance(value, list | tuple):
        return tuple(_expected(v) for v in value)
    return value


def _assert_same(actual, expected, name):
    if isinstance(expected, np.ndarray):
        actual = np.asarray(actual)
        assert actual.shape == expected.shape, name
        assert np.array_equal(actual, expected), name
    elif isinstance(expected, tuple):
        assert isinstance(actual, list | tuple), name
        assert len(actual) == len(expected), name
        for a, e in zip(actual, expected, strict=True):
            _assert_same(a, e, name)
    else:
        assert actual == expected, name


class TestFormat:
    def test_header_and_end(self):
        text = format_jcamp({"A": 1}, owner="me", comments=["made by a test"])
        assert text.splitlines() == [
            "##TITLE=Parameter List, ParaVision 6.0.1",
            "##JCAMPDX=4.24",
            "##DATATYPE=Parameter Values",
            "##ORIGIN=Bruker BioSpin MRI GmbH",
            "##OWNER=me",
            "$$ made by a test",
            "##$A=1",
            "##END=",
        ]

    @pytest.mark.parametrize(
        ("value", "lines"),
        [
            (7, ["##$X=7"]),
            (np.int16(-3), ["##$X=-3"]),
            (1500.0, ["##$X=1500"]),
            (0.1, ["##$X=0.1"]),
            (1e-06, ["##$X=1e-06"]),
            (True, ["##$X=Yes"]),
            (Word("littleEndian"), ["##$X=littleEndian"]),
            ("T2map_MSME", ["##$X=( 65 )", "<T2map_MSME>"]),
            (Text("1H", 8), ["##$X=( 8 )", "<1H>"]),
            (Text("Bruker:MSME", None), ["##$X=<Bruker:MSME>"]),
            (Text("a<b>", None), ["##$X=<a\\<b\\>>"]),
            (np.array([[1, 2, 3], [4, 5, 6]]), ["##$X=( 2, 3 )", "1 2 3 4 5 6"]),
            (np.array(["read_enc", "phase_enc"]), ["##$X=( 2 )", "read_enc phase_enc"]),
            (Strings(["mm", "mm"]), ["##$X=( 2, 65 )", "<mm> <mm>"]),
            ((1, 1), ["##$X=(1, 1)"]),
            ([(0, 9)], ["##$X=( 1 )", "(0, 9)"]),
            (("VisuAcqEchoTime", 0), ["##$X=(<VisuAcqEchoTime>, 0)"]),
            ((Word("Yes"), 4, np.array([1, 0])), ["##$X=(Yes, 4, 1 0)"]),
        ],
    )
    def test_value_types(self, value, lines):
        assert format_value("X", value) == lines

    def test_long_string_grows_its_declared_size(self):
        text = "x" * 100
        assert format_value("X", text) == ["##$X=( 101 )", f"<{text}>"]

    def test_lines_wrap_below_80_with_trailing_space(self):
        lines = format_value("X", np.tile(np.eye(3, dtype=int).ravel(), 9))
        assert lines[1] == "1 0 0 0 1 0 0 0 1 " * 4 + "1 0 0 "
        assert all(len(line) < 80 for line in lines)
        assert " ".join(line.strip() for line in lines[1:]).split() == [
            str(v) for v in np.tile(np.eye(3, dtype=int).ravel(), 9)
        ]

    def test_struct_list_wraps_between_structs(self):
        structs = [(f"VisuParameterNumber{i}", i) for i in range(6)]
        lines = format_value("X", structs)
        assert all(len(line) < 80 for line in lines[1:])
        assert "".join(lines[1:]).count("(<") == 6
        for line in lines[1:]:
            assert line.count("<") == line.count(">")

    def test_write_jcamp_writes_file(self, tmp_path):
        path = write_jcamp(tmp_path / "visu_pars", {"A": 2}, owner="o")
        assert path.read_text().endswith("##$A=2\n##END=\n")


class TestErrors:
    @pytest.mark.parametrize(
        ("value", "match"),
        [
            (float("nan"), "non-finite"),
            (np.array([1.0, np.inf]), "non-finite"),
            ("two\nlines", "line breaks"),
            (Word("two words"), "not a valid enumeration word"),
            (np.array(["a b"]), "not a valid enumeration word"),
            ([1, 2], "must hold one or more tuples"),
            ([], "must hold one or more tuples"),
            (np.array([]), "empty arrays"),
            (Strings([]), "empty string arrays"),
            ({"a": 1}, "cannot write a value of type dict"),
            (np.array([1 + 2j]), "unsupported array dtype"),
        ],
    )
    def test_unwritable_values(self, value, match):
        with pytest.raises(ParaVisionError, match=match):
            format_value("X", value)

    def test_bad_parameter_name(self):
        with pytest.raises(ParaVisionError, match="invalid parameter name"):
            format_jcamp({"A B": 1})


class TestRealFileFidelity:
    """Numeric records of real ParaVision 6.0.1 files re-written line for line."""

    @pytest.mark.parametrize(
        "relpath",
        [
            "pv6-dicomifier/study/9/pdata/1/visu_pars",
            "pv6-dicomifier/study/9/method",
            "pv6-dicomifier/study/21/acqp",
            "pv6-dicomifier/study/21/method",
            "pv6-acidocest/study/4/method",
            "pv6-acidocest/study/4/pdata/1/reco",
        ],
    )
    def test_numeric_records_match_paravision_text(self, corpus, relpath):
        text = (corpus / relpath).read_text(encoding="latin-1")
        records = _numeric_records(text)
        assert len(records) >= 10
        for name, (shape, value_lines) in records.items():
            tokens = " ".join(value_lines).split()
            if all(t.lstrip("-").isdigit() and t != "-0" for t in tokens):
                values = np.array([int(t) for t in tokens]).reshape(shape)
            else:
                values = np.array([float(t) for t in tokens]).reshape(shape)
            assert format_value(name, values)[1:] == value_lines, f"{relpath}: {name}"


def _numeric_records(text: str) -> dict[str, tuple[tuple[int, ...], list[str]]]:
    records: dict[str, tuple[tuple[int, ...], list[str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("##$") or "=( " not in line:
            continue
        name, size = line[3:].split("=", 1)
        dims = size.strip("() ").split(",")
        if not all(d.strip().isdigit() for d in dims):
            continue
        body = []
        for follow in lines[i + 1 :]:
            if follow.startswith(("##", "$$")):
                break
            body.append(follow)
        tokens = " ".join(body).split()
        try:
            [float(t) for t in tokens]
        except ValueError:
            continue
        shape = tuple(int(d) for d in dims)
        records[name] = (shape, body)
    return records


class TestRoundTripBrkraw:
    def test_sample_round_trips(self, tmp_path):
        parsed = _brkraw_parse(format_jcamp(SAMPLE), tmp_path)
        for name, value in SAMPLE.items():
            actual = _strip(parsed[name])
            expected = _expected(value)
            if name == "VisuCoreSlicePacksSlices":  # brkraw unwraps a one-struct list
                expected = expected[0]
            _assert_same(actual, expected, name)

    @settings(max_examples=40, deadline=None)
    @given(
        hnp.arrays(
            np.float64,
            hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7),
            elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
        )
    )
    def test_float_arrays_round_trip_exactly(self, tmp_path_factory, values):
        tmp_path = tmp_path_factory.mktemp("rt")
        parsed = _brkraw_parse(format_jcamp({"V": values}), tmp_path)
        assert np.array_equal(np.asarray(parsed["V"], dtype=float).reshape(values.shape), values)


class TestRoundTripXnatpicReader:
    def test_sample_round_trips(self):
        from xnatpic.paravision.jcamp import parse_jcamp

        parsed = parse_jcamp(format_jcamp(SAMPLE))
        for name, value in SAMPLE.items():
            _assert_same(parsed[name], _expected(value), name)

    @settings(max_examples=60, deadline=None)
    @given(
        hnp.arrays(
            np.float64,
            hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9),
            elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
        ),
        st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="\\"),
            max_size=90,
        ),
    )
    def test_arrays_and_strings_round_trip_exactly(self, values, text):
        from xnatpic.paravision.jcamp import parse_jcamp

        parsed = parse_jcamp(format_jcamp({"V": values, "S": text, "T": (text, 1.5)}))
        assert parsed["V"].shape == values.shape
        assert np.array_equal(parsed["V"].astype(float), values)
        assert parsed["S"] == text
        assert parsed["T"] == (text, 1.5)

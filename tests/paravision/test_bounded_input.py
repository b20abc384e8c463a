"""Input that cannot blow up (issue 16): bounded JCAMP expansion, string arrays and
folder depth; malformed parameters fail their reco with the project's own error.

Memory figures: each worst case is parsed under tracemalloc and its peak must stay
under a bound far below what the unbounded reader used (850 MB for the 48-byte
run-length file, 1.6 GB for the 108 KB string array). The measured peaks are printed
(``-s``) and recorded in docs/xnat-conformance.md (hardening section).
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xnatpic.cli.main import main
from xnatpic.cli.safe_text import terminal_safe
from xnatpic.errors import JcampSyntaxError, ParaVisionError, XnatpicError
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.jcamp import parse_jcamp, read_jcamp
from xnatpic.paravision.limits import (
    MAX_EXPANDED_ELEMENTS,
    MAX_FOLDER_DEPTH,
    MAX_STRING_ARRAY_BYTES,
)
from xnatpic.paravision.series import load_series
from xnatpic.paravision.summary import study_summary
from xnatpic.paravision.validate import ParameterValueError
from xnatpic.upload.discover import discover

from .builders import write_study

MB = 1024 * 1024


def _peak(function) -> tuple[object, int]:
    """(result or exception, peak traced bytes) of ``function()``."""
    tracemalloc.start()
    try:
        try:
            result: object = function()
        except XnatpicError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


class TestJcampLimits:
    def test_run_length_bomb_refused_cheaply(self):
        # the 48-byte visu_pars: 10 M values declared and expanded
        text = "##$P=( 10000000 )\n@10000000*(1.5)\n##END=\n"
        result, peak = _peak(lambda: parse_jcamp(text, path="visu_pars"))
        assert isinstance(result, JcampSyntaxError)
        assert "visu_pars" in str(result) and "parameter P" in str(result)
        print(f"\nrun-length 10M refused: peak {peak / MB:.2f} MB")
        assert peak < 1 * MB

    def test_run_length_at_the_limit(self):
        n = MAX_EXPANDED_ELEMENTS
        text = f"##$P=( {n} )\n@{n}*(1.5)\n##END=\n"
        result, peak = _peak(lambda: parse_jcamp(text))
        assert isinstance(result, dict)
        values = result["P"]
        assert values.shape == (n,) and values.dtype == np.float64 and values[-1] == 1.5
        print(f"\nrun-length {n} accepted: peak {peak / MB:.1f} MB")
        assert peak < 200 * MB  # list of shared references (8 B) + float64 array (8 B)

    def test_run_length_past_the_declared_size(self):
        with pytest.raises(JcampSyntaxError, match="exceeds the declared size"):
            parse_jcamp("##$P=( 3 )\n@2*(1) @2*(2)\n##END=\n")

    def test_run_length_mixed_with_values(self):
        p = parse_jcamp("##$P=( 5 )\n1 @3*(2.5) 4\n##END=\n")
        assert p["P"].tolist() == [1, 2.5, 2.5, 2.5, 4]

    def test_declared_size_past_the_limit(self):
        with pytest.raises(JcampSyntaxError, match="implausibly large"):
            parse_jcamp(f"##$P=( {MAX_EXPANDED_ELEMENTS + 1} )\n1\n##END=\n")

    def test_declared_size_past_int64_is_still_too_large(self):
        # 2**32 x 2**32 wraps to 0 in int64: the size is counted exactly
        with pytest.raises(JcampSyntaxError, match="implausibly large"):
            parse_jcamp("##$P=( 4294967296, 4294967296 )\n1\n##END=\n")

    def test_wide_string_array_stays_small(self):
        # 27,000 one-character strings and one of 27,000 characters (about 108 KB of
        # text): as a fixed-width array that is 27,001 x 27,000 x 4 bytes = 2.9 GB
        strings = ["<a>"] * 27_000 + ["<" + "b" * 27_000 + ">"]
        text = "##$S=( 27001, 100 )\n" + " ".join(strings) + "\n##END=\n"
        assert len(text) < 140_000
        result, peak = _peak(lambda: parse_jcamp(text))
        assert isinstance(result, dict)
        array = result["S"]
        assert array.shape == (27_001,) and array.dtype == object
        assert array[0] == "a" and array[-1] == "b" * 27_000
        print(f"\nstring array of {len(text)} bytes: peak {peak / MB:.1f} MB")
        assert peak < 64 * MB
        # the same strings without a size header
        bare = "##$S=" + " ".join(strings) + "\n##END=\n"
        result, peak = _peak(lambda: parse_jcamp(bare))
        assert result["S"].shape == (27_001,) and result["S"].dtype == object
        assert peak < 64 * MB

    def test_narrow_string_array_keeps_fixed_width(self):
        p = parse_jcamp("##$S=( 2, 8 )\n<ab> <cd>\n##END=\n")
        assert p["S"].dtype.kind == "U" and p["S"].tolist() == ["ab", "cd"]
        assert MAX_STRING_ARRAY_BYTES >= 2 * 2 * 4

    def test_nested_structs_refused(self):
        with pytest.raises(JcampSyntaxError, match="nested too deeply"):
            parse_jcamp("##$S=" + "(" * 5000 + "1" + ")" * 5000 + "\n##END=\n")

    def test_fifo_and_folder_are_not_parameter_files(self, tmp_path):
        os.mkfifo(tmp_path / "visu_pars")
        with pytest.raises(JcampSyntaxError, match="not a regular file"):
            read_jcamp(tmp_path / "visu_pars")  # returns at once: a FIFO is never opened
        (tmp_path / "acqp").mkdir()
        with pytest.raises(JcampSyntaxError, match="not a regular file"):
            read_jcamp(tmp_path / "acqp")

    def test_utf8_and_latin1_names(self, tmp_path):
        text = "##$SUBJECT_id=<Müller>\n##END=\n"
        (tmp_path / "pv360").write_bytes(text.encode("utf-8"))
        (tmp_path / "pv6").write_bytes(text.encode("latin-1"))
        assert read_jcamp(tmp_path / "pv360")["SUBJECT_id"] == "Müller"
        assert read_jcamp(tmp_path / "pv6")["SUBJECT_id"] == "Müller"


#: (name, text replaced in scan 2's visu_pars, replacement, parameter named)
MALFORMED = [
    ("group size 0", "(3, <FG_ECHO>", "(0, <FG_ECHO>", "VisuFGOrderDesc"),
    ("negative group size", "(3, <FG_ECHO>", "(-3, <FG_ECHO>", "VisuFGOrderDesc"),
    ("group size a string", "(3, <FG_ECHO>", "(<x>, <FG_ECHO>", "VisuFGOrderDesc"),
    ("dependent start a string", "<FG_ECHO>, <>, 0, 1)", "<FG_ECHO>, <>, <a>, 1)",
     "VisuFGOrderDesc"),
    ("dependent start out of range", "<FG_ECHO>, <>, 0, 1)", "<FG_ECHO>, <>, 7, 1)",
     "VisuFGOrderDesc"),
    ("dependent value start negative", "(<VisuAcqEchoTime>, 0)", "(<VisuAcqEchoTime>, -1)",
     "VisuGroupDepVals"),
    ("VisuCoreSize 1e300", "##$VisuCoreSize=( 2 )\n4 6", "##$VisuCoreSize=( 2 )\n1e300 6",
     "VisuCoreSize"),
    ("VisuCoreSize negative", "##$VisuCoreSize=( 2 )\n4 6", "##$VisuCoreSize=( 2 )\n-4 6",
     "VisuCoreSize"),
    ("VisuCoreSize words", "##$VisuCoreSize=( 2 )\n4 6", "##$VisuCoreSize=( 2 )\na b",
     "VisuCoreSize"),
    ("VisuCoreDim empty", "##$VisuCoreDim=2", "##$VisuCoreDim=<>", "VisuCoreDim"),
    ("VisuCoreDim word", "##$VisuCoreDim=2", "##$VisuCoreDim=x", "VisuCoreDim"),
    ("VisuCoreDim 9", "##$VisuCoreDim=2", "##$VisuCoreDim=9", "VisuCoreDim"),
    ("frame count word", "##$VisuCoreFrameCount=6", "##$VisuCoreFrameCount=abc",
     "VisuCoreFrameCount"),
    ("FG dim word", "##$VisuFGOrderDescDim=2", "##$VisuFGOrderDescDim=<a>",
     "VisuFGOrderDescDim"),
    ("orientation word", "##$VisuCoreOrientation=( 2, 9 )\n1",
     "##$VisuCoreOrientation=( 2, 9 )\na", "VisuCoreOrientation"),
    ("position NaN", "-10 -12 0.0", "nan -12 0.0", "VisuCorePosition"),
    ("extent NaN", "##$VisuCoreExtent=( 2 )\n1.0", "##$VisuCoreExtent=( 2 )\nnan",
     "VisuCoreExtent"),
    ("slope word", "##$VisuCoreDataSlope=( 6 )\n0.5", "##$VisuCoreDataSlope=( 6 )\nq",
     "VisuCoreDataSlope"),
    ("thickness word", "##$VisuCoreFrameThickness=( 1 )\n1.5",
     "##$VisuCoreFrameThickness=( 1 )\nx", "VisuCoreFrameThickness"),
    ("echo time word", "##$VisuAcqEchoTime=( 3 )\n10.0", "##$VisuAcqEchoTime=( 3 )\nab",
     "VisuAcqEchoTime"),
    ("TR word", "##$VisuAcqRepetitionTime=( 1 )\n1500",
     "##$VisuAcqRepetitionTime=( 1 )\nxx", "VisuAcqRepetitionTime"),
    ("unknown word type", "_16BIT_SGN_INT", "_13BIT", "VisuCoreWordType"),
    ("unknown byte order", "littleEndian", "middleEndian", "VisuCoreByteOrder"),
]


def _study_with_bad_scan_2(tmp_path: Path, old: str, new: str) -> Path:
    study = write_study(tmp_path / "study", {"1": {}, "2": {}})
    visu = study / "2" / "pdata" / "1" / "visu_pars"
    text = visu.read_text()
    assert old in text, old  # the builder still writes what the case corrupts
    visu.write_text(text.replace(old, new, 1))
    return study


class TestMalformedParameters:
    @pytest.mark.parametrize(("case", "old", "new", "parameter"), MALFORMED,
                             ids=[m[0] for m in MALFORMED])
    def test_reco_fails_alone_naming_file_parameter_value(self, tmp_path, case, old, new,
                                                          parameter):
        study = _study_with_bad_scan_2(tmp_path, old, new)
        with open_dataset(study) as opened:
            good, bad = (scan.recos[0] for scan in opened.scans)
            assert load_series(good).rows == 6  # the other reco still loads
            with pytest.raises(ParameterValueError) as caught:
                load_series(bad)
            summary = study_summary(opened)
        message = str(caught.value)
        assert str(study / "2" / "pdata" / "1" / "visu_pars") in message
        assert f"parameter {parameter} = " in message
        assert summary["scans"][0]["recos"][0]["image"] is True
        assert parameter in summary["scans"][1]["recos"][0]["error"]

    def test_convert_keeps_good_scans_and_fails(self, tmp_path, capsys):
        study = _study_with_bad_scan_2(tmp_path, "(3, <FG_ECHO>", "(0, <FG_ECHO>")
        out = tmp_path / "out"
        assert main(["convert", str(study), "-o", str(out)]) == 1
        assert len(list(out.rglob("*.dcm"))) == 6  # scan 1: 3 echoes x 2 slices
        assert "VisuFGOrderDesc" in capsys.readouterr().err

    @pytest.mark.parametrize("kind", ["directory", "fifo"])
    def test_2dseq_not_a_file_fails(self, tmp_path, kind, capsys):
        study = write_study(tmp_path / "study", {"1": {}, "2": {}})
        data = study / "2" / "pdata" / "1" / "2dseq"
        data.unlink()
        data.mkdir() if kind == "directory" else os.mkfifo(data)
        assert main(["convert", str(study), "-o", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert "not a regular file" in err and "1 failed" in err

    def test_unknown_word_type_is_failed_not_skipped(self, tmp_path, capsys):
        study = _study_with_bad_scan_2(tmp_path, "_16BIT_SGN_INT", "_13BIT")
        assert main(["convert", str(study), "-o", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert "0 skipped, 1 failed" in err

    def test_info_escapes_terminal_controls(self, tmp_path, capsys):
        study = write_study(tmp_path / "study")
        (study / "subject").write_bytes(
            "##$SUBJECT_id=<mo\x1b[2Jus\u202ee>\n##$SUBJECT_study_name=<Stüdy>\n##END=\n"
            .encode("utf-8"))
        assert main(["info", str(study)]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\u202e" not in out
        assert "mo\\x1b[2Jus\\u202ee" in out and "Stüdy" in out

    def test_terminal_safe_keeps_ordinary_text(self):
        assert terminal_safe("µ-mouse Ø 1") == "µ-mouse Ø 1"
        assert terminal_safe("a\tb\u200fc") == "a\\x09b\\u200fc"


class TestFolderDepth:
    def test_deep_folders_are_a_failed_problem(self, tmp_path):
        root = tmp_path / "deep"
        current = str(root)
        os.mkdir(current)
        for _ in range(1100):  # one level at a time: os.makedirs itself recurses
            current = os.path.join(current, "d")
            os.mkdir(current)
        try:
            result, peak = _peak(lambda: discover([root]))
        finally:  # shutil.rmtree (pytest's clean-up) recurses: remove bottom-up here
            while current != str(tmp_path):
                os.rmdir(current)
                current = os.path.dirname(current)
        assert not isinstance(result, Exception)
        failed = [p for p in result.problems if p.status == "failed"]
        assert len(failed) == 1 and f"more than {MAX_FOLDER_DEPTH} deep" in failed[0].reason
        print(f"\n1100 nested folders: peak {peak / MB:.2f} MB")

    def test_study_at_depth_found(self, tmp_path):
        root = tmp_path / "top"
        deep = root.joinpath(*["d"] * (MAX_FOLDER_DEPTH - 2))
        write_study(deep / "study")
        result = discover([root])
        assert [s.path for s in result.sources] == [deep / "study"]


def test_parameter_value_error_is_a_paravision_error():
    assert issubclass(ParameterValueError, ParaVisionError)

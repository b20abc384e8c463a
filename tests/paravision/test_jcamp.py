"""JCAMP-DX parser: syntax cases, the real corpus, and arbitrary input."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xnatpic.errors import JcampSyntaxError, MissingParameterError
from xnatpic.paravision.jcamp import parse_jcamp, read_jcamp


class TestSyntax:
    def test_scalars_and_headers(self):
        p = parse_jcamp("##TITLE=Parameter List, ParaVision 6.0.1\n##JCAMPDX=4.24\n"
                        "##$A=3\n##$B=-2.5e-3\n##$C=_16BIT_SGN_INT\n##$D=<hello world>\n##END=\n")
        assert p.title == "Parameter List, ParaVision 6.0.1"
        assert p.headers["JCAMPDX"] == "4.24"
        assert p["A"] == 3 and isinstance(p["A"], int)
        assert p["B"] == pytest.approx(-2.5e-3)
        assert p["C"] == "_16BIT_SGN_INT"
        assert p["D"] == "hello world"

    def test_sized_array_over_several_lines(self):
        p = parse_jcamp("##$M=( 2, 3 )\n1 2 \n3 4 5 \n6\n##END=\n")
        assert p["M"].shape == (2, 3)
        assert p["M"].tolist() == [[1, 2, 3], [4, 5, 6]]

    def test_float_array_keeps_precision(self):
        p = parse_jcamp("##$S=( 2 )\n0.00117642443558478 -19.354839\n")
        assert p["S"].dtype == np.float64
        assert p["S"][0] == 0.00117642443558478

    def test_run_length(self):
        p = parse_jcamp("##$R=( 5 )\n@3*(0.9) 1 2\n")
        assert p["R"].tolist() == [0.9, 0.9, 0.9, 1, 2]

    def test_run_length_beyond_declared_size(self):
        with pytest.raises(JcampSyntaxError, match="exceeds the declared size"):
            parse_jcamp("##$R=( 2 )\n@3*(1)\n")

    def test_struct_list(self):
        p = parse_jcamp("##$FG=( 2 )\n(7, <FG_ECHO>, <>, 0, 1) (9, <FG_SLICE>, <>, 1, 2)\n")
        assert p["FG"] == [(7, "FG_ECHO", "", 0, 1), (9, "FG_SLICE", "", 1, 2)]

    def test_scalar_struct_and_nested(self):
        p = parse_jcamp("##$P=(1, 1)\n##$G=( 1 )\n((1 0 0 0 -1 0 0 0 -1, 0 3.5 0.4), "
                        "40 35 9, <+R;read> <+P;phase>)\n")
        assert p["P"] == (1, 1)
        ((matrix, offset), extent, labels) = p["G"][0]
        assert matrix.tolist() == [1, 0, 0, 0, -1, 0, 0, 0, -1]
        assert offset.tolist() == [0, 3.5, 0.4]
        assert extent.tolist() == [40, 35, 9]
        assert labels == ["+R;read", "+P;phase"]

    def test_character_array_drops_length(self):
        p = parse_jcamp("##$U=( 2, 65 )\n<mm> <mm>\n##$W=( 65 )\n<RARE>\n")
        assert p["U"].tolist() == ["mm", "mm"]
        assert p["W"] == "RARE"

    def test_escaped_brackets_and_wrapped_strings(self):
        p = parse_jcamp("##$S=( 1 )\n(<a>, <Q0-\\>PM{x=1;\nsizes=2}>)\n")
        assert p["S"][0][1] == "Q0->PM{x=1;sizes=2}"

    def test_bare_word_array(self):
        p = parse_jcamp("##$D=( 3 )\nspectroscopic spatial spatial\n")
        assert p["D"].tolist() == ["spectroscopic", "spatial", "spatial"]

    def test_comments_are_ignored(self):
        p = parse_jcamp("##$A=( 2 )\n1 2\n$$ @vis= A B\n##$B=4\n")
        assert p["A"].tolist() == [1, 2] and p["B"] == 4

    def test_xwinnmr_range_header(self):
        p = parse_jcamp("##$ACBTAT= (0..3)\n0 66 66 0\n")
        assert p["ACBTAT"].tolist() == [0, 66, 66, 0]

    def test_wrong_count_names_parameter_and_line(self):
        with pytest.raises(JcampSyntaxError, match=r"f\.txt:2: parameter M: declared shape"):
            parse_jcamp("##TITLE=x\n##$M=( 3 )\n1 2\n", path="f.txt")

    def test_unterminated_string(self):
        with pytest.raises(JcampSyntaxError, match="unterminated string"):
            parse_jcamp("##$S=<abc\n")

    def test_text_outside_records(self):
        with pytest.raises(JcampSyntaxError, match="text outside any record"):
            parse_jcamp("garbage\n##$A=1\n")

    def test_require_names_file(self):
        p = parse_jcamp("##$A=1\n", path="/x/visu_pars")
        with pytest.raises(MissingParameterError, match="/x/visu_pars: required parameter B"):
            p.require("B")

    def test_unreadable_file(self, tmp_path):
        with pytest.raises(JcampSyntaxError, match="cannot read"):
            read_jcamp(tmp_path / "missing")


class TestCorpus:
    NAMES = ("acqp", "method", "visu_pars", "reco", "subject", "AdjStatePerScan", "uxnmr.par",
             "specpar", "configscan", "ResultState", "AdjStatePerStudy")

    def test_every_parameter_file_parses(self, corpus):
        files = [p for p in corpus.rglob("*") if p.is_file() and p.name in self.NAMES]
        assert len(files) > 150
        for path in files:
            params = read_jcamp(path)
            assert params, path

    def test_typed_values_of_pv6_msme(self, corpus):
        visu = read_jcamp(corpus / "pv6-dicomifier/study/9/pdata/1/visu_pars")
        assert visu["VisuCoreFrameCount"] == 63
        assert visu["VisuCoreSize"].tolist() == [192, 160]
        assert visu["VisuCoreOrientation"].shape == (9, 9)
        assert visu["VisuCorePosition"].shape == (9, 3)
        assert visu["VisuFGOrderDesc"][0][:2] == (7, "FG_ECHO")
        assert visu["VisuCoreWordType"] == "_16BIT_SGN_INT"
        assert visu.title == "Parameter List, ParaVision 6.0.1"

    def test_pv360_run_length(self, corpus):
        visu = read_jcamp(corpus / "pv360-csi/study/T2/pdata/1/visu_pars")
        assert visu["VisuCoreDataSlope"].shape == (16,)
        assert np.all(visu["VisuCoreDataSlope"] == visu["VisuCoreDataSlope"][0])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("##$=()<>,@*\n 0123456789.-eAbZ_\\")),
               max_size=200))
def test_arbitrary_input_raises_only_parser_errors(text):
    with contextlib.suppress(JcampSyntaxError):
        parse_jcamp(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_raises_only_parser_errors(text):
    with contextlib.suppress(JcampSyntaxError):
        parse_jcamp("##$X=" + text)

"""Every input the fuzzer (``make fuzz``, tests/paravision/fuzz_harness.py) saved as a
crash, and every seed, now ends in xnatpic's own error or reads cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnatpic.errors import XnatpicError
from xnatpic.paravision.jcamp import parse_jcamp
from xnatpic.paravision.limits import decode_jcamp
from xnatpic.paravision.validate import ParameterValueError, check_visu_pars

from .fuzz_harness import SEPARATOR, check_one

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"
CRASHES = sorted((CORPUS / "crashes").glob("crash-*"))
SEEDS = sorted((CORPUS / "seeds").iterdir())


def test_corpus_present():
    # the two crashes found while writing the checks, and four seeds
    assert len(CRASHES) >= 2 and len(SEEDS) >= 4


@pytest.mark.parametrize("path", CRASHES + SEEDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_input_raises_only_xnatpic_errors(path):
    check_one(path.read_bytes())  # raises anything else


def test_seeds_read_without_error():
    # the seeds are valid studies: a check that refused them would make the fuzzer blind
    for path in SEEDS:
        visu, _, _ = path.read_bytes().partition(SEPARATOR)
        check_visu_pars(parse_jcamp(decode_jcamp(visu)))


def test_empty_dependent_values_array():
    # crash-d6e732cb: "##$VisuGroupDepVals=( 0 )" parses to an empty array
    params = parse_jcamp("##$VisuGroupDepVals=( 0 )\n\n##$VisuFGOrderDesc=( 1 )\n"
                         "(2, <FG_CYCLE>, <>, 0, 0)\n##END=\n")
    check_visu_pars(params)


def test_dimension_descriptions_as_structs():
    # crash-5a7f4dcc: VisuCoreDimDesc holding structs reached numpy's array builder
    params = parse_jcamp("##$VisuCoreDimDesc=( , 1) (1, <FG_SLICE>, <>, 1, 2)\n##END=\n",
                         path="visu_pars")
    with pytest.raises(ParameterValueError, match="VisuCoreDimDesc"):
        check_visu_pars(params)
    assert issubclass(ParameterValueError, XnatpicError)

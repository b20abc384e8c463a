"""Subject fields in XNAT's vocabulary before anything is sent.

The accepted values are those of ``xnat:demographicData`` in XNAT's schema (xnat-web
``src/main/resources/schemas/xnat/xnat.xsd``), written out here from the schema, not from
our code: gender ∈ {male, female, other, unknown, M, F}; dob ``xs:date``; yob and age
``xs:integer`` (one of dob/yob/age: an ``xs:choice``); weight and height ``xs:float``;
handedness ∈ {left, right, ambidextrous, unknown}.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from pathlib import Path

import pytest

from tests.double.server import DEMOGRAPHIC_TYPES
from tests.upload.conftest import write_dicom_studies
from xnatpic.cli.main import main
from xnatpic.upload import discover_sources, load_metadata
from xnatpic.upload.errors import MetadataError
from xnatpic.upload.metadata import DEMOGRAPHIC_ELEMENTS, xnat_subject_fields
from xnatpic.upload.planning import plan_sources

#: xnat.xsd, complexType demographicData, element gender.
XSD_GENDER = {"male", "female", "other", "unknown", "M", "F"}
XSD_HANDEDNESS = {"left", "right", "ambidextrous", "unknown"}


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "animals.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("given", "sent"), [
    ("F", "female"), ("f", "female"), ("female", "female"), ("Female", "female"),
    ("M", "male"), ("m", "male"), ("Male", "male"), ("MALE", "male"),
    ("U", "unknown"), ("unknown", "unknown"), ("other", "other"), ("O", "other"),
    ("o", "other"),
])
def test_sex_in_xnat_vocabulary(tmp_path, given, sent):
    meta = load_metadata(_csv(tmp_path, f"key,sex\nm1,{given}\n"))
    value = meta.lookup("m1").subject["sex"]
    assert value == sent and value in XSD_GENDER


def test_gender_column_is_sex(tmp_path):
    meta = load_metadata(_csv(tmp_path, "key,gender,birth_date\nm1,F,2023-01-02\n"))
    assert meta.lookup("m1").subject == {"sex": "female", "dob": "2023-01-02"}


@pytest.mark.parametrize("given", ["2023-01-02", "20230102", "2023/01/02"])
def test_dob_written_as_xs_date(tmp_path, given):
    meta = load_metadata(_csv(tmp_path, f"key,dob\nm1,{given}\n"))
    value = meta.lookup("m1").subject["dob"]
    assert dt.date.fromisoformat(value) == dt.date(2023, 1, 2)
    assert value == "2023-01-02"  # xs:date lexical form


def test_numbers_and_handedness(tmp_path):
    meta = load_metadata(_csv(tmp_path, "key,yob,weight,height,handedness\n"
                                        "m1,2022,24.5,9.1,Left\n"))
    subject = meta.lookup("m1").subject
    assert int(subject["yob"]) == 2022
    assert float(subject["weight"]) == 24.5 and float(subject["height"]) == 9.1
    assert subject["handedness"] in XSD_HANDEDNESS and subject["handedness"] == "left"


@pytest.mark.parametrize(("column", "value", "says"), [
    ("sex", "femme", "male, female, other or unknown"),
    ("sex", "X", "male, female, other or unknown"),
    ("dob", "02/01/2023", "YYYY-MM-DD"),
    ("dob", "2023-02-30", "not a calendar date"),
    ("dob", "2999-01-01", "future"),
    ("yob", "23", "four digits"),
    ("age", "3.5", "whole number"),
    ("weight", "24,5", "not a number"),
    ("weight", "-3", "positive"),
    ("weight", "25 g", "not a number"),
    ("handedness", "paw", "ambidextrous"),
    # Python reads these as numbers, xs:float/xs:integer (ASCII digits) do not
    ("weight", "1_000", "not a number"),
    ("weight", "inf", "not a number"),
    ("weight", "\u0663", "not a number"),
    ("yob", "\u0662\u0660\u0662\u0660", "four digits"),
    ("age", "\u0663", "whole number"),
])
def test_bad_value_names_file_line_column_and_value(tmp_path, column, value, says):
    path = _csv(tmp_path, f"key,group,{column}\nm0,ctl,\nm1,ctl,\"{value}\"\n")
    with pytest.raises(MetadataError) as exc:
        load_metadata(path)
    message = str(exc.value)
    assert str(path) in message
    assert "line 3 ('m1')" in message
    assert f"column {column!r}" in message and repr(value) in message and says in message


def test_subject_scope_prefix_is_checked_too(tmp_path):
    path = _csv(tmp_path, "key,subject.sex,session.sex\nm1,F,whatever\n")
    meta = load_metadata(path)
    assert meta.lookup("m1").subject == {"sex": "female"}
    assert meta.lookup("m1").session == {"sex": "whatever"}  # a session field: not typed


def test_one_of_dob_yob_age(tmp_path):
    with pytest.raises(MetadataError, match="give one of dob, yob and age"):
        load_metadata(_csv(tmp_path, "key,dob,yob\nm1,2023-01-02,2023\n"))


def test_every_bad_value_listed(tmp_path):
    path = _csv(tmp_path, "key,sex,weight\nm1,Q,1\nm2,F,heavy\nm3,Z,2\n")
    with pytest.raises(MetadataError, match=r"3 value\(s\) XNAT would refuse") as exc:
        load_metadata(path)
    for where in ("line 2 ('m1')", "line 3 ('m2')", "line 4 ('m3')"):
        assert where in str(exc.value)


def test_json_rows_and_nulls(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"m1": {"sex": "M", "dob": None, "strain": "C57BL/6"},
                                "m2": {"sex": "?"}}))
    with pytest.raises(MetadataError, match=r"row 'm2', column 'sex': '\?'"):
        load_metadata(path)
    path.write_text(json.dumps({"m1": {"sex": "M", "dob": None, "strain": "C57BL/6"}}))
    assert load_metadata(path).lookup("m1").subject == {"sex": "male", "strain": "C57BL/6"}


def test_plans_carry_mapped_values(tmp_path):
    write_dicom_studies(tmp_path / "in", (("m1", "s1"),))
    meta = load_metadata(_csv(tmp_path, "key,sex,dob,weight\nm1,F,20230102,24.5\n"))
    (plan,) = plan_sources(discover_sources([tmp_path / "in"]), "P", metadata=meta).plans
    assert plan.subject_fields == {"sex": "female", "dob": "2023-01-02", "weight": "24.5"}


def test_nothing_sent_when_a_value_is_refused(tmp_path, capsys):
    write_dicom_studies(tmp_path / "in", (("m1", "s1"),))
    path = _csv(tmp_path, "key,sex\nm1,femelle\n")
    archive = tmp_path / "archive"
    rc = main(["upload", str(tmp_path / "in"), "--project", "P", "--archive", str(archive),
               "--metadata", str(path)])
    assert rc != 0
    assert "column 'sex': 'femelle'" in capsys.readouterr().err
    assert not archive.exists()


#: Inputs the uploader accepts, per column (one of dob/yob/age at a time).
ACCEPTED = {
    "sex": ["F", "f", "female", "FEMALE", "M", "m", "male", "O", "o", "other", "U", "u",
            "unknown", " F "],
    "dob": ["2023-01-02", "20230102", "2023/01/02", "2020-02-29", " 2023-01-02"],
    "yob": ["2021", "1999"],
    "age": ["0", "3", "012"],
    "weight": ["24.5", "24", "2.45e1", "0.001", ".5"],
    "height": ["9.1", "9"],
    "handedness": ["left", "Right", "AMBIDEXTROUS", "unknown"],
}


@pytest.mark.parametrize("column", sorted(ACCEPTED))
def test_every_value_sent_is_one_the_schema_accepts(column):
    """Whatever the uploader accepts, it sends in xnat.xsd's lexical space: checked by the
    XNAT double's schema test of the element (tests/double/server.py, written from
    xnat.xsd's demographicData), which refuses anything else with a 400."""
    element = DEMOGRAPHIC_ELEMENTS[column]
    for given in ACCEPTED[column]:
        sent = xnat_subject_fields({column: given}, "m1")[column]
        assert DEMOGRAPHIC_TYPES[element](sent), (column, given, sent)
        assert xnat_subject_fields({column: sent}, "m1")[column] == sent  # mapped once


def test_elements_are_the_schema_names():
    """xnat.xsd demographicData's element names (written from the schema)."""
    assert DEMOGRAPHIC_ELEMENTS == {"sex": "gender", "dob": "dob", "yob": "yob",
                                    "age": "age", "weight": "weight", "height": "height",
                                    "handedness": "handedness"}


def test_subject_fields_refused_together():
    with pytest.raises(MetadataError) as exc:
        xnat_subject_fields({"sex": "X", "weight": "heavy", "yob": "2020", "age": "2",
                             "strain": "any text"}, "P/m1/s1")
    message = str(exc.value)
    assert message.startswith("P/m1/s1: ")
    assert "sex='X'" in message and "weight='heavy'" in message
    assert "give one of dob, yob and age" in message and "strain" not in message


def test_never_kinder_than_the_schema():
    """Whatever the uploader accepts from many odd spellings (signs, blanks, exponents,
    underscores, non-ASCII digits, infinities), what it sends passes the schema's test."""
    pieces = ["1", "0", "9", "2", "-", "+", ".", "e", "E", "_", " ", "\u0663", "/", "inf",
              "NaN", "x", "F", "m", "left", "Other"]
    rng = random.Random(0)
    candidates = {"".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
                  for _ in range(4000)}
    candidates |= {"".join(p) for p in itertools.product(["2021", "20210102", "1e3"],
                                                         ["", " ", "\u00a0"])}
    accepted = 0
    for column, text in itertools.product(sorted(DEMOGRAPHIC_ELEMENTS), sorted(candidates)):
        try:
            sent = xnat_subject_fields({column: text}, "m1")[column]
        except MetadataError:
            continue
        accepted += 1
        assert DEMOGRAPHIC_TYPES[DEMOGRAPHIC_ELEMENTS[column]](sent), (column, text, sent)
    assert accepted > 100  # the property was exercised, not vacuous

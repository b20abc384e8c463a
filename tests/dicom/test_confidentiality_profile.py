"""PS3.15 Table E.1-1 conformance of every de-identified file, checked against the table.

The table is ``tests/dicom/data/ps3_15_table_e1_1.json``, a transcription of the
standard's Table E.1-1 (its source is recorded in the file), not our own action list.
Every file written for every image reco of the real corpus (classic and enhanced) and of
a synthetic phantom is converted twice, identified and de-identified; every element of
the de-identified file (nested items included) must satisfy the table's action for the
options the file claims in DeidentificationMethodCodeSequence, compared with the same
element of the identified file. The JSON sidecars are checked for identity too.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.dicom.conftest import CORPUS_STUDIES, image_recos
from tests.dicom.synthetic import load, string, write_study
from xnatpic.dicom import DeidentifyProfile, write_dicom_series
from xnatpic.paravision.jcamp import read_jcamp

TABLE = Path(__file__).parent / "data" / "ps3_15_table_e1_1.json"
PROFILE = DeidentifyProfile(salt="profile-test-7Qm2xZ9vLk")
#: CID 7050 code → Table E.1-1 column of the option.
OPTION_COLUMNS = {
    "113103": "cleanGraphOpt", "113104": "cleanStructContOpt", "113105": "cleanDescOpt",
    "113106": "rtnLongFullDatesOpt", "113107": "rtnLongModifDatesOpt",
    "113108": "rtnPatCharsOpt", "113109": "rtnDevIdOpt", "113110": "rtnUIDsOpt",
    "113111": "rtnSafePrivOpt", "113112": "rtnInstIdOpt",
}
#: What docs/deidentification.md claims (default profile).
CLAIMED = {"113100", "113105", "113107", "113108", "113111"}
_DATE_LIKE = re.compile(r"(19|20)\d\d-?[01]\d-?[0-3]\d|\d\d:\d\d:\d\d \d{1,2} \w{3} \d{4}|"
                        r"\d{8}_\d{6}|\d{1,2}/\d{1,2}/\d{4}")
#: Parameters whose values identify the animal, study, people, site or device.
_IDENTITY = ("SUBJECT_id", "SUBJECT_name_string", "SUBJECT_study_name", "VisuSubjectId",
             "VisuSubjectName", "VisuStudyId", "ACQ_operator", "ACQ_institution",
             "ACQ_station", "VisuInstitution", "VisuStation", "VisuStudyReferringPhysician",
             "ACQ_system_order_number", "VisuSystemOrderNumber")


def _table() -> dict[int, dict[str, str]]:
    rows = {}
    for row in json.loads(TABLE.read_text())["rows"]:
        match = re.fullmatch(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)", row["tag"])
        if match:
            rows[int(match[1] + match[2], 16)] = row
    return rows


ROWS = _table()


def action(row: dict[str, str], codes: set[str]) -> str:
    """The action an option set requires: a claimed option's K, else its C, else basic."""
    options = [row[OPTION_COLUMNS[c]] for c in codes if OPTION_COLUMNS.get(c) in row]
    for letter in ("K", "C"):
        if letter in options:
            return letter
    return row["basicProfile"]


def identity_words(study: Path) -> set[str]:
    """Identifying values of a study read straight from its ParaVision files."""
    words: set[str] = set()
    for path in study.rglob("*"):
        if path.name not in ("subject", "acqp", "visu_pars") or not path.is_file():
            continue
        params = read_jcamp(path)
        values = [params[n] for n in _IDENTITY if n in params]
        values.append(params.headers.get("OWNER", ""))
        for value in values:
            for text in np.ravel(np.asarray(value, dtype=object)).tolist():
                text = str(text).strip().lower()
                words.update(w for w in re.split(r"[\s^_,;:/()<>.-]+", text)
                             if len(w) >= 4 and w.isalpha())
                if len(text) >= 4:
                    words.add(text)
    return words


def _animal(ds: Dataset) -> bool:
    return "PatientSpeciesDescription" in ds or "PatientSpeciesCodeSequence" in ds


def _valueless(ds: Dataset, keyword: str) -> bool:
    return keyword not in ds or _text(ds[keyword].value).strip() == ""


#: Attributes the table removes (X) that PS3.3 C.7.1.1 (Patient module) requires, Type
#: 2C, when their condition holds: "Required if the patient is an animal and if
#: Responsible Organization (Responsible Person) is not present" — read as dciodvfy
#: reads it, "not present with a value". There the table's own rule for compound codes
#: applies ("X unless Z is required to maintain IOD conformance"): zero length only.
_IOD_TYPE_2C = {
    "ResponsibleOrganization": lambda ds: _animal(ds) and _valueless(ds, "ResponsiblePerson"),
    "ResponsiblePerson": lambda ds: _animal(ds) and _valueless(ds, "ResponsibleOrganization"),
}


def _iod_requires(keyword: str, ds: Dataset) -> bool:
    """True when the IOD requires ``keyword`` in ``ds`` (Type 2C condition holds)."""
    condition = _IOD_TYPE_2C.get(keyword)
    return condition is not None and condition(ds)


def _walk(ds: Dataset, path: tuple = ()) -> Iterator[tuple[tuple, pydicom.DataElement]]:
    for elem in ds:
        yield (*path, elem.tag), elem
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                yield from _walk(item, (*path, elem.tag, index))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return ""
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(map(str, value))
    return str(value if value is not None else "")


def violations(deid: Dataset, original: Dataset, words: set[str]) -> list[str]:
    """Every element of ``deid`` the table (for its claimed options) does not allow."""
    codes = {item.CodeValue for item in deid.DeidentificationMethodCodeSequence}
    before = dict(_walk(original))
    found = []
    for path, elem in _walk(deid):
        old = before.get(path)
        old_text = _text(old.value) if old is not None else ""
        new_text = _text(elem.value)
        name = elem.keyword or str(elem.tag)
        if elem.tag.is_private:
            if elem.tag.element < 0x1000:
                continue  # private creator
            if "113111" not in codes:
                found.append(f"{name}: private kept without Retain Safe Private")
            elif elem.VR in ("LO", "LT", "SH", "ST", "UT", "CS") and any(
                    w in new_text.lower() for w in words):
                found.append(f"{name}: private text {new_text!r} names the study")
            continue
        row = ROWS.get(int(elem.tag))
        if row is None or elem.VR == "SQ":
            continue
        required = action(row, codes)
        letters = set(required.split("/"))
        empty = new_text.strip() == ""
        if required == "K":
            continue
        if letters == {"X"} and not (empty and _iod_requires(name, deid)):
            found.append(f"{name}: present, table says X")
        elif letters == {"X"}:
            continue  # X unless Z is required to maintain IOD conformance (below)
        elif required == "U":
            if new_text == old_text:
                found.append(f"{name}: UID not replaced")
        elif required == "C":
            if elem.VR in ("DA", "TM", "DT"):
                if old_text and new_text == old_text:
                    found.append(f"{name}: date/time {new_text} not modified")
            elif any(w in new_text.lower() for w in words) or _DATE_LIKE.search(new_text):
                found.append(f"{name}: {new_text!r} not clean")
        elif empty:
            if not ({"Z", "X"} & letters):
                found.append(f"{name}: empty, table says {required}")
        elif not ({"D", "Z"} & letters):
            found.append(f"{name}: has a value, table says {required}")
        elif old_text and new_text == old_text and old_text != "UNKNOWN":
            # (the identified file already holds the dummy UNKNOWN when ParaVision
            # records no value, e.g. no serial number in PV5)
            found.append(f"{name}: dummy value equals the original {old_text!r}")
    return found


def _convert_pair(series, out: Path, enhanced: bool) -> list[tuple[Path, Path]]:
    kinds = {}
    for label, profile in (("id", None), ("deid", PROFILE)):
        folder = out / f"{label}-{'enh' if enhanced else 'cls'}"
        folder.mkdir(parents=True)
        kinds[label] = write_dicom_series(series, folder, enhanced=enhanced,
                                          deidentify=profile)
    pairs = []
    for plain, deid in zip(kinds["id"], kinds["deid"], strict=True):
        pairs.extend(zip(plain.files, deid.files, strict=True))
        pairs.append((plain.sidecar, deid.sidecar))
    return pairs


@pytest.fixture(scope="module")
def written(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """(study folder, identified path, de-identified path) of every written file."""
    found = []
    for study in CORPUS_STUDIES:
        for n, series in enumerate(image_recos(corpus, study)):
            for enhanced in (False, True):
                out = tmp_path_factory.mktemp(f"cp-{n}")
                found.extend((corpus / study, *pair)
                             for pair in _convert_pair(series, out, enhanced))
    return found


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """A synthetic study carrying every known sidecar leak."""
    root = tmp_path_factory.mktemp("phantom") / "study"
    ior = "IOR:" + "0a000001c0a80107" * 8
    write_study(root, np.arange(2 * 16, dtype="i2").reshape(2, 4, 4), method={
        "PVM_StudyB0Map": "(<Operator One>, <M-042_20210504_101500>, 19, 1)",
        "MTListFile": string("operator_cest_values_20200902"),
        "PVM_EchoTime": "12.5",
    }, visu={"VisuStudyId": string("Tumour-Trial-Nine"),
             "VisuSeriesComment": string("T2 of M-042 on 05/04/2021 by Operator One"),
             "VisuCreatorVersion": string("6.0.1 12:21:28 28 Nov 2011")})
    (root / "5" / "acqp").write_text(
        "##TITLE=acqp\n##JCAMPDX=4.24\n##OWNER=opone\n"
        f"##$ACQ_WriteServerIOR=( 200 )\n<{ior}>\n"
        "##$ACQ_system_order_number=( 60 )\n<SN-987654>\n"
        "##$ACQ_operator=( 60 )\n<Operator One>\n"
        "##$ACQ_method=( 60 )\n<User:cestFISP_Oneslab5>\n"
        "##$ACQ_scan_name=( 60 )\n<T2 M-042 192.168.1.7 /home/opone/protocols>\n##END=\n")
    (root / "5" / "pdata" / "1" / "reco").write_text(
        "##TITLE=reco\n##JCAMPDX=4.24\n##$RECO_wordtype=_16BIT_SGN_INT\n"
        "##$RecoStageNodes=( 1 )\n(<input>, 0, <RecoFileSource path=/home/opone/data>)\n"
        "##END=\n")
    series = load(root / "5" / "pdata" / "1")
    out = tmp_path_factory.mktemp("phantom-out")
    return [(root, *pair) for enhanced in (False, True)
            for pair in _convert_pair(series, out / str(enhanced), enhanced)]


def _check_dicom(files: list[tuple]) -> tuple[Counter, list[str]]:
    counts: Counter = Counter()
    problems: list[str] = []
    words_of: dict[Path, set[str]] = {}
    for study, plain, deid in files:
        if deid.suffix != ".dcm":
            continue
        words = words_of.setdefault(study, identity_words(study))
        ds = pydicom.dcmread(deid)
        counts["enhanced" if "NumberOfFrames" in ds else "classic"] += 1
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        if codes != CLAIMED:
            problems.append(f"{deid.name}: claims {sorted(codes)}")
        problems.extend(f"{study.name}/{deid.name}: {v}"
                        for v in violations(ds, pydicom.dcmread(plain), words))
    return counts, problems


def test_every_corpus_file_conforms_to_table_e1_1(written):
    counts, problems = _check_dicom(written)
    print(f"Table E.1-1 checked on {dict(counts)} corpus files")
    assert counts["classic"] >= 494 and counts["enhanced"] >= 28, counts
    assert problems == [], f"{len(problems)} violations, first: {problems[:10]}"


def test_phantom_files_conform_to_table_e1_1(phantom):
    counts, problems = _check_dicom(phantom)
    assert counts["classic"] == 2 and counts["enhanced"] == 1
    assert problems == [], problems


def test_table_checker_catches_violations(phantom):
    """The checker fails a file that keeps what the table removes (it can fail)."""
    study, plain, deid = next(t for t in phantom if t[2].suffix == ".dcm")
    ds = pydicom.dcmread(deid)
    ds.SeriesDescription = "M-042 T2"
    ds.ResponsiblePerson = "One^Operator"
    ds.StudyTime = pydicom.dcmread(plain).StudyTime
    found = violations(ds, pydicom.dcmread(plain), identity_words(study))
    assert any("SeriesDescription" in v for v in found)
    assert any("ResponsiblePerson" in v for v in found)
    assert any("StudyTime" in v for v in found)


def test_zero_length_x_only_where_the_iod_requires_it(phantom):
    """ResponsibleOrganization (X) may stay only zero length, only for an animal without
    ResponsiblePerson (PS3.3 C.7.1.1 Type 2C); the checker fails every other case."""
    study, plain, deid = next(t for t in phantom if t[2].suffix == ".dcm")
    ds, original = pydicom.dcmread(deid), pydicom.dcmread(plain)
    words = identity_words(study)
    assert original.ResponsibleOrganization  # the phantom names its institution
    assert ds.ResponsibleOrganization in ("", None) and ds.ResponsiblePerson in ("", None)
    assert "ResponsiblePersonRole" not in ds
    assert violations(ds, original, words) == []
    ds.ResponsibleOrganization = "Imaging Lab"  # a value: X says remove
    assert any("ResponsibleOrganization" in v for v in violations(ds, original, words))
    ds.ResponsibleOrganization = ""
    del ds.PatientSpeciesDescription  # not an animal: nothing requires either
    found = violations(ds, original, words)
    assert any("ResponsibleOrganization" in v for v in found)
    assert any("ResponsiblePerson" in v for v in found)


_LEAKS = re.compile(
    r"IOR:|(?<![\d.])\d{1,3}(\.\d{1,3}){3}(?![\d.])|/home/|/Users/|(19|20)\d\d-[01]\d-[0-3]\dT|"
    r"\b\d{8}_\d{6}\b|\b\d{1,2}/\d{1,2}/\d{4}\b|\d\d:\d\d:\d\d \d{1,2} [A-Z][a-z]{2} \d{4}")


def _sidecar_problems(files: list[tuple]) -> tuple[int, list[str]]:
    checked, problems = 0, []
    for study, _, deid in files:
        if not deid.name.endswith(".paravision.json"):
            continue
        checked += 1
        text = deid.read_text()
        words = identity_words(study)
        problems.extend(f"{deid}: {m.group(0)!r}" for m in _LEAKS.finditer(text))
        problems.extend(f"{deid}: names {w!r}" for w in words
                        if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", text.lower()))
        document = json.loads(text)
        for file in document["parameters"].values():
            for name in ("PVM_StudyB0Map", "RecoStageNodes", "ACQ_WriteServerIOR",
                         "ACQ_system_order_number", "ACQ_coils", "ACQ_operator", "MTListFile"):
                if name in file["parameters"]:
                    problems.append(f"{deid}: keeps {name}")
            if "OWNER" in file["headers"]:
                problems.append(f"{deid}: keeps OWNER")
    return checked, problems


def test_corpus_sidecars_hold_no_identity(written):
    checked, problems = _sidecar_problems(written)
    print(f"{checked} corpus sidecars checked")
    assert checked > 50 and problems == [], problems[:10]


def test_phantom_sidecar_leaks_removed(phantom):
    checked, problems = _sidecar_problems(phantom)
    assert checked == 2 and problems == [], problems
    document = json.loads(next(t[2] for t in phantom
                               if t[2].name.endswith(".json")).read_text())
    assert document["parameters"]["method"]["parameters"]["PVM_EchoTime"] == 12.5
    comment = document["parameters"]["visu_pars"]["parameters"]["VisuSeriesComment"]
    assert comment.startswith("T2 of") and "042" not in comment and "2021" not in comment
    assert "Oneslab" not in json.dumps(document)  # a site's own method name

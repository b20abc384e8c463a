"""The ``--metadata`` file: subject and session fields per study.

CSV (first row: column names) or JSON (an object of objects, or a list of objects). Each
row is found by a key: the ``key`` column (or, in a CSV/JSON list, the first of ``key``,
``study``, ``session``, ``animal_id``, ``subject`` present), matched against the study
folder name, the session label, then the animal id.

Columns become XNAT fields. Subject columns: :data:`SUBJECT_FIELDS` (or any column
written ``subject.NAME``); every other column (or ``session.NAME``) is a session field.
``group``, ``sex`` and the other demographic columns map to XNAT's own subject fields;
the others become custom fields (``xnat:subjectData/fields/field[name=...]``).

Demographic values are checked and written in XNAT's vocabulary when the file is read,
before anything is sent (XNAT answers 400 to a value its schema refuses), the error naming
the file, the row, the column and the value. This module is the uploader's only mapping of
subject values; the server target sends what :func:`xnat_subject_fields` returns, to the
elements named in :data:`DEMOGRAPHIC_ELEMENTS`. What XNAT accepts is its schema's
``<xs:complexType name="demographicData">`` (xnat-web commit 542ad929,
``src/main/resources/schemas/xnat/xnat.xsd``; read through the code index, which gives no
line numbers):

* ``<xs:choice minOccurs="0">`` of ``dob`` (``xs:date``), ``yob`` (an ``xs:integer``
  restriction) and ``age`` (``xs:integer``): at most one of the three;
* ``gender``: ``xs:string`` enumeration male, female, other, unknown, M, F;
* ``handedness``: ``xs:string`` enumeration left, right, ambidextrous, unknown;
* ``weight`` and ``height``: ``xs:float`` (with an optional ``units`` attribute).

We write, always inside that vocabulary (and stricter where a looser value would be a
mistake in an animal sheet):

* ``sex`` (or ``gender``): ``M``/``m``/``male``/``Male`` → ``male``, ``F``/``female`` →
  ``female``, ``O``/``other`` → ``other``, ``U``/``unknown`` → ``unknown``;
* ``dob`` (or ``birth_date``): a real date written ``YYYY-MM-DD``, ``YYYYMMDD`` or
  ``YYYY/MM/DD`` → ``YYYY-MM-DD``, not in the future;
* ``yob``: a year (four digits), not in the future; ``age``: a whole number of years;
* ``weight``, ``height``: a positive finite number (``.`` as decimal point, no unit);
* ``handedness``: one of XNAT's four words (any case → lower case).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.upload.errors import MetadataError

__all__ = ["DEMOGRAPHIC_ELEMENTS", "SUBJECT_FIELDS", "Metadata", "StudyMetadata",
           "load_metadata", "xnat_subject_fields", "xnat_subject_value"]

#: Columns that describe the animal rather than one imaging session.
SUBJECT_FIELDS = frozenset({
    "species", "strain", "sex", "gender", "group", "genotype", "phenotype", "dob",
    "birth_date", "yob", "age", "weight", "height", "handedness", "vendor", "source",
    "line", "cohort", "animal_id",
})
_KEY_COLUMNS = ("key", "study", "session", "animal_id", "subject")
#: Other names of a subject column, by the name the uploader sends.
_ALIASES = {"gender": "sex", "birth_date": "dob"}

_GENDER = {"m": "male", "male": "male", "f": "female", "female": "female",
           "other": "other", "o": "other", "u": "unknown", "unknown": "unknown"}
_HANDEDNESS = ("left", "right", "ambidextrous", "unknown")
_DATE = re.compile(r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})")
#: A number as xs:float writes it, in ASCII digits, without INF/NaN (24, .5, 2.45e1).
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _gender(value: str) -> str:
    try:
        return _GENDER[value.lower()]
    except KeyError:
        raise ValueError("XNAT's gender is male, female, other or unknown (M, F, O, U "
                         "accepted)") from None


def _date(value: str) -> str:
    match = _DATE.fullmatch(value)
    if not match:
        raise ValueError("a date is written YYYY-MM-DD (e.g. 2023-11-02)")
    try:
        day = dt.date(*map(int, match.groups()))
    except ValueError as exc:
        raise ValueError(f"not a calendar date ({exc})") from None
    if day > dt.date.today():
        raise ValueError("a date of birth in the future")
    return day.isoformat()


def _year(value: str) -> str:
    if not re.fullmatch(r"[0-9]{4}", value) or int(value) > dt.date.today().year:
        raise ValueError("a year of birth is four digits, not in the future (e.g. 2023)")
    return value


def _whole(value: str) -> str:
    if not re.fullmatch(r"[0-9]+", value):
        raise ValueError("XNAT keeps the age as a whole number of years")
    return str(int(value))


def _positive(value: str) -> str:
    # an xs:float written in ASCII digits (Python's float() also takes 1_000, inf, ...)
    if not _DECIMAL.fullmatch(value):
        raise ValueError("not a number (use '.' as the decimal point, no unit)")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive number")
    return value


def _handedness(value: str) -> str:
    if value.lower() not in _HANDEDNESS:
        raise ValueError(f"XNAT's handedness is one of {', '.join(_HANDEDNESS)}")
    return value.lower()


#: XNAT's vocabulary of each demographic subject field (by the name the uploader sends).
_CHECKS: dict[str, Callable[[str], str]] = {
    "sex": _gender, "dob": _date, "yob": _year, "age": _whole, "weight": _positive,
    "height": _positive, "handedness": _handedness,
}
#: The ``xnat:demographicData`` element of each demographic subject field (xnat.xsd).
DEMOGRAPHIC_ELEMENTS = {
    "sex": "gender", "dob": "dob", "yob": "yob", "age": "age", "weight": "weight",
    "height": "height", "handedness": "handedness",
}
#: The ``xs:choice`` of xnat:demographicData: XNAT keeps one of them.
_BIRTH_CHOICE = ("dob", "yob", "age")
_CHOICE_MESSAGE = ("give one of dob, yob and age (XNAT keeps only one: an xs:choice of "
                   "xnat:demographicData)")


def xnat_subject_value(name: str, value: str) -> str:
    """``value`` of subject column ``name`` in XNAT's vocabulary (unchanged for a column
    XNAT does not type).

    Raises
    ------
    ValueError
        Saying what XNAT accepts.

    Examples
    --------
    >>> xnat_subject_value("sex", "F"), xnat_subject_value("dob", "20230102")
    ('female', '2023-01-02')
    """
    check = _CHECKS.get(_ALIASES.get(name, name))
    return check(value.strip()) if check else value


def xnat_subject_fields(fields: Mapping[str, str], where: str) -> dict[str, str]:
    """Subject fields (by the name the uploader sends) in XNAT's vocabulary.

    Raises
    ------
    MetadataError
        Naming ``where``, each field and value XNAT would refuse, and what it accepts.

    Examples
    --------
    >>> xnat_subject_fields({"sex": "M", "strain": "C57BL/6"}, "m1")
    {'sex': 'male', 'strain': 'C57BL/6'}
    """
    out: dict[str, str] = {}
    errors = []
    for name, value in fields.items():
        try:
            out[name] = xnat_subject_value(name, value)
        except ValueError as exc:
            errors.append(f"{name}={value!r}: {exc}")
    if len({_ALIASES.get(n, n) for n in fields} & set(_BIRTH_CHOICE)) > 1:
        errors.append(_CHOICE_MESSAGE)
    if errors:
        raise MetadataError(f"{where}: subject value(s) XNAT would refuse: "
                            f"{'; '.join(errors)}")
    return out


@dataclass
class StudyMetadata:
    """Fields of one study's subject and session."""

    subject: dict[str, str] = field(default_factory=dict)
    session: dict[str, str] = field(default_factory=dict)


@dataclass
class Metadata:
    """Rows of a metadata file by key."""

    path: Path | None = None
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def lookup(self, *keys: str) -> StudyMetadata:
        """Fields of the first key found (study folder, session label, animal id)."""
        row: dict[str, str] = {}
        for key in keys:
            if key and key in self.rows:
                row = self.rows[key]
                self.used.add(key)
                break
        out = StudyMetadata()
        for name, value in row.items():
            value = "" if value is None else str(value).strip()
            if not value or name in _KEY_COLUMNS[:1]:
                continue
            scope, bare = _scope(name)
            if scope == "subject":
                out.subject[_ALIASES.get(bare, bare)] = value
            else:
                out.session[bare] = value
        return out

    def unused(self) -> list[str]:
        """Keys that matched no study (likely typos)."""
        return sorted(set(self.rows) - self.used)


def _scope(column: str) -> tuple[str, str]:
    """``("subject" | "session", bare name)`` of a column."""
    scope, _, bare = column.partition(".")
    if bare and scope in ("subject", "session"):
        return scope, bare
    return ("subject" if column in SUBJECT_FIELDS else "session"), column


def _check_rows(path: Path, rows: dict[str, dict[str, str]], where: dict[str, str]) -> None:
    """Write every demographic subject value in XNAT's vocabulary, in place.

    Raises
    ------
    MetadataError
        Listing each bad value with its row, column and what XNAT accepts.
    """
    errors = []
    for key, row in rows.items():
        names = set()
        for column, value in row.items():
            scope, bare = _scope(column)
            if scope == "subject" and str(value or "").strip():
                names.add(_ALIASES.get(bare, bare))
        if len(names & set(_BIRTH_CHOICE)) > 1:
            errors.append(f"{where[key]}: {_CHOICE_MESSAGE}")
        for column, value in row.items():
            text = "" if value is None else str(value).strip()
            scope, bare = _scope(column)
            if not text or scope != "subject":
                continue
            try:
                row[column] = xnat_subject_value(bare, text)
            except ValueError as exc:
                errors.append(f"{where[key]}, column {column!r}: {text!r}: {exc}")
    if errors:
        shown = "; ".join(errors[:20]) + (f"; and {len(errors) - 20} more"
                                            if len(errors) > 20 else "")
        raise MetadataError(f"{path}: {len(errors)} value(s) XNAT would refuse: {shown}")


def _strings(row: dict[str, Any]) -> dict[str, str]:
    """A JSON row's values as text (null: empty)."""
    return {str(f): "" if v is None else str(v) for f, v in row.items()}


def _key_of(row: dict[str, Any], path: Path, index: int) -> str:
    for column in _KEY_COLUMNS:
        if str(row.get(column, "") or "").strip():
            return str(row[column]).strip()
    raise MetadataError(f"{path}: row {index} has no key; give a 'key' column (study folder, "
                        "session label or animal id)")


def load_metadata(path: str | Path | None) -> Metadata:
    """Read a CSV or JSON metadata file (``None``: no metadata).

    Raises
    ------
    MetadataError
        When the file is missing, malformed, a row has no key, or a demographic value is
        not one XNAT accepts (all such values are listed).
    """
    if path is None:
        return Metadata()
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: no such metadata file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{path}: cannot be read ({exc})") from exc
    rows: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}"
                                ) from exc
        if isinstance(data, dict):
            items = list(data.items())
            if not all(isinstance(v, dict) for _, v in items):
                raise MetadataError(f"{path}: expected {{key: {{field: value}}}}")
            rows = {str(k): _strings(row) for k, row in items}
            where = {str(k): f"row {str(k)!r}" for k, _ in items}
        elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
            for i, row in enumerate(data, 1):
                key = _key_of(row, path, i)
                rows[key] = _strings(row)
                where[key] = f"row {i} ({key!r})"
        else:
            raise MetadataError(f"{path}: expected an object of objects or a list of objects")
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise MetadataError(f"{path}: empty CSV (first row must name the columns)")
        for i, row in enumerate(reader, 2):
            key = _key_of(row, path, i)
            rows[key] = {k: v for k, v in row.items() if k}
            where[key] = f"line {i} ({key!r})"
    _check_rows(path, rows, where)
    return Metadata(path, rows)

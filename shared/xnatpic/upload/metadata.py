"""The ``--metadata`` file: subject and session fields per study.

CSV (first row: column names) or JSON (an object of objects, or a list of objects). Each
row is found by a key: the ``key`` column (or, in a CSV/JSON list, the first of ``key``,
``study``, ``session``, ``animal_id``, ``subject`` present), matched against the study
folder name, the session label, then the animal id.

Columns become XNAT fields. Subject columns: :data:`SUBJECT_FIELDS` (or any column
written ``subject.NAME``); every other column (or ``session.NAME``) is a session field.
``group`` and ``sex`` map to XNAT's own subject fields; the others become custom fields
(``xnat:subjectData/fields/field[name=...]``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.upload.errors import MetadataError

__all__ = ["SUBJECT_FIELDS", "Metadata", "StudyMetadata", "load_metadata"]

#: Columns that describe the animal rather than one imaging session.
SUBJECT_FIELDS = frozenset({
    "species", "strain", "sex", "group", "genotype", "phenotype", "dob", "birth_date",
    "weight", "vendor", "source", "line", "cohort", "animal_id",
})
_KEY_COLUMNS = ("key", "study", "session", "animal_id", "subject")


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
            scope, _, bare = name.partition(".")
            if bare and scope in ("subject", "session"):
                getattr(out, scope)[bare] = value
            elif name in SUBJECT_FIELDS:
                out.subject[name] = value
            else:
                out.session[name] = value
        return out

    def unused(self) -> list[str]:
        """Keys that matched no study (likely typos)."""
        return sorted(set(self.rows) - self.used)


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
        When the file is missing, malformed, or a row has no key.
    """
    if path is None:
        return Metadata()
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: no such metadata file")
    text = path.read_text(encoding="utf-8-sig")
    rows: dict[str, dict[str, str]] = {}
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
            rows = {str(k): {str(f): str(v) for f, v in row.items()} for k, row in items}
        elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
            for i, row in enumerate(data, 1):
                rows[_key_of(row, path, i)] = {str(f): str(v) for f, v in row.items()}
        else:
            raise MetadataError(f"{path}: expected an object of objects or a list of objects")
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise MetadataError(f"{path}: empty CSV (first row must name the columns)")
        for i, row in enumerate(reader, 2):
            rows[_key_of(row, path, i)] = {k: v for k, v in row.items() if k}
    return Metadata(path, rows)

"""Subject and session labels from templates over ParaVision or DICOM fields.

A template holds ``{field}`` placeholders, e.g. ``{animal_id}`` or ``{study_name}_{date}``.
The fields of a study are its ParaVision ``SUBJECT_*`` parameters (and the DICOM keywords
of a DICOM study) plus a few normalised names every source has:

``animal_id``, ``study_name``, ``date`` (YYYYMMDD), ``time`` (HHMMSS), ``folder``
(the source's folder or zip name), ``study_uid``.

Labels are sanitised for XNAT: anything but ``A-Z a-z 0-9 _ -`` becomes ``_``.

With ``--deidentify`` only the de-identified fields (:data:`DEIDENTIFIED_FIELDS`) exist:
``pseudonym`` (the DICOM PatientID/PatientName the converter writes), ``shifted_date``
(the StudyDate it writes), ``study_pseudonym`` (its StudyID) and ``time`` (the
StudyTime it writes: dates and times move together by the animal's offset). They are
derived exactly as :mod:`xnatpic.dicom.deidentify` derives them, from the salt in
``XNATPIC_DEIDENTIFY_SALT``, so the same salt gives the same labels.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from xnatpic.dicom.deidentify import DeidentifyProfile, shift_date_time
from xnatpic.upload.errors import SourceError

__all__ = [
    "DEFAULT_DEIDENTIFIED_SESSION_TEMPLATE",
    "DEFAULT_DEIDENTIFIED_SUBJECT_TEMPLATE",
    "DEFAULT_SESSION_TEMPLATE",
    "DEFAULT_SUBJECT_TEMPLATE",
    "DEIDENTIFIED_FIELDS",
    "check_deidentified_template",
    "deidentified_fields",
    "deidentified_subject_fields",
    "render_label",
    "sanitize_xnat_label",
    "template_fields",
]

DEFAULT_SUBJECT_TEMPLATE = "{animal_id}"
#: ``{study_name}_{date}``, except that the date is not repeated when the name holds it.
DEFAULT_SESSION_TEMPLATE = "{study_name_date}"

DEFAULT_DEIDENTIFIED_SUBJECT_TEMPLATE = "{pseudonym}"
DEFAULT_DEIDENTIFIED_SESSION_TEMPLATE = "{pseudonym}_{shifted_date}"
#: The only fields a template may name with ``--deidentify``.
DEIDENTIFIED_FIELDS = ("pseudonym", "shifted_date", "study_pseudonym", "time")
#: The de-identified field to use instead of an identifying one.
_EQUIVALENT = {"animal_id": "pseudonym", "date": "shifted_date",
               "study_name": "study_pseudonym", "study_name_date": "pseudonym}_{shifted_date",
               "study_uid": "study_pseudonym", "folder": "study_pseudonym"}

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def sanitize_xnat_label(text: str, fallback: str) -> str:
    """Make ``text`` a valid XNAT label: letters, digits, ``_`` and ``-`` (64 at most).

    Examples
    --------
    >>> sanitize_xnat_label("plateforme^18062016", "session")
    'plateforme_18062016'
    >>> sanitize_xnat_label("  ", "subject")
    'subject'
    """
    label = _UNSAFE.sub("_", text.strip()).strip("_")
    return label[:64] or fallback


def template_fields(template: str) -> list[str]:
    """The placeholder names of a template."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as exc:
        raise SourceError(f"bad label template {template!r}: {exc}") from exc


def render_label(template: str, fields: Mapping[str, str], *, fallback: str,
                 source: str = "") -> str:
    """Fill ``template`` with ``fields`` and sanitise it.

    Raises
    ------
    SourceError
        When a placeholder names a field the study does not have (the message lists them).
    """
    names = template_fields(template)
    missing = [n for n in names if not str(fields.get(n, "")).strip()]
    if missing:
        known = ", ".join(sorted(k for k, v in fields.items() if str(v).strip())[:40])
        raise SourceError(
            f"{source}: label template {template!r} needs {missing} but the study has no "
            f"value for it; fields with a value: {known}"
        )
    values = {n: str(fields[n]).strip() for n in names}
    return sanitize_xnat_label(template.format_map(values), fallback)


def deidentified_fields(fields: Mapping[str, str], salt: str) -> dict[str, str]:
    """The de-identified fields of a ParaVision study, as its DICOM conversion writes them.

    Parameters
    ----------
    fields : mapping
        The study's discovered fields (with the private ``_study_key`` and
        ``_subject_key`` the converter keys on).
    salt : str
        The de-identification salt (``xnatpic.conversion.deidentify_salt()``).

    Returns
    -------
    dict
        ``pseudonym``, ``shifted_date`` (YYYYMMDD, empty when the date is unknown),
        ``study_pseudonym`` and ``time``.
    """
    profile = DeidentifyProfile(salt=salt)
    study_key = str(fields.get("_study_key") or fields.get("study_uid") or "")
    seconds = profile.offset_seconds(_offset_key(fields))
    date, time = shift_date_time(str(fields.get("date", "")), str(fields.get("time", "")),
                                 seconds)
    return {
        "pseudonym": profile.pseudonym(study_key, str(fields.get("_subject_key", ""))),
        "shifted_date": date,
        "study_pseudonym": profile.study_pseudonym(study_key),
        "time": time,
    }


def _offset_key(fields: Mapping[str, str]) -> str:
    """What the date shift is keyed by: the subject, else the study (as the converter)."""
    return str(fields.get("_subject_key") or fields.get("_study_key")
               or fields.get("study_uid") or "")


#: Subject columns never sent with ``--deidentify``: they name the animal.
_IDENTIFYING_SUBJECT_FIELDS = ("animal_id",)


def deidentified_subject_fields(subject: Mapping[str, str], fields: Mapping[str, str],
                                salt: str, *, source: str = "") -> dict[str, str]:
    """Subject fields of a de-identified session: as the DICOM has them.

    The animal id is dropped; the date of birth is shifted by the animal's offset (the
    DICOM carries no birth date: PS3.15 empties it), so it keeps the same distance to
    the (shifted) session date; a year of birth cannot be shifted exactly and would give
    away the real year of the scans, so it is refused.

    Raises
    ------
    SourceError
        For a ``yob`` column.
    """
    out = {k: v for k, v in subject.items() if k not in _IDENTIFYING_SUBJECT_FIELDS}
    if "yob" in out:
        raise SourceError(
            f"{source}: metadata column 'yob' with --deidentify: a real year of birth next "
            "to shifted dates gives the real year of the scans away; give 'dob' (shifted "
            "like the DICOM) or 'age' instead")
    if "dob" in out:
        seconds = DeidentifyProfile(salt=salt).offset_seconds(_offset_key(fields))
        shifted, _ = shift_date_time(out["dob"].replace("-", ""), "", seconds)
        out["dob"] = f"{shifted[:4]}-{shifted[4:6]}-{shifted[6:]}" if shifted else ""
    return out


def check_deidentified_template(template: str, option: str) -> None:
    """Refuse a template naming anything but :data:`DEIDENTIFIED_FIELDS`.

    Raises
    ------
    SourceError
        Naming the identifying fields and their de-identified equivalents.
    """
    bad = [n for n in template_fields(template) if n not in DEIDENTIFIED_FIELDS]
    if bad:
        hints = "; ".join(f"{{{n}}} -> {{{_EQUIVALENT[n]}}}" for n in bad if n in _EQUIVALENT)
        raise SourceError(
            f"{option} {template!r} names {', '.join(bad)}: with --deidentify the label would "
            f"carry the original identifier or date; use only "
            f"{', '.join('{' + f + '}' for f in DEIDENTIFIED_FIELDS)}"
            + (f" ({hints})" if hints else ""))

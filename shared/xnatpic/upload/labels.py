"""Subject and session labels from templates over ParaVision or DICOM fields.

A template holds ``{field}`` placeholders, e.g. ``{animal_id}`` or ``{study_name}_{date}``.
The fields of a study are its ParaVision ``SUBJECT_*`` parameters (and the DICOM keywords
of a DICOM study) plus a few normalised names every source has:

``animal_id``, ``study_name``, ``date`` (YYYYMMDD), ``time`` (HHMMSS), ``folder``
(the source's folder or zip name), ``study_uid``.

Labels are sanitised for XNAT: anything but ``A-Z a-z 0-9 _ -`` becomes ``_``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from xnatpic.upload.errors import SourceError

__all__ = [
    "DEFAULT_SESSION_TEMPLATE",
    "DEFAULT_SUBJECT_TEMPLATE",
    "render_label",
    "sanitize_xnat_label",
    "template_fields",
]

DEFAULT_SUBJECT_TEMPLATE = "{animal_id}"
#: ``{study_name}_{date}``, except that the date is not repeated when the name holds it.
DEFAULT_SESSION_TEMPLATE = "{study_name_date}"

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

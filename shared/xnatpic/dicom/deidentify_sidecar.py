"""De-identified ParaVision parameters for the ``*.paravision.json`` sidecar.

Only allow-listed parameters (:data:`~xnatpic.dicom.sidecar_allowlist.SIDECAR_ALLOW`,
the animal characteristics of ``subject`` in
:data:`~xnatpic.dicom.deidentify.SUBJECT_KEEP`, and the descriptions when the profile
keeps them) go in; every kept value is cleaned recursively (strings inside lists and
structs too) by :func:`~xnatpic.dicom.deidentify_text.clean_value`. Only the format
header records are kept.
"""

from __future__ import annotations

from typing import Any

from xnatpic.dicom.deidentify import SUBJECT_KEEP, DeidentifyProfile
from xnatpic.dicom.deidentify_text import clean_text, clean_value
from xnatpic.dicom.sidecar_allowlist import DESCRIPTION_PARAMETERS, SIDECAR_ALLOW

__all__ = ["HEADER_KEEP", "allowed_parameter", "deidentified_headers",
           "deidentified_parameters"]

#: Header records kept (format and version; TITLE, OWNER, dates and paths go).
HEADER_KEEP: frozenset[str] = frozenset({"JCAMPDX", "DATATYPE", "ORIGIN"})


def allowed_parameter(file: str, name: str, profile: DeidentifyProfile) -> bool:
    """Whether parameter ``name`` of ParaVision ``file`` may go into the sidecar."""
    if file == "subject":
        return name in SUBJECT_KEEP
    if name in DESCRIPTION_PARAMETERS:
        return profile.keep_descriptions
    return name in SIDECAR_ALLOW.get(file, frozenset())


def deidentified_parameters(file: str, values: dict[str, Any], profile: DeidentifyProfile,
                            tokens: frozenset[str]) -> dict[str, Any]:
    """The allowed parameters of one file (JSON-ready values), cleaned of identity."""
    return {name: clean_value(_method(name, value), tokens) for name, value in values.items()
            if allowed_parameter(file, name, profile)}


#: Parameters naming the ParaVision method.
_METHOD_PARAMETERS = frozenset({"Method", "ACQ_method"})


def _method(name: str, value: Any) -> Any:
    """A site's own method name (``User:cestFISP_<lab>``) becomes ``User method``."""
    if name in _METHOD_PARAMETERS and isinstance(value, str) and value \
            and not value.startswith("Bruker:"):
        return "User method"
    return value


def deidentified_headers(headers: dict[str, Any], tokens: frozenset[str]) -> dict[str, Any]:
    """The format header records, cleaned."""
    return {k: clean_text(str(v), tokens) for k, v in headers.items() if k in HEADER_KEEP}

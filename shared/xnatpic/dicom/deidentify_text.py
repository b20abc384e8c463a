"""Cleaning free text and parameter values of identity (the 'C' of PS3.15 Table E.1-1).

:func:`identity_tokens` collects what names the animal, the people, the site and the
device in one study (subject and study names and ids, operator, owner, institution,
station, system order number), and :func:`clean_text` removes those tokens and every
date, time stamp, host address, CORBA IOR, home path and long number from a text;
:func:`clean_value` does the same through lists, tuples (ParaVision structs) and dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from xnatpic.paravision.dataset import Reco

__all__ = ["IDENTITY_PARAMETERS", "REDACTED", "clean_text", "clean_value", "identity_tokens",
           "reco_identity_tokens"]

#: What replaces a removed part of a text.
REDACTED = "x"

#: Parameters whose values name the animal, the study, people, the site or the device.
IDENTITY_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("subject", "SUBJECT_id"), ("subject", "SUBJECT_name_string"), ("subject", "SUBJECT_name"),
    ("subject", "SUBJECT_study_name"), ("subject", "SUBJECT_study_nr"),
    ("subject", "SUBJECT_remarks"), ("subject", "SUBJECT_comment"),
    ("visu", "VisuSubjectId"), ("visu", "VisuSubjectName"), ("visu", "VisuStudyId"),
    ("visu", "VisuStudyReferringPhysician"), ("visu", "VisuInstitution"),
    ("visu", "VisuStation"), ("visu", "VisuSystemOrderNumber"), ("visu", "VisuSubjectComment"),
    ("acqp", "ACQ_operator"), ("acqp", "ACQ_institution"), ("acqp", "ACQ_station"),
    ("acqp", "ACQ_system_order_number"),
)
#: Header records naming people.
IDENTITY_HEADERS = ("OWNER",)

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
#: Dates and time stamps in every form ParaVision writes, and other identifying patterns.
_PATTERNS = re.compile("|".join((
    r"<?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[,.]\d+)?(?:[+-]\d{4})?>?",  # PV6/360 ISO
    r"(?<!\d)\d{8}_\d{6}(?:_\d+)?(?!\d)",                            # YYYYMMDD_HHMMSS
    r"\b\d{1,2}:\d\d:\d\d\s+\d{1,2}\s+(?:" + _MONTHS + r")\w*\s+\d{4}\b",  # PV5
    r"\b\d{1,2}\s+(?:" + _MONTHS + r")\w*\s+\d{4}\b",                # 29 Mar 2016
    r"(?<!\d)\d{1,2}/\d{1,2}/\d{2,4}(?!\d)",                         # MM/DD/YYYY
    r"(?<!\d)\d{4}[-/.]\d\d[-/.]\d\d(?!\d)",                         # YYYY-MM-DD
    r"(?<!\d)(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)",  # YYYYMMDD
    r"(?<!\d)\d\d:\d\d(?::\d\d)?(?!\d)",                             # times of day
    r"IOR:[0-9A-Fa-f]+",                                             # CORBA IOR
    r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])",                   # IPv4
    r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){4,7}\b",               # IPv6
    r"(?:/home|/Users|/root|/opt/PV[^/\s]*/data)/[^\s'\"]*",         # home and data paths
    r"[A-Za-z]:\\Users\\[^\s'\"]*",
    r"[\w.+-]+@[\w-]+\.[\w.-]+",                                     # e-mail
    r"\b\d+(?:\.\d+){4,}\b",                                         # UIDs
    r"(?<![\d.])\d{6,}(?![\d.])",                                    # ids, serials
    r"(?<![A-Za-z0-9])[A-Z]\d{4,}[A-Z]*\d*(?![A-Za-z0-9])",         # serials T12053V3
)))
_SPLIT = re.compile(r"[\s^_,;:/\\|()\[\]{}<>.'\"-]+")
_MIN_TOKEN = 3


def _strings(value: Any) -> list[str]:
    if isinstance(value, np.ndarray):
        return _strings(value.tolist())
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def identity_tokens(parameter_sets: Mapping[str, Any]) -> frozenset[str]:
    """The identifying words of one study: whole values and their parts (lower case).

    Parts shorter than three characters and plain numbers are not tokens (they would
    eat ordinary words and parameters); numbers are removed by :func:`clean_text` anyway.
    """
    found: set[str] = set()
    texts: list[str] = []
    for file, name in IDENTITY_PARAMETERS:
        params = parameter_sets.get(file)
        if params is not None and name in params:
            texts.extend(_strings(params[name]))
    for params in parameter_sets.values():
        if params is not None:
            texts.extend(str(params.headers.get(h, "")) for h in IDENTITY_HEADERS)
    for text in texts:
        text = text.strip().lower()
        if len(text) >= _MIN_TOKEN:
            found.add(text)
        for part in _SPLIT.split(text):
            if len(part) >= _MIN_TOKEN and not part.isdigit():
                found.add(part)
    return frozenset(found)


def reco_identity_tokens(reco: Reco) -> frozenset[str]:
    """The identifying words of a reco's study: :func:`identity_tokens` of the parameter
    files the DICOM de-identification reads (visu_pars, method, acqp, subject, reco)."""
    return identity_tokens({"visu": reco.visu_pars, "method": reco.scan.method,
                            "acqp": reco.scan.acqp, "subject": reco.scan.study.subject,
                            "reco": reco.reco})


def clean_text(text: str, tokens: frozenset[str] = frozenset()) -> str:
    """``text`` without identity ``tokens``, dates, addresses, paths and long numbers.

    Examples
    --------
    >>> clean_text("T2 renee 20220316_101500 10.0.0.7", frozenset({"renee"}))
    'T2 x x x'
    """
    cleaned = _PATTERNS.sub(REDACTED, text)
    for token in sorted(tokens, key=len, reverse=True):
        cleaned = re.sub(re.escape(token), REDACTED, cleaned, flags=re.IGNORECASE)
    return cleaned


def clean_value(value: Any, tokens: frozenset[str] = frozenset()) -> Any:
    """``value`` (JSON-ready: str, number, list, dict) with every string cleaned."""
    if isinstance(value, str):
        return clean_text(value, tokens)
    if isinstance(value, list | tuple):
        return [clean_value(v, tokens) for v in value]
    if isinstance(value, dict):
        return {k: clean_value(v, tokens) for k, v in value.items()}
    return value

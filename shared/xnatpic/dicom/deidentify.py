"""De-identification: the PS3.15 Basic Application Level Confidentiality Profile for animals.

See ``docs/deidentification.md``. :data:`ACTIONS` gives the action per DICOM attribute
(checked against PS3.15 Table E.1-1 in ``tests/dicom/test_confidentiality_profile.py``);
the ParaVision parameters copied to the JSON sidecar go through the allow-list of
:mod:`xnatpic.dicom.deidentify_sidecar`. Animal characteristics that matter for the
science (species, strain, sex, weight, position) are kept; names, identifiers, people,
institution and device identity are removed or blanked; the patient name and ID become a
keyed-hash pseudonym; dates and times move together by one offset per animal (so the
intervals between an animal's studies are kept); UIDs are re-derived with a key derived
from the salt (:mod:`xnatpic.dicom.uids`).

Every key comes from the salt through HKDF-SHA-256 (RFC 5869) with a fixed project
context and one purpose label per use (:func:`derive_key`): knowing a pseudonym does not
help computing a date shift, and the raw salt is never used as a key.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from xnatpic.dicom.codes import code_item
from xnatpic.dicom.deidentify_text import clean_text, identity_tokens
from xnatpic.dicom.engine import element
from xnatpic.dicom.private import PRIVATE_ELEMENTS, private_tag
from xnatpic.dicom.transforms import person_name

if TYPE_CHECKING:
    from xnatpic.dicom.context import SeriesContext

__all__ = [
    "ACTIONS",
    "DATE_TIME_PAIRS",
    "KEY_CONTEXT",
    "METHOD_CODES",
    "MIN_SALT_BITS",
    "SUBJECT_KEEP",
    "DeidentifyProfile",
    "deidentify_dataset",
    "deidentify_element",
    "deidentify_values",
    "derive_key",
    "hkdf_sha256",
    "salt_weakness",
    "shift_date_time",
    "shift_datetime_value",
]

#: Action per attribute (PS3.15 Table E.1-1 letter in brackets): ``pseudonym`` (D: keyed
#: hash of the original subject), ``study_pseudonym`` (Z with a dummy value: keyed hash of
#: the study), ``dummy`` (D: ``UNKNOWN``, for attributes Type 1 in an IOD), ``blank`` (Z),
#: ``remove`` (X), ``shift`` (C under 113107: date, time or date-time moved by the
#: subject's offset), ``describe`` (C under 113105 Clean Descriptors: identity, dates,
#: addresses and numbers cleaned out when the profile keeps descriptions, X otherwise).
ACTIONS: dict[str, str] = {
    "PatientName": "pseudonym",
    "PatientID": "pseudonym",
    "PatientBirthDate": "blank",          # Z; no claimed option retains it
    "PatientComments": "remove",
    "ReferringPhysicianName": "blank",
    # X in the table, but the Patient module (PS3.3 C.7.1.1) requires one of the two
    # (Type 2C) for an animal, and dciodvfy reads "not present" as "no value": both stay
    # zero length, the table's own "X unless Z is required to maintain IOD conformance"
    # (docs/deidentification.md). An empty person needs no role (1C: "has a value").
    "ResponsiblePerson": "blank",
    "ResponsiblePersonRole": "remove",
    "ResponsibleOrganization": "blank",
    "InstitutionName": "remove",
    "InstitutionAddress": "remove",
    "InstitutionalDepartmentName": "remove",
    "StationName": "remove",
    "DeviceSerialNumber": "dummy",
    # Filled from the station name (VisuStation), like ParaVision's own export does:
    # device identity, not a model name.
    "ManufacturerModelName": "dummy",
    "OperatorsName": "remove",
    "PerformingPhysicianName": "remove",
    "StudyID": "study_pseudonym",
    "AccessionNumber": "blank",
    "StudyDescription": "remove",
    "TimezoneOffsetFromUTC": "remove",
    "InstanceCreationDate": "shift",
    "InstanceCreationTime": "shift",
    "StudyDate": "shift",
    "StudyTime": "shift",
    "SeriesDate": "shift",
    "SeriesTime": "shift",
    "AcquisitionDate": "shift",
    "AcquisitionTime": "shift",
    "ContentDate": "shift",
    "ContentTime": "shift",
    "AcquisitionDateTime": "shift",
    "FrameAcquisitionDateTime": "shift",
    "FrameReferenceDateTime": "shift",
    "SeriesDescription": "describe",
    "ProtocolName": "describe",
    "ImageComments": "describe",
    "FrameComments": "describe",
}

#: Date attribute → the time attribute it pairs with (shifted together).
DATE_TIME_PAIRS: dict[str, str] = {
    "InstanceCreationDate": "InstanceCreationTime",
    "StudyDate": "StudyTime",
    "SeriesDate": "SeriesTime",
    "AcquisitionDate": "AcquisitionTime",
    "ContentDate": "ContentTime",
}
_DATETIMES = frozenset({"AcquisitionDateTime", "FrameAcquisitionDateTime",
                        "FrameReferenceDateTime"})
_TIMES = frozenset(DATE_TIME_PAIRS.values())

#: DeidentificationMethodCodeSequence (CID 7050) entries always written.
METHOD_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113111", "Retain Safe Private Option"),
)
#: Added when the profile keeps (cleaned) descriptions.
CLEAN_DESCRIPTORS_CODE = ("113105", "Clean Descriptors Option")

#: The only subject-file parameters kept in the sidecar (animal characteristics).
SUBJECT_KEEP: frozenset[str] = frozenset({
    "SUBJECT_version_nr", "SUBJECT_type", "SUBJECT_sex", "SUBJECT_sex_animal",
    "SUBJECT_weight", "SUBJECT_species", "SUBJECT_strain", "SUBJECT_breed", "SUBJECT_entry",
    "SUBJECT_position", "SUBJECT_pos_valid",
})

#: Fixed project context of the key derivation (the HKDF extract salt).
KEY_CONTEXT = b"xnatpic de-identification profile v1"
#: Least estimated entropy of a salt, in bits (a random 16-character hex string has 64).
MIN_SALT_BITS = 64.0
#: Least number of distinct characters in a salt.
_MIN_DISTINCT = 8
#: Range of the per-subject shift: 365 to 3650 days back, plus a time of day.
_SHIFT_DAYS = (365, 3650)


def hkdf_sha256(key_material: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF with HMAC-SHA-256 (RFC 5869): extract with ``salt``, expand with ``info``."""
    prk = hmac.new(salt, key_material, hashlib.sha256).digest()
    blocks, previous = b"", b""
    for counter in range(1, math.ceil(length / 32) + 1):
        previous = hmac.new(prk, previous + info + bytes([counter]), hashlib.sha256).digest()
        blocks += previous
    return blocks[:length]


@lru_cache(maxsize=64)
def derive_key(secret: str, purpose: str) -> bytes:
    """The 32-byte key of one ``purpose`` (``pseudonym``, ``uid``, ``date``) from the salt."""
    return hkdf_sha256(secret.encode("utf-8"), KEY_CONTEXT, purpose.encode("ascii"))


def salt_weakness(salt: str) -> str | None:
    """Why ``salt`` is too weak to key the profile, or None when it will do.

    A salt must be long and not trivially low in entropy: at least :data:`_MIN_DISTINCT`
    distinct characters, an estimated entropy (characters × Shannon entropy of their
    frequencies) of at least :data:`MIN_SALT_BITS` bits, and not mostly a run of
    consecutive or repeated characters (``0123456789abcdef``, ``aaaa...``).
    """
    counts = Counter(salt)
    if len(counts) < _MIN_DISTINCT:
        return f"it uses only {len(counts)} distinct characters (at least {_MIN_DISTINCT})"
    entropy = -sum(c / len(salt) * math.log2(c / len(salt)) for c in counts.values())
    bits = entropy * len(salt)
    if bits < MIN_SALT_BITS:
        return f"its estimated entropy is {bits:.0f} bits (at least {MIN_SALT_BITS:.0f})"
    steps = sum(abs(ord(a) - ord(b)) <= 1 for a, b in pairwise(salt))
    if steps > 2 * (len(salt) - 1) / 3:
        return "it is mostly a run of consecutive or repeated characters"
    return None


@dataclass(frozen=True)
class DeidentifyProfile:
    """Options of the animal de-identification profile.

    Parameters
    ----------
    salt : str
        Secret from which the keys of pseudonyms, UIDs and date shifts are derived
        (:func:`derive_key`). Keep it secret and stable to link re-conversions.
    date_offset_days : int or None
        Days added to every date (times kept); None derives a per-animal shift of 365 to
        3650 days back plus a time of day from the salt and the subject.
    keep_descriptions : bool
        Keep SeriesDescription, ProtocolName, ImageComments and FrameComments cleaned
        (PS3.15 Clean Descriptors Option, 113105); False removes them.
    """

    salt: str = ""
    date_offset_days: int | None = None
    keep_descriptions: bool = True

    def _digest(self, purpose: str, *parts: str) -> bytes:
        message = "\x1f".join(parts).encode("utf-8")
        return hmac.new(derive_key(self.salt, purpose), message, hashlib.sha256).digest()

    def uid_key(self) -> str:
        """Hex key for UID derivation (:mod:`xnatpic.dicom.uids`), never the raw salt."""
        return derive_key(self.salt, "uid").hex()

    def pseudonym(self, study_key: str, original: str) -> str:
        """``ANON-`` and 12 hex digits of a keyed hash of ``original`` (the subject)."""
        return "ANON-" + self._digest("pseudonym", "subject",
                                      original or study_key).hex()[:12].upper()

    def study_pseudonym(self, study_key: str) -> str:
        """``S`` and 12 hex digits of a keyed hash of the study (fits StudyID, SH)."""
        return "S" + self._digest("pseudonym", "study", study_key).hex()[:12].upper()

    def offset_seconds(self, subject_key: str) -> int:
        """The shift of every date and time of one animal, in seconds (negative).

        Keyed by the subject (not the study), so all studies of one animal move together
        and keep their order and intervals.
        """
        if self.date_offset_days is not None:
            return self.date_offset_days * 86400
        digest = self._digest("date", "subject", subject_key)
        low, high = _SHIFT_DAYS
        days = low + int.from_bytes(digest[:4], "big") % (high - low + 1)
        seconds = int.from_bytes(digest[4:8], "big") % 86400
        return -(days * 86400 + seconds)


_TM = re.compile(r"^(\d\d)(\d\d)?(\d\d)?(\.\d{1,6})?$")
_DT = re.compile(r"^(\d{8})(\d{2,6}(?:\.\d{1,6})?)?([+-]\d{4})?$")


def _parse_time(value: str) -> tuple[int, str] | None:
    match = _TM.match(value.strip())
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    total = int(hours) * 3600 + int(minutes or 0) * 60 + int(seconds or 0)
    return total, fraction or ""


def shift_date_time(date: str, time: str, seconds: int) -> tuple[str, str]:
    """Shift a DA and its TM (either may be empty) together by ``seconds``.

    A date without a time moves as if at midnight; a time without a date moves around
    the clock. Invalid values come back empty (never unshifted).
    """
    date, time = str(date or "").strip(), str(time or "").strip()
    parsed = _parse_time(time) if time else (0, "")
    if parsed is None:
        return ("", "")
    clock, fraction = parsed
    if not date:
        moved = (clock + seconds) % 86400
        return "", (f"{moved // 3600:02d}{moved % 3600 // 60:02d}{moved % 60:02d}{fraction}"
                    if time else "")
    try:
        moment = datetime.strptime(date, "%Y%m%d") + timedelta(seconds=clock + seconds)
    except ValueError:
        return ("", "")
    return moment.strftime("%Y%m%d"), (moment.strftime("%H%M%S") + fraction if time else "")


def shift_datetime_value(value: str, seconds: int) -> str:
    """Shift a DT by ``seconds``; its UTC offset suffix is dropped (it locates the site)."""
    match = _DT.match(str(value or "").strip())
    if not match:
        return ""
    date, time, _ = match.groups()
    new_date, new_time = shift_date_time(date, time or "000000", seconds)
    return new_date + new_time if new_date else ""


def _study_key(ctx: SeriesContext) -> str:
    for file, name in (("visu", "VisuStudyUid"), ("subject", "SUBJECT_study_instance_uid"),
                       ("visu", "VisuStudyId")):
        value = ctx.param(file, name)
        if value:
            return str(value)
    return ctx.series.reco.scan.study.name


def _original_subject(ctx: SeriesContext) -> str:
    for file, name in (("visu", "VisuSubjectId"), ("subject", "SUBJECT_id"),
                       ("visu", "VisuSubjectName"), ("subject", "SUBJECT_name_string")):
        value = ctx.param(file, name)
        if value:
            return str(value)
    return ""


def _offset(ctx: SeriesContext, profile: DeidentifyProfile) -> int:
    return profile.offset_seconds(_original_subject(ctx) or _study_key(ctx))


def _tokens(ctx: SeriesContext) -> frozenset[str]:
    """The study's identifying words (any context: ParaVision or a look-up of ids)."""
    cached = getattr(ctx, "_deidentify_tokens", None)
    if cached is None:
        subject = _original_subject(ctx).lower()
        cached = identity_tokens(getattr(ctx, "parameter_sets", None) or {}) | (
            {subject} if len(subject) >= 3 else set())
        try:
            object.__setattr__(ctx, "_deidentify_tokens", cached)
        except (AttributeError, TypeError):
            return cached
    return cached


def _shift_dates(ds: Dataset, seconds: int) -> None:
    for date_keyword, time_keyword in DATE_TIME_PAIRS.items():
        if date_keyword not in ds and time_keyword not in ds:
            continue
        date = ds[date_keyword].value if date_keyword in ds else ""
        time = ds[time_keyword].value if time_keyword in ds else ""
        new_date, new_time = shift_date_time(date, time, seconds)
        if date_keyword in ds:
            ds[date_keyword] = element(date_keyword, new_date or None)
        if time_keyword in ds:
            ds[time_keyword] = element(time_keyword, new_time or None)
    for keyword in _DATETIMES:
        if keyword in ds:
            value = shift_datetime_value(ds[keyword].value, seconds)
            ds[keyword] = element(keyword, value or None)


def _apply_actions(ds: Dataset, ctx: SeriesContext, profile: DeidentifyProfile) -> None:
    study_key = _study_key(ctx)
    for keyword, action in ACTIONS.items():
        if keyword not in ds:
            continue
        if action == "pseudonym":
            value = profile.pseudonym(study_key, _original_subject(ctx))
            ds[keyword] = element(keyword, person_name(value) if keyword == "PatientName"
                                  else value)
        elif action == "study_pseudonym":
            ds[keyword] = element(keyword, profile.study_pseudonym(study_key))
        elif action == "dummy":
            ds[keyword] = element(keyword, "UNKNOWN")
        elif action == "blank":
            ds[keyword] = element(keyword, None)
        elif action == "describe" and profile.keep_descriptions:
            cleaned = clean_text(str(ds[keyword].value or ""), _tokens(ctx))
            ds[keyword] = element(keyword, cleaned or None)
        elif action in ("remove", "describe"):
            del ds[keyword]
    _shift_dates(ds, _offset(ctx, profile))


def _datasets(ds: Dataset) -> list[Dataset]:
    """``ds`` and every sequence item nested in it."""
    found = [ds]
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                found.extend(_datasets(item))
    return found


def deidentify_values(values: Iterable[tuple[str, Any]], ctx: SeriesContext
                      ) -> list[tuple[str, Any]]:
    """Apply the profile to the elements written per image (dates with their times).

    Returns the ``(keyword, value)`` pairs that stay, in their order; unchanged without
    a profile.
    """
    pairs = list(values)
    profile = ctx.deidentify
    if profile is None or not any(k in ACTIONS for k, _ in pairs):
        return pairs
    ds = Dataset()
    for keyword, value in pairs:
        if keyword in ACTIONS:
            ds[keyword] = element(keyword, value)
    _apply_actions(ds, ctx, profile)
    return [(k, ds[k].value if k in ACTIONS else v) for k, v in pairs
            if k not in ACTIONS or k in ds]


def deidentify_element(keyword: str, value: Any, ctx: SeriesContext) -> tuple[bool, Any]:
    """Apply the profile to one element alone (a date moves as if at midnight).

    Returns
    -------
    keep : bool
        False when the profile removes the element.
    value : Any
        The (possibly replaced or shifted) value.
    """
    kept = deidentify_values([(keyword, value)], ctx)
    return (True, kept[0][1]) if kept else (False, None)


_METHOD = private_tag(0x02)


def _clean_private(ds: Dataset, ctx: SeriesContext) -> None:
    """Retain Safe Private: drop identifying private elements, clean the method name."""
    for private in PRIVATE_ELEMENTS:
        if private.identifying and private.tag in ds:
            del ds[private.tag]
    if _METHOD in ds:
        method = str(ds[_METHOD].value or "")
        if not method.startswith("Bruker:"):
            # A site's own method names its lab or author (User:cestFISP_<name>).
            ds[_METHOD].value = "User method" if method else method


def deidentify_dataset(ds: Dataset, ctx: SeriesContext) -> None:
    """Apply the profile in place to ``ds`` and the items nested in it (call once)."""
    profile = ctx.deidentify
    if profile is None:
        return
    for target in _datasets(ds):
        _apply_actions(target, ctx, profile)
    _clean_private(ds, ctx)
    ds["PatientIdentityRemoved"] = element("PatientIdentityRemoved", "YES")
    ds["DeidentificationMethod"] = element(
        "DeidentificationMethod", "xnatpic animal profile (docs/deidentification.md)")
    method_codes = list(METHOD_CODES)
    if profile.keep_descriptions:
        method_codes.append(CLEAN_DESCRIPTORS_CODE)
    codes = [code_item(value, "DCM", meaning) for value, meaning in method_codes]
    ds["DeidentificationMethodCodeSequence"] = element(
        "DeidentificationMethodCodeSequence", codes)
    ds["LongitudinalTemporalInformationModified"] = element(
        "LongitudinalTemporalInformationModified", "MODIFIED")

"""De-identification: the PS3.15 Basic Application Level Confidentiality Profile for animals.

See ``docs/deidentification.md``. The actions are tables: :data:`ACTIONS` for DICOM
attributes (keyword → action), :data:`SUBJECT_KEEP` and :data:`PARAMETER_DROP` for the
ParaVision parameters copied to the JSON sidecar. Animal characteristics that matter
for the science (species, strain, sex, weight, position) are kept; names, identifiers,
people, institution and device identity are removed or blanked; the patient name and ID
become a keyed-hash pseudonym; dates move by a fixed per-study offset (times and
intervals are kept); UIDs are re-derived with the profile's salt
(:mod:`xnatpic.dicom.uids`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from xnatpic.dicom.codes import code_item
from xnatpic.dicom.engine import element
from xnatpic.dicom.private import PRIVATE_ELEMENTS
from xnatpic.dicom.transforms import person_name, shift_da

if TYPE_CHECKING:
    from xnatpic.dicom.context import SeriesContext

__all__ = [
    "ACTIONS",
    "DESCRIPTION_PARAMETERS",
    "HEADER_DROP",
    "METHOD_CODES",
    "PARAMETER_DROP",
    "SUBJECT_KEEP",
    "DeidentifyProfile",
    "deidentify_dataset",
    "deidentify_element",
    "keep_parameter",
]

#: Action per attribute (PS3.15 Table E.1-1 letter in brackets): ``pseudonym`` (D: keyed
#: hash of the original subject), ``study_pseudonym`` (Z with a dummy value: keyed hash of
#: the study), ``dummy`` (D: ``UNKNOWN``, for attributes Type 1 in an IOD), ``blank`` (Z),
#: ``remove`` (X), ``shift`` (date moved by the study offset), ``describe`` (kept when the
#: profile keeps descriptions, removed otherwise).
ACTIONS: dict[str, str] = {
    "PatientName": "pseudonym",
    "PatientID": "pseudonym",
    "PatientBirthDate": "shift",
    "PatientComments": "remove",
    "ReferringPhysicianName": "blank",
    "ResponsiblePerson": "blank",
    "ResponsiblePersonRole": "remove",
    "ResponsibleOrganization": "blank",
    "InstitutionName": "remove",
    "StationName": "remove",
    "DeviceSerialNumber": "dummy",
    # Filled from the station name (VisuStation), like ParaVision's own export does:
    # device identity, not a model name.
    "ManufacturerModelName": "dummy",
    "OperatorsName": "remove",
    "StudyID": "study_pseudonym",
    "AccessionNumber": "blank",
    "StudyDescription": "remove",
    "TimezoneOffsetFromUTC": "remove",
    "StudyDate": "shift",
    "SeriesDate": "shift",
    "AcquisitionDate": "shift",
    "ContentDate": "shift",
    "AcquisitionDateTime": "shift",
    "FrameAcquisitionDateTime": "shift",
    "FrameReferenceDateTime": "shift",
    "SeriesDescription": "describe",
    "ProtocolName": "describe",
    "ImageComments": "describe",
    "FrameComments": "describe",
}

#: DeidentificationMethodCodeSequence (CID 7050) entries always written.
METHOD_CODES: tuple[tuple[str, str], ...] = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113111", "Retain Safe Private Option"),
)

#: The only subject-file parameters kept in the sidecar (animal characteristics).
SUBJECT_KEEP: frozenset[str] = frozenset({
    "SUBJECT_version_nr", "SUBJECT_type", "SUBJECT_sex", "SUBJECT_sex_animal",
    "SUBJECT_weight", "SUBJECT_species", "SUBJECT_strain", "SUBJECT_breed", "SUBJECT_entry",
    "SUBJECT_position", "SUBJECT_pos_valid",
})

#: Parameters of visu_pars, acqp, method and reco dropped from the sidecar.
PARAMETER_DROP: frozenset[str] = frozenset({
    "VisuSubjectName", "VisuSubjectId", "VisuSubjectUid", "VisuSubjectBirthDate",
    "VisuSubjectComment", "VisuSubjectInstanceCreationDate", "VisuStudyUid", "VisuStudyId",
    "VisuStudyReferringPhysician", "VisuStudyDescription", "VisuStudyDate", "VisuSeriesDate",
    "VisuAcqDate", "VisuCreationDate", "VisuInstitution", "VisuStation",
    "VisuSystemOrderNumber", "VisuUid", "ACQ_operator", "ACQ_institution", "ACQ_station",
    "ACQ_time", "ACQ_abs_time", "INSTRUM", "RECO_time", "RECO_abs_time",
    "RECO_base_image_uid",
})
#: Free-text descriptions kept only when the profile keeps descriptions.
DESCRIPTION_PARAMETERS: frozenset[str] = frozenset({
    "ACQ_scan_name", "ACQ_protocol_name", "VisuAcquisitionProtocol", "VisuSeriesComment",
    "VisuFGElemComment",
})
#: Header records dropped from the sidecar (OWNER is the ParaVision user).
HEADER_DROP: frozenset[str] = frozenset({"OWNER"})
#: Any string value that looks like a date, a time stamp or a UID is dropped too.
_IDENTIFYING_VALUE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d|\d\d:\d\d:\d\d \d{1,2} \w{3} \d{4}|^\d+(\.\d+){4,}$")
_IDENTIFYING_NAME = re.compile(r"(?i)uid|abs_time|abs_date|creation_date")


@dataclass(frozen=True)
class DeidentifyProfile:
    """Options of the animal de-identification profile.

    Parameters
    ----------
    salt : str
        Secret mixed into pseudonyms, UIDs and date offsets. Keep it secret and stable
        to link re-conversions; with the default empty salt anyone holding the original
        data can recompute the pseudonyms.
    date_offset_days : int or None
        Days added to every date; None derives a per-study offset between −3650 and
        −365 days from the salt and the study.
    keep_descriptions : bool
        Keep SeriesDescription, ProtocolName and ImageComments (scanner protocol names
        and ParaVision frame comments, which rarely identify an animal).
    """

    salt: str = ""
    date_offset_days: int | None = None
    keep_descriptions: bool = True

    def _digest(self, *parts: str) -> bytes:
        message = "\x1f".join(parts).encode("utf-8")
        return hmac.new(self.salt.encode("utf-8"), message, hashlib.sha256).digest()

    def pseudonym(self, study_key: str, original: str) -> str:
        """``ANON-`` and 12 hex digits of a keyed hash of ``original`` (the subject)."""
        return "ANON-" + self._digest("subject", original or study_key).hex()[:12].upper()

    def study_pseudonym(self, study_key: str) -> str:
        """``S`` and 12 hex digits of a keyed hash of the study (fits StudyID, SH)."""
        return "S" + self._digest("study", study_key).hex()[:12].upper()

    def offset_days(self, study_key: str) -> int:
        """The date offset of a study (fixed, or derived from the salt and the study)."""
        if self.date_offset_days is not None:
            return self.date_offset_days
        return -(365 + int.from_bytes(self._digest("dates", study_key)[:4], "big") % 3286)


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


def _shift(value: Any, days: int) -> str:
    value = str(value or "")
    if not value:
        return ""
    if len(value) > 8:  # DT: shift the date part, keep the rest
        return shift_da(value[:8], days) + value[8:]
    return shift_da(value, days)


def _apply_actions(ds: Dataset, ctx: SeriesContext, profile: DeidentifyProfile,
                   study_key: str, days: int) -> None:
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
        elif action == "shift":
            ds[keyword] = element(keyword, _shift(ds[keyword].value, days) or None)
        elif action == "remove" or (action == "describe" and not profile.keep_descriptions):
            del ds[keyword]


def _datasets(ds: Dataset) -> list[Dataset]:
    """``ds`` and every sequence item nested in it."""
    found = [ds]
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                found.extend(_datasets(item))
    return found


def deidentify_element(keyword: str, value: Any, ctx: SeriesContext) -> tuple[bool, Any]:
    """Apply the profile to one element written per image (e.g. AcquisitionDate).

    Returns
    -------
    keep : bool
        False when the profile removes the element.
    value : Any
        The (possibly replaced or shifted) value.
    """
    profile = ctx.deidentify
    if profile is None or keyword not in ACTIONS:
        return True, value
    ds = Dataset()
    ds[keyword] = element(keyword, value)
    study_key = _study_key(ctx)
    _apply_actions(ds, ctx, profile, study_key, profile.offset_days(study_key))
    if keyword not in ds:
        return False, None
    return True, ds[keyword].value


def deidentify_dataset(ds: Dataset, ctx: SeriesContext) -> None:
    """Apply the profile in place to ``ds`` and the items nested in it (call once)."""
    profile = ctx.deidentify
    if profile is None:
        return
    study_key = _study_key(ctx)
    days = profile.offset_days(study_key)
    for target in _datasets(ds):
        _apply_actions(target, ctx, profile, study_key, days)
    for private in PRIVATE_ELEMENTS:
        if private.identifying and private.tag in ds:
            del ds[private.tag]
    ds["PatientIdentityRemoved"] = element("PatientIdentityRemoved", "YES")
    ds["DeidentificationMethod"] = element(
        "DeidentificationMethod", "xnatpic animal profile (docs/deidentification.md)")
    codes = [code_item(value, "DCM", meaning) for value, meaning in METHOD_CODES]
    ds["DeidentificationMethodCodeSequence"] = element(
        "DeidentificationMethodCodeSequence", codes)
    ds["LongitudinalTemporalInformationModified"] = element(
        "LongitudinalTemporalInformationModified", "MODIFIED")


def keep_parameter(file: str, name: str, value: Any, profile: DeidentifyProfile) -> bool:
    """Whether a ParaVision parameter may go into a de-identified sidecar."""
    if file == "subject":
        return name in SUBJECT_KEEP
    if name in PARAMETER_DROP or _IDENTIFYING_NAME.search(name):
        return False
    if name in DESCRIPTION_PARAMETERS and not profile.keep_descriptions:
        return False
    return not (isinstance(value, str) and _IDENTIFYING_VALUE.search(value))

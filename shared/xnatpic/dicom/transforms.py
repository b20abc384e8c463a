"""Named value transforms used by the mapping tables: ParaVision value → DICOM value.

Every transform takes one ParaVision value (a string, number, numpy array or tuple as the
JCAMP parser returns it, or a value computed by :mod:`xnatpic.dicom.derived`) and returns
the DICOM value, or ``None`` when the input does not give one (an empty string, an unknown
enumeration); the engine then tries the next source of the row. Transforms never raise on
odd input: an unusable value is a missing value.

The enumerations are tables at the top of the module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

__all__ = [
    "ANATOMICAL_ORIENTATION",
    "PATIENT_POSITIONS",
    "SEX",
    "SPECIES",
    "TRANSFORMS",
    "parse_pv_datetime",
    "shift_da",
]

#: VisuSubjectPosition → PatientPosition (PS3.3 C.7.3.1.1.2).
PATIENT_POSITIONS: dict[str, str] = {
    "Head_Supine": "HFS",
    "Head_Prone": "HFP",
    "Head_Left": "HFDL",
    "Head_Right": "HFDR",
    "Foot_Supine": "FFS",
    "Foot_Prone": "FFP",
    "Foot_Left": "FFDL",
    "Foot_Right": "FFDR",
}

#: VisuSubjectSex / SUBJECT_sex_animal / SUBJECT_sex (any case) → PatientSex (M/F/O).
SEX: dict[str, str] = {
    "male": "M",
    "m": "M",
    "female": "F",
    "f": "F",
    "undefined": "O",
    "unknown": "O",
    "other": "O",
    "o": "O",
}

#: Words in SUBJECT_sex_animal that mean the animal was neutered → PatientSexNeutered.
NEUTERED_WORDS: tuple[str, ...] = ("NEUTER", "CASTRAT", "SPAY", "ALTERED")

#: VisuSubjectType / SUBJECT_type → AnatomicalOrientationType (PS3.3 C.7.3.1).
ANATOMICAL_ORIENTATION: dict[str, str] = {
    "QUADRUPED": "QUADRUPED",
    "BIPED": "BIPED",
    "Quadruped": "QUADRUPED",
    "OtherAnimal": "QUADRUPED",
    "Animal": "QUADRUPED",
    "Rat": "QUADRUPED",
    "Mouse": "QUADRUPED",
    "Rabbit": "QUADRUPED",
    "Dog": "QUADRUPED",
    "Cat": "QUADRUPED",
    "Pig": "QUADRUPED",
    "Biped": "BIPED",
    "Human": "BIPED",
    "Monkey": "BIPED",
    "Primate": "BIPED",
}

#: VisuSubjectType / SUBJECT_type → PatientSpeciesDescription. Body plans and generic
#: animal types say nothing of the species: "ANIMAL".
SPECIES: dict[str, str] = {
    "Quadruped": "ANIMAL",
    "Biped": "ANIMAL",
    "OtherAnimal": "ANIMAL",
    "Animal": "ANIMAL",
    "Rat": "RAT",
    "Mouse": "MOUSE",
    "Rabbit": "RABBIT",
    "Dog": "DOG",
    "Cat": "CAT",
    "Pig": "PIG",
    "Monkey": "MONKEY",
    "Primate": "PRIMATE",
}

_MONTHS = {m: k for k, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
#: PV 6 / 360: ``2016-07-18T12:44:12,538+0200`` (fraction and zone optional).
_ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[,.](\d+))?\s*([+-]\d\d:?\d\d)?$")
#: PV 5: ``12:44:12 18 Jul 2016``.
_PV5 = re.compile(r"^(\d\d):(\d\d):(\d\d)\s+(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})$")
#: PV dates: ``20160329`` or ``29 Mar 2016`` (SUBJECT_dbirth).
_DA = re.compile(r"^(\d{4})(\d\d)(\d\d)$")
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})$")
_CS_INVALID = re.compile(r"[^A-Z0-9 _]")


def _scalar(value: Any) -> Any:
    """First element of an array or sequence, the value itself otherwise."""
    if isinstance(value, np.ndarray):
        return value.ravel()[0].item() if value.size else None
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def _float(value: Any) -> float | None:
    value = _scalar(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def text(value: Any) -> str | None:
    """A stripped string; None for empty or whitespace-only values."""
    value = _scalar(value) if not isinstance(value, str) else value
    if value is None:
        return None
    result = str(value).strip()
    return result or None


def text_list(value: Any) -> list[str] | None:
    """A list of non-empty strings (multi-valued text)."""
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, np.ndarray):
        values = [str(v) for v in value.ravel()]
    elif isinstance(value, list | tuple):
        values = [str(v) for v in value]
    else:
        return None
    values = [v.strip() for v in values if str(v).strip()]
    return values or None


def code_string(value: Any) -> str | None:
    """An upper-case Code String: letters, digits, space and underscore."""
    result = text(value)
    if result is None:
        return None
    return _CS_INVALID.sub("_", result.upper()) or None


def person_name(value: Any) -> str | None:
    """A DICOM person name: ``Given Family`` becomes ``Family^Given``, ``Name`` ``Name^``.

    ParaVision stores free text; dciodvfy reads a name without ``^`` as the retired
    free-text form, so a single word becomes a family name (``po`` → ``po^``) and
    several words without ``^`` are read as "given names then family name". Names that
    already use ``^`` are kept as they are.
    """
    result = text(value)
    if result is None:
        return None
    if "^" in result:
        return result
    parts = result.split()
    if len(parts) > 1:
        return f"{parts[-1]}^{' '.join(parts[:-1])}"
    return f"{result}^"


def sequence_name(value: Any) -> str | None:
    """A method name for SequenceName (SH, 16 characters): ``User:``/``Bruker:`` is
    dropped when the whole name would not fit."""
    result = text(value)
    if result is None:
        return None
    if len(result) > 16 and ":" in result:
        result = result.split(":", 1)[1].strip()
    return result or None


def ds(value: Any) -> float | None:
    """A finite number (Decimal String; the engine formats it to 16 characters)."""
    return _float(value)


def ds_list(value: Any) -> list[float] | None:
    """A list of finite numbers."""
    if value is None:
        return None
    array = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    if array.size == 0 or not np.all(np.isfinite(array)):
        return None
    return [float(v) for v in array]


def integer(value: Any) -> int | None:
    """An integer (Integer String, US, UL...)."""
    number = _float(value)
    return None if number is None else round(number)


def positive_integer(value: Any) -> int | None:
    """An integer ≥ 1 (counts such as EchoTrainLength)."""
    number = integer(value)
    return number if number is not None and number >= 1 else None


def ms_to_s(value: Any) -> float | None:
    """Milliseconds → seconds (AcquisitionDuration)."""
    number = _float(value)
    return None if number is None else number / 1000.0


def yes_no(value: Any) -> str | None:
    """ParaVision Yes/No (or On/Off) → DICOM YES/NO."""
    result = text(value)
    if result is None:
        return None
    return {"yes": "YES", "on": "YES", "true": "YES", "no": "NO", "off": "NO",
            "false": "NO"}.get(result.lower())


def sex(value: Any) -> str | None:
    """MALE/FEMALE/UNDEFINED/UNKNOWN (any case) → M/F/O."""
    result = text(value)
    if result is None:
        return None
    key = result.lower()
    if key in SEX:
        return SEX[key]
    for word, code in (("female", "F"), ("male", "M")):  # MALE_CASTRATED, female_spayed
        if word in key:
            return code
    return None


def sex_neutered(value: Any) -> str | None:
    """ALTERED when SUBJECT_sex_animal says neutered/castrated/spayed, else None."""
    result = text(value)
    if result is None:
        return None
    upper = result.upper()
    if any(word in upper for word in NEUTERED_WORDS):
        return "ALTERED"
    return None


def patient_position(value: Any) -> str | None:
    """VisuSubjectPosition → HFS, HFP, FFS, FFP, HFDL, HFDR, FFDL, FFDR."""
    result = text(value)
    return None if result is None else PATIENT_POSITIONS.get(result)


def anatomical_orientation(value: Any) -> str | None:
    """VisuSubjectType → QUADRUPED or BIPED."""
    result = text(value)
    return None if result is None else ANATOMICAL_ORIENTATION.get(result)


def species(value: Any) -> str | None:
    """A species word, or VisuSubjectType mapped through :data:`SPECIES`."""
    result = text(value)
    if result is None:
        return None
    return SPECIES.get(result, result.upper() if result not in ANATOMICAL_ORIENTATION
                       else None)


def parse_pv_datetime(value: Any) -> tuple[datetime, str | None] | None:
    """Parse a ParaVision date-time into (naive local datetime, UTC offset ``±HHMM``).

    Accepts ``2016-07-18T12:44:12,538+0200`` (PV 6, 360) and ``12:44:12 18 Jul 2016``
    (PV 5, no zone). Returns None for anything else.
    """
    result = text(value)
    if result is None:
        return None
    match = _ISO.match(result)
    if match:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        fraction = match.group(7) or ""
        micro = int((fraction + "000000")[:6]) if fraction else 0
        zone = match.group(8)
        zone = zone.replace(":", "") if zone else None
        try:
            return datetime(year, month, day, hour, minute, second, micro), zone
        except ValueError:
            return None
    match = _PV5.match(result)
    if match:
        hour, minute, second, day = (int(g) for g in match.groups()[:4])
        month = _MONTHS.get(match.group(5).lower())
        if month is None:
            return None
        try:
            return datetime(int(match.group(6)), month, day, hour, minute, second), None
        except ValueError:
            return None
    return None


def _parse_date(value: Any) -> date | None:
    parsed = parse_pv_datetime(value)
    if parsed is not None:
        return parsed[0].date()
    result = text(value)
    if result is None:
        return None
    match = _DA.match(result)
    try:
        if match:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        match = _DAY_MONTH_YEAR.match(result)
        if match and match.group(2).lower() in _MONTHS:
            return date(int(match.group(3)), _MONTHS[match.group(2).lower()],
                        int(match.group(1)))
    except ValueError:
        return None
    return None


def da(value: Any) -> str | None:
    """A ParaVision date or date-time → DA ``YYYYMMDD``."""
    parsed = _parse_date(value)
    return None if parsed is None else parsed.strftime("%Y%m%d")


def tm(value: Any) -> str | None:
    """A ParaVision date-time → TM ``HHMMSS.FFFFFF`` (fraction only when present)."""
    parsed = parse_pv_datetime(value)
    if parsed is None:
        return None
    moment = parsed[0]
    result = moment.strftime("%H%M%S")
    if moment.microsecond:
        result += f".{moment.microsecond:06d}".rstrip("0")
    return result


def dt(value: Any) -> str | None:
    """A ParaVision date-time → DT ``YYYYMMDDHHMMSS.FFFFFF±ZZZZ``."""
    parsed = parse_pv_datetime(value)
    if parsed is None:
        return None
    moment, zone = parsed
    result = moment.strftime("%Y%m%d%H%M%S")
    if moment.microsecond:
        result += f".{moment.microsecond:06d}"
    return result + (zone or "")


def utc_offset(value: Any) -> str | None:
    """The ``±HHMM`` zone of a ParaVision date-time (TimezoneOffsetFromUTC)."""
    parsed = parse_pv_datetime(value)
    return None if parsed is None else parsed[1]


def shift_da(value: str, days: int) -> str:
    """Shift a DA value by ``days`` (de-identification); invalid dates come back empty."""
    try:
        moment = datetime.strptime(value.strip(), "%Y%m%d")
    except ValueError:
        return ""
    return (moment + timedelta(days=days)).strftime("%Y%m%d")


def identity(value: Any) -> Any:
    """The value unchanged (already in DICOM form; empty strings count as missing)."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


#: Transform name (used in the tables) → function.
TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "identity": identity,
    "text": text,
    "text_list": text_list,
    "code_string": code_string,
    "person_name": person_name,
    "sequence_name": sequence_name,
    "ds": ds,
    "ds_list": ds_list,
    "integer": integer,
    "positive_integer": positive_integer,
    "ms_to_s": ms_to_s,
    "yes_no": yes_no,
    "sex": sex,
    "sex_neutered": sex_neutered,
    "patient_position": patient_position,
    "anatomical_orientation": anatomical_orientation,
    "species": species,
    "da": da,
    "tm": tm,
    "dt": dt,
    "utc_offset": utc_offset,
}

"""What ``xnatpic upload`` needs of an IVIS folder: label fields and conversion.

The upload discovers IVIS click and sequence folders beside ParaVision studies
(:mod:`xnatpic.upload.discover`), plans their labels from the fields below with the same
templates (``{animal_id}``, ``{study_name}``, ``{date}``...), converts them with
:func:`convert_ivis_source` (routing text in PatientComments, like ParaVision) and
archives the raw folder as the session resource ``IVIS``.
"""

from __future__ import annotations

from pathlib import Path

from xnatpic.dicom.routing import XnatRouting
from xnatpic.optical.acquisition import IvisStudy
from xnatpic.optical.convert import convert_ivis
from xnatpic.optical.dicom import ivis_study_uid

__all__ = ["RAW_RESOURCE", "convert_ivis_source", "ivis_fields"]

#: Label of the session resource holding the raw IVIS folder (zipped).
RAW_RESOURCE = "IVIS"
#: Subject fields (the uploader's metadata names) from Living Image user labels.
_SUBJECT_LABELS = {"group": "Group", "sex": "Sex", "strain": "Animal Strain"}
#: Session fields from user labels.
_SESSION_LABELS = {"timepoint": "Time Point", "view": "View", "model": "Animal Model",
                   "cell_line": "Cell Line", "reporter": "Reporter", "treatment": "Treatment"}


def ivis_fields(study: IvisStudy) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Template fields, subject fields and session fields of an IVIS study.

    Template fields: ``animal_id`` (Animal Number), ``study_name`` (click number, or the
    sequence folder), ``date``/``time`` of the first click, ``study_uid`` (the converter's),
    ``click_number``, the user labels as ``group``, ``timepoint``, ``view``, ``strain``,
    ``sex``, ``model``, and the private ``_study_key``/``_subject_key`` the
    de-identification keys on.
    """
    first = study.first
    labels = first.labels
    when = first.acquired
    fields = {
        "animal_id": labels.animal,
        "study_name": study.path.name if study.sequence_info is not None
        else first.click_number,
        "click_number": first.click_number,
        "date": when.strftime("%Y%m%d") if when else "",
        "time": when.strftime("%H%M%S") if when else "",
        "study_uid": ivis_study_uid(study),
        "_study_key": study.key,
        "_subject_key": labels.animal,
    }
    for name, label in {**_SUBJECT_LABELS, **_SESSION_LABELS}.items():
        if labels.get(label):
            fields[name] = labels.get(label)
    subject = {k: labels.get(v) for k, v in _SUBJECT_LABELS.items() if labels.get(v)}
    session = {k: labels.get(v) for k, v in _SESSION_LABELS.items() if labels.get(v)}
    return fields, subject, session


def convert_ivis_source(source: str, output: str, deidentify: bool,
                        routing: XnatRouting | None = None) -> tuple[str, list[str]]:
    """Convert one IVIS folder for upload, as :func:`xnatpic.upload.prepare.convert_source`
    converts a ParaVision study: DICOM under ``output/dicom``, the report in
    ``output/conversion-report.json`` (paths masked when de-identifying).

    Returns
    -------
    (str, list of str)
        The report path and one line per failure.
    """
    report = convert_ivis(source, Path(output) / "dicom", deidentify=deidentify,
                          routing=routing)
    path = report.write(Path(output) / "conversion-report.json", mask_paths=deidentify)
    return str(path), [f"{source}: {r.reason}" for r in report.failed]

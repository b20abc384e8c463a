"""XNAT's DICOM-zip import service, for a local archive (what mri2dicom's ``--import`` uses).

On XNAT, ``POST /data/services/import?import-handler=DICOM-zip&PROJECT_ID=P&SUBJECT_ID=S
&EXPT_LABEL=E&dest=/archive`` sorts the zip's DICOM files into one scan per series of the
session, each with a DICOM resource, and answers the session's archive URI
(``/data/archive/projects/P/subjects/S/experiments/E``). Scan ids are the SeriesNumber as
written; a second series with a number already taken becomes ``N-MR1``, ``N-MR2``...
(xnat-rest-tests TestImport.java:580-600, as the test double copies it in
tests/double/prearchive.py). Here the files go to
``<archive>/P/arc001/E/SCANS/<id>/DICOM/`` and the session and scans are recorded in
``<archive>/.xnatpic/P.json``. Not reproduced: the prearchive (``dest`` other than
``/archive``), XNAT's file renaming (files keep their names), and archive conflicts.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from xnatpic.xnat.errors import ArchiveError
from xnatpic.xnat.metadata import update_project

__all__ = ["import_dicom_zip"]

_TAGS = ["SeriesNumber", "SeriesInstanceUID", "SeriesDescription", "Modality",
         "SOPInstanceUID"]


def _scan_id(taken: dict[str, str], number: str, series_uid: str, modality: str) -> str:
    base = number or "0"
    candidate, k = base, 0
    while candidate in taken and taken[candidate] != series_uid:
        k += 1
        candidate = f"{base}-{modality or 'MR'}{k}"
    return candidate


def import_dicom_zip(archive: Path, params: dict[str, str], body: bytes) -> str:
    """Archive a zip of DICOM into a local session; return the session's archive URI.

    Raises
    ------
    ArchiveError
        When the project does not exist, a parameter is missing, the body is not a zip
        or an entry is not DICOM (XNAT answers 400 for each).
    """
    project = params.get("PROJECT_ID") or params.get("project") or ""
    subject = params.get("SUBJECT_ID") or params.get("subject") or ""
    label = params.get("EXPT_LABEL") or params.get("session") or ""
    if params.get("import-handler") not in ("DICOM-zip", "gradual-DICOM"):
        raise ArchiveError(f"import-handler {params.get('import-handler')!r}: the local "
                           "archive takes DICOM-zip only")
    if not (Path(archive) / project / "arc001").is_dir():
        raise ArchiveError(f"unable to identify destination project {project!r}")
    if not subject or not label:
        raise ArchiveError("SUBJECT_ID and EXPT_LABEL are needed to archive locally")
    session = Path(archive) / project / "arc001" / label
    try:
        zf = zipfile.ZipFile(io.BytesIO(body))
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"the body is not a zip: {exc}") from exc
    with update_project(archive, project) as meta:
        known = meta.subject_by_id(subject)  # SUBJECT_ID: an accession id or a label
        row = meta.ensure_experiment(label, known[0] if known else subject,
                                     xsiType="xnat:mrSessionData")
        taken = {sid: str(scan.get("uid", "")) for sid, scan in row["scans"].items()}
        counts: dict[str, int] = {}
        details: dict[str, dict[str, Any]] = {}
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                data = zf.read(info)
                try:
                    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                                         specific_tags=_TAGS)
                    series_uid = str(ds.SeriesInstanceUID)
                except (InvalidDicomError, AttributeError, OSError) as exc:
                    raise ArchiveError(f"unable to parse {info.filename} as DICOM: {exc}"
                                       ) from exc
                modality = str(ds.get("Modality", "MR"))
                scan = _scan_id(taken, str(ds.get("SeriesNumber", "") or "").strip(),
                                series_uid, modality)
                taken[scan] = series_uid
                target = session / "SCANS" / scan / "DICOM" / Path(info.filename).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                counts[scan] = counts.get(scan, 0) + 1
                details[scan] = {"uid": series_uid, "modality": modality,
                                 "type": str(ds.get("SeriesDescription", "")),
                                 "series_description": str(ds.get("SeriesDescription", ""))}
        for scan, entry in details.items():
            folder = session / "SCANS" / scan / "DICOM"
            frames = sum(1 for p in folder.iterdir() if p.is_file())
            meta.set_scan(label, scan, xsiType="xnat:mrScanData", frames=frames, **entry)
    return f"/data/archive/projects/{project}/subjects/{subject}/experiments/{label}"

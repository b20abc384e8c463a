"""Find what to upload below the given paths: ParaVision studies and DICOM studies.

* A ParaVision study is a folder holding a ``subject`` file or scan folders (a folder with
  ``acqp`` or ``method``), or a ``.zip`` / ``.PvDatasets`` archive; the search does not
  descend into a study.
* DICOM files (Part 10, ``DICM`` preamble) found anywhere else are grouped by
  StudyInstanceUID: one study, one session, whatever folders its files are spread over.
  DICOM of a study also found as ParaVision (e.g. ParaVision's own export) is skipped
  with a warning: the converted study is the same session.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from xnatpic.errors import XnatpicError
from xnatpic.paravision.dataset import open_dataset
from xnatpic.upload.errors import SourceError

__all__ = ["Source", "discover_sources", "is_paravision_study"]

_log = logging.getLogger(__name__)
_ARCHIVES = (".zip", ".pvdatasets")
_SKIP_DIRS = {".git", "__pycache__"}
_SERIES_TAGS = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality",
                "SOPInstanceUID")
#: Keywords of a DICOM study offered to label templates.
_DICOM_FIELDS = ("PatientID", "PatientName", "StudyID", "StudyDescription", "StudyDate",
                 "StudyTime", "AccessionNumber", "PatientSex", "PatientSpeciesDescription",
                 "PatientBreedDescription", "InstitutionName", "StudyInstanceUID")


@dataclass
class Source:
    """One study to upload.

    Attributes
    ----------
    kind : {"paravision", "dicom"}
    path : Path
        The study folder or zip (ParaVision), or the common parent of the files (DICOM).
    name : str
        Folder or zip name (without ``.zip``): the key a metadata file may use.
    fields : dict
        Values label templates and metadata matching can use.
    files : list of Path
        DICOM files (DICOM sources only).
    headers : dict
        Header values read during discovery, by file (DICOM sources only).
    """

    kind: str
    path: Path
    name: str
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    headers: dict[Path, dict[str, str]] = field(default_factory=dict, repr=False)

    def fingerprint(self) -> str:
        """A digest of the source's file names and sizes: changes when the data change."""
        digest = hashlib.sha256(self.kind.encode())
        for rel, size in sorted(self._listing()):
            digest.update(f"{rel}\0{size}\n".encode())
        return digest.hexdigest()[:32]

    def _listing(self) -> Iterable[tuple[str, int]]:
        if self.kind == "dicom":
            return ((f.name, f.stat().st_size) for f in self.files)
        if self.path.is_file():
            return [(self.path.name, self.path.stat().st_size)]
        return ((p.relative_to(self.path).as_posix(), p.stat().st_size)
                for p in self.path.rglob("*") if p.is_file())


def is_paravision_study(path: Path) -> bool:
    """Whether a folder is a ParaVision study (``subject`` file or scan folders)."""
    if not path.is_dir():
        return False
    if (path / "subject").is_file():
        return True
    return any(child.is_dir() and ((child / "acqp").is_file() or (child / "method").is_file())
               for child in path.iterdir())


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in _ARCHIVES and zipfile.is_zipfile(path)


def _text(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = " ".join(map(str, value.ravel()))
    return "" if value is None else str(value).strip()


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _paravision_fields(path: Path) -> dict[str, str]:
    from xnatpic.conversion import output_labels

    fields: dict[str, str] = {}
    with open_dataset(path) as study:
        if study.subject is not None:
            for key in study.subject:
                if key.startswith("SUBJECT_"):
                    fields[key] = _text(study.subject.get(key))
        animal, session = output_labels(study)
        visu_date = ""
        for scan in study.scans:
            for reco in scan.recos:
                if (reco.path / "visu_pars").is_file():
                    visu = reco.visu_pars
                    fields.setdefault("VisuSubjectId", _text(visu.get("VisuSubjectId")))
                    fields.setdefault("VisuStudyId", _text(visu.get("VisuStudyId")))
                    fields.setdefault("VisuStudyUid", _text(visu.get("VisuStudyUid")))
                    fields.setdefault("VisuSubjectName", _text(visu.get("VisuSubjectName")))
                    visu_date = visu_date or _text(visu.get("VisuStudyDate"))
    fields["animal_id"] = fields.get("SUBJECT_id") or fields.get("VisuSubjectId") or animal
    fields["study_name"] = (fields.get("SUBJECT_study_name") or fields.get("VisuStudyId")
                            or session)
    stamp = fields.get("SUBJECT_date") or visu_date
    # "2022-03-16T11:51:35,534-0500" or "<11:51:35 16 Mar 2022>" (older ParaVision)
    if stamp[:4].isdigit() and len(_digits(stamp[:10])) == 8:
        fields["date"] = _digits(stamp[:10])
        fields["time"] = _digits(stamp[11:19])
    fields["study_uid"] = fields.get("VisuStudyUid", "")
    # what the DICOM writer's de-identification keys on (dicom/deidentify.py): not offered
    # to templates, used to derive the pseudonym and the date offset
    fields["_study_key"] = (fields.get("VisuStudyUid") or fields.get("SUBJECT_study_instance_uid")
                            or fields.get("VisuStudyId") or study.name)
    fields["_subject_key"] = (fields.get("VisuSubjectId") or fields.get("SUBJECT_id")
                              or fields.get("VisuSubjectName")
                              or fields.get("SUBJECT_name_string", ""))
    return fields


def _session_default(fields: dict[str, str]) -> None:
    name, date = fields.get("study_name", ""), fields.get("date", "")
    fields["study_name_date"] = name if (not date or date in _digits(name)) else f"{name}_{date}"


def _read_header(path: Path) -> pydicom.Dataset | None:
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            if fh.read(4) != b"DICM":
                return None
        return pydicom.dcmread(path, stop_before_pixels=True,
                               specific_tags=[*_DICOM_FIELDS, *_SERIES_TAGS])
    except (OSError, InvalidDicomError) as exc:
        _log.warning("%s: not readable as DICOM (%s); ignored", path, exc)
        return None


def _walk(root: Path, studies: list[Path], dicom_files: list[Path]) -> None:
    if _is_archive(root):
        studies.append(root)
        return
    if root.is_file():
        dicom_files.append(root)
        return
    if is_paravision_study(root):
        studies.append(root)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d in _SKIP_DIRS:
                continue
            if is_paravision_study(here / d):
                studies.append(here / d)
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = here / name
            if path.suffix.lower() in _ARCHIVES and _is_archive(path):
                studies.append(path)
            else:
                dicom_files.append(path)


def discover_sources(paths: Iterable[str | Path]) -> list[Source]:
    """Find the ParaVision and DICOM studies below ``paths``.

    Returns
    -------
    list of Source
        ParaVision studies in path order, then DICOM studies by StudyInstanceUID.

    Raises
    ------
    SourceError
        When a path does not exist or nothing to upload is found below the paths.
    """
    studies: list[Path] = []
    candidates: list[Path] = []
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise SourceError(f"{root}: no such file or folder")
        _walk(root, studies, candidates)
    sources: list[Source] = []
    for path in dict.fromkeys(studies):
        try:
            fields = _paravision_fields(path)
        except XnatpicError as exc:
            if path.is_file() and path not in roots:
                # any zip lying around (DICOM zips, reports...): not ours to refuse
                _log.warning("%s: not a ParaVision archive, skipped (%s)", path, exc)
                continue
            raise SourceError(f"{path}: cannot read the ParaVision study: {exc}") from exc
        name = path.stem if path.is_file() else path.name
        if name == "study" and not path.is_file():  # corpus layout <name>/study
            name = f"{path.parent.name}"
        fields["folder"] = name
        _session_default(fields)
        sources.append(Source("paravision", path, name, fields))
    by_uid: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for path in candidates:
        ds = _read_header(path)
        if ds is not None and "StudyInstanceUID" in ds:
            by_uid.setdefault(str(ds.StudyInstanceUID), []).append((path, ds))
    converted = {s.fields.get("study_uid") for s in sources} - {""}
    for uid, members in by_uid.items():
        if uid in converted:
            # e.g. ParaVision's own DICOM export beside the study: the same study, which
            # conversion already sends; uploading both would split or double the session
            _log.warning("%d DICOM file(s) of study %s (first: %s) skipped: the ParaVision "
                         "study with that StudyInstanceUID is uploaded instead",
                         len(members), uid, members[0][0])
            continue
        first = members[0][1]
        files = sorted(p for p, _ in members)
        parent = Path(os.path.commonpath([str(p.parent) for p in files]))
        fields = {k: _text(first.get(k)) for k in _DICOM_FIELDS if k in first}
        fields["animal_id"] = fields.get("PatientID") or fields.get("PatientName", "")
        fields["study_name"] = (fields.get("StudyDescription") or fields.get("StudyID")
                                or parent.name)
        fields["date"] = fields.get("StudyDate", "")
        fields["time"] = fields.get("StudyTime", "")[:6]
        fields["study_uid"] = uid
        fields["folder"] = parent.name
        _session_default(fields)
        headers = {p: {k: _text(ds.get(k)) for k in ("StudyInstanceUID", *_SERIES_TAGS)}
                   for p, ds in members}
        sources.append(Source("dicom", parent, parent.name, fields, files, headers))
    if not sources:
        raise SourceError(
            f"nothing to upload below {', '.join(map(str, roots))}: no ParaVision study "
            "(a folder with 'subject' or scan folders, or a .zip) and no DICOM file"
        )
    return sources

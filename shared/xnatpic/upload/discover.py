"""Find what to upload below the given paths: ParaVision studies and DICOM studies.

* A ParaVision study is a folder holding a ``subject`` file or scan folders (a folder with
  ``acqp`` or ``method``), or a ``.zip`` / ``.PvDatasets`` archive; the search does not
  descend into a study.
* DICOM files (Part 10, ``DICM`` preamble) found anywhere else are grouped by
  StudyInstanceUID: one study, one session, whatever folders its files are spread over.
  DICOM of a study also found as ParaVision (e.g. ParaVision's own export) is skipped:
  the converted study is the same session.

Nothing found is dropped silently: what cannot be uploaded below a folder is a
:class:`Problem`, ``failed`` (a corrupt or unsafe zip, a study whose ``subject`` file
cannot be read, a DICOM file that cannot be parsed) or ``skipped`` (a zip holding no
ParaVision study, a DICOM export of a converted study), and the upload reports it as a
row of its own while the other studies go on. A path named on the command line that
cannot be read is refused before anything is sent (:class:`SourceError`).
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

from xnatpic.errors import NotParaVisionError, XnatpicError
from xnatpic.optical.acquisition import is_ivis_folder
from xnatpic.paravision.dataset import is_study_folder, open_dataset
from xnatpic.paravision.limits import MAX_FOLDER_DEPTH
from xnatpic.upload.errors import SourceError

__all__ = ["Discovery", "Problem", "Source", "discover", "discover_sources",
           "is_paravision_study"]

_log = logging.getLogger(__name__)
_ARCHIVES = (".zip", ".pvdatasets")
_SKIP_DIRS = {".git", "__pycache__"}
_SERIES_TAGS = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality",
                "SOPInstanceUID", "SOPClassUID")
#: Media Storage Directory Storage (PS3.4 Annex F): a DICOMDIR.
_DICOMDIR = "1.2.840.10008.1.3.10"
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
    #: Subject and session fields the data themselves carry (IVIS user labels); a
    #: metadata file's columns take precedence.
    subject_defaults: dict[str, str] = field(default_factory=dict)
    session_defaults: dict[str, str] = field(default_factory=dict)

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


@dataclass(frozen=True)
class Problem:
    """Something found below the paths that is not uploaded, and why.

    Attributes
    ----------
    path : Path
    kind : {"paravision", "dicom"}
    status : {"failed", "skipped"}
        ``failed``: the data cannot be read (the upload exits 1); ``skipped``: not
        something to upload, or uploaded another way.
    reason : str
        One actionable sentence naming the file.
    """

    path: Path
    kind: str
    status: str
    reason: str


@dataclass
class Discovery:
    """The studies found below the paths and what was found but is not uploaded."""

    sources: list[Source] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def is_paravision_study(path: Path) -> bool:
    """Whether a folder is a ParaVision study (the reader's one rule:
    :func:`xnatpic.paravision.dataset.is_study_folder`)."""
    return is_study_folder(path)


def _is_archive(path: Path) -> bool:
    """A ``.zip`` / ``.PvDatasets`` file, readable or not (a corrupt one is reported)."""
    return path.is_file() and path.suffix.lower() in _ARCHIVES


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


def _sop_class(ds: pydicom.Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID")
                                         if meta is not None else "") or "")


def _read_header(path: Path) -> pydicom.Dataset | None:
    """The header of a Part 10 file; None for a file that is not DICOM at all.

    Raises
    ------
    SourceError
        When the file cannot be opened, or has the ``DICM`` preamble but cannot be parsed.
    """
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            if fh.read(4) != b"DICM":
                return None
        return pydicom.dcmread(path, stop_before_pixels=True,
                               specific_tags=[*_DICOM_FIELDS, *_SERIES_TAGS])
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc}); its study would "
                          "be uploaded without it") from exc
    except (InvalidDicomError, ValueError, EOFError) as exc:
        raise SourceError(f"{path}: a DICOM file that cannot be parsed ({exc}); its study "
                          "would be uploaded without it") from exc


def _unreadable(path: Path, exc: OSError) -> Problem:
    return Problem(path, "paravision", "failed",
                   f"{path}: cannot be searched ({exc.strerror or exc}); studies below it "
                   "are not uploaded")


def _walk(root: Path, studies: list[Path], dicom_files: list[Path],
          problems: list[Problem]) -> None:
    if _is_archive(root):
        studies.append(root)
        return
    if root.is_file():
        dicom_files.append(root)
        return
    try:
        study = is_paravision_study(root) or is_ivis_folder(root)
    except OSError as exc:
        raise SourceError(f"{root}: cannot be searched ({exc.strerror or exc})") from exc
    if study:
        studies.append(root)
        return

    def refused(exc: OSError) -> None:
        problems.append(_unreadable(Path(exc.filename or root), exc))

    for dirpath, dirnames, filenames in os.walk(root, onerror=refused):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d in _SKIP_DIRS:
                continue
            try:
                study = is_paravision_study(here / d) or is_ivis_folder(here / d)
            except OSError as exc:
                problems.append(_unreadable(here / d, exc))
                continue
            if study:
                studies.append(here / d)
            else:
                keep.append(d)
        if keep and len(here.relative_to(root).parts) >= MAX_FOLDER_DEPTH:  # issue 16
            problems.append(Problem(here, "paravision", "failed", (
                f"{here}: folders nested more than {MAX_FOLDER_DEPTH} deep below {root} "
                "are not searched; name a deeper folder on the command line")))
            keep = []
        dirnames[:] = keep
        for name in sorted(filenames):
            path = here / name
            if _is_archive(path):
                studies.append(path)
            else:
                dicom_files.append(path)


def _archive_problem(path: Path, exc: Exception, detail: str) -> Problem:
    """A zip below a folder that is not uploaded: failed when it cannot be read or is
    unsafe (the same error as when it is named directly), skipped when it is a sound zip
    holding no ParaVision study (DICOM zips, reports...)."""
    if not isinstance(exc, NotParaVisionError) or not zipfile.is_zipfile(path):
        return Problem(path, "paravision", "failed",
                       f"{path}: cannot read the ParaVision study: {detail}")
    return Problem(path, "paravision", "skipped",
                   f"{path}: a zip holding no ParaVision study; unzip it to upload the "
                   "DICOM it may hold")


def _paravision_source(path: Path) -> Source:
    """The source of a study folder or zip.

    Raises
    ------
    XnatpicError, OSError
        When the study (its ``subject`` file, a zip) cannot be read.
    """
    fields = _paravision_fields(path)
    name = path.stem if path.is_file() else path.name
    if name == "study" and not path.is_file():  # corpus layout <name>/study
        name = f"{path.parent.name}"
    fields["folder"] = name
    _session_default(fields)
    return Source("paravision", path, name, fields)


def _add_ivis_source(path: Path, roots: list[Path], found: Discovery) -> None:
    """The source of an IVIS folder, or a failed problem naming what cannot be read.

    Raises
    ------
    SourceError
        When the folder was named on the command line and cannot be read.
    """
    from xnatpic.optical.acquisition import open_ivis
    from xnatpic.optical.upload import ivis_fields
    from xnatpic.upload.metadata import xnat_subject_value

    try:
        fields, labels, session = ivis_fields(open_ivis(path))
    except (XnatpicError, OSError) as exc:
        reason = f"{path}: cannot read the IVIS folder: {exc}"
        if path in roots:
            raise SourceError(reason) from exc
        _log.warning("%s", reason)
        found.problems.append(Problem(path, "ivis", "failed", reason))
        return
    subject = {}
    for name, value in labels.items():
        try:
            subject[name] = xnat_subject_value(name, value)
        except ValueError as exc:  # e.g. a Sex label XNAT has no word for: not sent
            _log.warning("%s: user label %s %r not sent to XNAT: %s", path, name, value, exc)
    fields["folder"] = path.name
    _session_default(fields)
    found.sources.append(Source("ivis", path, path.name, fields,
                                subject_defaults=subject, session_defaults=session))


def discover(paths: Iterable[str | Path]) -> Discovery:
    """Find the ParaVision and DICOM studies below ``paths``, and what cannot be uploaded.

    Returns
    -------
    Discovery
        ParaVision studies in path order, then DICOM studies by StudyInstanceUID; and one
        :class:`Problem` per study, zip or DICOM file below a folder that is not uploaded.

    Raises
    ------
    SourceError
        When a path does not exist, a path named directly cannot be read, or nothing to
        upload (and nothing failing) is found below the paths.
    """
    studies: list[Path] = []
    candidates: list[Path] = []
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise SourceError(f"{root}: no such file or folder")
    found = Discovery()
    for root in roots:
        _walk(root, studies, candidates, found.problems)
    for path in dict.fromkeys(studies):
        if is_ivis_folder(path):  # IVIS Living Image click or sequence folder
            _add_ivis_source(path, roots, found)
            continue
        try:
            found.sources.append(_paravision_source(path))
        except (XnatpicError, OSError) as exc:
            detail = str(exc) if isinstance(exc, XnatpicError) else (
                f"{getattr(exc, 'filename', None) or path}: {exc.strerror or exc}")
            detail = detail.removeprefix(f"{path}: ")  # named once, in front
            if path in roots:
                raise SourceError(f"{path}: cannot read the ParaVision study: {detail}"
                                  ) from exc
            problem = (_archive_problem(path, exc, detail) if path.is_file() else Problem(
                path, "paravision", "failed",
                f"{path}: cannot read the ParaVision study: {detail}"))
            _log.warning("%s", problem.reason)
            found.problems.append(problem)
    by_uid: dict[str, list[tuple[Path, pydicom.Dataset]]] = {}
    for path in candidates:
        try:
            ds = _read_header(path)
        except SourceError as exc:
            if path in roots:
                raise
            _log.warning("%s", exc)
            found.problems.append(Problem(path, "dicom", "failed", str(exc)))
            continue
        if ds is None:
            continue  # not DICOM: notes, sidecars, ParaVision files...
        if ds.get("StudyInstanceUID"):
            by_uid.setdefault(str(ds.StudyInstanceUID), []).append((path, ds))
        elif _sop_class(ds) == _DICOMDIR:
            found.problems.append(Problem(path, "dicom", "skipped",
                                          f"{path}: a DICOMDIR (an index of files, not an "
                                          "image); the files it lists are uploaded"))
        else:
            found.problems.append(Problem(
                path, "dicom", "failed",
                f"{path}: a DICOM file without StudyInstanceUID belongs to no study and is "
                "not uploaded; its study would be uploaded without it"))
    converted = {s.fields.get("study_uid") for s in found.sources} - {""}
    for uid, members in by_uid.items():
        files = sorted(p for p, _ in members)
        parent = Path(os.path.commonpath([str(p.parent) for p in files]))
        if uid in converted:
            # e.g. ParaVision's own DICOM export beside the study: the same study, which
            # conversion already sends; uploading both would split or double the session
            reason = (f"{len(members)} DICOM file(s) of study {uid} (first: {files[0]}): the "
                      "ParaVision study with that StudyInstanceUID is uploaded instead")
            _log.warning("%s", reason)
            found.problems.append(Problem(parent, "dicom", "skipped", reason))
            continue
        first = members[0][1]
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
        found.sources.append(Source("dicom", parent, parent.name, fields, files, headers))
    if not found.sources and not any(p.status == "failed" for p in found.problems):
        skipped = "".join(f"; skipped {p.reason}" for p in found.problems)
        raise SourceError(
            f"nothing to upload below {', '.join(map(str, roots))}: no ParaVision study "
            "(a folder with 'subject' or scan folders, or a .zip) and no DICOM file"
            + skipped)
    return found


def discover_sources(paths: Iterable[str | Path]) -> list[Source]:
    """The studies of :func:`discover` (its problems are logged as warnings).

    Raises
    ------
    SourceError
        As :func:`discover`.
    """
    return discover(paths).sources

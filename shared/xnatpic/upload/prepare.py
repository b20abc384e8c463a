"""Turn a discovered study into what is sent: DICOM grouped by scan, raw zip, report.

ParaVision studies are converted on the fly (:func:`xnatpic.conversion.convert_study`)
into a work folder; DICOM studies are used as they are. Scans get the ids XNAT's DICOM
importer gives them: the SeriesNumber as written, ``N-MR1``, ``N-MR2``... for further
series with that number (xnat-rest-tests TestImport.testModifiedSeriesUIDs).
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from xnatpic import __version__
from xnatpic.dicom.routing import XnatRouting
from xnatpic.upload.discover import Source
from xnatpic.upload.errors import SessionConflictError, UploadError
from xnatpic.upload.retry import os_error
from xnatpic.upload.reuse import Converted, reuse_conversion

__all__ = ["RAW_RESOURCE", "PreparedSession", "ScanFiles", "SessionPlan", "convert_source",
           "dicom_headers", "prepare_session", "session_modality", "zip_files"]

_log = logging.getLogger(__name__)
#: Session resource holding the raw data, per kind of source converted on upload.
RAW_RESOURCE = {"paravision": "PARAVISION", "ivis": "IVIS"}
_HEADER_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
                "Modality", "SOPInstanceUID"]


@dataclass
class SessionPlan:
    """Where one study goes: project, subject and session labels and their fields."""

    source: Source
    project: str
    subject: str
    session: str
    subject_fields: dict[str, str] = field(default_factory=dict)
    session_fields: dict[str, str] = field(default_factory=dict)
    raw: bool = True
    #: Session date (YYYYMMDD; the shifted date when de-identified; "" when unknown).
    date: str = ""
    #: Labels and date come from de-identified values: nothing names the source.
    deidentified: bool = False
    #: StudyInstanceUID and session modality, known once the study is prepared.
    study_uid: str = ""
    modality: str = ""

    @property
    def key(self) -> str:
        """``subject/session``: how messages name the session."""
        return f"{self.subject}/{self.session}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (the ``--dry-run --json`` plan)."""
        return {
            "source": str(self.source.path), "kind": self.source.kind,
            "project": self.project, "subject": self.subject, "session": self.session,
            "subject_fields": self.subject_fields, "session_fields": self.session_fields,
            "raw_resource": self.raw and self.source.kind in RAW_RESOURCE,
            "study_uid": self.study_uid or self.source.fields.get("study_uid", ""),
        }


@dataclass
class ScanFiles:
    """The DICOM files of one scan (one series)."""

    id: str
    series_uid: str
    description: str
    modality: str
    files: list[Path]
    #: SOPInstanceUID of each file, in the order of ``files``; empty when the scan was
    #: indexed without them (a series this upload converted: :meth:`instance_uids`).
    sops: list[str] = field(default_factory=list)
    #: The files are this upload's own (converted into its work folder, removed once the
    #: session is sent): a destination on the same disk may link them instead of copying.
    owned: bool = False

    def instance_uids(self) -> list[str]:
        """SOPInstanceUID of each file, in the order of ``files`` (read from the files'
        headers the first time when the scan was indexed without them).

        Raises
        ------
        UploadError
            When a file's header cannot be read.
        """
        if len(self.sops) != len(self.files):
            self.sops = [dicom_headers(f)["SOPInstanceUID"] for f in self.files]
        return self.sops

    def only(self, sops: set[str]) -> ScanFiles:
        """The same scan restricted to the instances ``sops``."""
        keep = [(f, u) for f, u in zip(self.files, self.instance_uids(), strict=True)
                if u in sops]
        return ScanFiles(self.id, self.series_uid, self.description, self.modality,
                         [f for f, _ in keep], [u for _, u in keep], self.owned)

    @property
    def size(self) -> int:
        """Bytes of the files."""
        return sum(f.stat().st_size for f in self.files)


@dataclass
class PreparedSession:
    """A session ready to send."""

    plan: SessionPlan
    study_uid: str
    scans: list[ScanFiles]
    raw_zip: Path | None
    report: Path | None
    conversion_failures: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes of DICOM and raw data."""
        raw = self.raw_zip.stat().st_size if self.raw_zip else 0
        return raw + sum(s.size for s in self.scans)

    def manifest(self, held: dict[str, tuple[str, int]] | None = None) -> dict[str, Any]:
        """What a complete session holds; written last, it marks the session complete.

        ``held`` gives, per series UID, the scan id and file count the destination holds
        (XNAT may rename a scan or leave out files its filters drop); default: ours.
        """
        held = held or {s.series_uid: (s.id, len(s.files)) for s in self.scans}
        return {
            "xnatpic_version": __version__,
            "source": self.plan.session if self.plan.deidentified else self.plan.source.name,
            "fingerprint": self.plan.source.fingerprint(), "study_uid": self.study_uid,
            "scans": {held[s.series_uid][0]: {"series_uid": s.series_uid,
                                              "files": held[s.series_uid][1],
                                              "description": s.description}
                      for s in self.scans if s.series_uid in held},
            "raw": self.raw_zip.name if self.raw_zip else None,
        }


def convert_source(source: str, output: str, deidentify: bool,
                   routing: XnatRouting | None = None) -> tuple[str, list[str]]:
    """Convert one ParaVision study to classic DICOM (runs in a worker process); ``routing``
    (the plan's project, subject and session) goes into PatientComments for XNAT's DICOM
    routing (:mod:`xnatpic.dicom.routing`).

    Returns
    -------
    (str, list of str)
        The report path and one line per failed reco.
    """
    from xnatpic.conversion import convert_study

    report = convert_study(source, Path(output) / "dicom", fmt="dicom", deidentify=deidentify,
                           routing=routing)
    path = report.write(Path(output) / "conversion-report.json", mask_paths=deidentify)
    return str(path), [f"scan {r.scan} reco {r.reco}: {r.reason}" for r in report.failed]


def zip_files(files: list[Path], root: Path, destination: Path) -> Path:
    """Zip ``files`` (stored, names relative to ``root``) into ``destination``.

    The zip is written under a hidden temporary name and renamed when complete; a zip
    that fails half-way is removed, so a work folder kept with ``--work`` never holds a
    truncated zip under a name that looks finished, nor a partial file.

    Raises
    ------
    UploadError
        When the zip cannot be written (a full disk is not retried:
        :func:`xnatpic.upload.retry.os_error`).
    """
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            real_root = root.resolve()
            for f in sorted(files):
                if f.is_symlink() or real_root not in f.resolve().parents:
                    _log.warning("%s: symbolic link (or under one) not zipped", f)
                    continue  # issue 16: never copy what a link points at into the zip
                zf.write(f, f.relative_to(root).as_posix())
        partial.replace(destination)
    except OSError as exc:
        _remove_partial(partial)
        raise os_error(exc.filename or destination, exc) from exc
    except BaseException:  # interrupted (Ctrl-C): no partial zip left behind either
        _remove_partial(partial)
        raise
    return destination


def _remove_partial(partial: Path) -> None:
    """Remove a zip that failed half-way (a failure to remove it is named, not raised:
    the error that stopped the zip is the one to report)."""
    try:
        partial.unlink(missing_ok=True)
    except OSError as exc:
        _log.warning("%s: cannot remove the partial zip: %s", partial, exc.strerror or exc)


def dicom_headers(path: Path, known: dict[Path, dict[str, str]] | None = None
                  ) -> dict[str, str]:
    """The header values the upload groups files by (``known``: already read, by file).

    Raises
    ------
    UploadError
        When the header cannot be read.
    """
    if known and path in known:
        return known[path]
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except (OSError, InvalidDicomError) as exc:
        raise UploadError(f"{path}: cannot read DICOM header: {exc}") from exc
    return {k: "" if ds.get(k) is None else str(ds.get(k)) for k in _HEADER_TAGS}


def _converted_headers(report: Path, files: list[Path]) -> dict[Path, dict[str, str]]:
    """The headers of the files a ParaVision conversion wrote, one file read per series.

    A reco the conversion report lists as converted into one series, whose folder holds
    the number of files it reports, gives each of its files the header of the first one,
    without SOPInstanceUID (:meth:`ScanFiles.instance_uids` reads those when a resumed
    upload needs them). Other files (a reco of several series, a de-identified report
    naming no folder) are absent: :func:`_group` reads their headers one by one.
    """
    by_folder: dict[Path, list[Path]] = {}
    for path in files:
        by_folder.setdefault(path.parent, []).append(path)
    known: dict[Path, dict[str, str]] = {}
    for reco in json.loads(report.read_text(encoding="utf-8"))["recos"]:
        uids, output = reco.get("series_uids") or [], reco.get("output")
        members = by_folder.get(Path(output), []) if output else []
        if reco.get("status") != "converted" or len(uids) != 1 or not members \
                or len(members) != reco.get("files"):
            continue
        head = dicom_headers(members[0])
        if head["SeriesInstanceUID"] != uids[0]:
            continue
        series = {k: v for k, v in head.items() if k != "SOPInstanceUID"}
        known.update((path, series) for path in members)
    return known


#: Which modality names the session when a study mixes them (PET/CT is a PET session).
_MODALITY_ORDER = ("PT", "CT", "MR")


def session_modality(scans: list[ScanFiles]) -> str:
    """The modality that gives the session its XNAT type."""
    found = [s.modality for s in scans]
    for modality in _MODALITY_ORDER:
        if modality in found:
            return modality
    return found[0] if found else "MR"


def _group(files: list[Path], where: str, known: dict[Path, dict[str, str]] | None = None
           ) -> tuple[str, list[ScanFiles]]:
    scans: dict[str, ScanFiles] = {}
    by_series: dict[str, ScanFiles] = {}
    study_uids: set[str] = set()
    for path in files:
        head = dicom_headers(path, known)
        study_uids.add(head["StudyInstanceUID"])
        series = head["SeriesInstanceUID"]
        scan = by_series.get(series)
        if scan is None:
            # XNAT's scan id: SeriesNumber as written, N-MR1... for a number taken
            number = head["SeriesNumber"].strip() or "0"
            modality = head["Modality"] or "MR"
            scan_id, k = number, 0
            while scan_id in scans:
                k += 1
                scan_id = f"{number}-{modality}{k}"
            scan = ScanFiles(scan_id, series, head["SeriesDescription"], modality, [])
            scans[scan_id] = by_series[series] = scan
        scan.files.append(path)
        if "SOPInstanceUID" in head:
            scan.sops.append(head["SOPInstanceUID"])
    if len(study_uids) != 1:
        raise SessionConflictError(
            f"{where}: files of {len(study_uids)} studies ({sorted(study_uids)}); one session "
            "holds one StudyInstanceUID")
    ordered = sorted(scans.values(), key=_scan_order)
    return study_uids.pop(), ordered


def _scan_order(scan: ScanFiles) -> tuple[int, int, str]:
    number = scan.id.split("-", 1)[0]
    return (0, int(number), scan.id) if number.isdigit() else (1, 0, scan.id)


def prepare_session(plan: SessionPlan, work: Path, *, deidentify: bool = False,
                    converter: Any = None, converted: Converted | None = None
                    ) -> PreparedSession:
    """Convert (ParaVision) or index (DICOM) a study and zip its raw data.

    Parameters
    ----------
    plan : SessionPlan
    work : Path
        Empty work folder of this session.
    deidentify : bool
        Convert with the de-identification profile (then no raw data is uploaded).
    converter : callable, optional
        ``converter(source, output, deidentify, routing)`` like :func:`convert_source` (e.g. a
        process-pool submitter); default: in this process.
    converted : Converted, optional
        The user's ``xnatpic convert`` of this (ParaVision) study, used instead of
        converting once checked (:func:`xnatpic.upload.reuse.reuse_conversion`).

    Raises
    ------
    UploadError
        When nothing could be converted or the files do not form one study, or
        ``converted`` is not this study's conversion as the upload would make it.
    """
    source = plan.source
    failures: list[str] = []
    report: Path | None = None
    known = source.headers
    if source.kind in RAW_RESOURCE:
        run = converter or convert_source
        if source.kind == "ivis":  # light: converted in this process
            from xnatpic.optical.upload import convert_ivis_source as run
        elif converted is not None:
            run = partial(reuse_conversion, converted)
        routing = XnatRouting(plan.project, plan.subject, plan.session)
        report_path, failures = run(str(source.path), str(work), deidentify, routing)
        report = Path(report_path)
        files = sorted(p for p in (work / "dicom").rglob("*") if p.is_file()
                       and not p.name.endswith(".json"))
        if source.kind == "paravision":
            known = _converted_headers(report, files)
    else:
        if deidentify:
            raise UploadError(f"{source.path}: --deidentify applies to ParaVision conversion; "
                              "de-identify existing DICOM before uploading it")
        files = list(source.files)
    if not files:
        detail = "; ".join(failures) if failures else "no image scan to convert"
        raise UploadError(f"{source.path}: no DICOM to upload ({detail})")
    study_uid, scans = _group(files, str(source.path), known)
    plan.study_uid, plan.modality = study_uid, session_modality(scans)
    raw_zip = None
    if plan.raw and source.kind in RAW_RESOURCE:
        if source.path.is_file():
            raw_zip = source.path
        else:
            raw = [p for p in source.path.rglob("*") if p.is_file()]
            raw_zip = zip_files(raw, source.path.parent, work / "raw" / f"{source.name}.zip")
    return PreparedSession(plan, study_uid, scans, raw_zip, report, failures)

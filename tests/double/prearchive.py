"""The import service, prearchive and archiver of the XNAT double.

What XNAT does with ``POST /data/services/import?import-handler=DICOM-zip`` and
``POST /data/services/archive``, re-implemented from XNAT's source (NrgXnat/xnat-web, read
through the code index; lines are given as class.method because the index shows no line
numbers) and XNAT's REST tests (NrgXnat/xnat-rest-tests, mirrored; file:line):

* DicomZipImporter.importZipFile hands every zip entry to GradualDicomImporter, which writes
  it into a prearchive session found or created per (project, StudyInstanceUID, label)
  (PrearcDatabase.eitherGetOrCreateSession; TestImport.testPrearcGradualImport,
  TestImport.java:448: two imports of one study answer the same prearchive URI). Entries
  are written one by one, so an upload cut off mid-way leaves its complete entries in the
  prearchive session (state RECEIVING).
* Scan ids are the SeriesNumber as written; a second series with a number already taken
  becomes ``N-MR1`` (TestImport.testModifiedSeriesUIDs, TestImport.java:580-600).
* With ``dest=/archive`` DicomZipImporter.determiningDestination sets auto-archive;
  xmlBuild then archives through PrearcDatabase.archive and wraps any failure in
  ``ClientException("unable to archive for the Prearchive session")`` (HTTP 400;
  TestImport.java:81-90: the conflict status of DICOM-zip is 400), leaving the session in
  the prearchive (state CONFLICT or ERROR) where the next import of the study reuses it.
* The archiver (PrearcSessionArchiver.call / checkForConflicts / preventConcurrentArchiving)
  answers 423 "Duplicate archive attempt" when the prearchive session or the destination
  session is locked, 409 for a session under another subject, another modality (xsi type),
  another StudyInstanceUID, open workflows, and a merge without ``overwrite=append``;
  merging a file XNAT already holds raises DCMEntryConflict "Duplicate DICOM file
  uploaded." unless ``overwrite_files=true`` (MergeCatCatalog.merge;
  TestImport.testDataDuplicateScanFilesOverwriteTDeleteF / ...WithFileFlag,
  TestImport.java:297-326). Those 409s reach the client only through
  ``/data/services/archive``.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pydicom
from pydicom.errors import InvalidDicomError

if TYPE_CHECKING:
    from tests.double.server import Session, XnatDouble

__all__ = ["MODALITY_XSI", "ArchiveConflict", "PrearcSession", "file_name", "zip_entries"]

#: Session type per DICOM Modality (XNAT's SOP-class/modality → session type mapping in
#: dicom-xnat's session builders; xnat:mrSessionData, xnat:petSessionData,
#: xnat:ctSessionData are the types TestImport uses; the others not verified).
MODALITY_XSI = {"MR": "xnat:mrSessionData", "PT": "xnat:petSessionData",
                "CT": "xnat:ctSessionData", "US": "xnat:usSessionData",
                "OPT": "xnat:optSessionData", "OP": "xnat:opSessionData",
                "XA": "xnat:xaSessionData", "CR": "xnat:crSessionData",
                "DX": "xnat:dxSessionData", "MG": "xnat:mgSessionData",
                "NM": "xnat:nmSessionData"}
_OTHER_XSI = "xnat:otherDicomSessionData"

#: Messages of PrearcSessionArchiver (call, checkForConflicts, preventConcurrentArchiving).
LOCKED_PREARC = "Duplicate archive attempt.  Preachive session already archiving."
LOCKED_DEST = "Duplicate archive attempt.  Destination session in use."
DUPLICATE_FILE = "Duplicate DICOM file uploaded."
WRAPPED = "unable to archive for the Prearchive session"


class ArchiveConflict(Exception):
    """The archiver refused a prearchive session: ``status`` 409, 423 or 400."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class PrearcSession:
    """One prearchive session (PrearcDatabase row plus its files)."""

    project: str
    timestamp: str
    folder: str
    subject: str
    study_uid: str
    status: str = "RECEIVING"
    scans: dict[str, dict[str, bytes]] = field(default_factory=dict)
    series: dict[str, str] = field(default_factory=dict)
    modalities: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    uploaded: float = field(default_factory=time.time)
    lastmod: float = field(default_factory=time.time)
    message: str = ""

    @property
    def url(self) -> str:
        return f"/prearchive/projects/{self.project}/{self.timestamp}/{self.folder}"

    @property
    def xsi(self) -> str:
        """The session type its scans' modality gives (PET wins over CT and MR)."""
        found = set(self.modalities.values())
        for modality in ("PT", "CT", "MR"):
            if modality in found:
                return MODALITY_XSI[modality]
        return MODALITY_XSI.get(next(iter(sorted(found)), "MR"), _OTHER_XSI)

    def row(self) -> dict[str, str]:
        """The row of ``GET /data/prearchive/projects/P`` (PrearcUtils session columns)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.lastmod))
        return {"project": self.project, "timestamp": self.timestamp, "folderName":
                self.folder, "name": self.folder, "subject": self.subject, "tag":
                self.study_uid, "status": self.status, "url": self.url, "lastmod": stamp,
                "uploaded": time.strftime("%Y-%m-%d %H:%M:%S",
                                          time.localtime(self.uploaded)),
                "autoarchive": "Manual", "scan_date": "", "scan_time": ""}


def file_name(data: bytes | pydicom.Dataset) -> str:
    """The archive file name of a DICOM instance (its bytes or header).

    XNAT's default file namer builds it from StudyInstanceUID, SeriesNumber,
    InstanceNumber and a hash of the SOP class and instance UIDs (dicom-xnat's templatized
    namer; not verified here): the name does not give the SOPInstanceUID back, so clients
    cannot rely on names to know which instances are held.
    """
    ds = data if isinstance(data, pydicom.Dataset) else pydicom.dcmread(
        io.BytesIO(data), stop_before_pixels=True)
    digest = hashlib.sha1(f"{ds.SOPClassUID}{ds.SOPInstanceUID}".encode()).hexdigest()[:10]
    return f"{ds.StudyInstanceUID}-{ds.get('SeriesNumber', '')}-{ds.get('InstanceNumber', '')}" \
           f"-{digest}.dcm"


def zip_entries(body: bytes, *, complete_only: bool = False) -> Iterator[tuple[str, bytes]]:
    """(name, data) of each file entry, read from the local headers as a stream is read.

    ``complete_only`` reads a cut-off body: entries whose data did not fully arrive are
    left out, as ZipInputStream (DicomZipImporter.importZipFile) fails on them.
    """
    pos = 0
    while pos + 30 <= len(body) and body[pos:pos + 4] == b"PK\x03\x04":
        (_, flags, method, _, _, _, csize, _, nlen, xlen) = struct.unpack(
            "<HHHHHIIIHH", body[pos + 4:pos + 30])
        name = body[pos + 30:pos + 30 + nlen].decode("utf-8", "replace")
        start = pos + 30 + nlen + xlen
        if flags & 0x08 or csize == 0xFFFFFFFF:
            if complete_only:
                return
            yield from _central_entries(body)
            return
        end = start + csize
        if end > len(body):
            return
        raw = body[start:end]
        data = zlib.decompress(raw, -15) if method == 8 else raw
        if not name.endswith("/"):
            yield name, data
        pos = end


def _central_entries(body: bytes) -> Iterator[tuple[str, bytes]]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                yield info.filename, zf.read(info)


def _scan_id(prearc: PrearcSession, number: str, series_uid: str, modality: str) -> str:
    """SeriesNumber as written; ``N-MR1``, ``N-MR2``... for further series with that number
    (TestImport.testModifiedSeriesUIDs, TestImport.java:580-600)."""
    base = number or "0"
    candidate, k = base, 0
    while candidate in prearc.series and prearc.series[candidate] != series_uid:
        k += 1
        candidate = f"{base}-{modality or 'MR'}{k}"
    return candidate


class Importer:
    """The import service and archiver working on an :class:`XnatDouble`'s state."""

    def __init__(self, double: XnatDouble) -> None:
        self.double = double
        self.prearc: dict[str, PrearcSession] = {}  # by url

    # -- GradualDicomImporter ------------------------------------------------------------
    def _prearc_for(self, project: str, subject: str, label: str, study_uid: str
                    ) -> PrearcSession:
        """Find the prearchive session of (project, study, label) or create it
        (PrearcDatabase.eitherGetOrCreateSession): any state is reused, a refused copy
        (CONFLICT, ERROR) included."""
        for session in self.prearc.values():
            if (session.project, session.folder, session.study_uid) == (project, label,
                                                                          study_uid):
                if session.status not in ("ARCHIVING",):
                    session.status = "RECEIVING"
                return session
        stamp = time.strftime("%Y%m%d_%H%M%S") + f"{self.double.tick():03d}"
        session = PrearcSession(project, stamp, label, subject, study_uid)
        self.prearc[session.url] = session
        return session

    def receive(self, params: dict[str, str], entries: Iterator[tuple[str, bytes]]
                ) -> list[PrearcSession]:
        """Write each entry into its prearchive session; return the sessions touched."""
        project = params.get("PROJECT_ID") or params.get("project") or ""
        subject = params.get("SUBJECT_ID") or params.get("subject") or ""
        label = params.get("EXPT_LABEL") or params.get("session") or ""
        double = self.double
        if project not in double.projects:
            from tests.double.server import HttpError
            raise HttpError(400, "unable to identify destination project")
        touched: list[PrearcSession] = []
        for name, data in entries:
            try:
                ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                                     specific_tags=["StudyInstanceUID", "SeriesNumber",
                                                    "SeriesInstanceUID", "SOPInstanceUID",
                                                    "Modality", "SOPClassUID",
                                                    "InstanceNumber", "SeriesDescription"])
                study, sop = str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
            except (InvalidDicomError, AttributeError, OSError) as exc:
                from tests.double.server import HttpError
                raise HttpError(400, f"unable to parse {name} as DICOM: {exc}") from exc
            number = str(ds.get("SeriesNumber", "") or "").strip()
            with double.lock:
                double.deliveries[sop] += 1
                blocked = double.series_filter
                if blocked and re.search(blocked, str(ds.get("SeriesDescription", ""))):
                    # the project's series import filter (blacklist): dropped silently
                    # (xnat-rest-tests TestSeriesImportFilters.java:78-86)
                    continue
                prearc = self._prearc_for(project, subject, label or study, study)
                scan = _scan_id(prearc, number, str(ds.SeriesInstanceUID),
                                str(ds.get("Modality", "MR")))
                prearc.series[scan] = str(ds.SeriesInstanceUID)
                prearc.modalities[scan] = str(ds.get("Modality", "MR"))
                prearc.scans.setdefault(scan, {})[sop] = data
                prearc.names[sop] = file_name(ds)
                prearc.lastmod = time.time()
                if prearc not in touched:
                    touched.append(prearc)
            if double.file_delay:
                time.sleep(double.file_delay)
        return touched

    # -- PrearcSessionArchiver -----------------------------------------------------------
    def archive(self, prearc: PrearcSession, *, merge: bool, overwrite_files: bool,
                pause: float = 0.0) -> str:
        """Move a prearchive session into the archive; its archive URI.

        Raises
        ------
        ArchiveConflict
            423 when it or its destination is being archived, 409 for the archiver's
            conflicts; the session then stays in the prearchive (CONFLICT or ERROR).
        """
        double = self.double
        with double.lock:
            if prearc.status == "ARCHIVING":
                raise ArchiveConflict(423, LOCKED_PREARC)
            existing = double.sessions.get((prearc.project, prearc.folder))
            if existing is not None and existing.archiving:
                raise ArchiveConflict(423, LOCKED_DEST)
            prearc.status = "ARCHIVING"
            if existing is not None:
                existing.archiving = True
        try:
            if pause:
                time.sleep(pause)
            with double.lock:
                try:
                    # what the archive holds now (another request may have created it)
                    current = double.sessions.get((prearc.project, prearc.folder))
                    session = self._merge(prearc, current, merge, overwrite_files)
                except ArchiveConflict as exc:
                    prearc.status = "CONFLICT" if exc.status == 409 else "ERROR"
                    prearc.message = exc.message
                    raise
                self.prearc.pop(prearc.url, None)
                prearc.status = "ARCHIVED"
        finally:
            if existing is not None:
                existing.archiving = False
        return (f"/data/archive/projects/{session.project}/subjects/{session.subject}/"
                f"experiments/{session.label}")

    def _merge(self, prearc: PrearcSession, existing: Session | None, merge: bool,
               overwrite_files: bool) -> Session:
        double = self.double
        if existing is not None:
            self._check_conflicts(prearc, existing, merge)
        session = existing or double.new_session(prearc.project, prearc.subject,
                                                 prearc.folder, prearc.xsi)
        renames: dict[str, str] = {}
        for scan, files in prearc.scans.items():
            target = scan
            k = 0
            # checkForConflicts: same number, other series UID -> needsScanIdCorrection
            while target in session.series and session.series[target] != prearc.series[scan]:
                k += 1
                target = f"{scan}-{prearc.modalities.get(scan, 'MR')}{k}"
            renames[scan] = target
            held = session.scans.get(target, {})
            if not overwrite_files and any(sop in held for sop in files):
                # MergeCatCatalog.merge: DCMEntryConflict without overwrite_files
                raise ArchiveConflict(409, DUPLICATE_FILE)
        for scan, files in prearc.scans.items():
            target = renames[scan]
            session.scans.setdefault(target, {}).update(files)
            session.names.update({sop: prearc.names[sop] for sop in files
                                  if sop in prearc.names})
            session.series[target] = prearc.series[scan]
        if not session.study_uid:
            session.study_uid = prearc.study_uid
        return session

    def _check_conflicts(self, prearc: PrearcSession, existing: Session, merge: bool
                         ) -> None:
        """PrearcSessionArchiver.preventConcurrentArchiving and checkForConflicts."""
        if existing.workflows:
            raise ArchiveConflict(409, f"Session processing may already be in progress: "
                                       f"{existing.workflows[0]}.  Concurrent modification "
                                       "is discouraged.")
        if not merge:
            raise ArchiveConflict(409, "Session already exists with matching files.")
        if existing.subject != prearc.subject and prearc.subject:
            raise ArchiveConflict(409, f"Invalid modification of session subject via "
                                       f"archive process: {existing.label} Already Exists "
                                       "for another Subject")
        if existing.xsi != prearc.xsi:
            raise ArchiveConflict(409, "Invalid modification of session modality via "
                                       f"archive process ({existing.xsi} vs {prearc.xsi})")
        if existing.study_uid and existing.study_uid != prearc.study_uid:
            raise ArchiveConflict(409, "Invalid modification of session UID via archive "
                                       "process.")

    # -- the import service ----------------------------------------------------------------
    def import_zip(self, params: dict[str, str], body: bytes, *, cut: bool = False,
                   pause: float = 0.0) -> list[str]:
        """``POST /data/services/import`` with the DICOM-zip handler: URIs answered.

        ``cut``: the body was cut off; its complete entries stay in the prearchive and the
        request ends without an answer. ``pause``: seconds of archiving work (a slow
        import that may outlive the client's timeout; it completes all the same).
        """
        from tests.double.server import HttpError

        entries = zip_entries(body, complete_only=cut)
        touched = self.receive(params, entries)
        if cut:
            return []
        if not touched:
            raise HttpError(400, "No DICOM files were found in the uploaded archive")
        dest = params.get("dest", "")
        auto = dest.startswith("/archive") and not self.double.prearchive
        if not auto:
            with self.double.lock:
                for prearc in touched:
                    prearc.status = "READY"
            if self.double.prearchive and self.double.project_autoarchive:
                # the project's own auto-archive setting, checked before the request's
                for prearc in touched:
                    threading.Thread(target=self._archive_later, args=(prearc,),
                                     daemon=True).start()
            return ["/data" + p.url for p in touched]
        merge = params.get("overwrite", "") in ("append", "delete")
        overwrite_files = params.get("overwrite_files", "").lower() == "true"
        uris = []
        for prearc in touched:
            try:
                uris.append(self.archive(prearc, merge=merge, overwrite_files=overwrite_files,
                                         pause=pause))
            except ArchiveConflict as exc:
                # DicomZipImporter.xmlBuild wraps every archiving failure (400)
                raise HttpError(400, WRAPPED) from exc
        return uris

    def _archive_later(self, prearc: PrearcSession) -> None:
        time.sleep(self.double.archive_delay)
        if prearc.url not in self.prearc:
            return  # archived by the client meanwhile
        try:
            uri = self.archive(prearc, merge=True, overwrite_files=False)
        except ArchiveConflict:
            return
        with self.double.lock:
            self.double.archived_from[prearc.url] = uri

"""XNAT server destination over the project's one XNAT transport
(:class:`xnatpic.xnat.http.XnatConnection`), one connection and XNAT session per worker
thread; zips and files are streamed from disk, never read whole into memory.

Statuses are read by this module, whatever the body (XNAT's Restlet HTML status pages
included), against what each request accepts.

Credentials: XNAT_USER/XNAT_PASS from the environment, else ``~/.netrc`` (or the file
NETRC names); never on the command line or in the address, never logged. HTTPS
certificates are verified unless ``verify=False``.

Requests (all idempotent; the runner retries them on 5xx, timeouts, dropped connections):

* ``GET /data/projects/P``, and ``PUT /data/projects/P`` when it is missing;
* ``GET /data/projects/P/experiments/E`` (where the session is, under which subject, its
  type, StudyInstanceUID and scans), ``GET /data/projects/P/experiments`` (the same study
  under another label);
* ``PUT /data/projects/P/subjects/S`` and ``.../experiments/E?xsiType=`` the type of the
  study's modality (XNAT refuses to merge another modality into a session);
* ``POST /data/services/import?import-handler=DICOM-zip&PROJECT_ID&SUBJECT_ID&EXPT_LABEL
  &overwrite=append&dest=/archive`` per batch of files XNAT does not hold; when XNAT
  answers with a prearchive path, ``POST /data/services/archive?src=...``;
* ``GET /data/prearchive/projects/P`` for what an import left behind (cut off, refused,
  still archiving), then ``POST /data/services/archive`` (XNAT's own answer: 423, 409 with
  its message) or ``DELETE`` of the refused copy, which XNAT would otherwise reuse;
* ``PUT .../resources/LABEL`` and ``.../resources/LABEL/files/NAME?inbody=true``;
* fields as ``PUT`` query parameters (``xnat:subjectData/fields/field[name=x]/field=v``).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import pydicom

from xnatpic.upload.errors import (
    HttpStatusError,
    ProjectNotFoundError,
    ServerBusyError,
    SessionConflictError,
    TransientError,
    UploadError,
)
from xnatpic.upload.metadata import DEMOGRAPHIC_ELEMENTS, xnat_subject_fields
from xnatpic.upload.prepare import ScanFiles, SessionPlan
from xnatpic.upload.target import MANIFEST_NAME
from xnatpic.upload.xnat_types import SESSION_XSI, session_xsi
from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.http import XnatConnection, XnatResponse, XnatTransportError, xnat_message
from xnatpic.xnat.rest import load_credentials

__all__ = ["SESSION_XSI", "STUDY_UID_FIELD", "ServerTarget", "field_query", "session_xsi"]

_log = logging.getLogger(__name__)

#: Session custom field holding the StudyInstanceUID (guards against a label clash).
STUDY_UID_FIELD = "xnatpic_study_uid"
#: Where a subject's demographics are set: xnat:subjectData's element ``demographics``, of
#: type xnat:abstractDemographicData, here its extension xnat:demographicData (xnat.xsd).
_DEMOGRAPHICS = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/"
#: XNAT's own subject fields, by metadata column (values mapped by
#: :func:`xnatpic.upload.metadata.xnat_subject_fields`); the rest are custom fields.
_SUBJECT_NATIVE = {
    "group": "xnat:subjectData/group",
    **{column: _DEMOGRAPHICS + element for column, element in DEMOGRAPHIC_ELEMENTS.items()},
}
# Session type per DICOM Modality: xnatpic.upload.xnat_types (XNAT refuses to merge
# another modality into a session: PrearcSessionArchiver.checkForConflicts;
# TestImport.java:224-240).
#: Prearchive states in which XNAT is still working on a session (PrearcUtils.PrearcStatus).
_BUSY_STATES = {"RECEIVING", "ARCHIVING", "BUILDING", "QUEUED", "QUEUED_ARCHIVING",
                "QUEUED_BUILDING", "MOVING", "QUEUED_MOVING", "DELETING", "QUEUED_DELETING",
                "SEPARATING", "QUEUED_SEPARATING"}
#: A RECEIVING session untouched this long was cut off (XNAT's session idle time is
#: longer; ours only decides whether to wait for it).
RECEIVING_IDLE = 30.0
_SCAN_IN_URI = re.compile(r"/scans/([^/]+)/resources/")


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _message(resp: XnatResponse) -> str:
    """XNAT's message in an answer: the ``<h3>`` (or ``<p>``) of a Restlet status page,
    else the body with its white space collapsed."""
    return xnat_message(resp.text)


def field_query(xsi: str, fields: dict[str, str], native: dict[str, str] | None = None
                ) -> dict[str, str]:
    """Query parameters that set ``fields`` on an object of type ``xsi``.

    Examples
    --------
    >>> field_query("xnat:mrSessionData", {"timepoint": "d7"})
    {'xnat:mrSessionData/fields/field[name=timepoint]/field': 'd7'}
    """
    out = {}
    for name, value in fields.items():
        key = (native or {}).get(name) or f"{xsi}/fields/field[name={name.lower()}]/field"
        out[key] = value
    return out


class ServerTarget:
    """Sessions into an XNAT server.

    Parameters
    ----------
    server : str
        XNAT's address (https://...).
    verify : bool
        Verify HTTPS certificates.
    timeout : float
        Seconds per request (uploads included).
    archive_wait : float
        Seconds to follow XNAT's work on an import (a timed-out import, a session being
        archived) before giving up.
    create_project : bool
        Create the project when missing.
    """

    name = "server"
    stateful = True
    sends_zip = True

    def __init__(self, server: str, *, verify: bool = True, timeout: float = 300.0,
                 archive_wait: float = 600.0, create_project: bool = True) -> None:
        try:
            self._credentials = load_credentials(server)
        except XnatRequestError as exc:
            raise UploadError(str(exc)) from exc
        self.server = self._credentials.host
        self.verify = verify
        self.timeout = timeout
        self.archive_wait = archive_wait
        self.create_project = create_project
        #: seconds between looks at XNAT's work in progress
        self.poll = 0.5
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[XnatConnection] = []
        #: per session (plan.key): absent when last asked; its resource labels
        self._absent: set[str] = set()
        self._labels: dict[str, set[str]] = {}

    # -- transport ---------------------------------------------------------------------
    def _connection(self) -> XnatConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            creds = self._credentials
            conn = XnatConnection(creds.host, creds.user, creds.password,
                                  verify=self.verify, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _request(self, method: str, path: str, what: str, *,
                 accepted: tuple[int, ...] = (200, 201), query: dict[str, str] | None = None,
                 body: Path | None = None, content_type: str | None = None,
                 download: Path | None = None) -> XnatResponse:
        """One request; its status checked against ``accepted`` whatever the body.

        Raises
        ------
        TransientError
            5xx, timeouts, dropped connections (the cause is the XnatTransportError,
            whose ``timeout`` tells an answer that never came); ServerBusyError for 423.
        HttpStatusError
            Any other status not accepted (with XNAT's message).
        UploadError
            XNAT redirected to another address (not followed).
        """
        headers = {"Content-Type": content_type} if content_type else None
        try:
            resp = self._connection().request(method.upper(), path, query=query, body=body,
                                              headers=headers, download=download)
        except XnatTransportError as exc:
            raise TransientError(f"{what}: {exc}") from exc
        except XnatRequestError as exc:
            raise UploadError(f"{what}: {exc}") from exc
        if resp.status in accepted:
            return resp
        code, message = resp.status, _message(resp)
        if code == 423:
            raise ServerBusyError(f"{what}: XNAT is still archiving this session (HTTP 423 "
                                  f"{message}); waiting before trying again")
        if code >= 500:
            raise TransientError(f"{what}: HTTP {code} {message}".rstrip())
        hint = " (check XNAT_USER/XNAT_PASS or ~/.netrc)" if code in (401, 403) else ""
        raise HttpStatusError(f"{what}: HTTP {code}{hint} {message}".rstrip(), status=code,
                              message=message)

    def _json(self, path: str, what: str, query: dict[str, str] | None = None) -> Any:
        resp = self._request("get", path, what, query={"format": "json", **(query or {})},
                             accepted=(200, 404))
        if resp.status == 404:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise TransientError(f"{what}: answer is not JSON: {xnat_message(resp.text, 100)}"
                                 ) from exc

    @staticmethod
    def _rows(answer: Any) -> list[dict[str, Any]]:
        if answer is None:
            return []
        try:
            return list(answer["ResultSet"]["Result"])
        except (TypeError, KeyError) as exc:
            raise TransientError(f"expected a ResultSet, got {str(answer)[:100]}") from exc

    def _session_path(self, plan: SessionPlan) -> str:
        return (f"/data/projects/{_q(plan.project)}/subjects/{_q(plan.subject)}/experiments/"
                f"{_q(plan.session)}")

    def _project_session_path(self, plan: SessionPlan) -> str:
        return f"/data/projects/{_q(plan.project)}/experiments/{_q(plan.session)}"

    # -- Target ------------------------------------------------------------------------
    def check_project(self, project: str) -> None:
        """Make sure the project exists: create it when missing (unless told not to).

        XNAT creates a project on ``PUT /data/projects/<id>`` for users allowed to create
        projects; a refusal is reported with what to do.

        Raises
        ------
        ProjectNotFoundError
            When the project is missing and may not or cannot be created.
        """
        resp = self._request("get", f"/data/projects/{_q(project)}", f"project {project}",
                             query={"format": "json"}, accepted=(200, 403, 404))
        if resp.status == 200:
            return
        if not self.create_project:
            raise ProjectNotFoundError(
                f"project {project!r} does not exist on {self.server} or you cannot see it "
                f"(HTTP {resp.status}); create it in XNAT first, or drop "
                "--no-create-project")
        created = self._request(
            "put", f"/data/projects/{_q(project)}", f"project {project}: create",
            query={"xsiType": "xnat:projectData", "name": project,
                   "secondary_ID": project, "accessibility": "private"},
            accepted=(200, 201, 403, 409))
        if created.status == 409:
            raise ProjectNotFoundError(
                f"project {project!r} cannot be created on {self.server}: another project "
                f"already uses that name or secondary ID (HTTP 409: {_message(created)}); "
                "pick another --project, or use the existing project's id")
        if created.status == 403:
            raise ProjectNotFoundError(
                f"project {project!r} does not exist on {self.server} and XNAT refused to "
                f"create it (HTTP 403: {_message(created)}): this account may not create "
                "projects, the id belonged to a deleted project (XNAT never reuses one), "
                "or another project already uses that name or secondary ID; ask an XNAT "
                "administrator, or pick another --project")
        _log.warning("created project %s on %s (private)", project, self.server)

    def manifest(self, plan: SessionPlan) -> dict[str, Any] | None:
        """The manifest file of the CONVERSION resource, when present."""
        path = f"{self._session_path(plan)}/resources/CONVERSION/files/{MANIFEST_NAME}"
        resp = self._request("get", path, f"{plan.key}: manifest", accepted=(200, 404))
        if resp.status == 404:
            return None
        try:
            return json.loads(resp.body)
        except ValueError:
            return None

    def _session_item(self, plan: SessionPlan) -> dict[str, Any] | None:
        answer = self._json(self._project_session_path(plan), f"{plan.key}: session")
        if answer is None:
            return None
        try:
            return dict(answer["items"][0])
        except (KeyError, IndexError, TypeError):
            return {}

    def _subject_id(self, plan: SessionPlan) -> str | None:
        answer = self._json(f"/data/projects/{_q(plan.project)}/subjects/{_q(plan.subject)}",
                            f"{plan.key}: subject")
        try:
            return None if answer is None else str(answer["items"][0]["data_fields"]["ID"])
        except (KeyError, IndexError, TypeError):
            return None

    def study_uid(self, plan: SessionPlan) -> str | None:
        """The session's StudyInstanceUID (field, else its ``UID``), None when absent.

        Raises
        ------
        SessionConflictError
            When the label exists in the project under another subject: a PUT there
            would move it (not done), or its type is not the study's modality.
        """
        item = self._session_item(plan)
        if item is None:
            with self._lock:
                self._absent.add(plan.key)
            return None
        data = item.get("data_fields", {})
        owner = str(data.get("subject_ID", ""))
        if owner and owner != self._subject_id(plan):
            raise SessionConflictError(
                f"{plan.key}: session {plan.session!r} of project {plan.project} belongs to "
                f"another subject ({owner}), not {plan.subject!r}; not moved. Choose "
                "another label with --session-template, or move it in XNAT")
        xsi = str(item.get("meta", {}).get("xsi:type", ""))
        if plan.modality and xsi and xsi != session_xsi(plan.modality):
            raise SessionConflictError(
                f"{plan.key}: session {plan.session!r} is an {xsi} but the study is "
                f"{plan.modality} ({session_xsi(plan.modality)}); XNAT refuses to merge "
                "another modality. Choose another label with --session-template")
        for child in item.get("children", []):
            if child.get("field") == "fields/field":
                for entry in child.get("items", []):
                    field = entry.get("data_fields", {})
                    if field.get("name") == STUDY_UID_FIELD:
                        return str(field.get("field", ""))
        return str(data.get("UID", ""))

    def _same_study_elsewhere(self, plan: SessionPlan) -> str | None:
        """Label of another session of the project holding the study (XNAT has no
        StudyInstanceUID uniqueness check; the ``UID`` column is not verified)."""
        rows = self._rows(self._json(f"/data/projects/{_q(plan.project)}/experiments",
                                     f"{plan.key}: sessions", {"columns": "ID,label,UID"}))
        for row in rows:
            if plan.study_uid and row.get("UID") == plan.study_uid and \
                    row.get("label") != plan.session:
                return str(row.get("label"))
        return None

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """PUT subject, and session when absent, as the type of the study's modality.

        Raises
        ------
        SessionConflictError
            When the project holds the study under another label.
        """
        plan.study_uid = plan.study_uid or study_uid
        with self._lock:
            absent = plan.key in self._absent
            self._absent.discard(plan.key)
        if not absent and self._session_item(plan) is not None:
            return
        other = self._same_study_elsewhere(plan)
        if other is not None:
            raise SessionConflictError(
                f"{plan.key}: project {plan.project} already holds study {plan.study_uid} "
                f"as session {other!r}; not stored twice. Upload it under that label "
                "(--session-template) or delete that session first")
        subject = f"/data/projects/{_q(plan.project)}/subjects/{_q(plan.subject)}"
        self._request("put", subject, f"{plan.key}: subject")
        xsi = session_xsi(plan.modality)
        query = {"xsiType": xsi, **field_query(xsi, {STUDY_UID_FIELD: study_uid})}
        if len(plan.date) == 8:
            d = plan.date
            query[f"{xsi}/date"] = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
        self._request("put", self._session_path(plan), f"{plan.key}: session", query=query)

    def _scan_files(self, plan: SessionPlan, scan_id: str) -> int:
        path = f"{self._session_path(plan)}/scans/{_q(scan_id)}/resources/DICOM/files"
        return len(self._rows(self._json(path, f"{plan.key}: scan {scan_id} files")))

    def scan_counts(self, plan: SessionPlan) -> dict[str, int]:
        """DICOM file count per scan, in one request (``scans/ALL/resources/DICOM/files``)
        when XNAT's rows name their scan, else one request per scan."""
        rows = self._rows(self._json(f"{self._session_path(plan)}/scans",
                                     f"{plan.key}: scans"))
        ids = [str(r["ID"]) for r in rows]
        if not ids:
            return {}
        files = self._rows(self._json(
            f"{self._session_path(plan)}/scans/ALL/resources/DICOM/files",
            f"{plan.key}: files"))
        counts = dict.fromkeys(ids, 0)
        for row in files:
            match = _SCAN_IN_URI.search(str(row.get("URI", "")))
            if match is None:
                return {sid: self._scan_files(plan, sid) for sid in ids}
            counts[urllib.parse.unquote(match.group(1))] = counts.get(
                urllib.parse.unquote(match.group(1)), 0) + 1
        return counts

    def scan_ids(self, plan: SessionPlan) -> dict[str, str]:
        """SeriesInstanceUID → scan id as XNAT named it (``N-MR1`` for a second series
        with number N), from the session's ``scans/scan`` children."""
        item = self._session_item(plan) or {}
        out = {}
        for child in item.get("children", []):
            if child.get("field") == "scans/scan":
                for scan in child.get("items", []):
                    data = scan.get("data_fields", {})
                    if data.get("UID"):
                        out[str(data["UID"])] = str(data.get("ID"))
        return out

    def held_sops(self, plan: SessionPlan, scan_id: str) -> set[str]:
        """SOPInstanceUIDs of a scan's DICOM files on XNAT (its files, as a zip: the file
        listing does not give them)."""
        path = f"{self._session_path(plan)}/scans/{_q(scan_id)}/resources/DICOM/files"
        sops = set()
        with tempfile.TemporaryDirectory(prefix="xnatpic-held-") as tmp:
            archive = Path(tmp) / "files.zip"  # streamed to disk, not held in memory
            resp = self._request("get", path, f"{plan.key}: scan {scan_id} instances",
                                 query={"format": "zip"}, accepted=(200, 404),
                                 download=archive)
            if resp.status == 404:
                return set()
            try:
                with zipfile.ZipFile(archive) as zf:
                    for info in zf.infolist():
                        if info.is_dir():
                            continue
                        with zf.open(info) as member:
                            ds = pydicom.dcmread(member, stop_before_pixels=True,
                                                 specific_tags=["SOPInstanceUID"], force=True)
                        if "SOPInstanceUID" in ds:
                            sops.add(str(ds.SOPInstanceUID))
            except zipfile.BadZipFile as exc:
                raise TransientError(f"{plan.key}: scan {scan_id}: files are not a zip"
                                     ) from exc
        return sops

    # -- import ------------------------------------------------------------------------
    def send_scans(self, plan: SessionPlan, scans: list[ScanFiles], zip_path: Path) -> None:
        """Import a zip of files XNAT does not hold, straight to the archive.

        A refusal (DICOM-zip wraps the archiver's conflicts in HTTP 400) is resolved
        through the prearchive session it left; a timed-out import is followed until XNAT
        finishes, not sent again.
        """
        query = {"import-handler": "DICOM-zip", "PROJECT_ID": plan.project,
                 "SUBJECT_ID": plan.subject, "EXPT_LABEL": plan.session,
                 "overwrite": "append", "dest": "/archive", "inbody": "true"}
        what = f"{plan.key}: import scans {', '.join(s.id for s in scans)}"
        try:
            resp = self._request("post", "/data/services/import", what, body=zip_path,
                                 query=query, content_type="application/zip")
        except HttpStatusError as exc:
            if exc.status != 400:
                raise
            # DICOM-zip wraps the archiver's refusals in 400 and keeps the refused copy
            if not self.resolve_prearchive(plan, refused=exc.message):
                raise
            raise TransientError(f"{what}: XNAT refused it ({exc.message}); what it left in "
                                 "the prearchive was resolved, checking what XNAT holds "
                                 "before sending the rest") from exc
        except TransientError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, XnatTransportError) and cause.timeout):
                raise
            _log.warning("%s: no answer within %.0f s; following XNAT's work on it instead "
                         "of sending it again", what, self.timeout)
            self.resolve_prearchive(plan)
            raise TransientError(f"{what}: timed out; XNAT's work on it followed, checking "
                                 "what it holds") from exc
        uris = [u.strip() for u in resp.text.splitlines() if u.strip()]
        for uri in uris:
            if "/prearchive/" in uri:
                # an older DicomZipImporter ignores dest: archive it ourselves
                self._archive(plan, uri[uri.index("/prearchive/"):], what)

    def _archive(self, plan: SessionPlan, src: str, what: str) -> None:
        """``POST /data/services/archive``: XNAT's own answer (423, 409 and message).

        Raises
        ------
        ServerBusyError
            Locked (423) or open workflows on the session.
        HttpStatusError
            Any other refusal (409 with XNAT's message).
        """
        try:
            self._request("post", "/data/services/archive", f"{what}: archive",
                          query={"src": src, "overwrite": "append"}, accepted=(200, 201, 303))
        except HttpStatusError as exc:
            if exc.status == 409 and "processing may already be in progress" in exc.message:
                raise ServerBusyError(
                    f"{plan.key}: XNAT refuses to change the session while a workflow runs on "
                    f"it ({exc.message}); waiting for it to end before trying again") from exc
            raise

    def _archive_when_free(self, plan: SessionPlan, src: str, deadline: float) -> None:
        """Archive a prearchive session, waiting (until ``deadline``) while XNAT answers
        that it is locked or that workflows run on the session."""
        delay, warned = self.poll, False
        while True:
            try:
                self._archive(plan, src, f"{plan.key}: prearchive {src}")
                return
            except ServerBusyError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                if not warned:
                    _log.warning("%s", exc)
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _leftovers(self, plan: SessionPlan) -> list[dict[str, Any]]:
        rows = self._rows(self._json(f"/data/prearchive/projects/{_q(plan.project)}",
                                     f"{plan.key}: prearchive"))
        return [r for r in rows if r.get("folderName", r.get("name")) == plan.session
                and (not plan.study_uid or not r.get("tag") or r.get("tag") == plan.study_uid)]

    @staticmethod
    def _idle(row: dict[str, Any]) -> float:
        try:
            stamp = time.mktime(time.strptime(str(row.get("lastmod"))[:19],
                                              "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            return RECEIVING_IDLE
        return time.time() - stamp

    def resolve_prearchive(self, plan: SessionPlan, *, refused: str | None = None,
                           cut: bool = False) -> bool:
        """Find what imports of this study left in the prearchive and resolve it.

        Sessions XNAT is still working on (receiving, archiving) are waited for, except a
        receiving one when ``cut`` (our own import broke off: XNAT keeps its complete
        entries and receives no more) or ``refused``; the others are archived through
        ``/data/services/archive`` (XNAT's own answer), and a copy XNAT refuses is
        deleted, since every later import of the study would reuse it and fail
        (PrearcDatabase.eitherGetOrCreateSession).

        Returns
        -------
        bool
            Whether the prearchive held anything of this study.

        Raises
        ------
        ServerBusyError
            Still busy after ``archive_wait`` seconds, or open workflows.
        SessionConflictError
            XNAT refuses the session (another subject, modality, study...).
        TransientError
            Files XNAT already holds were refused: the refused copy is deleted, and the
            caller sends again only what XNAT does not hold.
        """
        deadline = time.monotonic() + self.archive_wait
        waited = False
        while True:
            rows = self._leftovers(plan)
            busy = [r for r in rows if r.get("status") in _BUSY_STATES and not (
                r.get("status") == "RECEIVING" and (
                    cut or refused is not None or self._idle(r) >= RECEIVING_IDLE))]
            if not busy:
                break
            if time.monotonic() > deadline:
                raise ServerBusyError(
                    f"{plan.key}: XNAT is still working on the prearchive session "
                    f"{busy[0].get('url')} ({busy[0].get('status')}) after "
                    f"{self.archive_wait:.0f} s")
            (_log.debug if waited else _log.warning)(
                "%s: XNAT is still %s %s (prearchive); waiting for it to finish", plan.key,
                str(busy[0].get("status")).lower(), busy[0].get("url"))
            waited = True
            time.sleep(self.poll)
        for row in rows:
            src = str(row.get("url"))
            try:
                self._archive_when_free(plan, src, deadline)
            except HttpStatusError as exc:
                self._request("delete", f"/data{src}", f"{plan.key}: delete refused {src}",
                              accepted=(200, 404))
                if "Duplicate" in exc.message:
                    raise TransientError(
                        f"{plan.key}: XNAT already holds some of these files ({exc.message});"
                        " its refused copy deleted, sending only what it lacks") from exc
                raise SessionConflictError(
                    f"{plan.key}: XNAT refuses to archive session {plan.session!r}: "
                    f"{exc.message} (HTTP {exc.status}); its refused copy was deleted from "
                    "the prearchive") from exc
        return waited or bool(rows)

    def resource_files(self, plan: SessionPlan, label: str) -> dict[str, int]:
        """Files of a session resource (name → size)."""
        rows = self._rows(self._json(f"{self._session_path(plan)}/resources/{_q(label)}/files",
                                     f"{plan.key}: resource {label}"))
        return {str(r.get("Name")): int(r.get("Size") or 0) for r in rows}

    def put_resource_file(self, plan: SessionPlan, label: str, path: Path, name: str) -> None:
        """Create the resource when absent, then PUT the file (replacing it)."""
        base = f"{self._session_path(plan)}/resources/{_q(label)}"
        fmt = "ZIP" if name.endswith(".zip") else "JSON"
        if label not in self._resources(plan):
            # XNAT answers 409 for a resource that exists: looked at first, 409 taken as so
            self._request("put", base, f"{plan.key}: resource {label}",
                          query={"format": fmt}, accepted=(200, 201, 409))
            self._resources(plan).add(label)
        self._request("put", f"{base}/files/{_q(name)}", f"{plan.key}: {label}/{name}",
                      body=path, query={"inbody": "true", "overwrite": "true",
                                        "extract": "false"},
                      content_type="application/octet-stream")

    def _resources(self, plan: SessionPlan) -> set[str]:
        """Labels of the session's resources (listed once, then kept up to date)."""
        with self._lock:
            known = self._labels.get(plan.key)
        if known is None:
            rows = self._rows(self._json(f"{self._session_path(plan)}/resources",
                                         f"{plan.key}: resources"))
            known = {str(r.get("label", r.get("Name", ""))) for r in rows}
            with self._lock:
                self._labels[plan.key] = known
        return known

    def set_fields(self, plan: SessionPlan) -> None:
        """Subject fields on the subject, session fields on the session."""
        if plan.subject_fields:
            values = xnat_subject_fields(plan.subject_fields, f"{plan.key}: subject fields")
            self._request("put", f"/data/projects/{_q(plan.project)}/subjects/"
                          f"{_q(plan.subject)}", f"{plan.key}: subject fields",
                          query=field_query("xnat:subjectData", values, _SUBJECT_NATIVE))
        if plan.session_fields:
            xsi = session_xsi(plan.modality)
            self._request("put", self._session_path(plan), f"{plan.key}: session fields",
                          query={"xsiType": xsi, **field_query(xsi, plan.session_fields)})

    def close(self) -> None:
        """End every worker's XNAT session and close its connection."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

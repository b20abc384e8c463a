"""The XNAT double: an HTTP server that answers as XNAT's source says XNAT answers.

This module holds the plumbing (HTTP/1.1, login by HTTP Basic or JSESSIONID cookie, XNAT's
HTML status pages for errors, fault injection) and the REST data API; the import service,
prearchive and archiver are in :mod:`tests.double.prearchive`; Container Service paths
(``/xapi/...`` except site configuration) are answered by
:mod:`tests.double.container_service`.

It stores what it receives in memory (projects, subjects, sessions, scans with their DICOM
files keyed by SOPInstanceUID, resources, fields), counts every delivery of every DICOM
instance (to prove nothing is sent twice), and injects faults: HTTP 500 (before or after
storing), connections dropped mid-upload (an import keeps its complete zip entries in the
prearchive), slow answers, slow archiving (an import that completes after the client gave
up), and a crash (every request dropped until :meth:`XnatDouble.recover`).

Every behaviour cites the XNAT source (NrgXnat/xnat-web, read through the code index:
class.method, no line numbers there) or XNAT REST test (NrgXnat/xnat-rest-tests,
file:line) it copies; docs/xnat-conformance.md (upload section) lists them with our tests.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.double import assessors, container_service
from tests.double.prearchive import ArchiveConflict, Importer, file_name

__all__ = ["BASIC_AUTH", "PASSWORD", "USER", "Fault", "HttpError", "Session", "XnatDouble"]

USER, PASSWORD = "admin", "s3cret-test-pass"
BASIC_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
Answer = tuple[int, Any, str, "dict[str, str] | None"]


@dataclass
class Fault:
    """A fault on requests whose ``METHOD path`` matches ``pattern`` (regex, searched).

    kind: ``500`` (answer 500, store nothing), ``500-after`` (store, then answer 500),
    ``drop`` (read half the body, close the connection; an import keeps the complete zip
    entries of that half in the prearchive), ``slow`` (wait ``delay`` seconds, then
    serve), ``slow-archive`` (an import stores its files, then archives for ``delay``
    seconds, whether or not the client still waits), ``crash`` (drop this and every later
    request until recover()). ``skip`` matching requests pass before the fault fires
    ``times`` times.
    """

    pattern: str
    kind: str
    times: int = 1
    skip: int = 0
    delay: float = 0.0
    fired: int = 0


@dataclass
class Session:
    """One archived image session as the double keeps it."""

    project: str
    subject: str
    label: str
    id: str
    xsi: str = "xnat:mrSessionData"
    fields: dict[str, str] = field(default_factory=dict)
    #: scan id -> {SOPInstanceUID: file bytes} (the DICOM resource)
    scans: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: scan id -> SeriesInstanceUID
    series: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, bytes]] = field(default_factory=dict)
    study_uid: str = ""
    #: names of open workflows (a running container, a pipeline)
    workflows: list[str] = field(default_factory=list)
    archiving: bool = False
    names: dict[str, str] = field(default_factory=dict)
    #: assessor id -> tests.double.assessors.StoredAssessor (ROI collections...)
    assessors: dict[str, Any] = field(default_factory=dict)

    def name_of(self, sop: str, data: bytes) -> str:
        if sop not in self.names:
            self.names[sop] = file_name(data)
        return self.names[sop]


class _Dropped(Exception):
    pass


#: What ``xnat:demographicData`` accepts: xnat-web commit 542ad929,
#: src/main/resources/schemas/xnat/xnat.xsd, ``<xs:complexType name="demographicData">``
#: (read through the code index, which gives no line numbers). Enumerations restrict
#: ``xs:string`` (whiteSpace "preserve": compared exactly, case included).
GENDERS = ("male", "female", "other", "unknown", "M", "F")  # element "gender"
HANDEDNESS = ("left", "right", "ambidextrous", "unknown")  # element "handedness"
_DEMOGRAPHICS = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/"
#: ``<xs:choice minOccurs="0">`` of elements dob, yob, age: a subject keeps one of them.
_BIRTH_CHOICE = ("dob", "yob", "age")
#: XML Schema 1.0 part 2 lexical spaces (whiteSpace "collapse": outer blanks ignored):
#: xs:integer (3.3.13.1), xs:float (3.2.4.1), xs:date (3.2.9.1; the day checked below).
_XS_INTEGER = re.compile(r"[+-]?[0-9]+")
_XS_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|-?INF|NaN")
_XS_DATE = re.compile(r"-?(?P<year>[1-9][0-9]{4,}|[0-9]{4})-(?P<month>0[1-9]|1[0-2])"
                      r"-(?P<day>0[1-9]|[12][0-9]|3[01])(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]"
                      r"|14:00))?")
_XML_BLANKS = " \t\r\n"


def _is_xs_date(text: str) -> bool:
    match = _XS_DATE.fullmatch(text.strip(_XML_BLANKS))
    if not match or int(match["year"]) == 0:  # XSD 1.0: no year 0000
        return False
    year, month, day = int(match["year"]), int(match["month"]), int(match["day"])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return day <= days


#: Each demographic element's test of its value's lexical form.
DEMOGRAPHIC_TYPES = {
    "gender": lambda v: v in GENDERS,
    "handedness": lambda v: v in HANDEDNESS,
    "dob": _is_xs_date,
    "yob": lambda v: bool(_XS_INTEGER.fullmatch(v.strip(_XML_BLANKS))),
    "age": lambda v: bool(_XS_INTEGER.fullmatch(v.strip(_XML_BLANKS))),
    "weight": lambda v: bool(_XS_FLOAT.fullmatch(v.strip(_XML_BLANKS))),
    "height": lambda v: bool(_XS_FLOAT.fullmatch(v.strip(_XML_BLANKS))),
}


class XnatDouble:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is the base address.

    Parameters
    ----------
    projects : iterable of str
        Projects that exist.
    prearchive : bool
        An older DicomZipImporter that ignores ``dest``: imports stay in the prearchive
        (READY) and the URI answered is the prearchive one; ``/data/services/archive``
        moves them (after ``archive_delay`` seconds of work).
    latency : float
        Seconds added to every answer (a remote server's round trip and processing).
    file_delay : float
        Seconds of import work per DICOM file (XNAT writes, catalogs and indexes each
        file; waiting, not CPU, so parallel imports overlap as on a real server).
    """

    def __init__(self, projects: tuple[str, ...] = ("PRECLIN",), *, prearchive: bool = False,
                 archive_delay: float = 0.3, latency: float = 0.0,
                 file_delay: float = 0.0) -> None:
        self.projects: dict[str, dict[str, str]] = {
            p: {"name": p, "secondary_ID": p} for p in projects}
        #: Project ids once used by deleted projects (XNAT refuses them: 403).
        self.deleted_projects: set[str] = set()
        #: Whether ``PUT /data/projects/<id>`` may create a project, and what it created.
        self.can_create_projects = True
        self.created_projects: list[dict[str, str]] = []
        self.prearchive = prearchive
        #: With ``prearchive``: the project archives its sessions itself (its own
        #: auto-archive setting), so a later archive request is answered 303.
        self.project_autoarchive = False
        self.archived_from: dict[str, str] = {}
        #: A series import filter in blacklist mode: a regex of SeriesDescription whose
        #: files the importer drops silently.
        self.series_filter: str | None = None
        self.archive_delay = archive_delay
        self.latency = latency
        self.file_delay = file_delay
        self.subjects: dict[tuple[str, str], dict[str, str]] = {}
        self.subject_ids: dict[tuple[str, str], str] = {}
        self.sessions: dict[tuple[str, str], Session] = {}
        self.deliveries: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.log: list[str] = []
        self.tokens: set[str] = set()
        self.crashed = False
        self.lock = threading.RLock()
        self.importer = Importer(self)
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> XnatDouble:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def recover(self) -> None:
        """End a crash: requests are served again, stored data intact."""
        with self.lock:
            self.crashed = False
            self.faults = [f for f in self.faults if f.kind != "crash"]

    def add_fault(self, pattern: str, kind: str, *, times: int = 1, skip: int = 0,
                  delay: float = 0.0) -> Fault:
        fault = Fault(pattern, kind, times, skip, delay)
        with self.lock:
            self.faults.append(fault)
        return fault

    # -- queries used by tests ---------------------------------------------------------
    def session(self, project: str, label: str) -> Session:
        return self.sessions[(project, label)]

    @property
    def prearc(self) -> list[Any]:
        """Prearchive sessions (tests.double.prearchive.PrearcSession)."""
        with self.lock:
            return list(self.importer.prearc.values())

    def tick(self) -> int:
        with self.lock:
            self._counter += 1
            return self._counter

    def next_id(self, prefix: str) -> str:
        return f"XNAT_{prefix}{self.tick():05d}"

    def new_session(self, project: str, subject: str, label: str, xsi: str) -> Session:
        """Create an archived session (and its subject when new)."""
        with self.lock:
            self.ensure_subject(project, subject)
            session = Session(project, subject, label, self.next_id("E"), xsi)
            self.sessions[(project, label)] = session
            return session

    def ensure_subject(self, project: str, subject: str) -> bool:
        """Create the subject when absent; True when created."""
        with self.lock:
            if (project, subject) in self.subjects:
                return False
            self.subjects[(project, subject)] = {}
            self.subject_ids[(project, subject)] = self.next_id("S")
            return True

    def fault_for(self, request_line: str) -> Fault | None:
        with self.lock:
            if self.crashed:
                return Fault(".", "crash")
            for fault in self.faults:
                if fault.fired < fault.times and re.search(fault.pattern, request_line):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.fired += 1
                    if fault.kind == "crash":
                        self.crashed = True
                    return fault
        return None


class HttpError(Exception):
    """An error answer. ``html`` True (XNAT's Restlet status page) unless the XNAT code
    that answers it writes a body of its own (``html=False``: plain text or JSON)."""

    def __init__(self, status: int, text: str, *, html: bool = True,
                 content_type: str = "text/plain") -> None:
        super().__init__(text)
        self.status, self.text, self.html, self.content_type = status, text, html, content_type



_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 423: "Locked",
            500: "Internal Server Error", 503: "Service Unavailable"}


def _error_page(exc: HttpError) -> tuple[str, str]:
    """Body and content type of an error answer.

    Restlet's StatusService renders a status without an entity of its own as an HTML page
    starting with ``<html>`` (org.restlet.service.StatusService.getRepresentation, used by
    XNAT's /data API); xnatpy raises on any body starting with ``<html>``.
    """
    if not exc.html:
        return exc.text, exc.content_type
    reason = _REASONS.get(exc.status, "Error")
    page = (f"<html>\n<head>\n   <title>Status page</title>\n</head>\n<body>\n"
            f"<p>{reason}</p>\n<h3>{exc.text}</h3><p>You can get technical details <a href=\"http://www.w3.org"
            f"/Protocols/rfc2616/rfc2616-sec10.html#sec10.4\">here</a>.<br>\n"
            f"Please continue your visit at our <a href=\"/\">home page</a>.\n</p>\n"
            f"</body>\n</html>\n")
    return page, "text/html"


_FIELD = re.compile(r"fields/field\[name=([^\]]+)\]/field$")


def _fields_from(query: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in query.items():
        match = _FIELD.search(key)
        if match:
            out[match.group(1)] = value
        elif "/" in key and key.startswith("xnat:"):
            out[key.split("/", 1)[1]] = value
    return out


def _check_subject_fields(query: dict[str, str], stored: dict[str, str]) -> None:
    """400 for a subject PUT whose demographics xnat.xsd refuses (XFT validation of the
    subject; the double checks exactly the schema's types and enumerations, see
    :data:`DEMOGRAPHIC_TYPES`), and for a subject that would then hold more than one of
    dob, yob and age (the schema's xs:choice; ``stored``: the subject's fields so far)."""
    for element, valid in DEMOGRAPHIC_TYPES.items():
        value = query.get(_DEMOGRAPHICS + element)
        if value is not None and not valid(value):
            raise HttpError(400, f"Invalid value for {element}: {value}")
    held = {e for e in _BIRTH_CHOICE
            if (query.get(_DEMOGRAPHICS + e) or stored.get(_DEMOGRAPHICS.split("/", 1)[1] + e))}
    if len(held) > 1:
        raise HttpError(400, f"Only one of dob, yob, age may be set: {', '.join(sorted(held))}")


def _result_set(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ResultSet": {"Result": rows, "totalRecords": str(len(rows))}}


def _scan_xsi(session_xsi: str) -> str:
    return session_xsi.replace("SessionData", "ScanData")


def _session_json(fake: XnatDouble, session: Session) -> dict[str, Any]:
    """``GET .../experiments/E?format=json``: the XFT item as JSON (items, data_fields,
    children per field, meta with the xsi:type), as xnatpy reads it."""
    children = [{"field": "fields/field", "items": [
        {"data_fields": {"name": k, "field": v}} for k, v in session.fields.items()
        if "/" not in k]}]
    if session.scans:
        children.append({"field": "scans/scan", "items": [
            {"meta": {"xsi:type": _scan_xsi(session.xsi)},
             "data_fields": {"ID": sid, "UID": session.series.get(sid, ""),
                             "image_session_ID": session.id}}
            for sid in session.scans]})
    data = {"ID": session.id, "label": session.label, "project": session.project,
            "subject_ID": fake.subject_ids.get((session.project, session.subject), "")}
    if session.study_uid:
        data["UID"] = session.study_uid
    return {"items": [{"meta": {"xsi:type": session.xsi}, "data_fields": data,
                       "children": children}]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK stall
    fake: XnatDouble

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    # -- plumbing ----------------------------------------------------------------------
    def _read_body(self, limit: int | None = None) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _send(self, status: int, body: bytes | str | dict | list = b"",
              content_type: str = "text/plain", headers: dict[str, str] | None = None) -> None:
        if isinstance(body, (dict, list)):
            body, content_type = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            body = body.encode()
        if self.fake.latency:
            time.sleep(self.fake.latency)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped

    def _authorised(self) -> bool:
        # XNAT accepts HTTP Basic on every request as well as the JSESSIONID session
        # cookie that PUT /data/services/auth (or any authenticated request) hands out.
        if self.headers.get("Authorization") == BASIC_AUTH:
            return True
        cookie = self.headers.get("Cookie", "")
        match = re.search(r"JSESSIONID=([^;]+)", cookie)
        return bool(match and match.group(1) in self.fake.tokens)

    def _dispatch(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parts.path)
        query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        line = f"{method} {path}"
        self.fake.log.append(line)
        fault = self.fake.fault_for(line)
        try:
            is_import = line == "POST /data/services/import"
            if fault is not None and (fault.kind == "crash" or
                                      (fault.kind == "drop" and not is_import)):
                self._read_body(limit=int(self.headers.get("Content-Length") or 0) // 2)
                self._drop()
            body = b""
            if method in ("PUT", "POST") and not is_import:
                body = self._read_body()
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "500":
                if is_import:
                    self._read_body()
                self._send(500, "Internal Server Error (injected)")
                return
            status, answer, ctype, headers = self._route(method, path, query, body, fault)
            if fault is not None and fault.kind == "500-after":
                self._send(500, "Internal Server Error after storing (injected)")
                return
            self._send(status, answer, ctype, headers)
        except HttpError as exc:
            self._send(exc.status, *_error_page(exc))
        except _Dropped:
            return
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- routes ------------------------------------------------------------------------
    def _import(self, query: dict[str, str], fault: Fault | None) -> Answer:
        fake = self.fake
        if fault is not None and fault.kind == "drop":
            # the connection breaks mid-upload; the entries received so far are kept
            half = self._read_body(limit=int(self.headers.get("Content-Length") or 0) // 2)
            fake.importer.import_zip(query, half, cut=True)
            self._drop()
        body = self._read_body()
        pause = fault.delay if fault is not None and fault.kind == "slow-archive" else 0.0
        uris = fake.importer.import_zip(query, body, pause=pause)
        return 200, "\r\n".join(uris) + "\r\n", "text/plain", None

    def _archive_service(self, query: dict[str, str]) -> Answer:
        """``POST /data/services/archive?src=``: PrearcSessionArchiver's own statuses
        (423, 409 with its message) reach the client here, unwrapped."""
        fake = self.fake
        src = query.get("src", "")
        src = src[len("/data"):] if src.startswith("/data/") else src
        with fake.lock:
            prearc = fake.importer.prearc.get(src.rstrip("/"))
            done = fake.archived_from.get(src.rstrip("/"))
        if prearc is None:
            if done is not None:
                # archived already by the project's own auto-archive setting (from the
                # issue; not verified in the source)
                return 303, "", "text/plain", {"Location": fake.url + done}
            raise HttpError(404, f"no prearchive session {src}")
        merge = query.get("overwrite", "") in ("append", "delete")
        files = query.get("overwrite_files", "").lower() == "true"
        try:
            uri = fake.importer.archive(prearc, merge=merge, overwrite_files=files,
                                        pause=fake.archive_delay if fake.prearchive else 0.0)
        except ArchiveConflict as exc:
            raise HttpError(exc.status, exc.message) from exc
        return 200, uri + "\r\n", "text/plain", None

    def _prearchive_route(self, method: str, path: str) -> Answer:
        fake = self.fake
        m = re.fullmatch(r"/data/prearchive/projects/([^/]+)(?:/([^/]+)/([^/]+))?/?", path)
        if not m:
            raise HttpError(404, f"no route {method} {path}")
        project, stamp, folder = m.groups()
        with fake.lock:
            if stamp is None and method == "GET":
                # PrearcSessionListResource: one row per session of the project
                rows = [p.row() for p in fake.importer.prearc.values() if p.project == project]
                return 200, _result_set(rows), "application/json", None
            url = f"/prearchive/projects/{project}/{stamp}/{folder}"
            prearc = fake.importer.prearc.get(url)
            if prearc is None:
                raise HttpError(404, f"no prearchive session {url}")
            if method == "GET":
                return 200, _result_set([prearc.row()]), "application/json", None
            if method == "DELETE":
                # PrearcSessionResource.handleDelete: a session being archived is locked
                if prearc.status == "ARCHIVING":
                    raise HttpError(423, "session is being archived")
                del fake.importer.prearc[url]
                return 200, "", "text/plain", None
        raise HttpError(405, f"{method} not allowed on {path}")

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes,
               fault: Fault | None = None) -> Answer:
        fake = self.fake
        if path in ("", "/"):
            return 200, "<html><body>XNAT</body></html>", "text/html", None
        if path == "/data/services/auth" and method == "PUT":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            if form.get("username") != USER or form.get("password") != PASSWORD:
                raise HttpError(401, "<h3>Login attempt failed. Please try again.</h3>")
            token = secrets.token_hex(16).upper()
            fake.tokens.add(token)
            return 200, token, "text/plain", {"Set-Cookie": f"JSESSIONID={token}; Path=/"}
        if not self._authorised():
            raise HttpError(401, "Login attempt failed. Please try again.")
        if path == "/data/auth":
            return 200, f"User '{USER}' is logged in", "text/plain", None
        if path == "/data/JSESSION":
            return 200, "ok", "text/plain", None
        if path == "/xapi/siteConfig/buildInfo":
            return 200, {"version": "1.9.3", "buildNumber": "double"}, "application/json", None
        if path.startswith("/xapi/"):
            return container_service.route(fake, method, path, query, body, self.headers)
        if path == "/data/services/import" and method == "POST":
            return self._import(query, fault)
        if path == "/data/services/archive" and method == "POST":
            return self._archive_service(query)
        if path.startswith("/data/prearchive/"):
            return self._prearchive_route(method, path)
        if path.startswith("/data/archive/"):
            path = "/data/" + path[len("/data/archive/"):]
        listing = getattr(container_service, "archive_listing", None)
        if listing is not None and getattr(fake, "cs", None) is not None:
            # the Container Service tests' own listings (rows as bulk-launch reads them)
            answer = listing(fake, method, path, query)
            if answer is not None:
                return answer
        m = re.fullmatch(r"/data/experiments/([^/]+)(/.*)?", path)
        if m:
            with fake.lock:
                session = next((s for s in fake.sessions.values() if s.id == m.group(1)),
                               None)
                if session is None:
                    raise HttpError(404, f"no experiment {m.group(1)}")
                if not m.group(2):
                    return 200, _session_json(fake, session), "application/json", None
                return self._session_route(method, session, m.group(2), query, body)
        return self._archive_route(method, path, query, body)

    def _project_put(self, project: str, query: dict[str, str]) -> Answer:
        """``PUT /data/projects/ID`` (ProjectResource): 201 when created; an id, name,
        secondary ID or alias that matches, case aside, another project's id, name or
        secondary ID is refused (TestProjectValidation.java:29-111 accepts 403 or 409; the
        double answers 409); 403 for an id a deleted project used (from the issue, not
        verified) or for a user who may not create projects."""
        fake = self.fake
        with fake.lock:
            if project in fake.projects:
                return 200, project, "text/plain", None
            if not fake.can_create_projects:
                raise HttpError(403, "you may not create projects")
            if project in fake.deleted_projects:
                raise HttpError(403, f"The project ID {project} was used by a deleted "
                                     "project and cannot be reused")
            name = query.get("name", project)
            secondary = query.get("secondary_ID", project)
            wanted = {v.upper() for v in (project, name, secondary, query.get("alias", ""))
                      if v}
            for other, info in fake.projects.items():
                taken = {other.upper(), info["name"].upper(), info["secondary_ID"].upper()}
                clash = wanted & taken
                if clash:
                    raise HttpError(409, f"Project {other} already uses the id, name or "
                                         f"secondary ID {sorted(clash)[0]}")
            fake.projects[project] = {"name": name, "secondary_ID": secondary}
            fake.created_projects.append(dict(query, id=project))
        return 201, project, "text/plain", None

    def _archive_route(self, method: str, path: str, query: dict[str, str], body: bytes
                       ) -> Answer:
        fake = self.fake
        m = re.fullmatch(r"/data/projects/([^/]+)(?:/experiments(?:/([^/]+))?(/.*)?)?", path)
        if m and (m.group(2) or path.endswith("/experiments")):
            return self._project_experiments(method, m.group(1), m.group(2), m.group(3),
                                             query, body)
        m = re.fullmatch(r"/data/projects/([^/]+)(?:/subjects/([^/]+)(?:/experiments/([^/]+)"
                         r"(/.*)?)?)?", path)
        if not m:
            raise HttpError(404, f"no route {method} {path}")
        project, subject, label, rest = m.groups()
        if subject is None and method == "PUT":
            return self._project_put(project, query)
        if project not in fake.projects:
            raise HttpError(404, f"project {project} not found")
        with fake.lock:
            if subject is None:
                info = fake.projects[project]
                return 200, {"items": [{"data_fields": {"ID": project, **info}}]}, \
                    "application/json", None
            if label is None:
                if method == "PUT":
                    # SubjectResource PUT: 201 when created, 200 when updated
                    _check_subject_fields(query, fake.subjects.get((project, subject), {}))
                    created = fake.ensure_subject(project, subject)
                    fake.subjects[(project, subject)].update(_fields_from(query))
                    return (201 if created else 200), subject, "text/plain", None
                if (project, subject) not in fake.subjects:
                    raise HttpError(404, "no such subject")
                data = {"ID": fake.subject_ids[(project, subject)], "label": subject,
                        **fake.subjects[(project, subject)]}
                return 200, {"items": [{"data_fields": data}]}, "application/json", None
            key = (project, label)
            if method == "PUT" and not rest:
                session = fake.sessions.get(key)
                created = session is None
                if session is None:
                    xsi = query.get("xsiType", "xnat:mrSessionData")
                    session = fake.new_session(project, subject, label, xsi)
                elif session.subject != subject:
                    # SubjAssessmentResource.handlePut, "MATCH SUBJECT": the subject of the
                    # URL is set on the existing session, which moves to it
                    fake.ensure_subject(project, subject)
                    session.subject = subject
                session.fields.update(_fields_from(query))
                return (201 if created else 200), session.id, "text/plain", None
            session = fake.sessions.get(key)
            if session is None or session.subject != subject:
                raise HttpError(404, "no such experiment")
            if not rest:
                return 200, _session_json(fake, session), "application/json", None
            return self._session_route(method, session, rest, query, body)

    def _project_experiments(self, method: str, project: str, label: str | None,
                             rest: str | None, query: dict[str, str], body: bytes) -> Answer:
        fake = self.fake
        if project not in fake.projects:
            raise HttpError(404, f"project {project} not found")
        with fake.lock:
            if label is None:
                if method != "GET":
                    raise HttpError(405, "only GET on an experiment list")
                # ExperimentListResource rows; "UID" as a column not verified
                rows = [{"ID": s.id, "label": s.label, "xsiType": s.xsi, "project": project,
                         "subject_ID": fake.subject_ids.get((project, s.subject), ""),
                         "UID": s.study_uid}
                        for (p, _), s in fake.sessions.items() if p == project]
                return 200, _result_set(rows), "application/json", None
            session = fake.sessions.get((project, label))
            if session is None:
                raise HttpError(404, f"no experiment {label} in {project}")
            if not rest:
                if method != "GET":
                    raise HttpError(405, "PUT an experiment under its subject")
                return 200, _session_json(fake, session), "application/json", None
            return self._session_route(method, session, rest, query, body)

    def _files(self, session: Session, scan_ids: list[str], query: dict[str, str]
               ) -> Answer:
        """A DICOM resource's files: JSON rows (FileList: Name, Size, URI, collection,
        cat_ID; no SOPInstanceUID), or the files themselves with ``format=zip``."""
        pairs = [(sid, session.name_of(uid, data), data)
                 for sid in scan_ids for uid, data in session.scans[sid].items()]
        if query.get("format") == "zip":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
                for sid, name, data in pairs:
                    zf.writestr(f"{session.label}/scans/{sid}/resources/DICOM/files/{name}",
                                data)
            return 200, buffer.getvalue(), "application/zip", None
        return 200, _result_set([
            {"Name": name, "Size": str(len(data)), "collection": "DICOM", "cat_ID": sid,
             "URI": f"/data/experiments/{session.id}/scans/{sid}/resources/DICOM/files/{name}"}
            for sid, name, data in pairs]), "application/json", None

    def _session_route(self, method: str, session: Session, rest: str, query: dict[str, str],
                       body: bytes) -> Answer:
        if rest.startswith("/assessors"):
            return assessors.route(session, method, rest, query, body)
        if rest == "/scans" and method == "GET":
            return 200, _result_set([
                {"ID": s, "xsiType": _scan_xsi(session.xsi),
                 "URI": f"/data/experiments/{session.id}/scans/{s}"}
                for s in sorted(session.scans)]), "application/json", None
        if rest == "/scans/ALL/resources/DICOM/files" and method == "GET":
            return self._files(session, sorted(session.scans), query)
        m = re.fullmatch(r"/scans/([^/]+)/resources/DICOM/files", rest)
        if m and method == "GET":
            if m.group(1) not in session.scans:
                raise HttpError(404, "no such scan")
            return self._files(session, [m.group(1)], query)
        if rest == "/resources" and method == "GET":
            # ResourceList rows (label, format, file_count...)
            return 200, _result_set([
                {"label": label, "xnat_abstractresource_id": f"{session.id}_{label}",
                 "format": "", "file_count": str(len(files))}
                for label, files in session.resources.items()]), "application/json", None
        m = re.fullmatch(r"/resources/([^/]+)(?:/files(?:/(.+))?)?", rest)
        if m:
            label, name = m.group(1), m.group(2)
            if method == "PUT" and name is None and not rest.endswith("/files"):
                # CatalogResource.handlePut -> handlePost: an existing label is 409
                # "Specified resource already exists." (a status without entity: HTML page)
                if label in session.resources:
                    raise HttpError(409, "Specified resource already exists.")
                session.resources[label] = {}
                return 201, label, "text/plain", None
            if method == "PUT" and name:
                if label not in session.resources:
                    session.resources[label] = {}  # FileList creates the resource
                if name in session.resources[label] and \
                        query.get("overwrite", "").lower() != "true":
                    # FileList.handlePut: duplicates without overwrite: 200, a list, unchanged
                    return 200, {"duplicates": [name]}, "text/html", None
                session.resources[label][name] = body
                return 200, "", "text/plain", None
            files = session.resources.get(label)
            if files is None:
                raise HttpError(404, f"no resource {label}")
            if name is None:
                return 200, _result_set([{"Name": n, "Size": str(len(d))}
                                         for n, d in files.items()]), "application/json", None
            if name not in files:
                raise HttpError(404, f"no file {name}")
            return 200, files[name], "application/octet-stream", None
        raise HttpError(404, f"no route {method} {rest}")


def _serve() -> None:
    """``python -m tests.double.server [--latency S] [--file-delay S] PROJECT...``:
    serve until killed, printing the address on the first line (for benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("projects", nargs="*", default=["PRECLIN"])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--file-delay", type=float, default=0.0)
    args = parser.parse_args()
    fake = XnatDouble(tuple(args.projects), latency=args.latency,
                      file_delay=args.file_delay).start()
    print(fake.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    _serve()

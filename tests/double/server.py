"""The XNAT double: an HTTP server that answers as XNAT's source says XNAT answers.

This module holds the plumbing (HTTP/1.1, login by HTTP Basic or JSESSIONID cookie, XNAT's
HTML status pages for errors, fault injection), the REST data API and the import service.
Container Service paths (``/xapi/...`` except site configuration) are answered by
:mod:`tests.double.container_service`.

It stores what it receives in memory (projects, subjects, sessions, scans with their DICOM
files keyed by SOPInstanceUID, resources, fields), counts every delivery of every DICOM
instance (to prove nothing is sent twice), and injects faults: HTTP 500 (before or after
storing), connections dropped mid-upload, slow answers, and a crash (every request dropped
until :meth:`XnatDouble.recover`).

Only what xnatpy's ``connect(no_parse_model=True)`` and the uploader request is served:
``GET /``, ``PUT /data/services/auth``, ``GET /data/auth``, ``GET|DELETE /data/JSESSION``,
``GET /xapi/siteConfig/buildInfo``, ``/data/projects/...`` (subjects, experiments, scans,
resources, files), ``POST /data/services/import`` and ``POST /data/services/archive``.
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

import pydicom

from tests.double import container_service

__all__ = ["BASIC_AUTH", "PASSWORD", "USER", "Fault", "HttpError", "Session", "XnatDouble"]

USER, PASSWORD = "admin", "s3cret-test-pass"
BASIC_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@dataclass
class Fault:
    """A fault on requests whose ``METHOD path`` matches ``pattern`` (regex, searched).

    kind: ``500`` (answer 500, store nothing), ``500-after`` (store, then answer 500),
    ``drop`` (read half the body, close the connection), ``slow`` (wait ``delay`` seconds,
    then serve), ``crash`` (drop this and every later request until recover()).
    ``skip`` matching requests pass before the fault fires ``times`` times.
    """

    pattern: str
    kind: str
    times: int = 1
    skip: int = 0
    delay: float = 0.0
    fired: int = 0


@dataclass
class Session:
    """One image session as the fake keeps it."""

    project: str
    subject: str
    label: str
    id: str
    fields: dict[str, str] = field(default_factory=dict)
    scans: dict[str, dict[str, bytes]] = field(default_factory=dict)
    resources: dict[str, dict[str, bytes]] = field(default_factory=dict)
    study_uid: str = ""


class _Dropped(Exception):
    pass


class XnatDouble:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is the base address.

    Parameters
    ----------
    projects : iterable of str
        Projects that exist.
    prearchive : bool
        Imports land in the prearchive; ``/data/services/archive`` moves them (after
        ``archive_delay`` seconds, in the background, as XNAT does).
    latency : float
        Seconds added to every answer (a remote server's round trip and processing).
    file_delay : float
        Seconds of import work per DICOM file (XNAT writes, catalogs and indexes each
        file; waiting, not CPU, so parallel imports overlap as on a real server).
    """

    def __init__(self, projects: tuple[str, ...] = ("PRECLIN",), *, prearchive: bool = False,
                 archive_delay: float = 0.3, latency: float = 0.0,
                 file_delay: float = 0.0) -> None:
        self.projects = set(projects)
        #: Whether ``PUT /data/projects/<id>`` may create a project, and what it created.
        self.can_create_projects = True
        self.created_projects: list[dict[str, str]] = []
        self.prearchive = prearchive
        self.archive_delay = archive_delay
        self.latency = latency
        self.file_delay = file_delay
        self.subjects: dict[tuple[str, str], dict[str, str]] = {}
        self.sessions: dict[tuple[str, str], Session] = {}
        self.pending: dict[str, tuple[Session, dict[str, dict[str, bytes]]]] = {}
        self.deliveries: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.log: list[str] = []
        self.tokens: set[str] = set()
        self.crashed = False
        self.lock = threading.RLock()
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

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self._counter += 1
            return f"XNAT_{prefix}{self._counter:05d}"

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

    # -- import ------------------------------------------------------------------------
    def import_zip(self, params: dict[str, str], body: bytes) -> str:
        project, subject = params["PROJECT_ID"], params["SUBJECT_ID"]
        label = params["EXPT_LABEL"]
        if project not in self.projects:
            raise _HttpError(404, f"project {project} not found")
        files: dict[str, dict[str, bytes]] = {}
        study_uids = set()
        with zipfile.ZipFile(io.BytesIO(body)) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                data = zf.read(info)
                ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True,
                                     specific_tags=["StudyInstanceUID", "SeriesNumber",
                                                    "SOPInstanceUID"])
                study_uids.add(str(ds.StudyInstanceUID))
                scan = str(int(ds.SeriesNumber))
                files.setdefault(scan, {})[str(ds.SOPInstanceUID)] = data
        if len(study_uids) != 1:
            raise _HttpError(400, f"zip holds {len(study_uids)} studies")
        if self.file_delay:
            time.sleep(self.file_delay * sum(len(f) for f in files.values()))
        with self.lock:
            for scan in files.values():
                self.deliveries.update(scan.keys())
            session = self._ensure_session(project, subject, label)
            if session.study_uid and session.study_uid != next(iter(study_uids)):
                raise _HttpError(409, "session holds another study")
            session.study_uid = next(iter(study_uids))
            if self.prearchive:
                stamp = f"{int(time.time() * 1000)}_{self._counter}"
                self._counter += 1
                self.pending[stamp] = (session, files)
                return f"/data/prearchive/projects/{project}/{stamp}/{label}"
            self._archive(session, files)
        return f"/data/archive/projects/{project}/subjects/{subject}/experiments/{label}"

    def _archive(self, session: Session, files: dict[str, dict[str, bytes]]) -> None:
        for scan, members in files.items():
            session.scans.setdefault(scan, {}).update(members)

    def archive(self, src: str) -> None:
        stamp = src.rstrip("/").split("/")[-2]
        with self.lock:
            entry = self.pending.pop(stamp, None)
        if entry is None:
            raise _HttpError(404, f"no prearchive entry {src}")

        def later() -> None:
            time.sleep(self.archive_delay)
            with self.lock:
                self._archive(*entry)

        threading.Thread(target=later, daemon=True).start()

    def _ensure_session(self, project: str, subject: str, label: str) -> Session:
        self.subjects.setdefault((project, subject), {})
        key = (project, label)
        if key not in self.sessions:
            self.sessions[key] = Session(project, subject, label, self.next_id("E"))
        return self.sessions[key]


class HttpError(Exception):
    """An error answer. ``html`` True (XNAT's Restlet status page) unless the XNAT code
    that answers it writes a body of its own (``html=False``: plain text or JSON)."""

    def __init__(self, status: int, text: str, *, html: bool = True,
                 content_type: str = "text/plain") -> None:
        super().__init__(text)
        self.status, self.text, self.html, self.content_type = status, text, html, content_type


_HttpError = HttpError

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


def _result_set(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ResultSet": {"Result": rows, "totalRecords": str(len(rows))}}


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
            if fault is not None and fault.kind in ("crash", "drop"):
                self._read_body(limit=int(self.headers.get("Content-Length") or 0) // 2)
                self._drop()
            body = self._read_body() if method in ("PUT", "POST") else b""
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "500":
                self._send(500, "Internal Server Error (injected)")
                return
            status, answer, ctype, headers = self._route(method, path, query, body)
            if fault is not None and fault.kind == "500-after":
                self._send(500, "Internal Server Error after storing (injected)")
                return
            self._send(status, answer, ctype, headers)
        except _HttpError as exc:
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
    def _route(self, method: str, path: str, query: dict[str, str], body: bytes
               ) -> tuple[int, Any, str, dict[str, str] | None]:
        fake = self.fake
        if path in ("", "/"):
            return 200, "<html><body>XNAT</body></html>", "text/html", None
        if path == "/data/services/auth" and method == "PUT":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            if form.get("username") != USER or form.get("password") != PASSWORD:
                raise _HttpError(401, "<h3>Login attempt failed. Please try again.</h3>")
            token = secrets.token_hex(16).upper()
            fake.tokens.add(token)
            return 200, token, "text/plain", {"Set-Cookie": f"JSESSIONID={token}; Path=/"}
        if not self._authorised():
            raise _HttpError(401, "Login attempt failed. Please try again.")
        if path == "/data/auth":
            return 200, f"User '{USER}' is logged in", "text/plain", None
        if path == "/data/JSESSION":
            return 200, "ok", "text/plain", None
        if path == "/xapi/siteConfig/buildInfo":
            return 200, {"version": "1.9.3", "buildNumber": "double"}, "application/json", None
        if path.startswith("/xapi/"):
            return container_service.route(fake, method, path, query, body, self.headers)
        if path == "/data/services/import" and method == "POST":
            return 200, fake.import_zip(query, body) + "\r\n", "text/plain", None
        if path == "/data/services/archive" and method == "POST":
            fake.archive(query["src"])
            return 200, "/data/archive/" + query["src"], "text/plain", None
        listing = container_service.archive_listing(fake, method, path, query)
        if listing is not None:  # project experiments, session scans (bulk-launch selection)
            return listing
        return self._archive_route(method, path, query, body)

    def _archive_route(self, method: str, path: str, query: dict[str, str], body: bytes
                       ) -> tuple[int, Any, str, dict[str, str] | None]:
        fake = self.fake
        m = re.fullmatch(r"/data/projects/([^/]+)(?:/subjects/([^/]+)(?:/experiments/([^/]+)"
                         r"(/.*)?)?)?", path)
        if not m:
            raise _HttpError(404, f"no route {method} {path}")
        project, subject, label, rest = m.groups()
        if subject is None and method == "PUT":
            if not fake.can_create_projects:
                raise _HttpError(403, "you may not create projects")
            with fake.lock:
                created = project not in fake.projects
                fake.projects.add(project)
                fake.created_projects.append(dict(query, id=project))
            return (201 if created else 200), project, "text/plain", None
        if project not in fake.projects:
            raise _HttpError(404, f"project {project} not found")
        with fake.lock:
            if subject is None:
                return 200, {"items": [{"data_fields": {"ID": project}}]}, "application/json", None
            if label is None:
                if method == "PUT":
                    created = (project, subject) not in fake.subjects
                    fake.subjects.setdefault((project, subject), {}).update(_fields_from(query))
                    return (201 if created else 200), subject, "text/plain", None
                if (project, subject) not in fake.subjects:
                    raise _HttpError(404, "no such subject")
                return 200, {"items": [{"data_fields": fake.subjects[(project, subject)]}]}, \
                    "application/json", None
            key = (project, label)
            if method == "PUT" and not rest:
                created = key not in fake.sessions
                session = fake._ensure_session(project, subject, label)
                session.fields.update(_fields_from(query))
                return (201 if created else 200), session.id, "text/plain", None
            session = fake.sessions.get(key)
            if session is None or session.subject != subject:
                raise _HttpError(404, "no such experiment")
            if not rest:
                children = [{"field": "fields/field", "items": [
                    {"data_fields": {"name": k, "field": v}} for k, v in session.fields.items()
                    if "/" not in k]}]
                return 200, {"items": [{"data_fields": {"ID": session.id, "label": label},
                                        "children": children}]}, "application/json", None
            return self._session_route(method, session, rest, query, body)

    def _session_route(self, method: str, session: Session, rest: str, query: dict[str, str],
                       body: bytes) -> tuple[int, Any, str, dict[str, str] | None]:
        if rest == "/scans" and method == "GET":
            return 200, _result_set([{"ID": s, "xsiType": "xnat:mrScanData"}
                                     for s in sorted(session.scans)]), "application/json", None
        if rest == "/scans/ALL/resources/DICOM/files" and method == "GET":
            return 200, _result_set([
                {"Name": f"{uid}.dcm", "Size": str(len(data)),
                 "URI": f"/data/experiments/{session.id}/scans/{sid}/resources/DICOM/files/"
                        f"{uid}.dcm"}
                for sid, files in sorted(session.scans.items())
                for uid, data in files.items()]), "application/json", None
        m = re.fullmatch(r"/scans/([^/]+)/resources/DICOM/files", rest)
        if m and method == "GET":
            files = session.scans.get(m.group(1))
            if files is None:
                raise _HttpError(404, "no such scan")
            return 200, _result_set([{"Name": f"{uid}.dcm", "Size": str(len(data))}
                                     for uid, data in files.items()]), "application/json", None
        m = re.fullmatch(r"/resources/([^/]+)(?:/files(?:/(.+))?)?", rest)
        if m:
            label, name = m.group(1), m.group(2)
            if method == "PUT" and name is None and not rest.endswith("/files"):
                created = label not in session.resources
                session.resources.setdefault(label, {})
                return (201 if created else 200), label, "text/plain", None
            if method == "PUT" and name:
                if label not in session.resources:
                    raise _HttpError(404, f"no resource {label}")
                session.resources[label][name] = body
                return 201, name, "text/plain", None
            files = session.resources.get(label)
            if files is None:
                raise _HttpError(404, f"no resource {label}")
            if name is None:
                return 200, _result_set([{"Name": n, "Size": str(len(d))}
                                         for n, d in files.items()]), "application/json", None
            if name not in files:
                raise _HttpError(404, f"no file {name}")
            return 200, files[name], "application/octet-stream", None
        raise _HttpError(404, f"no route {method} {rest}")


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

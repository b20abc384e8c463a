"""XNAT server destination through xnatpy (``xnat.connect``), one connection per worker.

Credentials are xnatpy's: XNAT_USER/XNAT_PASS (or XNATPY_*) from the environment, else
``~/.netrc``; never on the command line and never logged. HTTPS certificates are verified
unless ``verify=False``.

Requests (all idempotent; the runner retries them on 5xx, timeouts, dropped connections):

* ``GET /data/projects/P``, and ``PUT /data/projects/P`` when it is missing;
* ``PUT /data/projects/P/subjects/S`` and ``.../experiments/E?xsiType=xnat:mrSessionData``;
* ``POST /data/services/import?import-handler=DICOM-zip&PROJECT_ID&SUBJECT_ID&EXPT_LABEL
  &overwrite=append&dest=/archive`` per batch of scans; when XNAT answers with a prearchive path,
  ``POST /data/services/archive?src=...`` and wait until the scan is archived;
* ``PUT .../resources/LABEL`` and ``.../resources/LABEL/files/NAME?inbody=true``;
* fields as ``PUT`` query parameters (``xnat:subjectData/fields/field[name=x]/field=v``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
import xnat
from xnat import exceptions as xnat_errors

from xnatpic.upload.errors import ProjectNotFoundError, TransientError, UploadError
from xnatpic.upload.prepare import ScanFiles, SessionPlan
from xnatpic.upload.target import MANIFEST_NAME

__all__ = ["STUDY_UID_FIELD", "ServerTarget", "field_query"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: Session custom field holding the StudyInstanceUID (guards against a label clash).
STUDY_UID_FIELD = "xnatpic_study_uid"
#: XNAT's own subject fields, by metadata column.
_SUBJECT_NATIVE = {
    "group": "xnat:subjectData/group",
    "sex": "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/gender",
    "dob": "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/dob",
    "weight": "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/weight",
}
_SCAN_IN_URI = re.compile(r"/scans/([^/]+)/resources/")
_TRANSPORT = (requests.ConnectionError, requests.Timeout,
              requests.exceptions.ChunkedEncodingError, xnat_errors.XNATConnectionError)


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


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
        Seconds to wait for a prearchived scan to reach the archive.
    """

    name = "server"
    stateful = True

    def __init__(self, server: str, *, verify: bool = True, timeout: float = 300.0,
                 archive_wait: float = 600.0, create_project: bool = True) -> None:
        if os.environ.get("XNAT_USER") and not os.environ.get("XNAT_PASS"):
            raise UploadError("XNAT_USER is set but XNAT_PASS is not; set both (or use "
                              "~/.netrc) so the password is never asked for or typed")
        self.server = server.rstrip("/")
        self.verify = verify
        self.timeout = timeout
        self.archive_wait = archive_wait
        self.create_project = create_project
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []

    # -- transport ---------------------------------------------------------------------
    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._call("connect", lambda: xnat.connect(
                self.server, verify=self.verify, no_parse_model=True,
                default_timeout=self.timeout, pilot_timeout=min(self.timeout, 30.0),
                logger=logging.getLogger("xnatpic.upload.xnatpy")))
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        # after a dropped connection, start afresh (the server may have lost the session)
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            try:
                conn.disconnect()
            except (*_TRANSPORT, xnat_errors.XNATResponseError) as exc:
                _log.debug("disconnect after a failure: %s", exc)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except xnat_errors.XNATResponseError as exc:
            code = getattr(exc, "status_code", 0) or 0
            text = (getattr(exc, "text", "") or "").strip()[:200]
            if code >= 500:
                raise TransientError(f"{what}: HTTP {code} {text}") from exc
            hint = " (check XNAT_USER/XNAT_PASS or ~/.netrc)" if code in (401, 403) else ""
            raise UploadError(f"{what}: HTTP {code}{hint} {text}".rstrip()) from exc
        except xnat_errors.XNATLoginFailedError as exc:
            raise UploadError(f"{what}: login to {self.server} failed; check XNAT_USER/"
                              "XNAT_PASS or ~/.netrc") from exc
        except xnat_errors.XNATSSLError as exc:
            raise UploadError(f"{what}: HTTPS problem with {self.server}: {exc}") from exc
        except _TRANSPORT as exc:
            self._drop_connection()
            raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        def call() -> requests.Response:
            conn = self._connection()
            return getattr(conn, method)(path, **kwargs)
        return self._call(what, call)

    def _json(self, path: str, what: str) -> Any:
        resp = self._request("get", path, what, query={"format": "json"},
                             accepted_status=[200, 404])
        if resp.status_code == 404:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise TransientError(f"{what}: answer is not JSON: {resp.text[:100]}") from exc

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
                             query={"format": "json"}, accepted_status=[200, 403, 404])
        if resp.status_code == 200:
            return
        if not self.create_project:
            raise ProjectNotFoundError(
                f"project {project!r} does not exist on {self.server} or you cannot see it "
                f"(HTTP {resp.status_code}); create it in XNAT first, or drop "
                "--no-create-project")
        created = self._request(
            "put", f"/data/projects/{_q(project)}", f"project {project}: create",
            query={"xsiType": "xnat:projectData", "name": project,
                   "secondary_ID": project, "accessibility": "private"},
            accepted_status=[200, 201, 403])
        if created.status_code == 403:
            raise ProjectNotFoundError(
                f"project {project!r} does not exist on {self.server} and this account may "
                "not create projects (HTTP 403); ask an XNAT administrator to create it")
        _log.warning("created project %s on %s (private)", project, self.server)

    def manifest(self, plan: SessionPlan) -> dict[str, Any] | None:
        """The manifest file of the CONVERSION resource, when present."""
        path = f"{self._session_path(plan)}/resources/CONVERSION/files/{MANIFEST_NAME}"
        resp = self._request("get", path, f"{plan.key}: manifest", accepted_status=[200, 404])
        if resp.status_code == 404:
            return None
        try:
            return json.loads(resp.content)
        except ValueError:
            return None

    def study_uid(self, plan: SessionPlan) -> str | None:
        """The session's StudyInstanceUID (field, else its ``UID``), None when absent."""
        answer = self._json(self._session_path(plan), f"{plan.key}: session")
        if answer is None:
            return None
        try:
            item = answer["items"][0]
        except (KeyError, IndexError, TypeError):
            return ""
        for child in item.get("children", []):
            if child.get("field") == "fields/field":
                for entry in child.get("items", []):
                    data = entry.get("data_fields", {})
                    if data.get("name") == STUDY_UID_FIELD:
                        return str(data.get("field", ""))
        return str(item.get("data_fields", {}).get("UID", ""))

    def ensure_session(self, plan: SessionPlan, study_uid: str) -> None:
        """PUT subject and session (XNAT answers 200 when they exist already)."""
        subject = f"/data/projects/{_q(plan.project)}/subjects/{_q(plan.subject)}"
        self._request("put", subject, f"{plan.key}: subject", accepted_status=[200, 201])
        query = {"xsiType": "xnat:mrSessionData", **field_query(
            "xnat:mrSessionData", {STUDY_UID_FIELD: study_uid})}
        if len(plan.date) == 8:
            d = plan.date
            query["xnat:mrSessionData/date"] = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
        self._request("put", self._session_path(plan), f"{plan.key}: session", query=query,
                      accepted_status=[200, 201])

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

    def send_scans(self, plan: SessionPlan, scans: list[ScanFiles], zip_path: Path) -> None:
        """Import a zip of scans (to the archive, else through the prearchive and wait)."""
        query = {"import-handler": "DICOM-zip", "PROJECT_ID": plan.project,
                 "SUBJECT_ID": plan.subject, "EXPT_LABEL": plan.session,
                 "overwrite": "append", "dest": "/archive", "inbody": "true"}
        what = f"{plan.key}: import scans {', '.join(s.id for s in scans)}"
        with zip_path.open("rb") as body:
            resp = self._request("post", "/data/services/import", what, data=body, query=query,
                                 headers={"Content-Type": "application/zip"},
                                 accepted_status=[200, 201])
        uri = resp.text.strip().splitlines()[-1].strip() if resp.text.strip() else ""
        if "/prearchive/" in uri:
            src = uri[uri.index("/prearchive/"):]
            self._request("post", "/data/services/archive", f"{what}: archive",
                          query={"src": src, "overwrite": "append", "dest":
                                 f"/archive/projects/{plan.project}"},
                          accepted_status=[200, 201])
            self._wait_archived(plan, scans)

    def _wait_archived(self, plan: SessionPlan, scans: list[ScanFiles]) -> None:
        deadline = time.monotonic() + self.archive_wait
        delay = 0.2
        while True:
            counts = self.scan_counts(plan)
            if all(counts.get(s.id, 0) >= len(s.files) for s in scans):
                return
            if time.monotonic() > deadline:
                raise TransientError(f"{plan.key}: scans not archived after "
                                     f"{self.archive_wait:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def resource_files(self, plan: SessionPlan, label: str) -> dict[str, int]:
        """Files of a session resource (name → size)."""
        rows = self._rows(self._json(f"{self._session_path(plan)}/resources/{_q(label)}/files",
                                     f"{plan.key}: resource {label}"))
        return {str(r.get("Name")): int(r.get("Size") or 0) for r in rows}

    def put_resource_file(self, plan: SessionPlan, label: str, path: Path, name: str) -> None:
        """Create the resource when absent, then PUT the file (replacing it)."""
        base = f"{self._session_path(plan)}/resources/{_q(label)}"
        fmt = "ZIP" if name.endswith(".zip") else "JSON"
        self._request("put", base, f"{plan.key}: resource {label}",
                      query={"format": fmt}, accepted_status=[200, 201, 409])
        with path.open("rb") as body:
            self._request("put", f"{base}/files/{_q(name)}", f"{plan.key}: {label}/{name}",
                          data=body, query={"inbody": "true", "overwrite": "true",
                                            "extract": "false"},
                          headers={"Content-Type": "application/octet-stream"},
                          accepted_status=[200, 201])

    def set_fields(self, plan: SessionPlan) -> None:
        """Subject fields on the subject, session fields on the session."""
        if plan.subject_fields:
            self._request("put", f"/data/projects/{_q(plan.project)}/subjects/"
                          f"{_q(plan.subject)}", f"{plan.key}: subject fields",
                          query=field_query("xnat:subjectData", plan.subject_fields,
                                            _SUBJECT_NATIVE), accepted_status=[200, 201])
        if plan.session_fields:
            self._request("put", self._session_path(plan), f"{plan.key}: session fields",
                          query={"xsiType": "xnat:mrSessionData", **field_query(
                              "xnat:mrSessionData", plan.session_fields)},
                          accepted_status=[200, 201])

    def close(self) -> None:
        """Disconnect every worker's connection."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.disconnect()
            except (*_TRANSPORT, xnat_errors.XNATResponseError) as exc:
                _log.debug("disconnect: %s", exc)

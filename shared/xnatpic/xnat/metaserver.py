"""XNAT's REST answers for a local archive: what a step asks XNAT, asked locally.

On XNAT a step reads subject/session metadata (group, timepoint, custom fields) through
the REST API with XNAT_HOST, XNAT_USER and XNAT_PASS, which the Container Service puts in
every container (ContainerServiceImpl.java:816-829). ``xnatpic launch`` starts this server on
127.0.0.1 for each launch, with credentials of its own, and passes its address the same
way; it answers from ``<archive>/.xnatpic/<PROJECT>.json`` (:mod:`xnatpic.xnat.metadata`)
in XNAT's JSON shapes:

- ``GET /data/projects/P/subjects``, ``/data/projects/P/experiments`` and
  ``/data/experiments/E/scans``: ``{"ResultSet": {"Result": [rows]}}`` of XNAT's column
  names (``ID``, ``label``, ``group``, ``subject_ID``, ``subject_label``...);
- ``GET /data/experiments/E``, ``/data/projects/P/experiments/E``,
  ``/data/projects/P/subjects/S``, ``/data/subjects/S`` and ``/data/projects/P`` (with
  ``format=json``): ``{"items": [{"data_fields": {...}, "meta": {"xsi:type": ...},
  "children": [{"field": "fields/field", "items": [{"data_fields": {"name": N,
  "field": V}}]}]}]}``, the shape XNAT's REST tests read (xnat-rest-tests
  TestDicomDataExtraction.java:111-123).

- ``POST /data/services/import?import-handler=DICOM-zip&...`` (what mri2dicom's
  ``--import`` sends): the DICOM archived into the local session
  (:mod:`xnatpic.xnat.local_import`).

Anything else answers 404 (405 for other writes); a request without the launch's
credentials answers 401.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import ArchiveError
from xnatpic.xnat.metadata import FOLDER, ProjectMetadata, read_project

__all__ = ["MetadataServer"]

#: Seconds between two checks of the serving thread for a shutdown request: leaving the
#: ``with`` waits up to this long (socketserver's default, 0.5 s, was paid by every launch).
POLL_SECONDS = 0.02


class _NotFound(Exception):
    pass


def _item(xsi_type: str, fields: dict[str, Any], children: list[dict[str, Any]]
          ) -> dict[str, Any]:
    return {"items": [{"data_fields": {k: v for k, v in fields.items() if v is not None},
                       "meta": {"xsi:type": xsi_type, "isHistory": False},
                       "children": children}]}


def _custom_fields(owner: str, fields: dict[str, str]) -> list[dict[str, Any]]:
    if not fields:
        return []
    return [{"field": "fields/field", "items": [
        {"data_fields": {"name": name, "field": value},
         "meta": {"xsi:type": f"{owner}_field", "isHistory": False}, "children": []}
        for name, value in fields.items()]}]


class MetadataServer:
    """Serve one archive's metadata on ``http://127.0.0.1:<port>`` while in a ``with``.

    Parameters
    ----------
    archive : Path
        The archive root (holding ``<PROJECT>/arc001/`` and ``.xnatpic/``).

    Attributes
    ----------
    user, password : str
        The credentials a request must carry (HTTP Basic), new for each server.
    """

    def __init__(self, archive: Path) -> None:
        self.archive = Path(archive)
        self.user = f"xnatpic-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(16)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (only while running)."""
        if self._server is None:
            raise RuntimeError("the metadata server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """XNAT_HOST, XNAT_USER and XNAT_PASS pointing at this server."""
        return {"XNAT_HOST": self.url, "XNAT_USER": self.user, "XNAT_PASS": self.password}

    def __enter__(self) -> MetadataServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,),
                                        daemon=True, name="xnatpic-metadata")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._server = None

    # answers ----------------------------------------------------------------------------

    def projects(self) -> list[str]:
        """Project ids of the archive."""
        ids = {p.name for p in self.archive.iterdir() if (p / "arc001").is_dir()} \
            if self.archive.is_dir() else set()
        folder = self.archive / FOLDER
        if folder.is_dir():
            ids |= {p.stem for p in folder.glob("*.json") if p.stem != "site"}
        return sorted(ids)

    def project(self, pid: str) -> ProjectMetadata:
        if pid not in self.projects():
            raise _NotFound(pid)
        return read_project(self.archive, pid)

    def find_experiment(self, ident: str, pid: str | None = None
                        ) -> tuple[ProjectMetadata, str, dict[str, Any]]:
        for project in [pid] if pid else self.projects():
            meta = self.project(project)
            found = meta.experiment_by_id(ident)
            if found:
                return meta, found[0], found[1]
        raise _NotFound(ident)

    def find_subject(self, ident: str, pid: str | None = None
                     ) -> tuple[ProjectMetadata, str, dict[str, Any]]:
        for project in [pid] if pid else self.projects():
            meta = self.project(project)
            found = meta.subject_by_id(ident)
            if found:
                return meta, found[0], found[1]
        raise _NotFound(ident)

    def answer(self, path: str) -> dict[str, Any]:
        """The JSON XNAT gives for a GET of ``path`` (``/data/...``).

        Raises
        ------
        _NotFound
            When XNAT would answer 404.
        """
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[:1] != ["data"]:
            raise _NotFound(path)
        parts = parts[1:]
        match parts:
            case ["projects", pid]:
                row = self.project(pid).data["project"]
                return _item("xnat:projectData", {"ID": pid, **{k: v for k, v in row.items()
                                                                if k != "ID"}}, [])
            case ["projects", pid, "subjects"]:
                meta = self.project(pid)
                return {"ResultSet": {"Result": [
                    {"ID": row.get("ID", label), "label": label, "project": pid,
                     "group": row.get("group", ""), "src": row.get("src", ""),
                     "URI": f"/data/subjects/{row.get('ID', label)}"}
                    for label, row in meta.data["subjects"].items()]}}
            case ["projects", _, "subjects", sid] | ["subjects", sid]:
                pid = parts[1] if parts[0] == "projects" else None
                meta, label, row = self.find_subject(sid, pid)
                return _item("xnat:subjectData", {
                    "ID": row.get("ID", label), "label": label, "project": meta.project,
                    "group": row.get("group"), "src": row.get("src"),
                }, _custom_fields("xnat:subjectData", row.get("fields") or {}))
            case ["projects", pid, "experiments"]:
                meta = self.project(pid)
                return {"ResultSet": {"Result": [
                    self.experiment_row(meta, label, row)
                    for label, row in meta.data["experiments"].items()]}}
            case (["experiments", eid] | ["projects", _, "experiments", eid]
                  | ["projects", _, "subjects", _, "experiments", eid]):
                pid = parts[1] if parts[0] == "projects" else None
                meta, label, row = self.find_experiment(eid, pid)
                return self.experiment_item(meta, label, row)
            case ["experiments", eid, "scans"]:
                meta, label, row = self.find_experiment(eid)
                uri = f"/data/experiments/{row.get('ID', label)}/scans"
                return {"ResultSet": {"Result": [
                    {"ID": sid, "xnat_imagescandata_id": scan.get("xnat_imagescandata_id"),
                     "type": scan.get("type", ""), "quality": scan.get("quality", ""),
                     "series_description": scan.get("series_description", ""),
                     "xsiType": scan.get("xsiType", "xnat:mrScanData"), "URI": f"{uri}/{sid}"}
                    for sid, scan in (row.get("scans") or {}).items()]}}
        raise _NotFound(path)

    @staticmethod
    def experiment_row(meta: ProjectMetadata, label: str, row: dict[str, Any]
                       ) -> dict[str, Any]:
        subject = meta.subject(str(row.get("subject", ""))) or {}
        ident = row.get("ID", label)
        return {"ID": ident, "label": label, "project": meta.project,
                "subject_ID": subject.get("ID", row.get("subject", "")),
                "subject_label": row.get("subject", ""),
                "xsiType": row.get("xsiType", "xnat:mrSessionData"),
                "date": row.get("date", ""), "URI": f"/data/experiments/{ident}"}

    @staticmethod
    def experiment_item(meta: ProjectMetadata, label: str, row: dict[str, Any]
                        ) -> dict[str, Any]:
        subject = meta.subject(str(row.get("subject", ""))) or {}
        xsi = str(row.get("xsiType", "xnat:mrSessionData"))
        scans = [{"data_fields": {"ID": sid, "image_session_ID": row.get("ID", label),
                                  **{k: v for k, v in scan.items() if k != "xsiType"}},
                  "meta": {"xsi:type": scan.get("xsiType", "xnat:mrScanData"),
                           "isHistory": False}, "children": []}
                 for sid, scan in (row.get("scans") or {}).items()]
        children = _custom_fields(xsi, row.get("fields") or {})
        if scans:
            children.append({"field": "scans/scan", "items": scans})
        return _item(xsi, {
            "ID": row.get("ID", label), "label": label, "project": meta.project,
            "subject_ID": subject.get("ID", row.get("subject")), "date": row.get("date"),
            "visit_id": row.get("visit_id"),
        }, children)


def _handler(server: MetadataServer) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(
        f"{server.user}:{server.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: str, kind: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != expected:
                self._send(401, "<html><body><h3>Login required</h3></body></html>",
                           "text/html")
                return
            path = urllib.parse.urlsplit(self.path).path
            try:
                answer = server.answer(path)
            except _NotFound:
                self._send(404, f"<html><body><h3>Not Found: {path}</h3></body></html>",
                           "text/html")
                return
            except ArchiveError as exc:
                self._send(500, f"<html><body><h3>{exc}</h3></body></html>", "text/html")
                return
            self._send(200, json.dumps(answer), "application/json")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != expected:
                self._send(401, "<html><body><h3>Login required</h3></body></html>",
                           "text/html")
                return
            url = urllib.parse.urlsplit(self.path)
            if url.path.rstrip("/") != "/data/services/import":
                self._refuse()
                return
            params = dict(urllib.parse.parse_qsl(url.query))
            # imported here: it needs pydicom, which a launch whose step never imports
            # DICOM should not pay for
            from xnatpic.xnat.local_import import import_dicom_zip
            try:
                uri = import_dicom_zip(server.archive, params, body)
            except ArchiveError as exc:
                self._send(400, f"<html><body><h3>{exc}</h3></body></html>", "text/html")
                return
            self._send(200, uri, "text/plain")

        def _refuse(self) -> None:
            self._send(405, "<html><body><h3>read-only</h3></body></html>", "text/html")

        do_PUT = do_DELETE = _refuse

    return Handler

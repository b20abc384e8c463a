"""A small client of XNAT's REST API: commands, launches, workflows and the import service.

Credentials come from the environment (XNAT_HOST, XNAT_USER, XNAT_PASS: what the
Container Service sets inside a container) or from ``~/.netrc`` for the host, never from
the command line; they are sent as an HTTP Basic ``Authorization`` header and never
written to logs or error messages.
"""

from __future__ import annotations

import base64
import json
import logging
import netrc
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import XnatRequestError

__all__ = [
    "TERMINAL_PREFIXES",
    "Credentials",
    "WrapperRef",
    "XnatClient",
    "is_terminal",
    "load_credentials",
]

_log = logging.getLogger(__name__)

#: Workflow statuses that end a job (``Failed (Staging)``, ``Complete``...).
TERMINAL_PREFIXES = ("Complete", "Failed", "Killed")


def is_terminal(status: str | None) -> bool:
    """Whether a workflow status is final."""
    return bool(status) and str(status).startswith(TERMINAL_PREFIXES)


@dataclass(frozen=True)
class Credentials:
    """Where XNAT is and who we are; the password is kept out of ``repr``."""

    host: str
    user: str
    password: str = field(repr=False)

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value (HTTP Basic)."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


def load_credentials(host: str | None = None, *, env: dict[str, str] | None = None,
                     netrc_file: Path | None = None) -> Credentials:
    """Find XNAT credentials: XNAT_HOST/XNAT_USER/XNAT_PASS, else ``~/.netrc``.

    Parameters
    ----------
    host : str, optional
        XNAT's address (default: XNAT_HOST).
    env : dict, optional
        Environment to read (default: ``os.environ``).
    netrc_file : Path, optional
        The netrc file (default: ``~/.netrc``).

    Raises
    ------
    XnatRequestError
        When no host, or no user and password for it, can be found.
    """
    env = dict(os.environ if env is None else env)
    host = (host or env.get("XNAT_HOST") or "").rstrip("/")
    if not host:
        raise XnatRequestError("no XNAT address: set XNAT_HOST (e.g. https://xnat.example.org)")
    if "://" not in host:
        host = f"https://{host}"
    user, password = env.get("XNAT_USER"), env.get("XNAT_PASS")
    if user and password:
        return Credentials(host, user, password)
    path = netrc_file or Path.home() / ".netrc"
    machine = urllib.parse.urlsplit(host).hostname or host
    try:
        entry = netrc.netrc(str(path)).authenticators(machine) if path.exists() else None
    except netrc.NetrcParseError as exc:
        raise XnatRequestError(f"{path}: cannot parse: {exc.msg} (line {exc.lineno})") from exc
    if entry is None or not entry[0] or not entry[2]:
        raise XnatRequestError(
            f"no credentials for {machine}: set XNAT_USER and XNAT_PASS or add "
            f"'machine {machine} login USER password PASS' to {path}"
        )
    return Credentials(host, entry[0], entry[2])


@dataclass(frozen=True)
class WrapperRef:
    """A wrapper as XNAT knows it: its command id, wrapper id and root input name."""

    command_id: int
    wrapper_id: int
    name: str
    root: str


class XnatClient:
    """Minimal XNAT REST client (urllib, JSON).

    Parameters
    ----------
    credentials : Credentials
        Host, user, password.
    timeout : float
        Seconds per request.
    """

    def __init__(self, credentials: Credentials, *, timeout: float = 120.0) -> None:
        self.credentials = credentials
        self.timeout = timeout

    # -- transport -------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: bytes | None = None, content_type: str | None = None,
                expect: tuple[int, ...] = (200, 201)) -> tuple[int, bytes]:
        """Send one request; return (status, body).

        Raises
        ------
        XnatRequestError
            On a connection failure or an unexpected HTTP status, with the method, URL
            (no credentials) and the start of XNAT's answer.
        """
        url = self.credentials.host + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": self.credentials.authorization,
                   "Accept": "application/json, text/plain, */*"}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        _log.debug("%s %s", method, url)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace").strip()[:300]
            hint = " (check XNAT_USER/XNAT_PASS)" if exc.code in (401, 403) else ""
            raise XnatRequestError(
                f"{method} {url}: HTTP {exc.code} {exc.reason}{hint}" + (f": {text}" if text
                                                                         else "")
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise XnatRequestError(f"{method} {url}: cannot reach XNAT: {reason}") from exc
        if status not in expect:
            raise XnatRequestError(f"{method} {url}: unexpected HTTP {status}")
        return status, data

    def json(self, method: str, path: str, payload: Any = None, *,
             params: dict[str, str] | None = None) -> Any:
        """Send JSON (when ``payload`` is not None) and decode a JSON answer."""
        body = None if payload is None else json.dumps(payload).encode()
        _, data = self.request(method, path, params=params, body=body,
                               content_type="application/json" if body is not None else None)
        text = data.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise XnatRequestError(f"{method} {path}: answer is not JSON: {text[:200]}"
                                   ) from exc

    # -- commands --------------------------------------------------------------------
    def add_command(self, command: dict[str, Any]) -> int:
        """``POST /xapi/commands``; return the new command id."""
        answer = self.json("POST", "/xapi/commands", command)
        try:
            return int(answer if not isinstance(answer, dict) else answer["id"])
        except (TypeError, ValueError, KeyError) as exc:
            raise XnatRequestError(f"POST /xapi/commands: expected the new id, got {answer!r}"
                                   ) from exc

    def enable_wrapper(self, command_id: int, wrapper: str, project: str | None = None
                       ) -> None:
        """Enable a wrapper site-wide, or for ``project``."""
        name = urllib.parse.quote(wrapper, safe="")
        if project is None:
            path = f"/xapi/commands/{command_id}/wrappers/{name}/enabled"
        else:
            path = (f"/xapi/projects/{urllib.parse.quote(project, safe='')}/commands/"
                    f"{command_id}/wrappers/{name}/enabled")
        self.request("PUT", path)

    def commands(self) -> list[dict[str, Any]]:
        """``GET /xapi/commands``: every command with its wrappers and their ids."""
        answer = self.json("GET", "/xapi/commands")
        if not isinstance(answer, list):
            raise XnatRequestError("GET /xapi/commands: expected a list of commands")
        return answer

    def find_wrapper(self, wrapper: str) -> WrapperRef:
        """Find a wrapper by name (or numeric id) among XNAT's commands.

        Raises
        ------
        XnatRequestError
            When no wrapper or several match, or it has not exactly one external input.
        """
        found = [
            (cmd, w) for cmd in self.commands() for w in cmd.get("xnat", [])
            if w.get("name") == wrapper or str(w.get("id")) == wrapper
        ]
        if not found:
            raise XnatRequestError(f"XNAT has no wrapper {wrapper!r}; register it first "
                                   "('xnatpic xnat register')")
        if len(found) > 1:
            which = [f"{c.get('name')}:{c.get('version')} (id {w.get('id')})" for c, w in found]
            raise XnatRequestError(f"several wrappers are called {wrapper!r}: {which}; give "
                                   "the wrapper id instead")
        cmd, w = found[0]
        externals = w.get("external-inputs", [])
        if len(externals) != 1:
            raise XnatRequestError(f"wrapper {wrapper!r} has {len(externals)} external inputs; "
                                   "a launch needs exactly one root input")
        return WrapperRef(int(cmd["id"]), int(w["id"]), str(w["name"]),
                          str(externals[0]["name"]))

    # -- launches --------------------------------------------------------------------
    def _launch_path(self, project: str, ref: WrapperRef, action: str) -> str:
        return (f"/xapi/projects/{urllib.parse.quote(project, safe='')}/wrappers/"
                f"{ref.wrapper_id}/root/{urllib.parse.quote(ref.root, safe='')}/{action}")

    def launch(self, project: str, ref: WrapperRef, session: str,
               params: dict[str, str] | None = None) -> dict[str, Any]:
        """Launch on one session; ``session`` is an id or ``/archive/experiments/ID``."""
        uri = session if session.startswith("/archive/") else f"/archive/experiments/{session}"
        answer = self.json("POST", self._launch_path(project, ref, "launch"),
                           {**(params or {}), ref.root: uri})
        if not isinstance(answer, dict):
            raise XnatRequestError(f"launch on {session}: unexpected answer {answer!r}")
        return answer

    def bulk_launch(self, project: str, ref: WrapperRef, sessions: list[str],
                    params: dict[str, str] | None = None) -> dict[str, Any]:
        """Bulk launch: the root value is a JSON array of ids *as a string* (XNAT's quirk)."""
        body = {**(params or {}), ref.root: json.dumps(sessions, separators=(",", ":"))}
        answer = self.json("POST", self._launch_path(project, ref, "bulklaunch"), body)
        if not isinstance(answer, dict):
            raise XnatRequestError(f"bulk launch: unexpected answer {answer!r}")
        return answer

    def workflow(self, workflow_id: str | int) -> dict[str, Any]:
        """``GET /xapi/workflows/{id}``."""
        answer = self.json("GET", f"/xapi/workflows/{workflow_id}")
        if not isinstance(answer, dict):
            raise XnatRequestError(f"workflow {workflow_id}: unexpected answer {answer!r}")
        return answer

    # -- archive listings ------------------------------------------------------------
    def _results(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        answer = self.json("GET", path, params=params)
        try:
            return list(answer["ResultSet"]["Result"])
        except (TypeError, KeyError) as exc:
            raise XnatRequestError(f"GET {path}: expected a ResultSet") from exc

    def project_sessions(self, project: str) -> list[dict[str, Any]]:
        """Image sessions of a project (``ID``, ``label``, ``xsiType``...)."""
        rows = self._results(f"/data/projects/{urllib.parse.quote(project, safe='')}/experiments",
                             {"format": "json", "columns": "ID,label,xsiType,date"})
        return [r for r in rows if str(r.get("xsiType", r.get("xsi:type", ""))).endswith(
            "SessionData")]

    def session_scans(self, session_id: str) -> list[dict[str, Any]]:
        """Scans of a session (``ID``, ``type``, ``series_description``...)."""
        return self._results(f"/data/experiments/{urllib.parse.quote(session_id, safe='')}/scans",
                             {"format": "json"})

    # -- import service --------------------------------------------------------------
    def import_dicom_zip(self, zip_path: Path, *, project: str, subject: str,
                         session_label: str, overwrite: str = "append") -> str:
        """Send a zip of DICOM into a session through XNAT's import service.

        ``POST /data/services/import?import-handler=DICOM-zip&PROJECT_ID=...&SUBJECT_ID=...
        &EXPT_LABEL=...&overwrite=append&inbody=true`` with the zip as the body. XNAT
        sorts the files into one scan per series, each with a DICOM resource.

        Returns
        -------
        str
            XNAT's answer (the URI of the session the files went to).
        """
        params = {
            "import-handler": "DICOM-zip", "PROJECT_ID": project, "SUBJECT_ID": subject,
            "EXPT_LABEL": session_label, "overwrite": overwrite, "inbody": "true",
        }
        body = Path(zip_path).read_bytes()
        _, data = self.request("POST", "/data/services/import", params=params, body=body,
                               content_type="application/zip")
        return data.decode("utf-8", "replace").strip()

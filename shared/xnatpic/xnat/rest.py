"""XNAT's REST API for xnatpic: commands, launches, workflows, containers and the import
service, over the project's one transport (:mod:`xnatpic.xnat.http`: a persistent
connection and XNAT session, streamed bodies, same-origin redirects only).

Credentials come from the environment (XNAT_HOST, XNAT_USER, XNAT_PASS: what the
Container Service sets inside a container) or from ``~/.netrc`` (or the file NETRC names)
for the host, never from the command line or the address; they are never written to logs
or error messages.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import netrc
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.http import XnatConnection, XnatTransportError, check_address

__all__ = [
    "TERMINAL_PREFIXES",
    "TO_BE_ASSIGNED",
    "Credentials",
    "WrapperRef",
    "XnatClient",
    "XnatHttpError",
    "XnatTransportError",
    "is_terminal",
    "load_credentials",
    "root_value",
]

_log = logging.getLogger(__name__)

#: Workflow statuses that end a job (``Failed (Staging)``, ``Complete``...).
TERMINAL_PREFIXES = ("Complete", "Failed", "Killed")

#: The workflow id of every job a bulk launch queued: its workflow does not exist yet
#: (container-service ContainerServiceImpl.java:169, 2355).
TO_BE_ASSIGNED = "To be assigned"

#: Archive URI of a root object given by id, by the type of the wrapper's external input;
#: CS reads a value starting with "/" as a URI and anything else as an id
#: (CommandResolutionServiceImpl.java:2042-2084), and names the workflow after the object
#: the URI points to (ContainerServiceImpl.java:1884-1893).
_URI_BY_ROOT_TYPE = {"session": "/archive/experiments/{}", "project": "/archive/projects/{}",
                     "subject": "/archive/subjects/{}"}


class XnatHttpError(XnatRequestError):
    """XNAT answered with an HTTP error status; ``status`` and ``body`` keep the answer."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _summary(text: str, limit: int = 300) -> str:
    """One line of an answer for an error message: an HTML page's headings and paragraphs
    without the markup, anything else with its white space collapsed."""
    if re.match(r"\s*(<!doctype|<html)", text, re.IGNORECASE):
        parts = re.findall(r"<(?:title|h[1-6]|p)[^>]*>(.*?)</", text, re.IGNORECASE | re.DOTALL)
        texts = [" ".join(re.sub(r"<[^>]+>", "", x).split()) for x in parts]
        text = " - ".join(dict.fromkeys(t for t in texts if t))  # each text once
        text = html.unescape(text) or "an HTML page"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def root_value(value: str, root_type: str) -> str:
    """The value sent for a wrapper's root input: ``value`` when it is already a URI
    (starts with ``/``), else the archive URI of the object with that id for session,
    project and subject roots; other types get the id itself."""
    if value.startswith("/"):
        return value
    template = _URI_BY_ROOT_TYPE.get(root_type.lower())
    return template.format(value) if template else value


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions naturally: numbers as numbers (0.10 > 0.9), text after numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.findall(r"\d+|[A-Za-z]+", version))


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
        The netrc file (default: the file NETRC names, else ``~/.netrc``).

    Raises
    ------
    XnatRequestError
        When no host, or no user and password for it, can be found, or the address holds
        a user name or password.
    """
    env = dict(os.environ if env is None else env)
    host = (host or env.get("XNAT_HOST") or "").rstrip("/")
    if not host:
        raise XnatRequestError("no XNAT address: set XNAT_HOST (e.g. https://xnat.example.org)")
    if "://" not in host:
        host = f"https://{host}"
    check_address(host)
    user, password = env.get("XNAT_USER"), env.get("XNAT_PASS")
    if user and password:
        return Credentials(host, user, password)
    if user and not password:
        raise XnatRequestError("XNAT_USER is set but XNAT_PASS is not; set both (or use "
                               "~/.netrc) so the password is never asked for or typed")
    path = netrc_file or Path(env.get("NETRC") or Path.home() / ".netrc")
    parts = urllib.parse.urlsplit(host)
    machine = parts.hostname or host
    try:
        entries = netrc.netrc(str(path)) if path.exists() else None
        # the machine with its port first (as xnatpy looks it up), then the host alone
        entry = None if entries is None else (entries.authenticators(parts.netloc)
                                              or entries.authenticators(machine))
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
    """A wrapper as XNAT knows it: command id, wrapper id, root input name and type,
    and the command's version."""

    command_id: int
    wrapper_id: int
    name: str
    root: str
    root_type: str = "Session"
    version: str = ""


class XnatClient:
    """XNAT's REST API over one persistent connection and session.

    Parameters
    ----------
    credentials : Credentials
        Host, user, password.
    timeout : float
        Seconds any one read or write of a request may wait.
    verify : bool
        Verify HTTPS certificates.
    """

    def __init__(self, credentials: Credentials, *, timeout: float = 120.0,
                 verify: bool = True) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.http = XnatConnection(credentials.host, credentials.user, credentials.password,
                                   verify=verify, timeout=timeout)

    def close(self) -> None:
        """End the XNAT session and close the connection."""
        self.http.close()

    def __enter__(self) -> XnatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                body: bytes | Path | None = None, content_type: str | None = None,
                expect: tuple[int, ...] = (200, 201), download: Path | None = None
                ) -> tuple[int, bytes]:
        """Send one request; return (status, body).

        ``path`` must be quoted already (every caller quotes the ids it puts in it). A
        ``Path`` body is streamed from the file; ``download`` streams the answer into a
        file (the returned body is then empty).

        Raises
        ------
        XnatHttpError
            On an HTTP error status, with the method, URL (no credentials) and the start
            of XNAT's answer (an HTML error page is reduced to its text).
        XnatRequestError
            When XNAT cannot be reached, does not answer in time, breaks the connection,
            redirects to another address or answers an unexpected status.
        """
        url = self.credentials.host + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            resp = self.http.request(method, path, query=params, body=body, headers=headers,
                                     download=download)
        except XnatTransportError as exc:
            raise XnatTransportError(f"{method} {url}: {exc.reason}", timeout=exc.timeout,
                                     reason=exc.reason) from exc
        status = resp.status
        if status >= 400:
            text = resp.text.strip()
            hint = " (check XNAT_USER/XNAT_PASS)" if status in (401, 403) else ""
            summary = _summary(text)
            raise XnatHttpError(
                f"{method} {url}: HTTP {status} {resp.reason}{hint}"
                + (f": {summary}" if summary else ""), status=status, body=text)
        if status not in expect:
            raise XnatRequestError(f"{method} {url}: unexpected HTTP {status}")
        return status, resp.body

    def json(self, method: str, path: str, payload: Any = None, *,
             params: dict[str, str] | None = None) -> Any:
        """Send JSON (when ``payload`` is not None) and decode a JSON answer."""
        body = None if payload is None else json.dumps(payload).encode()
        _, data = self.request(method, path, params=params, body=body,
                               content_type="application/json" if body is not None else None)
        return _decode(method, path, data)

    # -- commands --------------------------------------------------------------------
    def add_command(self, command: dict[str, Any], *, image: str | None = None) -> int:
        """``POST /xapi/commands``; return the new command id.

        ``image`` replaces the command's image (``?image=``, CommandRestApi.java:118 and
        Command.java:321-326; CS adds ``:latest`` when it has no tag).
        """
        params = {"image": image} if image else None
        answer = self.json("POST", "/xapi/commands", command, params=params)
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

        Several commands may hold a wrapper of that name: every registered version of
        a command keeps its wrappers. The one of the newest version is taken when they
        are versions of one command; otherwise (other commands, or one version twice with
        different images) the choice is the user's.

        Raises
        ------
        XnatRequestError
            When no wrapper matches, the match is ambiguous (the message lists each
            candidate with its wrapper id), or it has not exactly one external input.
        """
        found = [
            (cmd, w) for cmd in self.commands() if isinstance(cmd, dict)
            for w in cmd.get("xnat") or [] if isinstance(w, dict)
            and (w.get("name") == wrapper or str(w.get("id")) == wrapper)
        ]
        if not found:
            raise XnatRequestError(f"XNAT has no wrapper {wrapper!r}; register it first "
                                   "('xnatpic xnat register')")
        if len(found) > 1:
            found = _newest(wrapper, found)
        cmd, w = found[0]
        externals = w.get("external-inputs") or []
        if len(externals) != 1:
            raise XnatRequestError(f"wrapper {wrapper!r} has {len(externals)} external inputs; "
                                   "a launch needs exactly one root input")
        try:
            return WrapperRef(int(cmd["id"]), int(w["id"]), str(w["name"]),
                              str(externals[0]["name"]), str(externals[0].get("type") or ""),
                              str(cmd.get("version") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise XnatRequestError(f"GET /xapi/commands: wrapper {wrapper!r} lacks its id or "
                                   f"root input name ({exc})") from exc

    # -- launches --------------------------------------------------------------------
    def _launch_path(self, project: str, ref: WrapperRef, action: str) -> str:
        # LaunchRestApi.java:293-304 (launch) and 418-429 (bulklaunch): the plural
        # "wrappers" path of a project takes a JSON body.
        return (f"/xapi/projects/{_quote(project)}/wrappers/{ref.wrapper_id}/root/"
                f"{_quote(ref.root)}/{action}")

    def launch(self, project: str, ref: WrapperRef, target: str,
               params: dict[str, str] | None = None) -> dict[str, Any]:
        """Launch on one object; ``target`` is an id or an archive URI.

        Returns
        -------
        dict
            XNAT's launch report: ``status`` "success" with ``workflow-id``, or "failure"
            with ``message`` (XNAT answers the failure as HTTP 500 with the report as
            its body, LaunchRestApi.java:365-375).
        """
        body = {**(params or {}), ref.root: root_value(target, ref.root_type)}
        path = self._launch_path(project, ref, "launch")
        try:
            answer = self.json("POST", path, body)
        except XnatHttpError as exc:
            report = _launch_report(exc.body)
            if exc.status == 500 and report is not None:
                return report
            raise
        if not isinstance(answer, dict) or "status" not in answer:
            raise XnatRequestError(f"POST {path}: expected a launch report, got "
                                   f"{_summary(json.dumps(answer))}")
        return answer

    def bulk_launch(self, project: str, ref: WrapperRef, targets: list[str],
                    params: dict[str, str] | None = None) -> dict[str, Any]:
        """Bulk launch: the root value is a JSON array *as a string*
        (ContainerServiceImpl.java:2319); each target is sent as its archive URI, as
        XNAT's own REST tests do, so that CS names each workflow after the object.

        Returns
        -------
        dict
            The bulk launch report: ``bulk-launch-id``, ``successes`` (each with
            ``"workflow-id": "To be assigned"``) and ``failures`` (LaunchReport.java:100-107).
        """
        uris = [root_value(t, ref.root_type) for t in targets]
        body = {**(params or {}), ref.root: json.dumps(uris, separators=(",", ":"))}
        path = self._launch_path(project, ref, "bulklaunch")
        answer = self.json("POST", path, body)
        if (not isinstance(answer, dict) or not isinstance(answer.get("successes"), list)
                or not isinstance(answer.get("failures"), list)):
            raise XnatRequestError(f"POST {path}: expected a bulk launch report, got "
                                   f"{_summary(json.dumps(answer))}")
        return answer

    def workflow(self, workflow_id: str | int) -> dict[str, Any]:
        """``GET /xapi/workflows/{id}`` (xnat-web WorkflowApi): one workflow.

        Raises
        ------
        XnatRequestError
            When the id is not a number (such as "To be assigned": that job has no
            workflow yet) or XNAT's answer is not a workflow.
        """
        text = str(workflow_id)
        if not text.isdigit():
            raise XnatRequestError(f"workflow id {text!r} is not a number: XNAT has not "
                                   "created that workflow yet")
        answer = self.json("GET", f"/xapi/workflows/{text}")
        if not isinstance(answer, dict):
            raise XnatRequestError(f"GET /xapi/workflows/{text}: expected a workflow, got "
                                   f"{_summary(json.dumps(answer))}")
        return answer

    def item_workflows(self, data_type: str, item_id: str, pipeline: str) -> list[str]:
        """Ids of the workflows of one archive object whose pipeline name contains
        ``pipeline``, newest first.

        ``POST /xapi/workflows`` with the query XNAT's REST tests use to find the workflow
        of a bulk-launched job (xnat-rest-tests 7cd5532a TestContainerService.java:285-315).
        """
        query = {"data_type": data_type, "id": item_id, "sort_col": "launchTime",
                 "sort_dir": "desc", "page": "1",
                 "filters": {"pipelineName": {"like": pipeline, "backend": "sql_string"}}}
        answer = self.json("POST", "/xapi/workflows", query)
        rows = answer.get("items") if isinstance(answer, dict) else answer
        if not isinstance(rows, list):
            raise XnatRequestError("POST /xapi/workflows: expected a list of workflows, got "
                                   f"{_summary(json.dumps(answer))}")
        return [str(r["wfid"]) for r in rows
                if isinstance(r, dict) and str(r.get("wfid", "")).isdigit()]

    # -- containers ------------------------------------------------------------------
    def container(self, container_id: str) -> dict[str, Any]:
        """``GET /xapi/containers/{id}`` (container-service ContainerRestApi.java:148-157):
        the container by database id, container id or service id
        (HibernateContainerEntityService.java:47-76)."""
        path = f"/xapi/containers/{_quote(container_id)}"
        answer = self.json("GET", path)
        if not isinstance(answer, dict):
            raise XnatRequestError(f"GET {path}: expected a container, got "
                                   f"{_summary(json.dumps(answer))}")
        return answer

    def container_log(self, container_id: str, which: str = "stderr") -> str:
        """``GET /xapi/containers/{id}/logs/{stdout|stderr}`` (ContainerRestApi.java:
        247-262): the saved log of a finished container, as text."""
        if which not in ("stdout", "stderr"):
            raise XnatRequestError(f"container log {which!r}: stdout or stderr")
        _, data = self.request("GET", f"/xapi/containers/{_quote(container_id)}/logs/{which}")
        return data.decode("utf-8", "replace")

    # -- archive listings ------------------------------------------------------------
    def _results(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        answer = self.json("GET", path, params=params)
        try:
            rows = list(answer["ResultSet"]["Result"])
        except (TypeError, KeyError) as exc:
            raise XnatRequestError(f"GET {path}: expected a ResultSet") from exc
        return [r for r in rows if isinstance(r, dict)]

    def project_sessions(self, project: str) -> list[dict[str, Any]]:
        """Image sessions of a project (``ID``, ``label``, ``xsiType``...)."""
        rows = self._results(f"/data/projects/{_quote(project)}/experiments",
                             {"format": "json", "columns": "ID,label,xsiType,date"})
        return [r for r in rows if "ID" in r and str(r.get("xsiType", r.get("xsi:type", "")))
                .endswith("SessionData")]

    def session_scans(self, session_id: str) -> list[dict[str, Any]]:
        """Scans of a session (``ID``, ``type``, ``series_description``...)."""
        return self._results(f"/data/experiments/{_quote(session_id)}/scans",
                             {"format": "json"})

    # -- import service --------------------------------------------------------------
    def import_dicom_zip(self, zip_path: Path, *, project: str, subject: str,
                         session_label: str, overwrite: str = "append",
                         dest: str | None = "/archive") -> str:
        """Send a zip of DICOM into a session through XNAT's import service.

        ``POST /data/services/import?import-handler=DICOM-zip&PROJECT_ID=...&SUBJECT_ID=...
        &EXPT_LABEL=...&overwrite=append&dest=/archive&inbody=true`` with the zip as the
        body. XNAT sorts the files into one scan per series, each with a DICOM resource.
        ``dest=/archive`` archives them at once; without it they wait in the prearchive
        unless the project archives automatically (DicomZipImporter, as the XNAT double
        copies it in tests/double/prearchive.py).

        Returns
        -------
        str
            XNAT's answer (the URI of the session the files went to).
        """
        params = {
            "import-handler": "DICOM-zip", "PROJECT_ID": project, "SUBJECT_ID": subject,
            "EXPT_LABEL": session_label, "overwrite": overwrite,
        }
        if dest:
            params["dest"] = dest
        params["inbody"] = "true"
        # streamed from the file: a zip of hundreds of MB never sits in memory
        _, data = self.request("POST", "/data/services/import", params=params,
                               body=Path(zip_path), content_type="application/zip")
        return data.decode("utf-8", "replace").strip()

def _quote(segment: str) -> str:
    """One path segment, quoted (ids with spaces or slashes stay one segment)."""
    return urllib.parse.quote(str(segment), safe="")


def _decode(method: str, path: str, data: bytes) -> Any:
    """Decode a JSON answer; anything else (an HTML login page, truncated JSON) is an
    error naming the request and the start of the answer."""
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise XnatRequestError(f"{method} {path}: answer is not JSON: {_summary(text, 200)}"
                               ) from exc


def _launch_report(body: str) -> dict[str, Any] | None:
    """The launch report in an error answer's body, if it holds one."""
    try:
        report = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None
    if isinstance(report, dict) and report.get("status") == "failure":
        return report
    return None


def _newest(wrapper: str, found: list[tuple[dict[str, Any], dict[str, Any]]]
            ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The candidate of the newest version when every candidate is a version of one
    command and that version is there once; else an error listing them all."""
    names = {str(c.get("name")) for c, _ in found}
    versions = [str(c.get("version") or "") for c, _ in found]
    newest = max(versions, key=_version_key)
    if len(names) == 1 and versions.count(newest) == 1 and all(versions):
        best = next(pair for pair in found if str(pair[0].get("version") or "") == newest)
        _log.info("wrapper %s: %d versions on XNAT, using %s", wrapper, len(found), newest)
        return [best]
    which = "; ".join(
        f"wrapper id {w.get('id')} of command {c.get('name')}:{c.get('version')} "
        f"(command id {c.get('id')}, image {c.get('image')})" for c, w in found)
    raise XnatRequestError(f"several wrappers are called {wrapper!r} and none is clearly "
                           f"the newest: {which}; give --wrapper the wrapper id")

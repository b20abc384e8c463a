"""Container Service endpoints of the XNAT double (``/xapi/...``).

Commands, wrapper enabling, launch, bulk launch and workflows, each answer citing the
line of NrgXnat/container-service v3.7.3 (``CS`` below stands for
``container-service src/main/java/org/nrg/containers``) or of XNAT (xnat-web, XNAT's REST
tests) that it copies. State lives on ``double.cs`` (:class:`ContainerServiceState`),
created on first use; tests reach it through :func:`state`.

Time is simulated, not threaded: a launch stores its workflow's status schedule (queued,
staging, running, end) as offsets from its creation, and bulk-launched jobs become
workflows only ``queue_delay`` seconds after the bulk launch answered (CS resolves them
on an executor, ContainerServiceImpl.java:2351-2354). Every request first brings that
background work up to date (:meth:`ContainerServiceState.advance`).

It is never kinder than XNAT: a bulk launch names no workflow, a job whose launch dies
before its workflow is saved leaves no trace but a log line, a workflow id that is not a
number is refused, and the project launch with query parameters is only on the singular
``/wrapper/`` path.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from email.message import Message

    from tests.double.server import XnatDouble

__all__ = ["ContainerServiceState", "Workflow", "archive_listing", "route", "state"]

Answer = tuple[int, Any, str, "dict[str, str] | None"]

#: ContainerServiceImpl.java:169
TO_BE_ASSIGNED = "To be assigned"
#: Command.java:68-69: an image "needs a tag" unless it ends in ``:tag``; CS adds ``latest``.
_HAS_TAG = re.compile(r".+:[a-zA-Z0-9_.-]+$")
#: xsiType of a workflow whose root value is a plain id, by root input type
#: (ContainerServiceImpl.java:1894-1929: the fallback when the value is not a URI).
_XSI_BY_INPUT_TYPE = {
    "project": "xnat:projectData", "subject": "xnat:subjectData",
    "session": "xnat:imageSessionData", "scan": "xnat:imageScanData",
    "resource": "xnat:resource", "assessor": "xnat:imageAssessorData",
}


@dataclass
class Workflow:
    """One wrk:workflowData row as CS creates and updates it.

    ``schedule`` holds (seconds after creation, status, details); the current status is
    the last entry whose time has passed.
    """

    wfid: int
    item_id: str
    data_type: str
    project: str
    pipeline_name: str
    jobid: str | None
    created: float
    schedule: list[tuple[float, str, str]] = field(default_factory=list)
    container_id: str = ""
    #: the container's exit code once it ends ("0", "1", "3"...) and its stderr
    exit_code: str = "0"
    stderr: str = ""

    def now(self, at: float | None = None) -> tuple[str, str]:
        """(status, details) at time ``at`` (default: now)."""
        elapsed = (time.monotonic() if at is None else at) - self.created
        status, details = self.schedule[0][1:]
        for offset, step_status, step_details in self.schedule:
            if elapsed >= offset:
                status, details = step_status, step_details
        return status, details

    def as_json(self) -> dict[str, Any]:
        """What ``GET /xapi/workflows/{id}`` answers (xnat-web WorkflowApi: the workflow
        bean). The key names beyond ``status`` are not in any source we could read; the
        client relies on ``status`` and the job id only."""
        status, details = self.now()
        return {"wfid": self.wfid, "id": self.item_id, "data_type": self.data_type,
                "externalid": self.project, "pipeline_name": self.pipeline_name,
                "status": status, "details": details, "jobid": self.jobid,
                "comments": self.container_id, "justification": "Container launch"}


@dataclass
class _PendingLaunch:
    """A bulk-launched job not yet picked up by CS's executor."""

    due: float
    project: str | None
    wrapper: dict[str, Any]
    command: dict[str, Any]
    root: str
    params: dict[str, str]
    bulk_id: str


class ContainerServiceState:
    """What the Container Service of the double stores, and the knobs tests turn.

    Attributes
    ----------
    queue_delay, staging_time, run_time : float
        Seconds from a bulk launch to its workflows' creation; from creation to the end
        of command resolution (two steps: staging, then resolved); a container's run.
    unqueueable : dict
        Root value -> message: the launch dies before its workflow is saved (single
        launch: HTTP 500 with the report; bulk: no workflow ever appears).
    failing_containers : set
        Root values whose container exits non-zero (status ``Failed``).
    not_applicable : dict
        Root value -> the last stderr line of a step that exits 3 "not applicable"
        (``t2map: not applicable: ...``); XNAT marks it Failed like any non-zero exit.
    not_enough_signal : dict
        Root value -> the last stderr line of a step that exits 4 "not enough signal"
        (``t2map: not enough signal: ...``); Failed on XNAT too.
    unresolvable : dict
        Root value -> reason: command resolution fails for an object that exists (a
        matcher that matches nothing, a missing resource...).
    submit_failures : dict
        Root value -> message: CS's executor refuses the job (a failure in the bulk report).
    session_types : dict
        Session id -> xsiType (default: the session's own).
    scans : dict
        Session id -> scan rows of ``/data/experiments/{id}/scans``.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.commands: dict[int, dict[str, Any]] = {}
        self.site_enabled: set[int] = set()
        self.project_enabled: set[tuple[str, int]] = set()
        self.workflows: dict[int, Workflow] = {}
        self.pending: list[_PendingLaunch] = []
        self.queue_delay = 0.05
        self.staging_time = 0.02
        self.run_time = 0.05
        self.unqueueable: dict[str, str] = {}
        self.failing_containers: set[str] = set()
        self.not_applicable: dict[str, str] = {}
        self.not_enough_signal: dict[str, str] = {}
        self.unresolvable: dict[str, str] = {}
        self.submit_failures: dict[str, str] = {}
        self.session_types: dict[str, str] = {}
        self.scans: dict[str, list[dict[str, str]]] = {}
        self.launch_bodies: list[dict[str, str]] = []
        #: [regex on "METHOD path", status, body, content type, times left]: broken
        #: answers (a proxy's HTML page, truncated JSON) for the client's error handling.
        self.overrides: list[list[Any]] = []
        self._ids = itertools.count(1)
        self._wfids = itertools.count(901)

    # -- background work ---------------------------------------------------------------
    def advance(self, double: XnatDouble) -> None:
        """Let CS's executor pick up every bulk job whose time has come."""
        now = time.monotonic()
        with self.lock:
            due = [p for p in self.pending if p.due <= now]
            self.pending = [p for p in self.pending if p.due > now]
        for job in due:
            # ContainerServiceImpl.java:2351-2354: the executor calls launchContainer with
            # the bulk id; its LaunchReport (success or failure) is thrown away.
            _launch_container(double, self, job.project, job.command, job.wrapper, job.root,
                              job.params, bulk_id=job.bulk_id, created=job.due)

    def override(self, pattern: str, status: int, body: str,
                 content_type: str = "application/json", *, times: int = 1000) -> None:
        """Answer requests matching ``pattern`` with this instead (a test's broken XNAT)."""
        with self.lock:
            self.overrides.append([pattern, status, body, content_type, times])

    def _overridden(self, line: str) -> Answer | None:
        with self.lock:
            for item in self.overrides:
                if item[4] > 0 and re.search(item[0], line):
                    item[4] -= 1
                    return item[1], item[2], item[3], None
        return None

    def wrapper(self, wrapper_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(command, wrapper) of a wrapper id; 404 when unknown."""
        for command in self.commands.values():
            for wrapper in command.get("xnat", []):
                if wrapper["id"] == wrapper_id:
                    return command, wrapper
        raise _not_found(f"No command wrapper with id {wrapper_id}")

    def wrapper_by_name(self, command_id: int, name: str
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
        command = self.commands.get(command_id)
        if command is None:
            raise _not_found(f"No command with id {command_id}")
        for wrapper in command.get("xnat", []):
            if wrapper["name"] == name:
                return command, wrapper
        raise _not_found(f"Command {command_id} has no wrapper {name}")


def state(double: XnatDouble) -> ContainerServiceState:
    """The Container Service state of ``double`` (created on first use)."""
    with double.lock:
        cs = getattr(double, "cs", None)
        if cs is None:
            cs = ContainerServiceState()
            double.cs = cs  # type: ignore[attr-defined]
    return cs


class CsError(Exception):
    """An error answered by a CS ``@ExceptionHandler``: a plain-text body of its own.

    Kept apart from the server's HttpError, whose class is another object when the
    server module runs as ``__main__`` (``python -m tests.double.server``): :func:`route`
    turns it into the answer itself, so it never escapes the request handler.
    """

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def _error(status: int, text: str) -> Exception:
    """An error answered by a CS ``@ExceptionHandler``: a plain-text body of its own
    (e.g. CommandRestApi.java:295-313, LaunchRestApi.java:584-650)."""
    return CsError(status, text)


def _not_found(text: str) -> Exception:
    # CommandRestApi.java:247-253 / LaunchRestApi.java:584-590: 404 with the message.
    return _error(404, text)


def _json(data: Any, status: int = 200) -> Answer:
    return status, json.dumps(data), "application/json", None


def _parse_json(body: bytes) -> Any:
    """Jackson reading a request body: malformed JSON is HTTP 400 (Spring's
    HttpMessageNotReadableException)."""
    try:
        return json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _error(400, f"JSON parse error: {exc}") from exc


def _string_map(data: Any) -> dict[str, str]:
    """``@RequestBody Map<String, String>``: an object of scalars (Jackson coerces numbers
    and booleans to text); anything else is HTTP 400."""
    if not isinstance(data, dict) or any(isinstance(v, (dict, list)) for v in data.values()):
        raise _error(400, "JSON parse error: expected an object of strings")
    return {str(k): ("" if v is None else v if isinstance(v, str) else json.dumps(v))
            for k, v in data.items()}


# -- commands ------------------------------------------------------------------------------
def _default_tag(image: str | None) -> str | None:
    """Command.java:278, 321-335: an image without a tag gets ``:latest``."""
    if image and not _HAS_TAG.match(image):
        return f"{image}:latest"
    return image


def _validation_errors(command: dict[str, Any]) -> list[str]:
    """A part of Command.validate() (Command.java:366-631): the checks a registration of
    ours could trip over. The full rule set is the linter's job (docs/xnat-conformance.md)."""
    errors: list[str] = []
    name = command.get("name")
    if not name or not str(name).strip():
        errors.append("Command name cannot be blank.")  # Command.java:371-373
    prefix = f'Command "{name}" - '
    if not command.get("image"):
        errors.append(prefix + "image name cannot be blank.")  # Command.java:376-378
    mounts = [m.get("name") for m in command.get("mounts") or []]
    for dup in {m for m in mounts if mounts.count(m) > 1}:
        errors.append(prefix + f'mount name "{dup}" is not unique.')  # Command.java:440
    inputs = [i.get("name") for i in command.get("inputs") or []]
    for dup in {i for i in inputs if inputs.count(i) > 1}:
        errors.append(prefix + f'input name "{dup}" is not unique.')  # Command.java:457-458
    for output in command.get("outputs") or []:
        if output.get("mount") not in mounts:  # Command.java:480-482
            errors.append(prefix + f'output "{output.get("name")}" references unknown mount '
                          f'"{output.get("mount")}". Known mounts: {", ".join(map(str, mounts))}')
    wrappers = [w.get("name") for w in command.get("xnat") or []]
    for dup in {w for w in wrappers if wrappers.count(w) > 1}:
        errors.append(prefix + f'wrapper name "{dup}" is not unique.')  # Command.java:497-498
    for wrapper in command.get("xnat") or []:
        if not wrapper.get("name"):
            errors.append("Command wrapper name cannot be blank.")  # Command.java:1376
    return errors


def _create_command(cs: ContainerServiceState, query: dict[str, str], body: bytes) -> Answer:
    """``POST /xapi/commands[?image=NAME]`` (CommandRestApi.java:116-141)."""
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise _error(400, "JSON parse error: a command is a JSON object")
    command = json.loads(json.dumps(data))  # CommandCreation: the ids sent are dropped
    command.pop("id", None)
    # Command.java:278 tags the image of the body; Command.java:321-326 lets ?image=
    # replace it (tagged the same way) when not blank.
    command["image"] = _default_tag(command.get("image"))
    if query.get("image", "").strip():
        command["image"] = _default_tag(query["image"])
    with cs.lock:
        # HibernateCommandEntityService.java:48-56, CommandRestApi.java:127-131: the same
        # name, image and version again is a 400.
        for other in cs.commands.values():
            if all(other.get(k) == command.get(k) for k in ("name", "image", "version")):
                raise _error(400, "Bad request:\norg.nrg.framework.exceptions."
                             "NrgServiceRuntimeException: This command duplicates a command "
                             "already in the database.")
        errors = _validation_errors(command)
        if errors:
            # CommandServiceImpl.java:58-68 -> CommandRestApi.java:303-313
            raise _error(400, "Invalid command:\n\t" + "\n\t".join(errors))
        command_id = next(cs._ids)
        command["id"] = command_id
        for wrapper in command.get("xnat") or []:
            wrapper.pop("id", None)
            wrapper["id"] = next(cs._ids)
        command.setdefault("xnat", [])
        cs.commands[command_id] = command
    # CommandRestApi.java:137: 201 with the new id (a JSON number)
    return _json(command_id, 201)


def _enable(double: XnatDouble, cs: ContainerServiceState, project: str | None,
            wrapper_id: int) -> Answer:
    """CommandConfigurationRestApi.java:239-259 (site), 303-326 (project): 200, no body."""
    if project is not None and project not in double.projects:
        raise _not_found(f"No project {project}")
    with cs.lock:
        if project is None:
            cs.site_enabled.add(wrapper_id)
        else:
            cs.project_enabled.add((project, wrapper_id))
    return 200, "", "text/plain", None


# -- launches ------------------------------------------------------------------------------
def _external_type(wrapper: dict[str, Any], root: str) -> str:
    for item in wrapper.get("external-inputs") or []:
        if item.get("name") == root:
            return str(item.get("type", "")).lower()
    return ""


def _xsi(cs: ContainerServiceState, session: Any) -> str:
    return cs.session_types.get(session.id) or getattr(session, "xsi", "xnat:mrSessionData")


def _target(double: XnatDouble, cs: ContainerServiceState, value: str, input_type: str
            ) -> tuple[str, str, str] | None:
    """(item id, xsiType, project) of the archive object a root value names, or None.

    CommandResolutionServiceImpl.java:2042-2084: a value starting with ``/`` is a URI
    (``/archive`` prefixed when missing), otherwise an id; ContainerServiceImpl.java:
    1884-1893 reads the same URI for the workflow.
    """
    uri = value if value.startswith("/archive") else "/archive" + value
    sessions = {s.id: s for s in double.sessions.values()}
    if value.startswith("/"):
        m = re.fullmatch(r"/archive/experiments/([^/]+)", uri)
        m = m or re.fullmatch(r"/archive/projects/[^/]+/subjects/[^/]+/experiments/([^/]+)",
                              uri)
        if m and m.group(1) in sessions and input_type == "session":
            session = sessions[m.group(1)]
            return session.id, _xsi(cs, session), session.project
        m = re.fullmatch(r"/archive/projects/([^/]+)", uri)
        if m and m.group(1) in double.projects and input_type == "project":
            return m.group(1), "xnat:projectData", m.group(1)
        return None
    if input_type == "session" and value in sessions:
        session = sessions[value]
        return session.id, _xsi(cs, session), session.project
    if input_type == "project" and value in double.projects:
        return value, "xnat:projectData", value
    return None


def _launch_container(double: XnatDouble, cs: ContainerServiceState, project: str | None,
                      command: dict[str, Any], wrapper: dict[str, Any], root: str,
                      params: dict[str, str], *, bulk_id: str | None = None,
                      created: float | None = None) -> dict[str, Any]:
    """ContainerServiceImpl.launchContainer (ContainerServiceImpl.java:2255-2308): create
    the workflow, queue the job, answer a launch report."""
    command_id, wrapper_id = 0, int(wrapper["id"])  # the by-wrapper-id routes pass 0
    value = params.get(root)
    if value in cs.unqueueable:
        # 2289-2306: an exception before or while saving the workflow -> Failure report;
        # Failure.create turns a 0 command id into null (LaunchReport.java:78-85).
        return {"status": "failure", "params": params, "id": 0, "command-id": None,
                "wrapper-id": wrapper_id, "message": cs.unqueueable[value]}
    if value is None:
        # 2271: no root value, no workflow; 2286: "To be assigned".
        return {"status": "success", "params": params, "id": None, "command-id": command_id,
                "wrapper-id": wrapper_id, "workflow-id": TO_BE_ASSIGNED}
    input_type = _external_type(wrapper, root)
    found = _target(double, cs, value, input_type)
    if found is None:
        # 1894-1929: not an archive URI we know -> the value itself is the id, the xsiType
        # comes from the input type.
        item_id, xsi = value, _XSI_BY_INPUT_TYPE.get(input_type, input_type)
        item_project = project or ""
    else:
        item_id, xsi, item_project = found
    start = time.monotonic() if created is None else created
    staging, run = cs.staging_time, cs.run_time
    schedule = [
        (0.0, "_Queued", ""),  # 1938 Queued, then 560: "_" + Queued once sent to JMS
        (staging, "Staging", "Command resolution"),  # 586
    ]
    if found is not None and value in cs.unresolvable:
        # 605-606: any CommandResolutionException ends the workflow this way
        schedule.append((2 * staging, "Failed (Command resolution)",
                         "Submitted data does not match command resolution requirements. "
                         + cs.unresolvable[value]))
    elif found is None:
        # 605-606 + CommandResolutionServiceImpl.java:2049/2082
        what = "uri" if value.startswith("/") else "by ID"
        verb = "Invalid" if value.startswith("/") else "Could not instantiate"
        model = input_type.capitalize() or "object"
        reason = f"{verb} {model} {what} {value}"
        schedule.append((2 * staging, "Failed (Command resolution)",
                         "Submitted data does not match command resolution requirements. "
                         + reason))
    else:
        schedule.append((2 * staging, "Running", ""))  # ContainerEntity.java:176-181
        failing = (value in cs.failing_containers or value in cs.not_applicable
                   or value in cs.not_enough_signal)
        end = "Failed" if failing else "Complete"
        # ContainerEntity.java:191-192 (exit non-zero), ContainerFinalizeServiceImpl.java:262
        schedule.append((2 * staging + run, end, ""))
    with cs.lock:
        wfid = next(cs._wfids)
        cs.workflows[wfid] = Workflow(
            wfid=wfid, item_id=item_id, data_type=xsi,
            project=project or item_project, pipeline_name=str(wrapper["name"]),
            jobid=bulk_id, created=start, schedule=schedule,
            container_id=f"container-{wfid}" if found is not None else "",
            exit_code="3" if value in cs.not_applicable else
            "4" if value in cs.not_enough_signal else
            "1" if value in cs.failing_containers else "0",
            stderr=(f"working on {value}\n{cs.not_applicable[value]}\n"
                    if value in cs.not_applicable else
                    f"working on {value}\n{cs.not_enough_signal[value]}\n"
                    if value in cs.not_enough_signal else
                    "Traceback (most recent call last):\nRuntimeError: boom\n"
                    if value in cs.failing_containers else ""))
    # 2286-2287: the success report carries the workflow id as text.
    return {"status": "success", "params": params, "id": None, "command-id": command_id,
            "wrapper-id": wrapper_id, "workflow-id": str(wfid)}


def _launch_params(method_kind: str, query: dict[str, str], body: bytes,
                   headers: Message) -> dict[str, str]:
    """The launch parameters: the JSON body (``consumes = JSON``) or the query string
    (``@RequestParam Map``), LaunchRestApi.java:256-363."""
    is_json = "json" in (headers.get("Content-Type") or "").lower()
    if method_kind == "json":
        if not is_json:
            # no handler for a non-JSON body on a JSON-only path: Spring answers 415
            raise _error(415, "Content type not supported")
        return _string_map(_parse_json(body))
    return dict(query)


def _single_launch(double: XnatDouble, cs: ContainerServiceState, project: str | None,
                   command: dict[str, Any], wrapper: dict[str, Any], root: str,
                   params: dict[str, str]) -> Answer:
    with cs.lock:
        cs.launch_bodies.append(dict(params))
    report = _launch_container(double, cs, project, command, wrapper, root, params)
    # LaunchRestApi.java:365-375: success -> 200, anything else -> 500 with the report.
    return _json(report, 200 if report["status"] == "success" else 500)


def _bulk_launch(double: XnatDouble, cs: ContainerServiceState, project: str | None,
                 command: dict[str, Any], wrapper: dict[str, Any], root: str,
                 params: dict[str, str]) -> Answer:
    """ContainerServiceImpl.bulkLaunch (ContainerServiceImpl.java:2311-2373)."""
    with cs.lock:
        cs.launch_bodies.append(dict(params))
    try:
        # 2319: the root value is a JSON list of strings *inside* a string
        targets = json.loads(params[root])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise ValueError("not a list of strings")
    except (KeyError, ValueError) as exc:
        # an IOException/IllegalArgumentException out of bulkLaunch: no handler in
        # LaunchRestApi, Spring answers 500
        raise _error(500, f"Could not read the list of targets: {exc}") from exc
    # 2375-2377: "bulk-" + login + millis + random(1000)
    bulk_id = f"bulk-admin{int(time.time() * 1000)}{random.randrange(1000)}"
    successes, failures = [], []
    due = time.monotonic() + cs.queue_delay
    for target in targets:
        job_params = {**params, root: target}  # 2348-2349
        if target in cs.submit_failures:
            # 2357-2363: the executor refused the job
            failures.append({"status": "failure", "params": job_params, "id": 0,
                             "command-id": None, "wrapper-id": int(wrapper["id"]),
                             "message": cs.submit_failures[target]})
            continue
        with cs.lock:
            cs.pending.append(_PendingLaunch(due, project, wrapper, command, root,
                                             job_params, bulk_id))
        # 2355-2356: every queued job answers "To be assigned"
        successes.append({"status": "success", "params": job_params, "id": None,
                          "command-id": 0, "wrapper-id": int(wrapper["id"]),
                          "workflow-id": TO_BE_ASSIGNED})
    # LaunchReport.java:100-107, pipeline name: ContainerServiceImpl.java:2338
    return _json({"bulk-launch-id": bulk_id, "pipeline-name": wrapper["name"],
                  "successes": successes, "failures": failures})


_LAUNCH_PATHS = [
    # (regex, JSON or query parameters); LaunchRestApi.java line of each mapping
    (r"/xapi/wrappers/(?P<wid>\d+)/root/(?P<root>[^/]+)/(?P<act>launch)", "either"),  # 256-277
    (r"/xapi/projects/(?P<p>[^/]+)/wrapper/(?P<wid>\d+)/root/(?P<root>[^/]+)/(?P<act>launch)",
     "query"),  # 279-291: singular "wrapper", query parameters only
    (r"/xapi/projects/(?P<p>[^/]+)/wrappers/(?P<wid>\d+)/root/(?P<root>[^/]+)/(?P<act>launch)",
     "json"),  # 293-304: plural "wrappers", JSON body only
    (r"/xapi/commands/(?P<cid>\d+)/wrappers/(?P<name>[^/]+)/root/(?P<root>[^/]+)/"
     r"(?P<act>launch)", "either"),  # 309-334
    (r"/xapi/projects/(?P<p>[^/]+)/commands/(?P<cid>\d+)/wrappers/(?P<name>[^/]+)/root/"
     r"(?P<root>[^/]+)/(?P<act>launch)", "either"),  # 336-363
    (r"/xapi/commands/(?P<cid>\d+)/wrappers/(?P<name>[^/]+)/root/(?P<root>[^/]+)/"
     r"(?P<act>bulklaunch)", "json"),  # 380-391
    (r"/xapi/wrappers/(?P<wid>\d+)/root/(?P<root>[^/]+)/(?P<act>bulklaunch)", "json"),  # 393-402
    (r"/xapi/projects/(?P<p>[^/]+)/commands/(?P<cid>\d+)/wrappers/(?P<name>[^/]+)/root/"
     r"(?P<root>[^/]+)/(?P<act>bulklaunch)", "json"),  # 404-416
    (r"/xapi/projects/(?P<p>[^/]+)/wrappers/(?P<wid>\d+)/root/(?P<root>[^/]+)/"
     r"(?P<act>bulklaunch)", "json"),  # 418-429
]


def _launch_route(double: XnatDouble, cs: ContainerServiceState, path: str,
                  query: dict[str, str], body: bytes, headers: Message) -> Answer | None:
    for pattern, kind in _LAUNCH_PATHS:
        m = re.fullmatch(pattern, path)
        if not m:
            continue
        groups = m.groupdict()
        project = groups.get("p")
        if project is not None and project not in double.projects:
            # @Project path variable: XNAT checks the project before the method runs
            raise _not_found(f"No project {project}")
        if groups.get("wid"):
            command, wrapper = cs.wrapper(int(groups["wid"]))
        else:
            command, wrapper = cs.wrapper_by_name(int(groups["cid"]), groups["name"])
        if kind == "either":
            kind = "json" if "json" in (headers.get("Content-Type") or "").lower() else "query"
        params = _launch_params(kind, query, body, headers)
        if groups["act"] == "bulklaunch":
            return _bulk_launch(double, cs, project, command, wrapper, groups["root"], params)
        return _single_launch(double, cs, project, command, wrapper, groups["root"], params)
    return None


# -- workflows -----------------------------------------------------------------------------
def _workflow_query(cs: ContainerServiceState, body: bytes) -> Answer:
    """``POST /xapi/workflows``: the workflows of one item, newest first.

    The request is the one XNAT's REST tests send to find the workflow of a bulk-launched
    job (xnat-rest-tests 7cd5532a src/test/java/org/nrg/testing/xnat/tests/
    TestContainerService.java:285-315: ``data_type``, ``id``, ``sort_col: launchTime``,
    ``sort_dir: desc``, ``page``, ``filters.pipelineName.like``); they read ``wfid`` of
    each row. Other row keys are not relied upon.
    """
    query = _parse_json(body)
    if not isinstance(query, dict) or not query.get("id") or not query.get("data_type"):
        raise _error(400, "Bad request: id and data_type are required")
    like = str(((query.get("filters") or {}).get("pipelineName") or {}).get("like", ""))
    with cs.lock:
        rows = [w for w in cs.workflows.values()
                if w.item_id == query["id"] and w.data_type == query["data_type"]
                and like.lower() in w.pipeline_name.lower()]
    rows.sort(key=lambda w: w.created, reverse=query.get("sort_dir", "desc") == "desc")
    return _json([{"wfid": w.wfid, "id": w.item_id, "pipeline_name": w.pipeline_name,
                   "status": w.now()[0]} for w in rows])


def _workflow_route(cs: ContainerServiceState, method: str, path: str, body: bytes
                    ) -> Answer | None:
    if path == "/xapi/workflows" and method == "POST":
        return _workflow_query(cs, body)
    if path == "/xapi/workflows" and method == "GET":
        # xnat-web WorkflowApi GET /workflows -> WrkWorkflowdataDto: pipelineName,
        # lunchTime (sic), id, scanId; no status, no job id.
        with cs.lock:
            return _json([{"pipelineName": w.pipeline_name, "lunchTime": w.created,
                           "id": w.item_id, "scanId": None} for w in cs.workflows.values()])
    m = re.fullmatch(r"/xapi/workflows/([^/]+)", path)
    if m and method == "GET":
        # xnat-web WorkflowApi GET /workflows/{workflowId}: the workflow's id is a number;
        # anything else (such as "To be assigned") names no workflow.
        wfid = m.group(1)
        with cs.lock:
            workflow = cs.workflows.get(int(wfid)) if wfid.isdigit() else None
        if workflow is None:
            raise _error(404, f"The requested workflow {wfid} wasn't found.")
        return _json(workflow.as_json())
    return None


# -- entry points --------------------------------------------------------------------------
def route(double: XnatDouble, method: str, path: str, query: dict[str, str], body: bytes,
          headers: Message) -> Answer:
    """Answer one ``/xapi`` request: (status, body, content type, extra headers).

    A CS exception handler's answer is plain text with its status; a path no
    controller maps is the server's own 404 page (the HttpError class of the module
    that runs the server, so that it is caught there even under ``__main__``).
    """
    try:
        answer = _route(double, method, path, query, body, headers)
    except CsError as exc:
        return exc.status, exc.text, "text/plain", None
    if answer is None:
        http_error = sys.modules[type(double).__module__].HttpError
        raise http_error(404, f"The requested resource {path} was not found")
    return answer


def _container_json(workflow: Workflow) -> dict[str, Any]:
    """``GET /xapi/containers/{id}`` (ContainerRestApi.java:148-157): the Container bean
    (Container.java:65-94). The exit code is not a key of its own (``exitCode`` is
    ``@JsonIgnore``, Container.java:63, 248-262): it is in the ``history`` entries
    (ContainerHistory ``exitCode``, Container.java:1083-1095), here the docker ``die``
    event that ended the container."""
    status, _ = workflow.now()
    history = [{"id": 1, "status": "Created", "entity-type": "user", "entity-id": "admin",
                "time-recorded": 0, "external-timestamp": None, "message": None,
                "exitCode": None}]
    if status.startswith(("Complete", "Failed")):
        history.append({"id": 2, "status": "die", "entity-type": "event", "entity-id": None,
                        "time-recorded": 1, "external-timestamp": "1", "message": None,
                        "exitCode": workflow.exit_code})
    return {"id": workflow.wfid, "command-id": 0, "status": status, "wrapper-id": 0,
            "container-id": workflow.container_id, "workflow-id": str(workflow.wfid),
            "user-id": "admin", "project": workflow.project, "backend": "docker",
            "service-id": None, "history": history, "log-paths": []}


def _container_route(cs: ContainerServiceState, method: str, path: str) -> Answer | None:
    """``GET /xapi/containers/{id}`` and ``GET /xapi/containers/{id}/logs/{stdout|stderr}``
    (ContainerRestApi.java:148-157, 247-262). The id is the database id, the container id
    or the service id (HibernateContainerEntityService.java:47-76); the workflow CS made
    for the container holds the container (or service) id as its ``comments``
    (ContainerServiceImpl.java:2073-2080)."""
    m = re.fullmatch(r"/xapi/containers/([^/]+)(/logs/(stdout|stderr))?", path)
    if not m or method != "GET":
        return None
    ident = m.group(1)
    with cs.lock:
        found = [w for w in cs.workflows.values() if w.container_id and (
            w.container_id == ident or str(w.wfid) == ident)]
    if not found:
        # HibernateContainerEntityService.java:70 -> ContainerRestApi.java:287-291
        raise _error(404, f"No container with ID {ident}")
    workflow = found[0]
    if m.group(3) is None:
        return _json(_container_json(workflow))
    status, _ = workflow.now()
    done = status.startswith(("Complete", "Failed"))
    text = workflow.stderr if m.group(3) == "stderr" else ""
    # ContainerServiceImpl.java:1653-1668: the saved log of a finished container
    return 200, text if done else "", "text/plain", None


def _route(double: XnatDouble, method: str, path: str, query: dict[str, str], body: bytes,
           headers: Message) -> Answer | None:
    cs = state(double)
    cs.advance(double)
    broken = cs._overridden(f"{method} {path}")
    if broken is not None:
        return broken
    if path == "/xapi/commands":
        if method == "POST":
            return _create_command(cs, query, body)
        if method == "GET":
            # CommandRestApi.java:77-80, 335: every command with its wrappers and their ids
            with cs.lock:
                return _json(list(cs.commands.values()))
    m = re.fullmatch(r"/xapi/commands/(\d+)", path)
    if m and method == "GET":  # CommandRestApi.java:110-114
        with cs.lock:
            command = cs.commands.get(int(m.group(1)))
        if command is None:
            raise _not_found(f"No command with id {m.group(1)}")
        return _json(command)
    m = re.fullmatch(r"/xapi(?:/projects/([^/]+))?/commands/(\d+)/wrappers/([^/]+)/enabled",
                     path)
    if m and method == "PUT":
        _, wrapper = cs.wrapper_by_name(int(m.group(2)), m.group(3))
        return _enable(double, cs, m.group(1), int(wrapper["id"]))
    m = re.fullmatch(r"/xapi(?:/projects/([^/]+))?/wrappers/(\d+)/enabled", path)
    if m and method == "PUT":
        cs.wrapper(int(m.group(2)))
        return _enable(double, cs, m.group(1), int(m.group(2)))
    if method == "POST":
        answer = _launch_route(double, cs, path, query, body, headers)
        if answer is not None:
            return answer
    answer = _workflow_route(cs, method, path, body)
    if answer is not None:
        return answer
    return _container_route(cs, method, path)


def archive_listing(double: XnatDouble, method: str, path: str, query: dict[str, str]
                    ) -> Answer | None:
    """Broken answers (:meth:`ContainerServiceState.override`) for the two listings
    ``xnatpic xnat bulk-launch`` selects sessions with, and scan rows with a ``type``
    for the sessions a test described in ``cs.scans`` (XNAT's ScanList rows carry the
    scan type; xnat-web ScanList). None leaves the request to the data API of server.py.
    """
    if method != "GET" or getattr(double, "cs", None) is None:
        return None
    cs = state(double)
    if re.fullmatch(r"/data/(projects/[^/]+/experiments|experiments/[^/]+/scans)", path):
        broken = cs._overridden(f"{method} {path}")
        if broken is not None:
            return broken
    m = re.fullmatch(r"/data/experiments/([^/]+)/scans", path)
    if m and m.group(1) in cs.scans:
        rows = cs.scans[m.group(1)]
        return _json({"ResultSet": {"Result": rows, "totalRecords": str(len(rows))}})
    return None

"""Follow a bulk launch on XNAT through the workflows the Container Service creates.

XNAT answers a bulk launch before any job has a workflow: every queued job comes back
with ``"workflow-id": "To be assigned"`` (container-service ContainerServiceImpl.java:
2355). CS then launches each job on an executor, and the workflow it creates for a job
carries the bulk launch id as its ``jobid`` (ContainerServiceImpl.java:1942-1943,
2351-2353). A job whose launch fails before that workflow is saved leaves no workflow
at all (its failure report is dropped, ContainerServiceImpl.java:2289-2306).

So each job is found by asking XNAT for the workflows of its archive object and pipeline
(``POST /xapi/workflows``), keeping the one whose ``jobid`` is the bulk launch id, and
followed with ``GET /xapi/workflows/{id}`` until its status is final. A job with no
workflow after ``resolve_timeout`` seconds is reported as never queued.

XNAT marks every non-zero exit Failed, the "not applicable" exit of a step included
(:data:`~xnatpic.step_output.NOT_APPLICABLE_EXIT`). A Failed job is therefore looked at
once more: its workflow's ``comments`` hold the id of its container (or swarm service;
ContainerServiceImpl.java:2073-2080), ``GET /xapi/containers/{id}`` gives the exit code
in its ``history`` (Container.java:63, 93, 1083-1095: ``exitCode`` is kept per history
entry, not on the container) and ``GET /xapi/containers/{id}/logs/stderr`` the step's
last words (ContainerRestApi.java:247-262). Exit 3 with a last stderr line
``<step>: not applicable: ...`` makes the job "Not applicable", exit 4 with
``<step>: not enough signal: ...`` "Not enough signal" (:data:`~xnatpic.step_output.
STEP_OUTCOMES`). When XNAT does not tell (no container id, no rights to see it, an older
XNAT), the job stays Failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from xnatpic.step_output import STEP_OUTCOMES, step_outcome
from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.rest import WrapperRef, XnatClient, is_terminal

__all__ = ["NOT_APPLICABLE", "NOT_ENOUGH_SIGNAL", "NO_WORKFLOW", "BulkJob", "BulkTracker",
           "exit_code_of", "job_id_of"]

_log = logging.getLogger(__name__)

#: Status of a job XNAT never created a workflow for.
NO_WORKFLOW = "Failed (no workflow)"
#: Status of a job whose step found nothing to do in its session (exit 3 and its mark).
NOT_APPLICABLE = "Not applicable"
#: Status of a job whose step found its data could not give a map (exit 4 and its mark).
NOT_ENOUGH_SIGNAL = "Not enough signal"
#: Job status of each outcome a step states itself.
_STATED = {"not applicable": NOT_APPLICABLE, "not enough signal": NOT_ENOUGH_SIGNAL}


def exit_code_of(container: dict[str, Any]) -> int | None:
    """The exit code of a container as ``GET /xapi/containers/{id}`` answers it: the
    ``exitCode`` of its latest history entry that has one (Container.java:248-262 reads
    it the same way), None when no entry has one or it is not a number."""
    entries = [h for h in container.get("history") or []
               if isinstance(h, dict) and h.get("exitCode") not in (None, "")]
    if not entries:
        return None
    latest = max(entries, key=lambda h: (str(h.get("time-recorded") or ""),
                                         str(h.get("id") or "")))
    try:
        return int(str(latest["exitCode"]).strip())
    except ValueError:
        return None


def job_id_of(workflow: dict[str, Any]) -> str | None:
    """The ``jobid`` of a workflow as ``GET /xapi/workflows/{id}`` answers it (the XFT
    field is ``jobID``; the spelling of the JSON key is not in any source we could read,
    so each spelling is accepted)."""
    for key in ("jobid", "jobID", "jobId", "job_id"):
        if workflow.get(key):
            return str(workflow[key])
    return None


def _pipeline_of(workflow: dict[str, Any]) -> str | None:
    for key in ("pipeline_name", "pipelineName", "pipeline"):
        if workflow.get(key):
            return str(workflow[key])
    return None


@dataclass
class BulkJob:
    """One target of a bulk launch and what is known of it."""

    target: str
    label: str = ""
    data_type: str = ""
    workflow: str | None = None
    status: str = "Queued"
    details: str = ""

    @property
    def not_applicable(self) -> bool:
        """The step found nothing to do in this session (not a failure)."""
        return self.status == NOT_APPLICABLE

    @property
    def stated(self) -> bool:
        """The step said why it made no map: not applicable, or not enough signal."""
        return self.status in _STATED.values()

    @property
    def done(self) -> bool:
        return is_terminal(self.status) or self.stated

    @property
    def ok(self) -> bool:
        """Ended without failing: complete, not applicable or not enough signal."""
        return self.status.startswith("Complete") or self.stated

    @property
    def outcome(self) -> str:
        """``complete``, ``not applicable``, ``not enough signal``, ``failed`` or
        ``unfinished``."""
        if self.stated:
            return next(o for o, status in _STATED.items() if status == self.status)
        if not self.done:
            return "unfinished"
        return "complete" if self.ok else "failed"

    def as_dict(self) -> dict[str, Any]:
        return {"session": self.target, "label": self.label, "workflow-id": self.workflow,
                "status": self.status, "outcome": self.outcome,
                "message": self.details or None}


class BulkTracker:
    """Find and follow the workflows of one bulk launch.

    Parameters
    ----------
    client : XnatClient
        The connection.
    ref : WrapperRef
        The launched wrapper (its name is the workflows' pipeline name).
    bulk_id : str
        ``bulk-launch-id`` of XNAT's answer.
    jobs : iterable of BulkJob
        The jobs XNAT queued (jobs it refused are not followed).
    resolve_timeout : float
        Seconds after which a job still without a workflow counts as never queued.
    clock : callable
        Monotonic seconds (tests pass their own).
    """

    def __init__(self, client: XnatClient, ref: WrapperRef, bulk_id: str,
                 jobs: Iterable[BulkJob], *, resolve_timeout: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ref = ref
        self.bulk_id = bulk_id
        self.jobs = list(jobs)
        self.resolve_timeout = resolve_timeout
        self.clock = clock
        self.started = clock()
        self._other_jobs: set[str] = set()  # workflow ids seen that belong to other launches

    @property
    def done(self) -> bool:
        """Whether every job has a final status."""
        return all(job.done for job in self.jobs)

    @property
    def waiting(self) -> int:
        """Jobs XNAT has not yet created a workflow for."""
        return sum(job.workflow is None and not job.done for job in self.jobs)

    def poll(self) -> None:
        """One round: look for the workflows not found yet, refresh the others.

        Raises
        ------
        XnatRequestError
            When XNAT cannot be asked (the caller decides whether to try again).
        """
        expired = self.clock() - self.started >= self.resolve_timeout
        for job in self.jobs:
            if job.done:
                continue
            if job.workflow is None:
                self._discover(job)
                if job.workflow is None and expired:
                    job.status = NO_WORKFLOW
                    job.details = (f"XNAT created no workflow for this job within "
                                   f"{self.resolve_timeout:g} s of the bulk launch: its "
                                   "launch failed before it was queued (see the Container "
                                   "Service log on XNAT)")
                continue
            self._refresh(job, self.client.workflow(job.workflow))

    def _discover(self, job: BulkJob) -> None:
        for wfid in self.client.item_workflows(job.data_type, job.target, self.ref.name):
            if wfid in self._other_jobs:
                continue
            workflow = self.client.workflow(wfid)
            # the next steps of an orchestration share the bulk id
            # (ContainerServiceWorkflowStatusEventListener.java:134): keep our wrapper's
            pipeline = _pipeline_of(workflow)
            if job_id_of(workflow) != self.bulk_id or pipeline not in (None, self.ref.name):
                self._other_jobs.add(wfid)
                continue
            _log.info("%s: workflow %s", job.target, wfid)
            job.workflow = wfid
            self._refresh(job, workflow)
            return

    def _refresh(self, job: BulkJob, workflow: dict[str, Any]) -> None:
        job.status = str(workflow.get("status") or "Unknown")
        job.details = str(workflow.get("details") or "")
        if job.status.startswith("Failed"):
            stated = self._stated_outcome(str(workflow.get("comments") or "").strip())
            if stated is not None:
                job.status, job.details = _STATED[stated[0]], stated[1]

    def _stated_outcome(self, container_id: str) -> tuple[str, str] | None:
        """(outcome, the step's last stderr line) when its container exited with one of
        :data:`~xnatpic.step_output.STEP_OUTCOMES` and that line holds its mark; None
        otherwise or when XNAT does not tell."""
        if not container_id:
            return None
        try:
            code = exit_code_of(self.client.container(container_id))
            if code not in STEP_OUTCOMES:
                return None
            lines = self.client.container_log(container_id, "stderr").strip().splitlines()
        except XnatRequestError as exc:
            _log.info("container %s: exit code or log not available (%s); kept as Failed",
                      container_id, exc)
            return None
        last = lines[-1].strip() if lines else ""
        outcome = step_outcome(code, last)
        return (outcome, last) if outcome is not None else None

    def give_up(self, reason: str) -> None:
        """Mark every unfinished job with the last status seen and ``reason``."""
        for job in self.jobs:
            if not job.done:
                job.details = reason

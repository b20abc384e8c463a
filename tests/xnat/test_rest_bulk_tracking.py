"""BulkTracker on its own: which workflow belongs to a bulk job, and when a job is lost.

The client here is a recording stand-in answering as XNAT would (rows of
``POST /xapi/workflows`` newest first; ``GET /xapi/workflows/{id}``); the clock is the
test's, so no test waits.
"""

from __future__ import annotations

from typing import Any

import pytest

from xnatpic.xnat.remote_bulk import (
    NO_WORKFLOW,
    NOT_APPLICABLE,
    BulkJob,
    BulkTracker,
    exit_code_of,
    job_id_of,
)
from xnatpic.xnat.rest import WrapperRef, XnatHttpError

REF = WrapperRef(17, 42, "xnatpic-t1map-session", "session", "Session", "0.1.1")
BULK = "bulk-admin1764850000000123"


class Workflows:
    """Workflows by id; ``rows`` answers the item query newest first."""

    def __init__(self, workflows: dict[str, dict[str, Any]]) -> None:
        self.workflows = workflows
        self.gets: list[str] = []

    def item_workflows(self, data_type: str, item_id: str, pipeline: str) -> list[str]:
        return [w for w, d in sorted(self.workflows.items(), key=lambda kv: -int(kv[0]))
                if d["id"] == item_id and pipeline in d["pipeline_name"]]

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        self.gets.append(workflow_id)
        return self.workflows[workflow_id]


def _wf(item: str, pipeline: str, jobid: str | None, status: str) -> dict[str, Any]:
    return {"id": item, "pipeline_name": pipeline, "jobid": jobid, "status": status}


def test_orchestration_step_sharing_the_bulk_id_is_not_taken():
    # ContainerServiceWorkflowStatusEventListener.java:133-135: the next step's workflow
    # carries the same jobid; its pipeline is the next wrapper's name
    client = Workflows({
        "7": _wf("E1", "xnatpic-t1map-session", BULK, "Complete"),
        "8": _wf("E1", "xnatpic-t1map-session-roi", BULK, "Running"),
    })
    tracker = BulkTracker(client, REF, BULK, [BulkJob("E1", data_type="xnat:mrSessionData")])
    tracker.poll()
    (job,) = tracker.jobs
    assert (job.workflow, job.status) == ("7", "Complete") and tracker.done


def test_other_launches_are_read_once():
    client = Workflows({"5": _wf("E1", "xnatpic-t1map-session", None, "Complete")})
    tracker = BulkTracker(client, REF, BULK, [BulkJob("E1", data_type="xnat:mrSessionData")],
                          clock=lambda: 0.0)
    tracker.poll()
    tracker.poll()
    assert client.gets == ["5"] and tracker.waiting == 1 and not tracker.done


def test_job_without_workflow_fails_after_the_resolve_timeout():
    now = [0.0]
    client = Workflows({})
    tracker = BulkTracker(client, REF, BULK, [BulkJob("E1", data_type="xnat:mrSessionData")],
                          resolve_timeout=60, clock=lambda: now[0])
    tracker.poll()
    assert tracker.jobs[0].status == "Queued"
    now[0] = 60.0
    tracker.poll()
    assert tracker.jobs[0].status == NO_WORKFLOW and tracker.done


def test_job_id_spellings():
    assert job_id_of({"jobID": BULK}) == BULK
    assert job_id_of({"jobid": BULK}) == BULK
    assert job_id_of({"status": "Complete"}) is None


class Containers(Workflows):
    """Workflows plus ``GET /xapi/containers/{id}`` and its stderr log."""

    def __init__(self, workflows: dict[str, dict[str, Any]],
                 containers: dict[str, tuple[dict[str, Any], str]]) -> None:
        super().__init__(workflows)
        self.containers = containers

    def container(self, container_id: str) -> dict[str, Any]:
        if container_id not in self.containers:
            raise XnatHttpError("GET /xapi/containers: HTTP 404", status=404,
                                body=f"No container with ID {container_id}")
        return self.containers[container_id][0]

    def container_log(self, container_id: str, which: str = "stderr") -> str:
        return self.containers[container_id][1]


def _history(*codes: str | None) -> dict[str, Any]:
    return {"history": [{"id": k, "status": "die" if c else "Created",
                         "time-recorded": 1000 + k, "exitCode": c}
                        for k, c in enumerate(codes)]}


LINE = "t2map: not applicable: no multi-echo spin-echo scan in this session"


def _failed(container: str) -> dict[str, Any]:
    return {**_wf("E1", REF.name, BULK, "Failed"), "comments": container}


def _one_job(client: Workflows) -> BulkJob:
    tracker = BulkTracker(client, REF, BULK, [BulkJob("E1", data_type="xnat:mrSessionData")])
    tracker.poll()
    assert tracker.done
    return tracker.jobs[0]


def test_exit_3_with_the_mark_is_not_applicable():
    job = _one_job(Containers({"9": _failed("abc")},
                              {"abc": (_history(None, "3"), f"reading\n{LINE}\n")}))
    assert (job.status, job.details, job.outcome, job.ok) == (
        NOT_APPLICABLE, LINE, "not applicable", True)


@pytest.mark.parametrize(("codes", "stderr"), [
    ((None, "1"), f"{LINE}\n"),                    # another exit code
    ((None, "3"), f"{LINE}\nTraceback: boom\n"),   # the mark is not the last line
    ((None, None), f"{LINE}\n"),                   # no exit code known
])
def test_other_failures_stay_failed(codes, stderr):
    job = _one_job(Containers({"9": _failed("abc")}, {"abc": (_history(*codes), stderr)}))
    assert (job.status, job.outcome, job.ok) == ("Failed", "failed", False)


def test_container_xnat_will_not_show_stays_failed():
    job = _one_job(Containers({"9": _failed("gone")}, {}))
    assert job.status == "Failed"
    job = _one_job(Containers({"9": _failed("")}, {}))  # no container id on the workflow
    assert job.status == "Failed"


def test_exit_code_is_the_latest_history_entry():
    assert exit_code_of({"history": [
        {"id": 2, "time-recorded": 2000, "exitCode": "3"},
        {"id": 1, "time-recorded": 1000, "exitCode": "0"}]}) == 3
    assert exit_code_of({"history": []}) is None
    assert exit_code_of({}) is None

"""The Container Service half of the XNAT double answers as container-service v3.7.3.

Raw HTTP against tests/double, each expectation taken from the CS source line named in
the test (``CS`` = container-service src/main/java/org/nrg/containers), so that the
client tests in test_xnat_rest.py run against answers XNAT would give.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.double import XnatDouble
from tests.double.container_service import TO_BE_ASSIGNED, state
from tests.double.server import BASIC_AUTH

MRI2DICOM = Path(__file__).resolve().parents[2] / "commands" / "mri2dicom.json"


@pytest.fixture
def double():
    server = XnatDouble(("PRECLIN",)).start()
    cs = state(server)
    cs.queue_delay, cs.staging_time, cs.run_time = 0.05, 0.01, 0.02
    yield server
    server.stop()


def call(double: XnatDouble, method: str, path: str, body: Any = None, *,
         content_type: str = "application/json") -> tuple[int, str]:
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(double.url + path, data=data, method=method,
                                 headers={"Authorization": BASIC_AUTH,
                                          "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _command() -> dict[str, Any]:
    return json.loads(MRI2DICOM.read_text())


def _registered(double: XnatDouble) -> tuple[int, int]:
    status, text = call(double, "POST", "/xapi/commands", _command())
    assert status == 201
    command = state(double).commands[int(text)]
    return command["id"], command["xnat"][0]["id"]


def _session(double: XnatDouble, label: str = "m1") -> str:
    return double.new_session("PRECLIN", "mouse1", label, "xnat:mrSessionData").id


class TestCommands:
    def test_created_with_201_and_the_id(self, double):
        # CommandRestApi.java:137
        status, text = call(double, "POST", "/xapi/commands", _command())
        assert status == 201 and int(text) in state(double).commands

    def test_malformed_json_is_400(self, double):
        assert call(double, "POST", "/xapi/commands", b"{\"name\": ")[0] == 400

    def test_validation_errors_are_400_with_the_list(self, double):
        command = _command()
        del command["name"]
        command["xnat"].append(dict(command["xnat"][0]))
        status, text = call(double, "POST", "/xapi/commands", command)
        # CommandRestApi.java:303-313, Command.java:371-373, 497-498
        assert status == 400
        assert text.startswith("Invalid command:\n\tCommand name cannot be blank.")
        assert 'wrapper name "xnatpic-mri2dicom-session" is not unique.' in text

    def test_duplicate_is_400(self, double):
        _registered(double)
        status, text = call(double, "POST", "/xapi/commands", _command())
        # HibernateCommandEntityService.java:48-56, CommandRestApi.java:127-131
        assert status == 400 and "duplicates a command already in the database" in text

    def test_untagged_image_gets_latest(self, double):
        command = _command()
        command["image"] = "xnatpic-mri2dicom"
        status, text = call(double, "POST", "/xapi/commands", command)
        assert status == 201  # Command.java:278, 329-335
        assert state(double).commands[int(text)]["image"] == "xnatpic-mri2dicom:latest"

    def test_image_query_parameter_replaces_the_image(self, double):
        # CommandRestApi.java:118, Command.java:321-326
        status, text = call(double, "POST", "/xapi/commands?image=reg.example/x:2", _command())
        assert status == 201
        assert state(double).commands[int(text)]["image"] == "reg.example/x:2"

    def test_list_holds_wrapper_ids(self, double):
        command_id, wrapper_id = _registered(double)
        _, text = call(double, "GET", "/xapi/commands")
        (listed,) = json.loads(text)
        assert (listed["id"], listed["xnat"][0]["id"]) == (command_id, wrapper_id)


class TestLaunch:
    def test_json_launch_on_the_plural_path(self, double):
        _, wrapper_id = _registered(double)
        session = _session(double)
        status, text = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                            f"/root/session/launch",
                            {"session": f"/archive/experiments/{session}"})
        report = json.loads(text)
        # LaunchRestApi.java:293-304, ContainerServiceImpl.java:2286-2287
        assert status == 200 and report["status"] == "success"
        assert report["workflow-id"].isdigit()

    def test_query_launch_only_on_the_singular_path(self, double):
        _, wrapper_id = _registered(double)
        session = _session(double)
        query = f"?session=/archive/experiments/{session}"
        # LaunchRestApi.java:279-291: /projects/{p}/wrapper/{id}/... takes query parameters
        singular = f"/xapi/projects/PRECLIN/wrapper/{wrapper_id}/root/session/launch"
        status, text = call(double, "POST", singular + query, b"",
                            content_type="application/x-www-form-urlencoded")
        assert status == 200 and json.loads(text)["status"] == "success"
        # 293-304: the plural path consumes JSON only
        plural = f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}/root/session/launch"
        assert call(double, "POST", plural + query, b"",
                    content_type="application/x-www-form-urlencoded")[0] == 415

    def test_failure_is_500_with_the_report(self, double):
        _, wrapper_id = _registered(double)
        session = _session(double)
        uri = f"/archive/experiments/{session}"
        state(double).unqueueable[uri] = "could not save the workflow"
        status, text = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                            f"/root/session/launch", {"session": uri})
        report = json.loads(text)
        # LaunchRestApi.java:365-375, LaunchReport.java:59-97
        assert status == 500
        assert (report["status"], report["message"]) == ("failure",
                                                         "could not save the workflow")
        assert report["params"] == {"session": uri} and "workflow-id" not in report

    def test_resolution_failure_shows_on_the_workflow(self, double):
        _, wrapper_id = _registered(double)
        status, text = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                            f"/root/session/launch", {"session": "XNAT_E404"})
        assert status == 200  # the workflow is created before resolution (2276-2287)
        workflow_id = json.loads(text)["workflow-id"]
        time.sleep(0.1)
        workflow = json.loads(call(double, "GET", f"/xapi/workflows/{workflow_id}")[1])
        # ContainerServiceImpl.java:605-606, CommandResolutionServiceImpl.java:2082
        assert workflow["status"] == "Failed (Command resolution)"
        assert workflow["details"].startswith(
            "Submitted data does not match command resolution requirements.")
        # 1894-1913: a plain id names a workflow of the input type's xsiType
        assert workflow["data_type"] == "xnat:imageSessionData"


class TestBulkLaunch:
    def _bulk(self, double, wrapper_id: int, targets: list[str]) -> dict[str, Any]:
        status, text = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                            f"/root/session/bulklaunch",
                            {"session": json.dumps(targets), "format": "dicom"})
        assert status == 200
        return json.loads(text)

    def test_every_job_is_to_be_assigned(self, double):
        _, wrapper_id = _registered(double)
        uris = [f"/archive/experiments/{_session(double, x)}" for x in ("a", "b")]
        report = self._bulk(double, wrapper_id, uris)
        # ContainerServiceImpl.java:2355-2356, 2375-2377; LaunchReport.java:104-107
        assert [s["workflow-id"] for s in report["successes"]] == [TO_BE_ASSIGNED] * 2
        assert [s["params"]["session"] for s in report["successes"]] == uris
        assert report["successes"][0]["params"]["format"] == "dicom"
        assert report["bulk-launch-id"].startswith("bulk-admin")
        assert report["failures"] == []

    def test_workflows_appear_later_carrying_the_bulk_id(self, double):
        _, wrapper_id = _registered(double)
        session = _session(double)
        state(double).queue_delay = 600.0  # the executor waits until the test releases it
        report = self._bulk(double, wrapper_id, [f"/archive/experiments/{session}"])
        query = {"data_type": "xnat:mrSessionData", "id": session, "sort_col": "launchTime",
                 "sort_dir": "desc", "page": "1",
                 "filters": {"pipelineName": {"like": "xnatpic-mri2dicom-session",
                                              "backend": "sql_string"}}}
        # 2351-2354: the executor has not run the job when the answer leaves
        assert json.loads(call(double, "POST", "/xapi/workflows", query)[1]) == []
        for job in state(double).pending:
            job.due = time.monotonic()
        (row,) = json.loads(call(double, "POST", "/xapi/workflows", query)[1])
        workflow = json.loads(call(double, "GET", f"/xapi/workflows/{row['wfid']}")[1])
        assert workflow["jobid"] == report["bulk-launch-id"]  # 1942-1943

    def test_targets_must_be_a_json_list_in_a_string(self, double):
        _, wrapper_id = _registered(double)
        status, _ = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                         f"/root/session/bulklaunch", {"session": "XNAT_E00001"})
        assert status == 500  # 2319: readValue of a non-list throws, no handler maps it

    def test_a_job_lost_before_its_workflow_leaves_nothing(self, double):
        _, wrapper_id = _registered(double)
        uri = f"/archive/experiments/{_session(double)}"
        state(double).unqueueable[uri] = "could not save the workflow"
        report = self._bulk(double, wrapper_id, [uri])
        assert report["successes"][0]["workflow-id"] == TO_BE_ASSIGNED
        time.sleep(0.1)
        call(double, "GET", "/xapi/commands")  # any request lets the executor run
        assert state(double).workflows == {}  # 2289-2306: the failure report is dropped


class TestWorkflows:
    def test_to_be_assigned_names_no_workflow(self, double):
        assert call(double, "GET", "/xapi/workflows/To%20be%20assigned")[0] == 404

    def test_listing_has_no_status(self, double):
        _, wrapper_id = _registered(double)
        session = _session(double)
        call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}/root/session/"
             "launch", {"session": f"/archive/experiments/{session}"})
        (row,) = json.loads(call(double, "GET", "/xapi/workflows")[1])
        # xnat-web WorkflowApi GET /workflows: WrkWorkflowdataDto fields only
        assert set(row) == {"pipelineName", "lunchTime", "id", "scanId"}


def _finished(double: XnatDouble, wfid: str) -> dict[str, Any]:
    for _ in range(200):
        workflow = json.loads(call(double, "GET", f"/xapi/workflows/{wfid}")[1])
        if workflow["status"] in ("Complete", "Failed"):
            return workflow
        time.sleep(0.02)
    raise AssertionError(f"workflow {wfid} did not end")


class TestContainers:
    def _launch(self, double: XnatDouble, session: str) -> dict[str, Any]:
        _, wrapper_id = _registered(double)
        _, text = call(double, "POST", f"/xapi/projects/PRECLIN/wrappers/{wrapper_id}"
                       f"/root/session/launch", {"session": f"/archive/experiments/{session}"})
        return _finished(double, json.loads(text)["workflow-id"])

    def test_workflow_comments_name_the_container_with_its_exit_code(self, double):
        session = _session(double)
        line = "mri2dicom: not applicable: no ParaVision study"
        state(double).not_applicable[f"/archive/experiments/{session}"] = line
        workflow = self._launch(double, session)
        assert workflow["status"] == "Failed"  # any non-zero exit
        # ContainerServiceImpl.java:2073-2080: comments = container (or service) id
        status, text = call(double, "GET", f"/xapi/containers/{workflow['comments']}")
        container = json.loads(text)
        assert status == 200 and container["container-id"] == workflow["comments"]
        # Container.java:63 (exitCode @JsonIgnore), 93, 1095: the code is in the history
        assert "exit-code" not in container and "exitCode" not in container
        assert [h["exitCode"] for h in container["history"] if h["exitCode"]] == ["3"]
        status, text = call(double, "GET", f"/xapi/containers/{workflow['comments']}"
                            "/logs/stderr")  # ContainerRestApi.java:247-262
        assert status == 200 and text.splitlines()[-1] == line

    def test_unknown_container_is_404_with_cs_message(self, double):
        status, text = call(double, "GET", "/xapi/containers/nope")
        # HibernateContainerEntityService.java:70, ContainerRestApi.java:287-291
        assert (status, text) == (404, "No container with ID nope")


def test_cs_errors_answer_when_the_server_runs_as_main(tmp_path):
    """``python -m tests.double.server`` (the benchmarks' way): a duplicate command is
    400 with CS's message (HibernateCommandEntityService.java:55, CommandRestApi.java:
    127-131), not an exception that drops the connection."""
    import http.client
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "tests.double.server"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        conn = http.client.HTTPConnection(url.split("://", 1)[1], timeout=30)
        answers = []
        for path in ("/xapi/commands", "/xapi/commands", "/xapi/containers/nope"):
            method = "POST" if path == "/xapi/commands" else "GET"
            conn.request(method, path, body=MRI2DICOM.read_bytes() if method == "POST"
                         else None, headers={"Authorization": BASIC_AUTH,
                                             "Content-Type": "application/json"})
            resp = conn.getresponse()
            answers.append((resp.status, resp.read().decode()))
        assert answers[0][0] == 201
        assert answers[1][0] == 400
        assert "This command duplicates a command already in the database" in answers[1][1]
        assert answers[2] == (404, "No container with ID nope")
    finally:
        proc.kill()
        proc.wait()

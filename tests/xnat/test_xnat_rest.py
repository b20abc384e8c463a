"""The XNAT client and ``xnatpic xnat`` against the suite's XNAT double (tests/double).

The double answers as container-service v3.7.3 does (each behaviour cites its source
line in tests/double/container_service.py); these tests check what the client makes of
those answers.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.double import PASSWORD, USER, XnatDouble
from tests.double.container_service import TO_BE_ASSIGNED, state
from xnatpic.cli.main import main
from xnatpic.xnat import schema
from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.rest import XnatClient, load_credentials, root_value

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MRI2DICOM = PROJECT_ROOT / "commands" / "mri2dicom.json"
SUMMARY = PROJECT_ROOT / "commands" / "project-summary.json"
WRAPPER = "xnatpic-mri2dicom-session"


@pytest.fixture
def xnat(monkeypatch):
    """A running double with project PRECLIN and quick background work."""
    double = XnatDouble(("PRECLIN",)).start()
    cs = state(double)
    cs.queue_delay, cs.staging_time, cs.run_time = 0.05, 0.02, 0.05
    for key, value in env(double).items():
        monkeypatch.setenv(key, value)
    yield double
    double.stop()


def env(double: XnatDouble) -> dict[str, str]:
    return {"XNAT_HOST": double.url, "XNAT_USER": USER, "XNAT_PASS": PASSWORD}


def _text(capsys) -> str:
    out = capsys.readouterr()
    text = out.out + out.err
    assert PASSWORD not in text
    assert "Traceback" not in text
    return text


def _register(path: Path = MRI2DICOM, *extra: str) -> None:
    assert main(["xnat", "register", str(path), *extra]) == 0


def _write(tmp_path: Path, command: dict, name: str = "cmd.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(command))
    return path


def _sessions(double: XnatDouble, *labels: str) -> list[str]:
    """Archived MR sessions of PRECLIN; their ids."""
    return [double.new_session("PRECLIN", "mouse1", label, "xnat:mrSessionData").id
            for label in labels]


class TestCredentials:
    def test_from_environment(self):
        creds = load_credentials(env={"XNAT_HOST": "xnat.example.org/", "XNAT_USER": "u",
                                      "XNAT_PASS": "pw-xyz"})
        assert creds.host == "https://xnat.example.org" and creds.user == "u"
        assert "pw-xyz" not in repr(creds) and creds.password == "pw-xyz"

    def test_from_netrc(self, tmp_path):
        rc = tmp_path / "netrc"
        rc.write_text("machine xnat.example.org login bob password hunter2\n")
        rc.chmod(0o600)
        creds = load_credentials(env={"XNAT_HOST": "https://xnat.example.org"},
                                 netrc_file=rc)
        assert (creds.user, creds.password) == ("bob", "hunter2")

    def test_missing_host(self):
        with pytest.raises(XnatRequestError, match="set XNAT_HOST"):
            load_credentials(env={})

    def test_missing_user(self, tmp_path):
        with pytest.raises(XnatRequestError, match=r"no credentials for xnat\.example\.org"):
            load_credentials(env={"XNAT_HOST": "https://xnat.example.org"},
                             netrc_file=tmp_path / "none")

    def test_wrong_password_message_has_no_secret(self, xnat):
        client = XnatClient(load_credentials(env={**env(xnat), "XNAT_PASS": "wrong-pw"}))
        with pytest.raises(XnatRequestError, match=r"HTTP 401.*check XNAT_USER") as info:
            client.commands()
        assert "wrong-pw" not in str(info.value)
        assert "<html>" not in str(info.value)  # the HTML status page is reduced to text


class TestRegister:
    def test_register_json_enables_site_and_project(self, xnat, capsys):
        assert main(["xnat", "register", str(MRI2DICOM), "--project", "PRECLIN"]) == 0
        cs = state(xnat)
        (command,) = cs.commands.values()
        sent = json.loads(MRI2DICOM.read_text())
        assert {k: v for k, v in command.items() if k not in ("id", "xnat")} == {
            k: v for k, v in sent.items() if k != "xnat"}
        (wrapper,) = command["xnat"]
        assert cs.site_enabled == {wrapper["id"]}
        assert cs.project_enabled == {("PRECLIN", wrapper["id"])}
        assert [line for line in xnat.log if line.startswith(("POST", "PUT"))] == [
            "PUT /data/services/auth",  # the client's XNAT session
            "POST /xapi/commands",
            f"PUT /xapi/commands/{command['id']}/wrappers/{WRAPPER}/enabled",
            f"PUT /xapi/projects/PRECLIN/commands/{command['id']}/wrappers/{WRAPPER}/enabled"]
        assert xnat.log[-1] == "DELETE /data/JSESSION"  # the command ends its XNAT session
        assert (f"added xnatpic-mri2dicom {sent['version']} as command {command['id']}"
                in _text(capsys))

    def test_image_override_points_at_a_registry(self, xnat, capsys):
        image = "registry.example.org:5000/xnatpic/xnatpic-mri2dicom:0.1.1"
        assert main(["xnat", "register", str(MRI2DICOM), "--image", image]) == 0
        (command,) = state(xnat).commands.values()
        assert command["image"] == image
        assert f"(image {image})" in _text(capsys)

    def test_image_override_without_tag_gets_latest(self, xnat):
        # container-service Command.java:321-335: ?image= without a tag gets ":latest"
        assert main(["xnat", "register", str(MRI2DICOM), "--image", "reg.example/x"]) == 0
        (command,) = state(xnat).commands.values()
        assert command["image"] == "reg.example/x:latest"

    def test_register_image_reads_label(self, xnat, monkeypatch):
        label = json.dumps([json.loads(MRI2DICOM.read_text())])
        seen = []
        monkeypatch.setattr(schema, "read_image_label",
                            lambda image, cli=None: seen.append(image) or label)
        assert main(["xnat", "register", "xnatpic-mri2dicom:0.1.1", "--no-enable"]) == 0
        assert seen == ["xnatpic-mri2dicom:0.1.1"]
        assert [c["name"] for c in state(xnat).commands.values()] == ["xnatpic-mri2dicom"]
        assert state(xnat).site_enabled == set()

    def test_register_same_version_twice_fails_clearly(self, xnat, capsys):
        _register()
        capsys.readouterr()
        assert main(["xnat", "register", str(MRI2DICOM)]) == 1
        err = _text(capsys)
        assert "HTTP 400" in err and "duplicates a command already in the database" in err
        assert len(state(xnat).commands) == 1

    def test_register_refuses_lint_errors_before_any_request(self, xnat, tmp_path, capsys):
        bad = json.loads(MRI2DICOM.read_text())
        del bad["name"]  # Command.java:371-373: XNAT refuses a command without a name
        assert main(["xnat", "register", str(_write(tmp_path, bad))]) == 1
        assert "lint error" in _text(capsys)
        assert xnat.log == []


class TestFindWrapper:
    def _versions(self, tmp_path, *versions: str) -> dict[str, int]:
        ids = {}
        for version in versions:
            command = json.loads(MRI2DICOM.read_text())
            command["version"] = version
            command["image"] = f"xnatpic-mri2dicom:{version}"
            _register(_write(tmp_path, command, f"{version}.json"), "--no-enable")
        for command in state(self.double).commands.values():
            ids[command["version"]] = command["xnat"][0]["id"]
        return ids

    @pytest.fixture(autouse=True)
    def _double(self, xnat):
        self.double = xnat

    def test_newest_version_wins(self, tmp_path):
        ids = self._versions(tmp_path, "0.9.0", "0.10.0", "0.2.0")
        ref = XnatClient(load_credentials()).find_wrapper(WRAPPER)
        assert (ref.wrapper_id, ref.version) == (ids["0.10.0"], "0.10.0")

    def test_same_version_twice_asks(self, tmp_path, capsys):
        _register()
        _register(MRI2DICOM, "--image", "registry.example.org/xnatpic-mri2dicom:0.1.1")
        ids = [c["xnat"][0]["id"] for c in state(self.double).commands.values()]
        _sessions(self.double, "m1")
        capsys.readouterr()
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", "XNAT_E00001"]) == 1
        err = _text(capsys)
        assert "none is clearly the newest" in err
        assert all(f"wrapper id {i} " in err for i in ids)
        assert not any("/launch" in line for line in self.double.log)

    def test_wrapper_id_settles_it(self, tmp_path):
        ids = self._versions(tmp_path, "1.0", "2.0")
        ref = XnatClient(load_credentials()).find_wrapper(str(ids["1.0"]))
        assert ref.version == "1.0"


class TestLaunch:
    def test_launch_and_wait(self, xnat, capsys):
        _register()
        (session,) = _sessions(xnat, "m1")
        code = main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", session, "--param", "format=enhanced", "--wait",
                     "--poll", "0.01"])
        assert code == 0
        assert state(xnat).launch_bodies == [{"session": f"/archive/experiments/{session}",
                                              "format": "enhanced"}]
        assert f"{session}: Complete" in _text(capsys)

    def test_failed_launch_prints_the_reason_and_exits_1(self, xnat, capsys):
        # LaunchRestApi.java:365-375: HTTP 500 with the launch report as the body
        _register()
        (session,) = _sessions(xnat, "m1")
        state(xnat).unqueueable[f"/archive/experiments/{session}"] = "database is read-only"
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", session]) == 1
        assert "failed: database is read-only" in _text(capsys)

    def test_resolution_failure_after_launch(self, xnat, capsys):
        _register()
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", "XNAT_E99999", "--wait", "--poll", "0.01"]) == 1
        text = _text(capsys)
        assert "XNAT_E99999: Failed (Command resolution)" in text
        assert "Invalid Session uri /archive/experiments/XNAT_E99999" in text

    def test_project_rooted_wrapper_with_plain_project_id(self, xnat, capsys):
        _register(SUMMARY)
        wrapper = json.loads(SUMMARY.read_text())["xnat"][0]["name"]
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", wrapper,
                     "--wait", "--poll", "0.01"]) == 0
        assert state(xnat).launch_bodies == [{"project": "/archive/projects/PRECLIN"}]
        assert "PRECLIN: Complete" in _text(capsys)

    def test_session_rooted_wrapper_needs_a_session(self, xnat, capsys):
        _register()
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER]) == 1
        assert "give --session" in _text(capsys)

    def test_unknown_wrapper(self, xnat, capsys):
        assert main(["xnat", "launch", "--project", "P", "--wrapper", "nope",
                     "--session", "E"]) == 1
        assert "XNAT has no wrapper 'nope'" in _text(capsys)

    @pytest.mark.parametrize(("value", "root_type", "sent"), [
        ("XNAT_E00001", "Session", "/archive/experiments/XNAT_E00001"),
        ("PRECLIN", "Project", "/archive/projects/PRECLIN"),
        ("XNAT_S00001", "Subject", "/archive/subjects/XNAT_S00001"),
        ("/archive/experiments/X", "Session", "/archive/experiments/X"),
        ("XNAT_E00001_scan_3", "Scan", "XNAT_E00001_scan_3"),
    ])
    def test_root_value(self, value, root_type, sent):
        assert root_value(value, root_type) == sent


class TestBulkLaunch:
    def _args(self, *extra: str) -> list[str]:
        return ["xnat", "bulk-launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                "--poll", "0.01", *extra]

    def test_follows_the_real_workflows_by_jobid(self, xnat, tmp_path, capsys):
        _register()
        ids = _sessions(xnat, "m1", "m2", "m3")
        report = tmp_path / "r.json"
        assert main(self._args("--param", "format=dicom", "--report", str(report))) == 0
        cs = state(xnat)
        # the list of targets is a JSON array inside a string (ContainerServiceImpl:2319),
        # each target an archive URI
        (body,) = cs.launch_bodies
        assert body["format"] == "dicom"
        assert json.loads(body["session"]) == [f"/archive/experiments/{i}" for i in ids]
        data = json.loads(report.read_text())
        by_wf = {w.wfid: w for w in cs.workflows.values()}
        assert [r["status"] for r in data["results"]] == ["Complete"] * 3
        for row in data["results"]:
            workflow = by_wf[int(row["workflow-id"])]
            assert workflow.item_id == row["session"]
            assert workflow.jobid == data["bulk-launch-id"]
        assert not any(TO_BE_ASSIGNED in line for line in xnat.log)
        assert "XNAT queued 3 of 3 job(s)" in _text(capsys)

    def test_final_table_lists_every_kind_of_failure(self, xnat, tmp_path, capsys):
        _register()
        ok, dies, lost, refused, unresolved = _sessions(xnat, "ok", "dies", "lost", "refused",
                                                        "unresolved")
        cs = state(xnat)
        cs.failing_containers.add(f"/archive/experiments/{dies}")
        cs.unresolvable[f"/archive/experiments/{unresolved}"] = "No scan matched 'PARAVISION'"
        cs.unqueueable[f"/archive/experiments/{lost}"] = "could not save the workflow"
        cs.submit_failures[f"/archive/experiments/{refused}"] = "executor is shut down"
        report = tmp_path / "r.json"
        assert main(self._args("--resolve-timeout", "0.5", "--report", str(report))) == 1
        results = {r["session"]: r for r in json.loads(report.read_text())["results"]}
        assert results[ok]["status"] == "Complete"
        assert results[dies]["status"] == "Failed"
        assert results[lost]["status"] == "Failed (no workflow)"
        assert results[lost]["workflow-id"] is None
        assert "no workflow for this job within 0.5 s" in results[lost]["message"]
        assert results[refused]["status"] == "Failed (not queued)"
        assert results[refused]["message"] == "executor is shut down"
        assert results[unresolved]["status"] == "Failed (Command resolution)"
        assert results[unresolved]["message"].endswith("No scan matched 'PARAVISION'")
        text = _text(capsys)
        for label in ("ok", "dies", "lost", "refused", "unresolved"):
            assert label in text

    def test_not_applicable_is_its_own_outcome(self, xnat, tmp_path, capsys):
        # the step exits 3 with "<step>: not applicable: ..." last on stderr; XNAT marks
        # it Failed; its container (the workflow's comments) tells exit code and stderr
        _register()
        ok, none, dies = _sessions(xnat, "ok", "none", "dies")
        cs = state(xnat)
        line = "mri2dicom: not applicable: no ParaVision study in this session"
        cs.not_applicable[f"/archive/experiments/{none}"] = line
        cs.failing_containers.add(f"/archive/experiments/{dies}")
        report = tmp_path / "r.json"
        assert main(self._args("--report", str(report))) == 1  # one real failure
        data = json.loads(report.read_text())
        results = {r["session"]: r for r in data["results"]}
        assert [results[i]["status"] for i in (ok, none, dies)] == [
            "Complete", "Not applicable", "Failed"]
        assert results[none]["message"] == line
        assert (data["failed"], data["not-applicable"]) == (1, 1)
        assert "Not applicable" in _text(capsys)
        assert any(re.fullmatch(r"GET /xapi/containers/container-\d+/logs/stderr", x)
                   for x in xnat.log)

    def test_all_not_applicable_exits_3(self, xnat, tmp_path):
        _register()
        (only,) = _sessions(xnat, "none")
        state(xnat).not_applicable[f"/archive/experiments/{only}"] = (
            "mri2dicom: not applicable: nothing here")
        assert main(self._args()) == 3

    def test_not_enough_signal_is_its_own_outcome_and_exits_4(self, xnat, tmp_path, capsys):
        # exit 4 with "<step>: not enough signal: ..." last: Failed on XNAT, its own
        # outcome here; a session that is fine and one not applicable do not change it
        _register()
        ok, weak, none = _sessions(xnat, "ok", "weak", "none")
        cs = state(xnat)
        line = "t2map: not enough signal: 12.0 % of the mask above SNR 5"
        cs.not_enough_signal[f"/archive/experiments/{weak}"] = line
        cs.not_applicable[f"/archive/experiments/{none}"] = "t2map: not applicable: no MSME"
        report = tmp_path / "r.json"
        assert main(self._args("--report", str(report))) == 4
        data = json.loads(report.read_text())
        results = {r["session"]: r for r in data["results"]}
        assert [results[i]["outcome"] for i in (ok, weak, none)] == [
            "complete", "not enough signal", "not applicable"]
        assert results[weak]["status"] == "Not enough signal"
        assert results[weak]["message"] == line
        assert (data["failed"], data["not-applicable"], data["not-enough-signal"]) == (0, 1, 1)
        assert "Not enough signal" in _text(capsys)

    def test_exit_4_without_the_mark_stays_failed(self, xnat, tmp_path):
        _register()
        (weak,) = _sessions(xnat, "weak")
        state(xnat).not_enough_signal[f"/archive/experiments/{weak}"] = "t2map: error: boom"
        assert main(self._args()) == 1

    def test_workflows_of_other_launches_are_not_taken(self, xnat, tmp_path):
        _register()
        (session,) = _sessions(xnat, "m1")
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", session]) == 0
        earlier = max(state(xnat).workflows)
        report = tmp_path / "r.json"
        assert main(self._args("--report", str(report))) == 0
        (row,) = json.loads(report.read_text())["results"]
        assert int(row["workflow-id"]) != earlier
        assert state(xnat).workflows[int(row["workflow-id"])].jobid is not None

    def test_where_scan_type(self, xnat, tmp_path):
        _register()
        e1, e2, e3 = _sessions(xnat, "m1", "m2", "m3")
        cs = state(xnat)
        cs.scans = {e1: [{"ID": "1", "type": "MSME"}, {"ID": "2", "type": "FLASH"}],
                    e2: [{"ID": "1", "type": "FLASH"}], e3: [{"ID": "1", "type": "MSME"}]}
        report = tmp_path / "r.json"
        assert main(self._args("--where", "scan-type=MSME", "--report", str(report))) == 0
        assert [r["session"] for r in json.loads(report.read_text())["results"]] == [e1, e3]

    def test_project_rooted_wrapper_is_refused(self, xnat, capsys):
        _register(SUMMARY)
        wrapper = json.loads(SUMMARY.read_text())["xnat"][0]["name"]
        assert main(["xnat", "bulk-launch", "--project", "PRECLIN", "--wrapper", wrapper]) == 1
        assert "runs on a Project" in _text(capsys)
        assert not any("bulklaunch" in line for line in xnat.log)

    def test_nothing_left(self, xnat, capsys):
        _register()
        _sessions(xnat, "m1")
        assert main(self._args("--where", "label=zz*")) == 1
        assert "no session of project PRECLIN is left" in _text(capsys)

    def test_no_wait_reports_queued_jobs(self, xnat, tmp_path):
        _register()
        _sessions(xnat, "m1", "m2")
        report = tmp_path / "r.json"
        assert main(self._args("--no-wait", "--report", str(report))) == 0
        data = json.loads(report.read_text())
        assert [r["status"] for r in data["results"]] == ["Queued", "Queued"]
        assert data["bulk-launch-id"].startswith("bulk-")
        assert not any("/xapi/workflows" in line for line in xnat.log)

    def test_xnat_stops_answering_while_following(self, xnat, tmp_path, capsys):
        _register()
        _sessions(xnat, "m1")
        state(xnat).override(r"^POST /xapi/workflows$", 503, "<html><body><h1>503 Service "
                             "Unavailable</h1></body></html>", "text/html")
        report = tmp_path / "r.json"
        assert main(self._args("--report", str(report))) == 1
        (row,) = json.loads(report.read_text())["results"]
        assert row["status"] == "Queued"
        assert "stopped following" in row["message"] and "503" in row["message"]
        assert "503 Service Unavailable" in _text(capsys)


def _broken_answers():
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    return [
        pytest.param(200, "{\"truncated\": [", "application/json", "answer is not JSON",
                     id="truncated-json"),
        pytest.param(200, html, "text/html", "answer is not JSON: 502 Bad Gateway",
                     id="html-200"),
        pytest.param(502, html, "text/html", "HTTP 502 Bad Gateway: 502 Bad Gateway$",
                     id="html-502"),
        pytest.param(500, "java.lang.NullPointerException", "text/plain",
                     "HTTP 500.*NullPointerException", id="plain-500"),
        pytest.param(200, "{\"unexpected\": 1}", "application/json", "expected", id="shape"),
    ]


class TestServerAnswersNeverTraceback:
    @pytest.mark.parametrize(("status", "body", "ctype", "message"), _broken_answers())
    @pytest.mark.parametrize("where", ["GET /xapi/commands$", "bulklaunch$",
                                       "/data/projects/PRECLIN/experiments$"])
    def test_bulk_launch(self, xnat, capsys, where, status, body, ctype, message):
        _register()
        _sessions(xnat, "m1")
        state(xnat).override(where, status, body, ctype)
        code = main(["xnat", "bulk-launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--poll", "0.01"])
        text = _text(capsys)
        if where == "GET /xapi/commands$" and message == "expected":
            # a dict where a list is expected is also refused
            message = "expected a list of commands"
        assert code == 1
        errors = [line for line in text.splitlines() if "error:" in line]
        assert len(errors) == 1, text
        assert re.search(message, errors[0]), errors[0]

    @pytest.mark.parametrize(("status", "body", "ctype", "message"), _broken_answers())
    def test_launch_answer(self, xnat, capsys, status, body, ctype, message):
        _register()
        (session,) = _sessions(xnat, "m1")
        state(xnat).override(r"/launch$", status, body, ctype)
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", session]) == 1
        text = _text(capsys)
        assert re.search(message if message != "expected" else
                                       "expected a launch report", text), text

    def test_workflow_answer_while_waiting(self, xnat, capsys):
        _register()
        (session,) = _sessions(xnat, "m1")
        state(xnat).override(r"^GET /xapi/workflows/\d+$", 200, "<html>login</html>",
                             "text/html")
        assert main(["xnat", "launch", "--project", "PRECLIN", "--wrapper", WRAPPER,
                     "--session", session, "--wait", "--poll", "0.01"]) == 1
        assert "answer is not JSON" in _text(capsys)

    def test_connection_refused(self, monkeypatch, capsys):
        double = XnatDouble().start()
        url = double.url
        double.stop()
        monkeypatch.setenv("XNAT_HOST", url)
        monkeypatch.setenv("XNAT_USER", USER)
        monkeypatch.setenv("XNAT_PASS", PASSWORD)
        assert main(["xnat", "launch", "--project", "P", "--wrapper", "w",
                     "--session", "E"]) == 1
        assert "cannot reach XNAT" in _text(capsys)

    def test_dropped_connection(self, xnat, capsys):
        xnat.add_fault(r"GET /xapi/commands", "drop")
        assert main(["xnat", "launch", "--project", "P", "--wrapper", "w",
                     "--session", "E"]) == 1
        assert "cannot reach XNAT" in _text(capsys)

    def test_timeout(self, xnat):
        xnat.add_fault(r"GET /xapi/commands", "slow", delay=1.0)
        client = XnatClient(load_credentials(), timeout=0.2)
        with pytest.raises(XnatRequestError, match=r"did not answer within 0\.2 s"):
            client.commands()

    def test_bad_address(self, monkeypatch, capsys):
        monkeypatch.setenv("XNAT_HOST", "http://xnat.example.org:notaport")
        monkeypatch.setenv("XNAT_USER", USER)
        monkeypatch.setenv("XNAT_PASS", PASSWORD)
        assert main(["xnat", "launch", "--project", "P", "--wrapper", "w",
                     "--session", "E"]) == 1
        assert "cannot reach XNAT" in _text(capsys)

    def test_debug_shows_the_traceback(self, xnat):
        state(xnat).override("GET /xapi/commands$", 200, "{", "application/json")
        with pytest.raises(XnatRequestError, match="answer is not JSON"):
            main(["--debug", "xnat", "launch", "--project", "P", "--wrapper", "w",
                  "--session", "E"])

    def test_workflow_id_that_is_not_a_number_is_never_sent(self, xnat):
        client = XnatClient(load_credentials())
        with pytest.raises(XnatRequestError, match="not a number"):
            client.workflow(TO_BE_ASSIGNED)
        assert xnat.log == []


def _dicom_zip(tmp_path: Path, series: dict[int, int]) -> tuple[Path, set[str]]:
    study = generate_uid()
    uids = set()
    archive = tmp_path / "dicom.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for number, count in series.items():
            series_uid = generate_uid()
            for index in range(count):
                ds = pydicom.Dataset()
                ds.file_meta = FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
                ds.SeriesNumber, ds.InstanceNumber, ds.Modality = number, index + 1, "MR"
                ds.PatientID = ds.PatientName = "mouse1"
                buffer = io.BytesIO()
                pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
                zf.writestr(f"{number}/{index}.dcm", buffer.getvalue())
                uids.add(str(ds.SOPInstanceUID))
    return archive, uids


class TestImportService:
    def test_import_dicom_zip(self, xnat, tmp_path):
        archive, uids = _dicom_zip(tmp_path, {3: 2, 4: 1})
        client = XnatClient(load_credentials())
        answer = client.import_dicom_zip(archive, project="PRECLIN", subject="mouse1",
                                         session_label="m1")
        assert answer.endswith("/subjects/mouse1/experiments/m1")
        session = xnat.session("PRECLIN", "m1")
        assert sorted(session.scans) == ["3", "4"]
        assert {uid for files in session.scans.values() for uid in files} == uids

    def test_import_into_unknown_project(self, xnat, tmp_path):
        archive, _ = _dicom_zip(tmp_path, {3: 1})
        client = XnatClient(load_credentials())
        with pytest.raises(XnatRequestError, match=r"HTTP 4\d\d .*project"):
            client.import_dicom_zip(archive, project="NOPE", subject="s", session_label="m")


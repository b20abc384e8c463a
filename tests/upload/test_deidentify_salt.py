"""``--deidentify`` needs a secret salt (XNATPIC_DEIDENTIFY_SALT, 16+ characters) in every
entry point; the mri2dicom-deidentify command receives it as XNAT's Container Service
secret, the plain mri2dicom command declares none; de-identified
output folders carry only the pseudonyms the DICOM carries."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pydicom
import pytest

from xnatpic.cli.main import main
from xnatpic.conversion import (
    DEIDENTIFIED_SOURCE,
    MIN_SALT_LENGTH,
    SALT_VARIABLE,
    SaltError,
    convert_study,
    require_deidentify_salt,
)

ROOT = Path(__file__).resolve().parents[2]
SALT = "a-salt-of-enough-characters-42"
#: What the phantom's parameter files name the animal and study (tests/upload/test_deidentify.py).
_PHANTOM_ID = "xnatpic^phantom"
ANIMAL = "Z8W4-mouse"


@pytest.fixture
def named_study(phantom_study: Path, tmp_path: Path) -> Path:
    study = tmp_path / "in" / "s1"
    shutil.copytree(phantom_study, study)
    for path in study.rglob("*"):
        if path.is_file() and path.name in ("subject", "visu_pars", "acqp", "method", "reco"):
            path.write_bytes(path.read_bytes().replace(_PHANTOM_ID.encode(), ANIMAL.encode()))
    return study


@pytest.mark.parametrize("value", [None, "", "   ", "short-salt"])
def test_missing_or_short_salt_refused(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(SALT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(SALT_VARIABLE, value)
    with pytest.raises(SaltError, match=SALT_VARIABLE) as exc:
        require_deidentify_salt()
    assert str(MIN_SALT_LENGTH) in str(exc.value)


def test_random_salt_of_sixteen_accepted(monkeypatch):
    monkeypatch.setenv(SALT_VARIABLE, "9f3ac07e51d2b864")  # openssl rand -hex 8
    assert require_deidentify_salt() == "9f3ac07e51d2b864"


@pytest.mark.parametrize("value", ["x" * 16, "abababababababababab", "0123456789abcdefghij",
                                   "aaaaaaaabbbbbbbbccccdddd"])
def test_low_entropy_salt_refused(monkeypatch, value):
    monkeypatch.setenv(SALT_VARIABLE, value)
    with pytest.raises(SaltError, match="too weak"):
        require_deidentify_salt()


def test_convert_refuses_without_salt(named_study, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    with pytest.raises(SaltError):
        convert_study(named_study, tmp_path / "out", deidentify=True)
    assert not (tmp_path / "out").exists()
    assert main(["convert", str(named_study), "-o", str(tmp_path / "o2"), "--deidentify"]) != 0
    assert SALT_VARIABLE in capsys.readouterr().err
    assert not list((tmp_path).glob("o2/**/*.dcm"))


def test_upload_refuses_without_salt_and_sends_nothing(named_study, tmp_path, monkeypatch,
                                                       capsys):
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    archive = tmp_path / "archive"
    rc = main(["upload", str(named_study), "--project", "P", "--deidentify",
               "--archive", str(archive)])
    assert rc != 0
    assert SALT_VARIABLE in capsys.readouterr().err
    assert not archive.exists()


def test_deidentified_output_paths_are_pseudonyms(named_study, tmp_path, monkeypatch):
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    report = convert_study(named_study, tmp_path / "out", deidentify=True)
    files = sorted((tmp_path / "out").rglob("*.dcm"))
    assert files and not report.failed
    for path in files:
        relative = path.relative_to(tmp_path / "out").as_posix()
        assert "K9Z7Q" not in relative and "Z8W4" not in relative and "phantom" not in relative
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        subject, session = path.relative_to(tmp_path / "out").parts[:2]
        assert subject == str(ds.PatientID) and subject.startswith("ANON-")
        assert session == str(ds.StudyID)
    for result in report.results:
        assert result.output is None or ANIMAL not in result.output


def test_deidentified_report_names_no_source(named_study, tmp_path, monkeypatch):
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    source = tmp_path / f"{ANIMAL}_20220316"
    shutil.copytree(named_study, source)
    shutil.rmtree(source / "1" / "pdata")  # one scan without reco: a "skipped" reason
    report = convert_study(source, tmp_path / "out", deidentify=True)
    assert any(r.status == "skipped" for r in report.results)
    assert "Z8W4" not in json.dumps(report.to_dict())
    assert report.source == DEIDENTIFIED_SOURCE


def test_identified_output_paths_unchanged(named_study, tmp_path):
    convert_study(named_study, tmp_path / "out")
    assert {p.relative_to(tmp_path / "out").parts[0]
            for p in (tmp_path / "out").rglob("*.dcm")} == {ANIMAL}


def _step_module():
    spec = importlib.util.spec_from_file_location(
        "mri2dicom_run", ROOT / "pipelines" / "mri2dicom" / "run.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_mri2dicom_refuses_without_salt(named_study, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    session = tmp_path / "session"
    shutil.copytree(named_study, session / "RESOURCES" / "PARAVISION" / "s1")
    out = tmp_path / "output"
    out.mkdir()
    step = _step_module()
    rc = step.run(["--input", str(session), "--output", str(out), "--deidentify",
                   "--no-import"])
    assert rc == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert SALT_VARIABLE in last and "xnatpic.deidentify.salt" in last
    assert not list(out.rglob("*.dcm"))


def test_mri2dicom_deidentifies_with_the_secret(named_study, tmp_path, monkeypatch):
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    session = tmp_path / "session"
    # resource folders are often named after the animal and the study
    shutil.copytree(named_study, session / "RESOURCES" / "PARAVISION" / f"{ANIMAL}_20220316")
    out = tmp_path / "output"
    out.mkdir()
    assert _step_module().run(["--input", str(session), "--output", str(out),
                               "--deidentify", "--no-import"]) == 0
    files = list((out / "dicom").rglob("*.dcm"))
    assert files
    # everything stored back into XNAT (resources MRI2DICOM and MRI2DICOM_REPORT)
    for path in out.rglob("*"):
        assert "Z8W4" not in path.relative_to(out).as_posix()
        if path.suffix == ".json":
            assert "Z8W4" not in path.read_text(), path


def _command(name: str) -> dict:
    return json.loads((ROOT / "commands" / f"{name}.json").read_text())


def test_deidentify_command_declares_the_salt_as_a_container_service_secret():
    command = _command("mri2dicom-deidentify")
    step = _step_module()
    # container-service Secret: {"source": {"type", "identifier"}, "destination": {...}};
    # SystemPropertySecretSource.JSON_TYPE_NAME = "system-property",
    # EnvironmentVariableSecretDestination.JSON_TYPE_NAME = "environment-variable"
    assert command["secrets"] == [{
        "source": {"type": "system-property", "identifier": step.SALT_PROPERTY},
        "destination": {"type": "environment-variable", "identifier": SALT_VARIABLE},
    }]
    # Command.validate: secrets may not target the variables XNAT sets itself
    assert SALT_VARIABLE not in {"XNAT_USER", "XNAT_PASS", "XNAT_HOST"}
    # nor an input: a secret is never a command-line value
    assert all("SALT" not in str(i.get("replacement-key", "")) for i in command["inputs"])
    assert SALT_VARIABLE not in command["command-line"]
    # de-identification is not a choice here: the flag is literal, no input can drop it
    assert "--deidentify" in command["command-line"].split()
    assert all(i["name"] != "deidentify" for i in command["inputs"])
    # the description tells the administrator what to set and what happens otherwise
    assert step.SALT_PROPERTY in command["description"]
    assert "every launch of this command fails" in command["description"]


def test_plain_mri2dicom_declares_no_secret():
    # container-service v3.7.3 resolves every secret of a command on every launch
    # (services/impl/CommandResolutionServiceImpl.java:458, :3052-3064) and an unset
    # system property fails the launch (secrets/SystemPropertySecretSource.java:72 gives
    # Optional.ofNullable(System.getProperty(..)); secrets/ResolvedSecret.java:62 throws
    # "Did not obtain value for secret"): the plain command must carry none to run on an
    # XNAT whose administrator set no salt
    command = _command("mri2dicom")
    assert not command.get("secrets")
    assert "--deidentify" not in command["command-line"]
    assert all(i["name"] != "deidentify" for i in command["inputs"])


def test_deidentify_command_is_the_plain_conversion_plus_flag_and_secret():
    plain, deid = _command("mri2dicom"), _command("mri2dicom-deidentify")
    for key in ("inputs", "outputs", "mounts", "type", "override-entrypoint",
                "reserve-memory", "limit-memory", "limit-cpu", "schema-version"):
        assert deid[key] == plain[key], key
    assert deid["command-line"].split() == [
        token for t in plain["command-line"].split()
        for token in ((t, "--deidentify") if t == "#JOBS#" else (t,))]
    (plain_wrapper,), (deid_wrapper,) = plain["xnat"], deid["xnat"]
    for key in ("contexts", "external-inputs", "derived-inputs"):
        assert deid_wrapper[key] == plain_wrapper[key], key
    assert [(h["name"], h["label"]) for h in deid_wrapper["output-handlers"]] == [
        (h["name"], h["label"]) for h in plain_wrapper["output-handlers"]]
    # distinct names: XNAT refuses a second command wrapper of the same name
    assert deid["name"] != plain["name"] and deid_wrapper["name"] != plain_wrapper["name"]
    assert deid["image"].split(":")[0] == "xnatpic-mri2dicom-deidentify"


@pytest.mark.parametrize("salt", [SALT, None])
def test_deidentify_command_launched(named_study, tmp_path, monkeypatch, salt):
    # the command through the local launcher (the step as a local process, which inherits
    # the environment as the container inherits the resolved secret)
    from xnatpic.xnat.launcher import LaunchOptions, launch
    from xnatpic.xnat.metadata import update_project
    from xnatpic.xnat.secrets import sysprop_variable

    # the secret's source is the system property (XNATPIC_SYSPROP_<NAME> for a local
    # launch, xnatpic.xnat.secrets), not the destination variable of the host
    monkeypatch.delenv(SALT_VARIABLE, raising=False)
    if salt is None:
        monkeypatch.delenv(sysprop_variable("xnatpic.deidentify.salt"), raising=False)
    else:
        monkeypatch.setenv(sysprop_variable("xnatpic.deidentify.salt"), salt)
    session = tmp_path / "archive" / "PRECLIN" / "arc001" / "m1_d0"
    shutil.copytree(named_study, session / "RESOURCES" / "PARAVISION" / f"{ANIMAL}_study")
    with update_project(tmp_path / "archive", "PRECLIN") as meta:
        meta.ensure_experiment("m1_d0", "mouse1")
    result = launch(_command("mri2dicom-deidentify"), None, session, {"import": "false"},
                    LaunchOptions(runtime="local", build_root=tmp_path / "builds",
                                  entrypoint=[sys.executable,
                                              str(ROOT / "pipelines" / "mri2dicom" / "run.py")]))
    if salt is None:  # as Container Service: the launch fails before the step runs
        assert not result.ok and result.error.startswith("Could not resolve secret")
        assert "xnatpic.deidentify.salt" in result.error and SALT_VARIABLE in result.error
        assert not (session / "RESOURCES" / "MRI2DICOM").exists()
        return
    assert result.ok, result.error
    stored = session / "RESOURCES" / "MRI2DICOM"
    files = list(stored.rglob("*.dcm"))
    assert files
    for path in files:
        assert "Z8W4" not in path.relative_to(stored).as_posix()
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert "Z8W4" not in str(ds.PatientName) and "Z8W4" not in str(ds.PatientID)


def test_deidentified_dob_shifted_like_the_dicom(named_study, tmp_path, monkeypatch):
    from xnatpic.xnat.metadata import read_project

    monkeypatch.setenv(SALT_VARIABLE, SALT)
    meta = tmp_path / "animals.csv"
    meta.write_text("key,dob,animal_id,strain\ns1,2023-10-01,Z8W4-mouse,C57BL/6\n")
    archive = tmp_path / "archive"
    report = tmp_path / "r.json"
    assert main(["upload", str(named_study), "--project", "P", "--deidentify",
                 "--archive", str(archive), "--metadata", str(meta),
                 "--report", str(report)]) == 0
    (row,) = json.loads(report.read_text())["sessions"]
    dicom = next((archive / "P" / "arc001" / row["session"]).rglob("*.dcm"))
    ds = pydicom.dcmread(dicom, stop_before_pixels=True)
    # the offset the converter applied, read from the DICOM: shifted minus real study date
    days = (dt.datetime.strptime(str(ds.StudyDate), "%Y%m%d")
            - dt.datetime(2024, 1, 15)).days
    assert days < 0
    subject = read_project(archive, "P").subject(row["subject"])
    assert subject["fields"]["dob"] == (dt.date(2023, 10, 1) + dt.timedelta(days)).isoformat()
    assert "animal_id" not in subject["fields"]
    assert subject["fields"]["strain"] == "C57BL/6"


def test_deidentified_yob_refused(named_study, tmp_path, monkeypatch):
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    meta = tmp_path / "animals.csv"
    meta.write_text("key,yob\ns1,2023\n")
    report = tmp_path / "r.json"
    assert main(["upload", str(named_study), "--project", "P", "--deidentify",
                 "--archive", str(tmp_path / "a"), "--metadata", str(meta),
                 "--report", str(report)]) == 1
    (row,) = json.loads(report.read_text())["sessions"]
    assert row["status"] == "failed" and "'yob' with --deidentify" in row["error"]


def _study_uid(study: Path) -> str:
    from xnatpic.paravision.jcamp import read_jcamp

    visu = read_jcamp(next(study.rglob("visu_pars")))
    return str(visu["VisuStudyUid"])


def test_dry_run_json_prints_no_original_study_uid(named_study, monkeypatch, capsys):
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    original = _study_uid(named_study)
    assert main(["upload", str(named_study), "--project", "P", "--deidentify",
                 "--dry-run", "--json", "--archive", str(named_study.parent / "a")]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["sessions"] and original not in printed
    assert main(["upload", str(named_study), "--project", "P", "--dry-run", "--json",
                 "--archive", str(named_study.parent / "a")]) == 0
    assert original in capsys.readouterr().out  # identified: the UID is the plan's key


def test_report_reasons_cleaned_of_folder_names_and_dates(named_study, tmp_path, monkeypatch):
    from xnatpic.conversion import ConversionReport, RecoResult, _mask_source

    report = ConversionReport("src", "out", "dicom", results=[RecoResult(
        "3", "1", "failed", f"{ANIMAL}_20220316/3/pdata/1: VisuCoreSize=<> "
        "(acquired 2022-03-16T10:15:00 by Renee)")])
    _mask_source(report, (str(tmp_path),), frozenset({ANIMAL.lower(), "renee",
                                                      f"{ANIMAL}_20220316".lower()}))
    reason = report.results[0].reason
    assert ANIMAL not in reason and "2022" not in reason and "Renee" not in reason
    assert "VisuCoreSize" in reason and "pdata/1" in reason


def test_nifti_deidentified(named_study, tmp_path, monkeypatch):
    """``--format nifti --deidentify`` de-identifies: pseudonym folders, sidecars and
    file names carry no animal name, the sidecar says so; identified NIfTI names it."""
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    plain = convert_study(named_study, tmp_path / "plain", fmt="nifti")
    assert not plain.failed
    report = convert_study(named_study, tmp_path / "out", fmt="nifti", deidentify=True)
    files = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files and not report.failed
    for path in files:
        relative = path.relative_to(tmp_path / "out").as_posix()
        assert "Z8W4" not in relative and "phantom" not in relative
        if path.suffix == ".json":
            text = path.read_text()
            assert "Z8W4" not in text and "phantom" not in text.lower()
            assert json.loads(text)["PatientIdentityRemoved"] == "YES"
    assert next((tmp_path / "out").iterdir()).name.startswith("ANON-")
    assert {p.relative_to(tmp_path / "plain").parts[0]
            for p in (tmp_path / "plain").rglob("*.nii.gz")} == {ANIMAL}

"""Command ``secrets`` in a local launch, as Container Service resolves them: the system
property source from ``XNATPIC_SYSPROP_<NAME>``, the environment-variable destination set
in the step's environment, and a launch without the value failed before the step runs
(container-service secrets/ResolvedSecret.java:62,
services/impl/CommandResolutionServiceImpl.java:3062)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pydicom
import pytest

from tests.oracles import require_folder
from xnatpic.xnat.launcher import FAILED_RESOLUTION, LaunchOptions, launch
from xnatpic.xnat.metadata import update_project
from xnatpic.xnat.secrets import SecretResolutionError, resolve_secrets, sysprop_variable

ROOT = Path(__file__).resolve().parents[2]
ACIDOCEST = ROOT.parent / "shared" / "data" / "paravision" / "pv6-acidocest" / "study"
PROPERTY = "xnatpic.deidentify.salt"
DESTINATION = "XNATPIC_DEIDENTIFY_SALT"
SALT = "a-salt-of-enough-characters-42"
SECRET = {"source": {"type": "system-property", "identifier": PROPERTY},
          "destination": {"type": "environment-variable", "identifier": DESTINATION}}


def _command() -> dict:
    return json.loads((ROOT / "commands" / "mri2dicom-deidentify.json").read_text())


@pytest.fixture
def session(tmp_path) -> Path:
    require_folder(ACIDOCEST, "real ParaVision study pv6-acidocest")
    archive = tmp_path / "archive"
    folder = archive / "PRECLIN" / "arc001" / "acido_d0"
    shutil.copytree(ACIDOCEST, folder / "RESOURCES" / "PARAVISION" / "study")
    with update_project(archive, "PRECLIN") as meta:
        meta.ensure_experiment("acido_d0", "mouse1", xsiType="xnat:mrSessionData")
    return folder


def _launch(session: Path, tmp_path: Path):
    entry = [sys.executable, str(ROOT / "pipelines" / "mri2dicom" / "run.py")]
    return launch(_command(), None, session, {"import": "false", "scans": "1"},
                  LaunchOptions(runtime="local", build_root=tmp_path / "builds",
                                entrypoint=entry))


def test_the_command_declares_the_secret_tested_here():
    assert _command()["secrets"] == [SECRET]


def test_defined_system_property_reaches_the_step(session, tmp_path, monkeypatch):
    monkeypatch.delenv(DESTINATION, raising=False)
    monkeypatch.setenv(sysprop_variable(PROPERTY), SALT)
    result = _launch(session, tmp_path)
    assert result.ok, result.error
    files = list((session / "RESOURCES" / "MRI2DICOM").rglob("*.dcm"))
    assert files
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert ds.PatientIdentityRemoved == "YES"


def test_missing_system_property_fails_the_launch_like_cs(session, tmp_path, monkeypatch):
    # the destination variable in the launching environment is not a source (CS reads the
    # JVM's system property only): the launch still fails, and the step never runs
    monkeypatch.delenv(sysprop_variable(PROPERTY), raising=False)
    monkeypatch.setenv(DESTINATION, SALT)
    result = _launch(session, tmp_path)
    assert not result.ok and result.status == FAILED_RESOLUTION
    described = (f'Secret{{source=SystemProperty{{"{PROPERTY}"}}, '
                 f'destination=EnvironmentVariable{{name="{DESTINATION}"}}}}')
    assert result.error.startswith(f"Could not resolve secret {described}")
    assert f"Did not obtain value for secret {described}" in result.error
    assert sysprop_variable(PROPERTY) in result.error
    assert not (session / "RESOURCES" / "MRI2DICOM").exists()
    assert not result.build_dir


def test_empty_property_is_a_value_as_in_java():
    # System.getProperty gives "" for -Dname= ; Optional.ofNullable("") is present
    env = {sysprop_variable(PROPERTY): ""}
    assert resolve_secrets({"secrets": [SECRET]}, env) == {DESTINATION: ""}


def test_unknown_source_type_refused():
    secret = {**SECRET, "source": {"type": "vault", "identifier": "x"}}
    with pytest.raises(SecretResolutionError, match="Could not resolve secret"):
        resolve_secrets({"secrets": [secret]}, {})


def test_no_secrets_no_variables():
    assert resolve_secrets({}, {sysprop_variable(PROPERTY): SALT}) == {}

"""The map commands' new inputs (t2map ``method=epg``, ``snr_floor``, t1map
``echo_train_ms``) reach the step through the local launcher: the step records what it
used in provenance.json and stats.json."""

from __future__ import annotations

import json
from pathlib import Path

from tests.analysis.conftest import RESOURCES, launch_step
from tests.analysis.helpers import run_dir


def _stored(session: Path, step: str, name: str) -> dict:
    return json.loads((run_dir(session / "RESOURCES" / RESOURCES[step]) / name).read_text())


def test_t2map_epg_and_snr_floor_launched(session_factory, tmp_path):
    session = session_factory(["2"])
    result = launch_step("t2map", session, tmp_path / "b", {"method": "epg", "snr_floor": "3"})
    assert result.ok, (result.error, Path(result.stderr).read_text()[-2000:])
    assert _stored(session, "t2map", "provenance.json")["parameters"]["method"] == "epg"
    assert float(_stored(session, "t2map", "stats.json")["noise"]["snr_floor"]) == 3.0


def test_t1map_echo_train_launched(session_factory, tmp_path):
    session = session_factory(["3"])
    result = launch_step("t1map", session, tmp_path / "b", {"echo_train_ms": "12.5"})
    assert result.ok, (result.error, Path(result.stderr).read_text()[-2000:])
    parameters = _stored(session, "t1map", "provenance.json")["parameters"]
    assert parameters["echo_train_ms"] == 12.5
    assert parameters["echo_train_source"] == "given (--echo-train-ms)"

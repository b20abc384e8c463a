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


def test_a_second_launch_merges_into_the_stored_resource(session_factory, tmp_path):
    """As XNAT's insertResources into a resource whose label exists (the catalog is reused,
    each top-level entry of the output path copied in, same names overwritten, other
    files kept; docs/xnat-conformance.md): t2map nlls, then t2map loglinear, then nlls
    again on the same scan. Two run folders; the repeated run replaces its files and
    leaves a file it did not write."""
    session = session_factory(["2"])
    resource = session / "RESOURCES" / "T2MAP"
    first = launch_step("t2map", session, tmp_path / "b1")
    assert first.ok, Path(first.stderr).read_text()[-2000:]
    note = resource / "nlls-scan2" / "note.txt"
    note.write_text("added by hand after the first run\n")
    old = json.loads((resource / "nlls-scan2" / "provenance.json").read_text())["created"]
    second = launch_step("t2map", session, tmp_path / "b2", {"method": "loglinear"})
    assert second.ok, Path(second.stderr).read_text()[-2000:]
    assert sorted(p.name for p in resource.iterdir() if p.is_dir()) == [
        "loglinear-scan2", "nlls-scan2"]
    third = launch_step("t2map", session, tmp_path / "b3", {"snr_floor": "4"})
    assert third.ok, Path(third.stderr).read_text()[-2000:]
    provenance = json.loads((resource / "nlls-scan2" / "provenance.json").read_text())
    assert provenance["parameters"]["snr_floor"] == 4.0 and provenance["created"] >= old
    assert note.read_text() == "added by hand after the first run\n"
    catalog = (resource / "T2MAP_catalog.xml").read_text()
    assert 'URI="nlls-scan2/note.txt"' in catalog
    assert 'URI="loglinear-scan2/report.html"' in catalog

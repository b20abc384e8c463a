"""Host paths of the step's mounts never reach provenance or reports."""

from __future__ import annotations

from pathlib import Path

from xnatpic.analysis.run_info import PathScrubber


def test_mount_paths_replaced_in_text_and_structures(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    scrub = PathScrubber(Path("in"), tmp_path / "out")
    absolute_in = str(tmp_path / "in")
    assert scrub(absolute_in) == "/input"
    assert scrub(f"{absolute_in}/SCANS/2/DICOM") == "SCANS/2/DICOM"
    assert scrub(str(tmp_path / "out" / "maps")) == "maps"
    assert scrub(f"read {absolute_in}, wrote {tmp_path / 'out'} and out.json") == \
        "read /input, wrote /output and out.json"
    # a sibling whose name starts like a mount is not a mount
    assert scrub(f"{absolute_in}2/x") == f"{absolute_in}2/x"
    assert scrub({"a": [Path(absolute_in), 3, None], "b": ("x",)}) == \
        {"a": ["/input", 3, None], "b": ["x"]}
    # the same answers on a second call (the patterns are computed once)
    assert scrub(absolute_in) == "/input"


def test_no_mounts_leaves_text_alone() -> None:
    assert PathScrubber()("/data/x") == "/data/x"

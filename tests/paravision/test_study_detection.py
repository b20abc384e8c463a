"""One rule for "is this folder a ParaVision study?", used by the reader, upload discovery
and the mri2dicom step (they had three different rules)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from xnatpic.errors import NotParaVisionError
from xnatpic.paravision.dataset import is_study_folder, open_dataset
from xnatpic.upload.discover import discover, is_paravision_study

#: layout (files and folders below the candidate) -> is it a study?
LAYOUTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "subject file only (PV 6, scans not copied yet)": (("subject",), True),
    "scans with acqp": (("5/acqp", "5/pdata/1/2dseq"), True),
    "scan with method only": (("7/method",), True),
    "scan with pdata only": (("3/pdata/1/visu_pars",), True),
    "PV 5 without subject": (("1/acqp", "1/method", "2/acqp"), True),
    "empty folder": ((), False),
    "unrelated files": (("notes.txt", "photos/a.jpg"), False),
    "acqp two levels down (a folder of studies)": (("s1/5/acqp", "s1/subject"), False),
    "subject is a folder": (("subject/readme",), False),
}


STEP_SCRIPT = Path(__file__).resolve().parents[2] / "pipelines" / "mri2dicom" / "run.py"


@pytest.fixture(scope="module")
def step() -> ModuleType:
    """pipelines/mri2dicom/run.py imported as a module (its own name: no clash)."""
    spec = importlib.util.spec_from_file_location("mri2dicom_step_detection", STEP_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(root: Path, entries: tuple[str, ...]) -> Path:
    root.mkdir(parents=True)
    for entry in entries:
        path = root / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("##END=\n")
    return root


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_rule(tmp_path, layout):
    entries, expected = LAYOUTS[layout]
    assert is_study_folder(_build(tmp_path / "c", entries)) is expected


def test_a_file_is_not_a_study_folder(tmp_path):
    (tmp_path / "subject").write_text("")
    assert not is_study_folder(tmp_path / "subject")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_caller_uses_the_rule(tmp_path, layout, step):
    entries, expected = LAYOUTS[layout]
    folder = _build(tmp_path / "c", entries)
    assert is_paravision_study(folder) is expected
    assert step._is_study(folder) is expected


@pytest.mark.parametrize("layout", ["scan with method only", "scan with pdata only",
                                    "PV 5 without subject"])
def test_reader_and_discovery_agree_on_what_was_missed_before(tmp_path, layout):
    """Folders the old discovery/step rules missed (method-only or pdata-only scans)."""
    entries, _ = LAYOUTS[layout]
    folder = _build(tmp_path / "study", entries)
    assert open_dataset(folder).scans  # the reader opens it
    found = discover([folder]).sources
    assert [s.path for s in found] == [folder]


def test_not_a_study_refused_by_the_reader(tmp_path):
    folder = _build(tmp_path / "c", ("notes.txt",))
    assert not is_study_folder(folder)
    with pytest.raises(NotParaVisionError, match="not a ParaVision study"):
        open_dataset(folder)

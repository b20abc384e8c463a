"""Converter fixes found by foreign data (issue 10 item 8).

* PatientPosition is written for every subject type (a PV5 study whose subject says
  Human failed dciodvfy: Type 2C PatientPosition missing in every file);
* a reco whose visu_pars describes frames but whose 2dseq is missing is FAILED;
* the FieldMap (flagged EPI by ParaVision) keeps its RepetitionTime;
* RescaleType names the unit of the rescaled values (HZ for a field map).

Expected values are read from the ParaVision text files by hand (regular expressions
here), not from the converter.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pydicom
import pytest

from tests.dicom.conftest import load_reco
from xnatpic.conversion import convert_study
from xnatpic.dicom import write_dicom_series
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import load_series

PV5_MSME = "pv5-misc/brukerMRI-msme"
DICOMIFIER = "pv6-dicomifier/study"


def _jcamp_scalar(path: Path, name: str) -> str:
    """The text after ``##$name=`` (or on the next line for an array) in a JCAMP file."""
    text = path.read_text(errors="replace")
    match = re.search(r"^##\$" + re.escape(name) + r"=(.*)$", text, re.MULTILINE)
    assert match, f"{name} not in {path}"
    value = match.group(1).strip()
    if value.startswith("("):
        rest = text[match.end():].lstrip("\n")
        value = rest.splitlines()[0].strip()
    return value.strip("<>")


@pytest.fixture
def human_study(corpus: Path, tmp_path: Path) -> Path:
    """A PV5 corpus study copied to tmp with a subject file saying Human."""
    study = tmp_path / "human"
    shutil.copytree(corpus / PV5_MSME, study)
    (study / "subject").write_text(
        "##TITLE=Parameter List\n##JCAMPDX=4.24\n##$SUBJECT_type=Human\n"
        "##$SUBJECT_id=( 60 )\n<volunteer>\n##END=\n")
    return study


class TestHumanSubject:
    @pytest.mark.parametrize("enhanced", [False, True])
    def test_patient_position_and_zero_dciodvfy_errors(self, human_study, tmp_path,
                                                       dciodvfy, enhanced):
        visu = next(human_study.glob("*/pdata/1/visu_pars"))
        expected = {"Head_Supine": "HFS", "Head_Prone": "HFP"}[
            _jcamp_scalar(visu, "VisuSubjectPosition")]
        checked = 0
        for scan in open_dataset(human_study).scans:
            series = load_series(scan.recos[0])
            out = tmp_path / f"out-{scan.id}-{enhanced}"
            out.mkdir()
            for written in write_dicom_series(series, out, enhanced=enhanced):
                for path in written.files:
                    ds = pydicom.dcmread(path, stop_before_pixels=True)
                    assert ds.PatientPosition == expected
                    errors, _ = dciodvfy(path)
                    assert errors == [], f"{path.name}: {errors}"
                    checked += 1
        assert checked > 0


class TestFieldMap:
    @pytest.mark.parametrize("enhanced", [False, True])
    def test_repetition_time_and_rescale_unit(self, corpus, tmp_path, dciodvfy, enhanced):
        visu = corpus / DICOMIFIER / "19" / "pdata" / "1" / "visu_pars"
        tr = float(_jcamp_scalar(visu, "VisuAcqRepetitionTime"))
        assert _jcamp_scalar(visu, "VisuCoreDataUnits") == "Hz"
        series = load_reco(corpus, DICOMIFIER, "19")
        written = write_dicom_series(series, tmp_path, enhanced=enhanced)
        ds = pydicom.dcmread(written[0].files[0])
        if enhanced:
            frame = ds.PerFrameFunctionalGroupsSequence[0]
            shared = ds.SharedFunctionalGroupsSequence[0]

            def group(name: str) -> pydicom.Dataset:
                return (frame.get(name) or shared.get(name))[0]

            assert float(group("MRTimingAndRelatedParametersSequence").RepetitionTime) == tr
            assert group("PixelValueTransformationSequence").RescaleType == "HZ"
        else:
            assert "EP" in ds.ScanningSequence  # ParaVision flags it EPI (VisuAcqIsEpiSequence)
            assert float(ds.RepetitionTime) == tr
            assert ds.RescaleType == "HZ"
        errors, _ = dciodvfy(written[0].files[0])
        assert errors == []

    def test_other_units_stay_unspecified(self, corpus, tmp_path):
        series = load_reco(corpus, DICOMIFIER, "21")  # DtiEpi: no unit
        written = write_dicom_series(series, tmp_path)
        ds = pydicom.dcmread(written[0].files[0], stop_before_pixels=True)
        assert ds.RescaleType == "US"
        visu = corpus / DICOMIFIER / "21" / "pdata" / "1" / "visu_pars"
        assert float(ds.RepetitionTime) == float(_jcamp_scalar(visu, "VisuAcqRepetitionTime"))


class TestMissing2dseq:
    def test_lost_image_data_fails_the_reco(self, corpus, tmp_path):
        study = tmp_path / "study"
        shutil.copytree(corpus / PV5_MSME, study)
        reco = next(study.glob("*/pdata/1"))
        (reco / "2dseq").unlink()
        report = convert_study(study, tmp_path / "out")
        (result,) = [r for r in report.results if r.reco == "1"]
        assert result.status == "failed"
        assert "2dseq" in result.reason and "lost" in result.reason

    def test_reco_without_image_description_is_still_skipped(self, corpus, tmp_path):
        study = tmp_path / "study"
        shutil.copytree(corpus / PV5_MSME, study)
        reco = next(study.glob("*/pdata/1"))
        (reco / "2dseq").unlink()
        (reco / "visu_pars").unlink()
        report = convert_study(study, tmp_path / "out")
        (result,) = [r for r in report.results if r.reco == "1"]
        assert result.status == "skipped"
        assert "no 2dseq" in result.reason

"""The analysis steps on MR DICOM that xnatpic did not write (issue 10 item 7).

* dicomifier's classic MR files of the pv6-dicomifier study (reference/dicomifier-dicom):
  EchoTime, RepetitionTime, and the b-value and gradient direction in the MR Diffusion
  Sequence that dicomifier puts in classic files;
* Enhanced MR files built here with pydicom from dicomifier's pixels, with the standard
  functional groups only (Plane Position/Orientation, Pixel Measures, MR Echo, MR Timing,
  MR Diffusion), as another converter would write them;
* ParaVision's own export of the CEST scan is covered in test_real_cest.py (offsets
  from --offsets-ppm).

The sessions are archive-layout folders in tmp (``SCANS/<id>/DICOM`` symlinked to the
corpus, never copied into the project). Expected acquisition parameters are read from
ParaVision's method files by regular expressions; the maps are compared voxel by voxel
with the same step run on our converter's DICOM of the same scan (the same grid).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.analysis.helpers import run_dir
from xnatpic.analysis.inputs import ENHANCED_MR_IMAGE_STORAGE, AnalysisSeries, read_series
from xnatpic.analysis.runner import main as run_step
from xnatpic.analysis.selection import describe_scan
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key

STUDY = Path("pv6-dicomifier") / "study"
DICOMIFIER = Path("pv6-dicomifier") / "reference" / "dicomifier-dicom" / "FANTOME_" / "7_PLATEF"
SCANS = ("9", "11", "21")


def _method_numbers(corpus: Path, scan: str, name: str) -> np.ndarray:
    text = (corpus / STUDY / scan / "method").read_text()
    match = re.search(r"^##\$" + re.escape(name) + r"=\( [\d, ]+ \)\n(.*?)\n(?=##|\$\$)",
                      text, re.MULTILINE | re.DOTALL)
    assert match, name
    return np.array([float(v) for v in match.group(1).split()])


def _session(root: Path, folders: dict[str, Path]) -> Path:
    for scan, folder in folders.items():
        target = root / "SCANS" / scan / "DICOM"
        target.parent.mkdir(parents=True)
        target.symlink_to(folder.resolve())
    return root


@pytest.fixture(scope="module")
def sessions(corpus_dir, tmp_path_factory) -> dict[str, Path]:
    if not (corpus_dir / DICOMIFIER).is_dir():
        pytest.fail(f"{corpus_dir / DICOMIFIER} missing from the corpus")
    work = tmp_path_factory.mktemp("foreign")
    theirs = _session(work / "dicomifier", {s: corpus_dir / DICOMIFIER / s / "1"
                                            for s in SCANS})
    converted = work / "converted"
    assert xnatpic_main(["convert", str(corpus_dir / STUDY), "-o", str(converted),
                         "--scans", ",".join(SCANS)]) == 0
    ours = _session(work / "xnatpic", {folder_key(p.name): p for p in converted.glob("*/*/*")
                                       if p.is_dir()})
    return {"dicomifier": theirs, "xnatpic": ours}


class TestStandardAttributes:
    def test_echo_times(self, sessions, corpus_dir):
        series = read_series(sessions["dicomifier"] / "SCANS" / "9" / "DICOM")
        np.testing.assert_allclose(series.te, _method_numbers(corpus_dir, "9", "EffectiveTE"),
                                   rtol=1e-6)
        assert describe_scan(sessions["dicomifier"], "9").kind == "t2"

    def test_repetition_times(self, sessions, corpus_dir):
        series = read_series(sessions["dicomifier"] / "SCANS" / "11" / "DICOM")
        np.testing.assert_allclose(sorted(series.tr),
                                   sorted(_method_numbers(corpus_dir, "11", "MultiRepTime")))
        assert describe_scan(sessions["dicomifier"], "11").kind == "vtr"

    def test_diffusion_from_the_mr_diffusion_sequence(self, sessions, corpus_dir):
        folder = sessions["dicomifier"] / "SCANS" / "21" / "DICOM"
        first = pydicom.dcmread(next(iter(sorted(folder.iterdir()))), stop_before_pixels=True)
        assert "DiffusionBValue" not in first  # only inside MRDiffusionSequence
        series = read_series(folder)
        nominal = _method_numbers(corpus_dir, "21", "PVM_DwBvalEach")
        assert sorted(set(series.b.tolist())) == [0.0, *nominal.tolist()]
        weighted = series.b > 0
        assert np.allclose(np.linalg.norm(series.gradient[weighted], axis=1), 1.0)
        assert describe_scan(sessions["dicomifier"], "21").kind == "diffusion"


def _run(step: str, session: Path, out: Path, *args: str) -> int:
    return run_step(step, ["--input", str(session), "--output", str(out), *args])


def _map(out: Path, name: str) -> nib.Nifti1Image:
    return nib.load(run_dir(out / "maps") / "nifti" / f"{name}.nii.gz")


class TestStepsAgreeWithOurDicom:
    @pytest.mark.parametrize(("step", "scan", "name"), [("t2map", "9", "T2"),
                                                        ("t1map", "11", "T1")])
    def test_same_map(self, sessions, tmp_path, step, scan, name):
        outs = {}
        for source, session in sessions.items():
            outs[source] = tmp_path / source
            assert _run(step, session, outs[source], "--scan", scan) == 0, source
        ours, theirs = (_map(outs[s], name) for s in ("xnatpic", "dicomifier"))
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours.affine, theirs.affine, atol=0.02)  # rounded spacing
        a, b = np.asarray(ours.dataobj), np.asarray(theirs.dataobj)
        both = np.isfinite(a) & np.isfinite(b)
        assert both.sum() > 0.95 * np.isfinite(a).sum()
        relative = np.abs(a[both] - b[both]) / np.abs(a[both])
        assert np.median(relative) < 1e-4
        assert np.quantile(relative, 0.99) < 1e-2

    def test_adc_reads_the_diffusion_sequence(self, sessions, tmp_path):
        codes = {s: _run("adcmap", session, tmp_path / s, "--scan", "21")
                 for s, session in sessions.items()}
        assert codes["dicomifier"] == codes["xnatpic"]
        run = run_dir(tmp_path / "dicomifier" / "maps")
        stats = json.loads((run / "stats.json").read_text())
        provenance = json.loads((run / "provenance.json").read_text())
        assert sorted(set(provenance["parameters"]["b_values"])) == [0.0, 500.0]
        assert stats["outcome"] == json.loads(
            (run_dir(tmp_path / "xnatpic" / "maps") / "stats.json").read_text())["outcome"]


def _enhanced_from_classic(folder: Path, target: Path, *, diffusion: bool) -> Path:
    """One Enhanced MR file with the standard functional groups from classic files."""
    files = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    files.sort(key=lambda d: int(d.InstanceNumber))
    first = files[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.Modality = "MR"
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyInstanceUID = first.StudyInstanceUID
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.SeriesNumber = first.SeriesNumber
    ds.EchoPulseSequence = "SPIN"
    ds.Rows, ds.Columns = first.Rows, first.Columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.NumberOfFrames = len(files)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = first.PixelSpacing
    measures.SliceThickness = first.SliceThickness
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = first.ImageOrientationPatient
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames, planes = [], []
    for d in files:
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = d.ImagePositionPatient
        item.PlanePositionSequence = Sequence([position])
        echo = Dataset()
        echo.EffectiveEchoTime = float(d.EchoTime)
        item.MREchoSequence = Sequence([echo])
        timing = Dataset()
        timing.RepetitionTime = float(np.atleast_1d(d.RepetitionTime)[0])
        item.MRTimingAndRelatedParametersSequence = Sequence([timing])
        rescale = Dataset()
        rescale.RescaleSlope = d.get("RescaleSlope", 1)
        rescale.RescaleIntercept = d.get("RescaleIntercept", 0)
        rescale.RescaleType = "US"
        item.PixelValueTransformationSequence = Sequence([rescale])
        if diffusion:
            item.MRDiffusionSequence = d.MRDiffusionSequence
        frames.append(item)
        planes.append(d.pixel_array.astype(np.int16))
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.stack(planes).tobytes()
    target.mkdir(parents=True)
    path = target / "enhanced.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


class TestEnhancedFromAnotherConverter:
    def test_t2_from_standard_functional_groups(self, sessions, tmp_path):
        folder = sessions["dicomifier"] / "SCANS" / "9" / "DICOM"
        _enhanced_from_classic(folder, tmp_path / "session" / "SCANS" / "9" / "DICOM",
                               diffusion=False)
        classic = read_series(folder)
        enhanced = read_series(tmp_path / "session" / "SCANS" / "9" / "DICOM")
        np.testing.assert_allclose(enhanced.te, classic.te)
        np.testing.assert_allclose(enhanced.data, classic.data, rtol=1e-6)
        assert _run("t2map", tmp_path / "session", tmp_path / "out") == 0
        assert _run("t2map", sessions["dicomifier"], tmp_path / "classic", "--scan", "9") == 0
        a = np.asarray(_map(tmp_path / "out", "T2").dataobj)
        b = np.asarray(_map(tmp_path / "classic", "T2").dataobj)
        np.testing.assert_allclose(a, b, rtol=1e-5, equal_nan=True)

    def test_diffusion_from_the_enhanced_macro(self, sessions, tmp_path):
        folder = sessions["dicomifier"] / "SCANS" / "21" / "DICOM"
        path = _enhanced_from_classic(folder, tmp_path / "s" / "SCANS" / "21" / "DICOM",
                                      diffusion=True)
        classic = read_series(folder)
        enhanced = read_series(path.parent)
        np.testing.assert_allclose(enhanced.b, classic.b)
        np.testing.assert_allclose(enhanced.gradient, classic.gradient, atol=1e-9)
        assert describe_scan(tmp_path / "s", "21").kind == "diffusion"


class TestUserOffsets:
    """--offsets-ppm on ParaVision's own export of the CEST scan (no offsets in it)."""

    @pytest.fixture(scope="class")
    def export(self, corpus_dir) -> AnalysisSeries:
        return read_series(corpus_dir / "pv6-acidocest" / "study" / "4" / "pdata" / "1" /
                           "dicom")

    def test_one_repetition_of_the_list_is_tiled(self, export):
        from xnatpic.analysis.inputs import with_saturation_offsets

        assert np.isnan(export.sat_ppm).all() and export.n_measurements == 176
        offsets = np.concatenate([[-100.0] * 3, np.linspace(-10, 10, 41)])
        series = with_saturation_offsets(export, offsets)
        np.testing.assert_array_equal(series.sat_ppm, np.tile(offsets, 4))
        assert series.is_m0.sum() == 12
        assert with_saturation_offsets(series, offsets) is series  # the same offsets again

    def test_wrong_count_or_other_offsets_are_refused(self, export):
        from xnatpic.analysis.errors import BadSeriesError
        from xnatpic.analysis.inputs import with_saturation_offsets

        with pytest.raises(BadSeriesError, match="45 saturation offsets given for 176"):
            with_saturation_offsets(export, np.zeros(45))
        series = with_saturation_offsets(export, np.linspace(-10, 10, 44))
        with pytest.raises(BadSeriesError, match="already has saturation offsets"):
            with_saturation_offsets(series, np.linspace(-9, 9, 44))

"""Outputs of a step: derived DICOM (validated with dciodvfy), NIfTI, statistics, report."""

from __future__ import annotations

import json
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.helpers import run_dir
from tests.browser import render
from tests.oracles import require_executable
from xnatpic.analysis import read_series
from xnatpic.analysis.maps import compute_t2
from xnatpic.analysis.outputs import MOSTLY_FAILED, VALID_FRACTION_MIN, write_outputs
from xnatpic.analysis.stats import map_statistics
from xnatpic.models.results import VoxelStatus


@pytest.fixture(scope="module")
def t2_outputs(phantom_dicom, tmp_path_factory):
    series = read_series(phantom_dicom["2"])
    result = compute_t2(series)
    out = tmp_path_factory.mktemp("t2out") / "maps"
    summary = write_outputs(result, out, scans={"source": "2"}, argv=["--scan", "2"])
    return series, result, run_dir(out, "nlls-scan2"), summary


class TestDicomMaps:
    def test_dciodvfy_reports_no_error(self, t2_outputs):
        require_executable("dciodvfy", "'make tools' installs dicom3tools")
        _, _, out, _ = t2_outputs
        files = sorted((out / "dicom" / "T2").glob("*.dcm"))
        assert len(files) == 5
        for path in files:
            proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                                  check=False)
            errors = [line for line in (proc.stdout + proc.stderr).splitlines()
                      if line.startswith("Error")]
            assert errors == [], (path.name, errors)

    def test_values_units_and_references(self, t2_outputs):
        series, result, out, _ = t2_outputs
        t2 = result.maps[0].values
        for k, path in enumerate(sorted((out / "dicom" / "T2").glob("*.dcm"))):
            ds = pydicom.dcmread(path)
            assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "T2 MAP"]
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
            assert ds.FrameOfReferenceUID == series.frame_of_reference_uid
            assert ds.StudyInstanceUID == series.header.StudyInstanceUID
            rwvm = ds.RealWorldValueMappingSequence[0]
            unit = rwvm.MeasurementUnitsCodeSequence[0]
            assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("ms", "UCUM")
            stored = ds.pixel_array.astype(np.float64)
            values = stored * rwvm.RealWorldValueSlope + rwvm.RealWorldValueIntercept
            inside = stored != ds.PixelPaddingValue
            expected = t2[:, :, k].T
            assert np.isnan(expected[~inside]).all()
            step = float(rwvm.RealWorldValueSlope)
            assert np.allclose(values[inside], expected[inside], atol=step)
            sources = {item.ReferencedSOPInstanceUID for item in ds.SourceImageSequence}
            assert sources == set(series.sop_instance_uids[k])
            ref = ds.ReferencedSeriesSequence[0]
            assert ref.SeriesInstanceUID == series.series_instance_uid
            assert np.allclose([float(v) for v in ds.ImagePositionPatient],
                               (series.affine_lps @ [0, 0, k, 1])[:3], atol=1e-4)


class TestFiles:
    def test_nifti_geometry(self, t2_outputs):
        series, result, out, _ = t2_outputs
        image = nib.load(out / "nifti" / "T2.nii.gz")
        assert np.allclose(image.affine, series.affine, atol=1e-5)
        assert image.header.get_qform(coded=True)[1] == 1
        data = np.asarray(image.dataobj)
        assert np.array_equal(np.isnan(data), np.isnan(result.maps[0].values))

    def test_stats_match_the_map(self, t2_outputs):
        _, result, out, summary = t2_outputs
        stats = json.loads((out / "stats.json").read_text())
        assert stats == json.loads(json.dumps(summary))
        t2 = result.maps[0].values[result.mask]
        whole = stats["maps"]["T2"]["whole"]
        assert whole["median"] == pytest.approx(float(np.nanmedian(t2)), rel=1e-6)
        assert whole["n_voxels"] == int(result.mask.sum())
        assert [s["slice"] for s in stats["maps"]["T2"]["slices"]] == [1, 2, 3, 4, 5]
        roles = {name: (e["role"], e["unit"]) for name, e in stats["maps"].items()}
        assert roles == {"T2": ("primary", "ms"), "S0": ("byproduct", "a.u."),
                         "R_squared": ("byproduct", "ratio")}
        rows = (out / "stats.csv").read_text().splitlines()
        t2_rows = [r for r in rows if r.startswith("T2,primary,ms,")]
        assert [r.split(",")[3] for r in t2_rows] == ["all", "1", "2", "3", "4", "5"]
        assert len(rows) == 1 + 3 * 6  # header; whole map and 5 slices of each map

    def test_provenance(self, t2_outputs):
        series, _, out, _ = t2_outputs
        provenance = json.loads((out / "provenance.json").read_text())
        assert provenance["step"] == "t2map" and provenance["command_line"] == ["--scan", "2"]
        assert provenance["parameters"]["method"] == "nlls"
        assert provenance["inputs"][0]["series_instance_uid"] == series.series_instance_uid
        assert len(provenance["inputs"][0]["sop_instance_uids"]) == 60
        assert "report.html" in provenance["outputs"]
        assert (provenance["method"], provenance["run_key"]) == ("nlls", "nlls-scan2")
        assert provenance["scans"] == {"source": "2"}
        assert provenance["session"]["subject"] == "xnatpic-phantom"
        # the phantom's DICOM carries no routing text: the session label is its PatientID
        assert provenance["session"]["label"] == str(series.header.PatientID)

    def test_no_host_path_and_no_float_noise(self, phantom_dicom, tmp_path):
        """The source folder given as a mount becomes a relative path; parameters read as a
        person writes them (0.1 + 0.2 is 0.3 in the report and in provenance.json)."""
        session = tmp_path / "P" / "arc001" / "s1"
        (session / "SCANS" / "2").mkdir(parents=True)
        (session / "SCANS" / "2" / "DICOM").symlink_to(phantom_dicom["2"])
        result = compute_t2(read_series(session / "SCANS" / "2" / "DICOM"))
        result.parameters["threshold"] = 0.1 + 0.2
        out = tmp_path / "out" / "maps"
        write_outputs(result, out, scans={"source": "2"},
                      argv=["--input", str(session), "--output", str(out.parent)],
                      input_root=session, output_root=out.parent)
        run = run_dir(out)
        provenance = json.loads((run / "provenance.json").read_text())
        assert provenance["command_line"] == ["--input", "/input", "--output", "/output"]
        assert provenance["inputs"][0]["source"] == "SCANS/2/DICOM"
        assert provenance["parameters"]["threshold"] == 0.3
        assert provenance["session"]["label"] == "s1"  # the archive folder
        html = (run / "report.html").read_text()
        for text in (html, (run / "provenance.json").read_text(),
                     (run / "stats.json").read_text()):
            assert str(tmp_path) not in text and "0.30000000000000004" not in text
        assert "<tr><th>threshold</th><td>0.3</td></tr>" in html


class TestStatistics:
    def test_failed_voxels_counted(self):
        values = np.full((4, 4, 2), 2.0)
        values[0, 0, 1] = np.nan
        mask = np.ones((4, 4, 2), bool)
        mask[3, 3, 0] = False
        stats = map_statistics(values, mask)
        assert stats["whole"]["n_voxels"] == 31 and stats["whole"]["n_failed"] == 1
        assert stats["slices"][0]["n_voxels"] == 15 and stats["slices"][1]["n_failed"] == 1
        assert stats["whole"]["iqr"] == 0.0 and stats["whole"]["sd"] == 0.0

    def test_all_failed_slice(self):
        stats = map_statistics(np.full((2, 2, 1), np.nan), np.ones((2, 2, 1), bool))
        assert stats["whole"]["median"] is None and stats["whole"]["n_failed"] == 4


class TestUids:
    def test_same_inputs_same_uids_other_parameters_new_series(self, phantom_dicom, tmp_path):
        series = read_series(phantom_dicom["2"])

        def series_uid(result, name):
            out = tmp_path / name
            write_outputs(result, out, scans={"source": "2"})
            return pydicom.dcmread(sorted((run_dir(out) / "dicom" / "T2").glob("*.dcm"))[0]
                                   ).SeriesInstanceUID

        first = series_uid(compute_t2(series), "a")
        again = series_uid(compute_t2(series), "b")
        other = series_uid(compute_t2(series, method="loglinear"), "c")
        assert first == again != other


@pytest.fixture(scope="module")
def failed_run(phantom_dicom, tmp_path_factory):
    series = read_series(phantom_dicom["2"])
    result = compute_t2(series)
    t2 = result.maps[0]
    inside = np.argwhere(result.mask)
    rng = np.random.default_rng(12)
    broken = inside[rng.choice(len(inside), int(0.7 * len(inside)), replace=False)]
    for x, y, z in broken:  # 70 % of the mask failed to converge
        t2.status[x, y, z] = VoxelStatus.FAILED_NOT_CONVERGED
        t2.values[x, y, z] = np.nan
    result.failed = t2.status >= VoxelStatus.FAILED_INPUT
    out = tmp_path_factory.mktemp("failed") / "maps"
    summary = write_outputs(result, out, scans={"source": "2"})
    return summary, run_dir(out), len(broken) / len(inside)


class TestMostlyFailed:
    """A map failed in most of its mask is not "complete": a distinct outcome in
    stats.json and the report, and the failed voxels painted in the preview."""

    def test_outcome_and_fraction(self, failed_run):
        summary, run, fraction = failed_run
        stats = json.loads((run / "stats.json").read_text())
        assert stats["outcome"] == summary["outcome"] == MOSTLY_FAILED
        assert stats["valid_fraction"] == pytest.approx(1 - fraction, abs=1e-9)
        assert stats["valid_fraction"] < VALID_FRACTION_MIN == stats["valid_fraction_threshold"]
        assert "T2 valid in 30 %" in stats["outcome_reason"]

    def test_report_says_so(self, failed_run, tmp_path):
        _, run, _ = failed_run
        page = render(run / "report.html", screenshot=tmp_path / "failed.png")
        assert page.problems == []
        assert "Mostly failed: T2 valid in 30 %" in page.text
        assert "Complete" not in page.text

    def test_failed_voxels_painted_in_the_preview(self, failed_run, t2_outputs):
        """Failed voxels are magenta (#ff00ff) in the map preview: none in the intact T2
        map of the same scan, a large share of the drawn voxels here."""
        from PIL import Image

        def magenta(png):
            rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
            return int(((rgb[..., 0] > 240) & (rgb[..., 1] < 20) & (rgb[..., 2] > 240)).sum())

        _, run, _ = failed_run
        intact = t2_outputs[2] / "png" / "T2.png"
        assert magenta(intact) == 0
        assert magenta(run / "png" / "T2.png") > 1000


def test_files_written_in_a_thread_equal_files_written_in_order(phantom_dicom, tmp_path):
    """The NIfTI files and previews made by the writer thread are the bytes written one
    after the other (a process on one CPU), and stats.json is the same."""
    from concurrent.futures import ThreadPoolExecutor

    import xnatpic.analysis.outputs as outputs
    from xnatpic.models._blocks import fit_threads

    result = compute_t2(read_series(phantom_dicom["2"]))
    runs = {}
    for cpus, kind in ((2, ThreadPoolExecutor), (1, outputs._InOrder)):
        with fit_threads(cpus):  # what the fits may use: the CPUs available and idle
            assert isinstance(outputs._file_writer(), kind)
            out = tmp_path / f"cpus{cpus}"
            outputs.write_outputs(result, out, scans={"source": "2"})
        run = run_dir(out, "nlls-scan2")
        runs[cpus] = {p.relative_to(run).as_posix(): p.read_bytes()
                      for p in run.rglob("*") if p.suffix in (".gz", ".png", ".json")
                      and p.name != "provenance.json"}
    assert runs[2].keys() == runs[1].keys()
    assert {"nifti/T2.nii.gz", "nifti/T2_status.nii.gz", "png/T2.png", "png/T2_status.png",
            "stats.json"} <= runs[2].keys()
    assert all(runs[2][name] == runs[1][name] for name in runs[2]), \
        [name for name in runs[2] if runs[2][name] != runs[1][name]]

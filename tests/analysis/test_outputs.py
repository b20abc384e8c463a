"""Outputs of a step: derived DICOM (validated with dciodvfy), NIfTI, statistics, report."""

from __future__ import annotations

import json
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.oracles import require_executable
from xnatpic.analysis import read_series
from xnatpic.analysis.maps import compute_t2
from xnatpic.analysis.outputs import write_outputs
from xnatpic.analysis.stats import map_statistics


@pytest.fixture(scope="module")
def t2_outputs(phantom_dicom, tmp_path_factory):
    series = read_series(phantom_dicom["2"])
    result = compute_t2(series)
    out = tmp_path_factory.mktemp("t2out") / "maps"
    summary = write_outputs(result, out, scans={"source": "2"}, argv=["--scan", "2"])
    return series, result, out, summary


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
        assert len(stats["maps"]["T2"]["slices"]) == 5
        rows = (out / "stats.csv").read_text().splitlines()
        assert len(rows) == 1 + 6  # header, whole map, 5 slices

    def test_provenance(self, t2_outputs):
        series, _, out, _ = t2_outputs
        provenance = json.loads((out / "provenance.json").read_text())
        assert provenance["step"] == "t2map" and provenance["command_line"] == ["--scan", "2"]
        assert provenance["parameters"]["method"] == "nlls"
        assert provenance["inputs"][0]["series_instance_uid"] == series.series_instance_uid
        assert len(provenance["inputs"][0]["sop_instance_uids"]) == 60
        assert "report.html" in provenance["outputs"]


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
            return pydicom.dcmread(sorted((out / "dicom" / "T2").glob("*.dcm"))[0]
                                   ).SeriesInstanceUID

        first = series_uid(compute_t2(series), "a")
        again = series_uid(compute_t2(series), "b")
        other = series_uid(compute_t2(series, method="loglinear"), "c")
        assert first == again != other

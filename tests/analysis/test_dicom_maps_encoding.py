"""The derived map files (xnatpic.analysis.dicom_maps, written with the fast Part 10
encoder) are byte for byte what pydicom.dcmwrite writes for the same dataset.

The reference dataset is built slice by slice with pydicom, as the writer did before it
encoded the common elements once: the map's common elements (``map_template``) plus the
slice's instance, position, source references and pixel data set as pydicom attributes,
written by :func:`~xnatpic.dicom.part10.write_with_pydicom`. The map is a real T2 fit of
the phantom's multi-echo scan (classic and enhanced source), in the source's character
set and in the ones a text outside it makes the writer declare. dciodvfy checks the
files too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.dicom.conftest import run_dciodvfy
from tests.oracles import require_executable
from xnatpic.analysis.dicom_maps import map_template, stored_values, write_dicom_map
from xnatpic.analysis.inputs import AnalysisSeries, read_series
from xnatpic.analysis.maps import MapImage, compute_t2
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.dicom.part10 import write_with_pydicom
from xnatpic.dicom.uids import derived_uid

STEP = "t2map"
SALT = "encoding-test"


@pytest.fixture(scope="module")
def t2(phantom_dicom) -> tuple[AnalysisSeries, MapImage]:
    """The phantom's multi-echo scan and its fitted T2 map (NaN outside the mask)."""
    series = read_series(phantom_dicom["2"])
    result = compute_t2(series)
    (image,) = [m for m in result.maps if m.name == "T2"]
    assert np.isnan(image.values).any() and np.isfinite(image.values).any()
    return series, image


@pytest.fixture(scope="module")
def t2_enhanced(phantom_study, tmp_path_factory) -> tuple[AnalysisSeries, MapImage]:
    """The same scan converted to one Enhanced MR file, and its T2 map."""
    out = tmp_path_factory.mktemp("enhanced")
    assert xnatpic_main(["convert", str(phantom_study), "-o", str(out), "--format",
                         "enhanced", "--scans", "2"]) == 0
    (path,) = out.rglob("*.dcm")
    series = read_series(path.parent)
    (image,) = [m for m in compute_t2(series).maps if m.name == "T2"]
    return series, image


def _reference(image: MapImage, series: AnalysisSeries, k: int, now: dt.datetime) -> Dataset:
    """Slice ``k`` of the map as one pydicom dataset (elements set one by one)."""
    values = np.asarray(image.values, dtype=np.float64)
    stored, slope, intercept = stored_values(values)
    series_uid = derived_uid(series.series_instance_uid, STEP, image.name, SALT)
    template, _ = map_template(image, series, series_uid=series_uid, series_number=201,
                               step=STEP, slope=slope, intercept=intercept, now=now)
    ds = Dataset()
    ds.update(template)
    ds.SOPInstanceUID = derived_uid(series_uid, k)
    ds.InstanceNumber = k + 1
    position = series.affine_lps[:3, 3] + k * series.affine_lps[:3, 2]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.SliceLocation = f"{float(position @ series.orientation[2]):.6f}"
    refs = []
    for m, uid in enumerate(series.sop_instance_uids[k]):
        ref = Dataset()
        ref.ReferencedSOPClassUID = series.sop_class_uid
        ref.ReferencedSOPInstanceUID = uid
        if series.frame_numbers[k][m] is not None:
            ref.ReferencedFrameNumber = series.frame_numbers[k][m]
        refs.append(ref)
    ds.SourceImageSequence = Sequence(refs)
    instances = []
    for uid in dict.fromkeys(series.sop_instance_uids[k]):
        item = Dataset()
        item.ReferencedSOPClassUID = series.sop_class_uid
        item.ReferencedSOPInstanceUID = uid
        instances.append(item)
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = series.series_instance_uid
    ref_series.ReferencedInstanceSequence = Sequence(instances)
    ds.ReferencedSeriesSequence = Sequence([ref_series])
    ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
    return ds


def _with_charset(series: AnalysisSeries, charset: str | None, name: str) -> AnalysisSeries:
    """``series`` whose header declares ``charset`` and holds the patient name ``name``."""
    header = pydicom.Dataset()
    header.update(series.header)
    if charset is None:
        header.pop("SpecificCharacterSet", None)
    else:
        header.SpecificCharacterSet = charset
    header.PatientName = name
    return dataclasses.replace(series, header=header)


@pytest.mark.parametrize(("charset", "name", "description", "declared"), [
    (None, "phantom", "T2 from a mono-exponential fit", None),
    (None, "phantom", "T2 de la région d'intérêt " + "é" * 30, "ISO_IR 192"),
    ("ISO_IR 100", "Müller^Maus", "T2 de la région d'intérêt", "ISO_IR 100"),
    ("ISO_IR 100", "Müller^Maus", "ΔT2 (Greek, outside Latin-1)", "ISO_IR 192"),
])
def test_map_files_are_what_dcmwrite_writes(t2, tmp_path, charset, name, description,
                                            declared):
    series, fitted = t2
    series = _with_charset(series, charset, name)
    image = dataclasses.replace(fitted, description=description)
    files = write_dicom_map(image, series, tmp_path / "T2", series_number=201, step=STEP,
                            salt=SALT)
    assert len(files) == image.values.shape[2] > 1
    written = pydicom.dcmread(files[0])
    assert written.get("SpecificCharacterSet") == declared
    assert str(written.PatientName) == name
    _assert_as_dcmwrite(image, series, files, tmp_path)
    # and pydicom reads every element back to the values it would write again
    decoded = pydicom.dcmread(files[-1])
    for _ in decoded.iterall():
        pass
    reference = tmp_path / "reread.dcm"
    write_with_pydicom(decoded, reference)
    assert files[-1].read_bytes() == reference.read_bytes()


def _assert_as_dcmwrite(image: MapImage, series: AnalysisSeries, files: list[Path],
                        folder: Path) -> None:
    """Every file equals what write_with_pydicom writes for its reference dataset."""
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    now = dt.datetime.strptime(first.SeriesDate + first.SeriesTime, "%Y%m%d%H%M%S")
    reference = folder / "reference.dcm"
    for k, path in enumerate(files):
        write_with_pydicom(_reference(image, series, k, now), reference)
        assert path.read_bytes() == reference.read_bytes(), path.name


def test_map_of_an_enhanced_source_is_what_dcmwrite_writes(t2_enhanced, tmp_path):
    """An enhanced source: every slice references frames of one file (ReferencedFrameNumber)."""
    series, image = t2_enhanced
    files = write_dicom_map(image, series, tmp_path / "T2", series_number=201, step=STEP,
                            salt=SALT)
    for k, path in enumerate(files):
        sources = pydicom.dcmread(path, stop_before_pixels=True).SourceImageSequence
        assert [int(item.ReferencedFrameNumber) for item in sources] == [
            int(f) for f in series.frame_numbers[k]]
        assert len(set(series.sop_instance_uids[k])) == 1 < len(sources)
    _assert_as_dcmwrite(image, series, files, tmp_path)


def test_map_files_pass_dciodvfy(t2, tmp_path):
    require_executable("dciodvfy", "'make tools' installs dicom3tools")
    series, image = t2
    files = write_dicom_map(image, series, tmp_path / "T2", series_number=201, step=STEP,
                            salt=SALT)
    for path in (files[0], files[-1]):
        errors, _ = run_dciodvfy(path)
        assert errors == [], path.name


def test_pixels_are_the_map(t2, tmp_path):
    """The stored pixels scaled by Rescale Slope/Intercept give the map (NaN: padding)."""
    series, image = t2
    files = write_dicom_map(image, series, tmp_path / "T2", series_number=201, step=STEP,
                            salt=SALT)
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        raw = ds.pixel_array.T
        truth = np.asarray(image.values[:, :, k], dtype=np.float64)
        assert np.array_equal(raw == ds.PixelPaddingValue, np.isnan(truth))
        finite = np.isfinite(truth)
        scaled = raw[finite] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.allclose(scaled, truth[finite], rtol=0, atol=float(ds.RescaleSlope))

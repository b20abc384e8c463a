"""Writer behaviour on small synthetic studies: encodings, subject fields, errors, Part 10."""

from __future__ import annotations

import logging

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.dicom.synthetic import load, string, write_study
from xnatpic.dicom import write_dicom_series
from xnatpic.dicom.classic import image_dataset, series_template
from xnatpic.dicom.context import Frame, SeriesContext
from xnatpic.dicom.engine import Module, Row, apply_rows
from xnatpic.dicom.modules import CLASSIC_MR_IOD
from xnatpic.dicom.part10 import write_dataset
from xnatpic.dicom.pixels import choose_encoding
from xnatpic.dicom.private import private_tag
from xnatpic.dicom.uids import SeriesUids
from xnatpic.errors import ConversionError


def _write(tmp_path, stored, **kwargs):
    series = load(write_study(tmp_path / "study", stored, **kwargs))
    out = tmp_path / "out"
    out.mkdir()
    return series, write_dicom_series(series, out)


def _real_values(series, written):
    by_index = {im.index: im for im in series.images}
    for path, index in zip(written[0].files, written[0].image_indices, strict=True):
        ds = pydicom.dcmread(path)
        mine = (ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1))
                + float(ds.get("RescaleIntercept", 0)))
        yield ds, mine, series.real(by_index[index])


class TestPixelEncodings:
    def test_negative_int16_with_per_frame_slopes(self, tmp_path):
        stored = np.arange(-60, 60, dtype="i2").reshape(3, 5, 8)
        series, written = _write(tmp_path, stored, slopes=[0.5, 2.0, 3.25],
                                 offsets=[1.0, -2.0, 0.0])
        slopes, minima = [], []
        for ds, mine, real in _real_values(series, written):
            assert ds.PixelRepresentation == 1
            np.testing.assert_allclose(mine, real, rtol=1e-12)
            slopes.append(float(ds.RescaleSlope))
            minima.append(mine.min())
        assert slopes == [0.5, 2.0, 3.25]
        assert minima[0] == -60 * 0.5 + 1.0  # negative values kept

    def test_uint8_becomes_unsigned_16_bit(self, tmp_path):
        stored = np.arange(0, 240, dtype="u1").reshape(3, 8, 10)
        series, written = _write(tmp_path, stored)
        for ds, mine, real in _real_values(series, written):
            assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 0)
            np.testing.assert_array_equal(mine, real)
        assert "RescaleSlope" not in ds  # identity rescale everywhere: omitted

    def test_int32_out_of_range_is_requantised(self, tmp_path):
        stored = (np.arange(120, dtype="i4").reshape(3, 5, 8) - 60) * 1_000_000
        series, written = _write(tmp_path, stored, slopes=[1e-3, 2e-3, 1.0])
        for ds, mine, real in _real_values(series, written):
            assert ds.PixelRepresentation == 1
            assert np.max(np.abs(mine - real)) <= 1.6e-5 * np.max(np.abs(real))
            assert float(ds[private_tag(0x14)].value) > 0  # original slope kept

    def test_int32_in_uint16_range_is_exact(self, tmp_path):
        stored = np.linspace(0, 65000, 120).astype("i4").reshape(3, 5, 8)
        series, written = _write(tmp_path, stored)
        for ds, mine, real in _real_values(series, written):
            assert ds.PixelRepresentation == 0
            np.testing.assert_array_equal(mine, real)

    def test_float_holding_integers_is_exact(self, tmp_path):
        stored = (np.arange(120, dtype="f4").reshape(3, 5, 8) - 60)
        series, written = _write(tmp_path, stored, slopes=[0.25, 1, 4])
        assert not choose_encoding(series, series.images).requantise
        for _, mine, real in _real_values(series, written):
            np.testing.assert_array_equal(mine, real)

    def test_float_precision_and_sign(self, tmp_path):
        rng = np.random.default_rng(3)
        stored = rng.normal(0, 1e-3, (3, 6, 7)).astype("f4")
        series, written = _write(tmp_path, stored)
        for _, mine, real in _real_values(series, written):
            assert np.max(np.abs(mine - real)) <= 1.6e-5 * np.max(np.abs(real))
            np.testing.assert_array_equal(np.sign(mine[np.abs(real) > 1e-6]),
                                          np.sign(real[np.abs(real) > 1e-6]))

    def test_non_finite_floats_become_zero_with_a_warning(self, tmp_path, caplog):
        stored = np.ones((2, 4, 4), dtype="f4") * 0.5
        stored[0, 0, 0] = np.nan
        with caplog.at_level(logging.WARNING):
            series, written = _write(tmp_path, stored)
        values = list(_real_values(series, written))
        assert values[0][1][0, 0] == 0
        assert "non-finite" in caplog.text


class TestSubjectMapping:
    def test_strain_sex_species_position(self, tmp_path):
        stored = np.zeros((2, 4, 4), dtype="i2")
        _, written = _write(tmp_path, stored, visu={"VisuSubjectPosition": "Foot_Left"},
                            subject={"SUBJECT_species": string("Mouse")})
        ds = pydicom.dcmread(written[0].files[0])
        assert ds.PatientBreedDescription == "C57BL/6"
        assert ds.PatientSex == "F"
        assert ds.PatientSpeciesDescription == "MOUSE"
        assert ds.PatientPosition == "FFDL"
        assert ds.PatientName == "Mouse^Mickey"
        assert ds.ResponsiblePerson == "Who^Dr"
        assert ds.ResponsiblePersonRole == "INVESTIGATOR"
        assert ds.PatientBirthDate == "20210101"
        assert ds.SeriesNumber == 50001

    def test_missing_type1_source_names_the_reco(self, tmp_path):
        stored = np.zeros((2, 4, 4), dtype="i2")
        series = load(write_study(tmp_path / "study", stored))
        ctx = SeriesContext(series, 0, series.images, SeriesUids("1.2", "1.3", "1.4"),
                            choose_encoding(series, series.images))
        module = Module("Test", "C.0", (Row("Modality", "1", ("visu:NoSuchParameter",)),))
        with pytest.raises(ConversionError, match=r"pdata/1: Test \(PS3.3 C.0\): Modality is "
                                                  r"Type 1.*visu:NoSuchParameter"):
            apply_rows(Dataset(), module.rows, ctx, module=module)

    def test_missing_output_folder(self, tmp_path):
        series = load(write_study(tmp_path / "study", np.zeros((1, 4, 4), dtype="i2")))
        with pytest.raises(ConversionError, match=r"pdata/1: output folder .* does not exist"):
            write_dicom_series(series, tmp_path / "missing")


class TestPart10:
    def test_fast_writer_is_byte_identical_to_dcmwrite(self, tmp_path):
        stored = np.arange(-40, 40, dtype="i2").reshape(2, 5, 8)
        series, written = _write(tmp_path, stored, slopes=[0.5, 2.0])
        ctx = SeriesContext(series, 0, series.images, _uids_of(written[0]),
                            choose_encoding(series, series.images))
        image = series.images[1]
        ds = series_template(ctx, CLASSIC_MR_IOD)
        ds.update(image_dataset(ctx, Frame(image, 2, ctx.pixels.encode(series, image))))
        reference = tmp_path / "reference.dcm"
        write_dataset(ds, reference, ctx.where)
        assert written[0].files[1].read_bytes() == reference.read_bytes()


def _uids_of(written) -> SeriesUids:
    ds = pydicom.dcmread(written.files[0], stop_before_pixels=True)
    return SeriesUids(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID)


class TestSaturationModule:
    def test_pv360_sat_trans_parameters(self, tmp_path):
        stored = np.ones((3, 4, 4), dtype="i2")
        visu = {
            "VisuFGOrderDesc": "( 1 )\n(3, <FG_CYCLE>, <>, 0, 0)",
            "VisuGroupDepVals": None,
            "VisuCoreOrientation": "( 1, 9 )\n1 0 0 0 1 0 0 0 1",
            "VisuCorePosition": "( 1, 3 )\n-4 -6 0",
        }
        method = {
            "PVM_SatTransOnOff": "On",
            "PVM_SatTransFreqUnit": "unit_ppm",
            "PVM_SatTransFreqValues": "( 3 )\n-3.5 0 3.5",
            "PVM_SatTransPulseAmpl_uT": "2.5",
            "PVM_SatTransNPulses": "10",
            "PVM_SatTransInterPulseDelay": "0.1",
            "PVM_SatTransModuleTime": "1000.5",
            "PVM_SatTransPulseEnum": "<gauss>",
            "PVM_SatTransPulse": "(100, 27.4, 900, Yes, 3, 1, 1, 1, 0, 50, 0.2, <gauss.exc>)",
        }
        _, written = _write(tmp_path, stored, visu=visu, method=method)
        datasets = [pydicom.dcmread(p) for p in written[0].files]
        ppm = [float(d[private_tag(0x21)].value) for d in datasets]
        hz = [float(d[private_tag(0x20)].value) for d in datasets]
        np.testing.assert_allclose(ppm, [-3.5, 0, 3.5])
        np.testing.assert_allclose(hz, np.array(ppm) * 300.3)  # f0 = 300.3 MHz
        first = datasets[0]
        assert first[private_tag(0x23)].value == "PVM_SatTrans"
        values = {offset: first[private_tag(offset)].value for offset in range(0x24, 0x2C)}
        assert float(values[0x24]) == 2.5 and int(values[0x25]) == 10
        assert float(values[0x26]) == 0.1 and float(values[0x27]) == 1000.5
        assert values[0x28] == "gauss"
        assert [float(values[k]) for k in (0x29, 0x2A, 0x2B)] == [100, 27.4, 900]
        assert [d[private_tag(0x22)].value for d in datasets] == ["NO"] * 3
        assert [int(d.TemporalPositionIdentifier) for d in datasets] == [1, 2, 3]
        assert "MTC" in first.SequenceVariant

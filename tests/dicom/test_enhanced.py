"""Enhanced MR output: dciodvfy, functional groups, dimensions, geometry, values."""

from __future__ import annotations

import re
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.dicom.conftest import CORPUS_STUDIES, image_recos
from xnatpic.dicom import write_dicom_series
from xnatpic.dicom.private import CREATOR, private_tag

ACIDOCEST = "pv6-acidocest/study"
DICOMIFIER = "pv6-dicomifier/study"


def _frame_attr(ds: pydicom.Dataset, frame: int, sequence: str, keyword: str):
    """An attribute of a functional group of one frame (per-frame or shared)."""
    per_frame = ds.PerFrameFunctionalGroupsSequence[frame]
    group = per_frame if sequence in per_frame else ds.SharedFunctionalGroupsSequence[0]
    return group[sequence][0].get(keyword)


def _open(written) -> pydicom.Dataset:
    assert len(written.files) == 1
    return pydicom.dcmread(written.files[0])


class TestDciodvfy:
    @pytest.mark.parametrize("study", CORPUS_STUDIES)
    def test_every_series_validates(self, corpus, dciodvfy, tmp_path, study):
        count = 0
        for series in image_recos(corpus, study):
            out = tmp_path / series.reco.label
            out.mkdir()
            for written in write_dicom_series(series, out, enhanced=True):
                count += 1
                errors, warnings = dciodvfy(written.files[0])
                assert errors == [], f"{series.reco.label}: {errors}"
                # RescaleType HZ (a field map in Hz): Rescale Type has Defined Terms,
                # which an application may extend (PS3.3 C.11.1.1.2, PS3.5 6.3).
                others = [w for w in warnings if not re.search(
                    r"Unrecognized tag|Unrecognized defined term <HZ> .* <Rescale Type>", w)]
                assert others == [], f"{series.reco.label}: {others}"
        assert count > 0


class TestStructure:
    def test_one_file_per_series_with_all_frames(self, convert):
        series, written = convert(DICOMIFIER, "9", enhanced=True)
        ds = _open(written[0])
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4.1"
        assert int(ds.NumberOfFrames) == written[0].frame_count == len(series.images) == 63
        assert len(ds.PerFrameFunctionalGroupsSequence) == 63
        assert ds.pixel_array.shape == (63, 160, 192)
        shared = ds.SharedFunctionalGroupsSequence[0]
        assert "PixelMeasuresSequence" in shared and "PlaneOrientationSequence" in shared
        assert all("FrameContentSequence" in f for f in ds.PerFrameFunctionalGroupsSequence)
        assert "MREchoSequence" in ds.PerFrameFunctionalGroupsSequence[0]

    def test_localizer_planes_are_separate_series(self, convert):
        _, written = convert(DICOMIFIER, "1", enhanced=True)
        assert [w.frame_count for w in written] == [3, 3, 3]
        assert len({w.series_instance_uid for w in written}) == 3

    def test_classic_and_enhanced_series_differ(self, convert):
        classic = convert(ACIDOCEST, "3")[1][0]
        enhanced = convert(ACIDOCEST, "3", enhanced=True)[1][0]
        assert classic.study_instance_uid == enhanced.study_instance_uid
        assert classic.series_instance_uid != enhanced.series_instance_uid


class TestDimensions:
    def _labels(self, ds):
        return [item.DimensionDescriptionLabel for item in ds.DimensionIndexSequence]

    def _indices(self, ds):
        values = [f.FrameContentSequence[0].DimensionIndexValues
                  for f in ds.PerFrameFunctionalGroupsSequence]
        return [tuple(v) if isinstance(v, list | pydicom.multival.MultiValue) else (v,)
                for v in values]

    def test_slice_and_echo(self, convert):
        series, written = convert(DICOMIFIER, "9", enhanced=True)
        ds = _open(written[0])
        assert self._labels(ds) == ["Slice", "Echo"]
        indices = self._indices(ds)
        assert len(set(indices)) == 63
        by_index = {im.index: im for im in series.images}
        for k, (slice_index, echo_index) in enumerate(indices):
            image = by_index[written[0].image_indices[k]]
            assert echo_index == image.axes["echo"] + 1
            assert slice_index == _frame_attr(ds, k, "FrameContentSequence",
                                              "InStackPositionNumber")
        pointers = [item.DimensionIndexPointer for item in ds.DimensionIndexSequence]
        assert pointers == [0x00209057, 0x00189082]
        organisation = ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
        assert all(item.DimensionOrganizationUID == organisation
                   for item in ds.DimensionIndexSequence)

    def test_cest_repetition_and_private_saturation_offset(self, convert):
        series, written = convert(ACIDOCEST, "4", enhanced=True)
        ds = _open(written[0])
        assert self._labels(ds) == ["Repetition", "Saturation offset"]
        offset_dim = ds.DimensionIndexSequence[1]
        assert offset_dim.DimensionIndexPointer == private_tag(0x20)
        assert offset_dim.FunctionalGroupPointer == private_tag(0x40)
        assert offset_dim.DimensionIndexPrivateCreator == CREATOR
        offsets = np.asarray(series.reco.scan.method["PVM_ppgFreqList1"], float)
        ranks = {v: k for k, v in enumerate(sorted(set(offsets)), 1)}
        for k, (repetition, offset_index) in enumerate(self._indices(ds)):
            frame = ds.PerFrameFunctionalGroupsSequence[k]
            hz = float(frame[private_tag(0x40)].value[0][private_tag(0x20)].value)
            assert hz == pytest.approx(offsets[k % offsets.size])
            assert offset_index == ranks[offsets[k % offsets.size]]
            assert repetition == k + 1
            assert frame[0x00290010].value == CREATOR

    def test_undescribed_axis_falls_back_to_2dseq_frame(self, convert):
        _, written = convert(DICOMIFIER, "30", enhanced=True)  # FAIR: ir_mode x movie
        ds = _open(written[0])
        assert self._labels(ds)[-1] == "2dseq frame"
        assert len(set(self._indices(ds))) == 6

    def test_single_frame_still_has_a_dimension(self, convert):
        _, written = convert(ACIDOCEST, "3", enhanced=True)
        ds = _open(written[0])
        assert self._labels(ds) == ["Slice"]
        assert self._indices(ds) == [(1,)]


class TestPerFrameAttributes:
    def test_echo_times(self, convert):
        series, written = convert(DICOMIFIER, "9", enhanced=True)
        ds = _open(written[0])
        echo_times = np.asarray(series.visu["VisuAcqEchoTime"], float)
        by_index = {im.index: im for im in series.images}
        for k, index in enumerate(written[0].image_indices):
            te = _frame_attr(ds, k, "MREchoSequence", "EffectiveEchoTime")
            assert te == pytest.approx(echo_times[by_index[index].axes["echo"]])

    def test_repetition_and_inversion_times(self, convert):
        _, written = convert(DICOMIFIER, "11", enhanced=True)
        ds = _open(written[0])
        trs = {float(_frame_attr(ds, k, "MRTimingAndRelatedParametersSequence",
                                 "RepetitionTime")) for k in range(int(ds.NumberOfFrames))}
        assert trs == {3000.0, 1500.0, 500.0}
        _, written = convert(DICOMIFIER, "13", enhanced=True)
        ds = _open(written[0])
        tis = {round(float(_frame_attr(ds, k, "MRModifierSequence", "InversionTimes")), 3)
               for k in range(int(ds.NumberOfFrames))}
        # the effective TI of each slice: protocol TI + acquisition position x 63.166 ms
        # (9 slices read after one inversion; tests/dicom/test_ir_timing.py)
        period = (5583.29594133429 - 14.8 - 5000.0) / 9
        assert tis == {round(ti + p * period, 3) for ti in (14.8, 300.0, 1000.0)
                       for p in range(9)}

    def test_diffusion_macro(self, convert):
        series, written = convert(DICOMIFIER, "21", enhanced=True)
        ds = _open(written[0])
        by_index = {im.index: im for im in series.images}
        for k, index in enumerate(written[0].image_indices):
            image = by_index[index]
            item = ds.PerFrameFunctionalGroupsSequence[k].MRDiffusionSequence[0]
            assert float(item.DiffusionBValue) == pytest.approx(image.diffusion.b_value)
            direction = series.diffusion_direction_patient(image)
            if direction is None:
                assert item.DiffusionDirectionality == "NONE"
            else:
                assert item.DiffusionDirectionality == "DIRECTIONAL"
                np.testing.assert_allclose(
                    item.DiffusionGradientDirectionSequence[0].DiffusionGradientOrientation,
                    direction, atol=1e-9)

    def test_non_diffusion_frames_say_none(self, convert):
        _, written = convert(DICOMIFIER, "9", enhanced=True)
        ds = _open(written[0])
        item = ds.SharedFunctionalGroupsSequence[0].MRDiffusionSequence[0]
        assert (item.DiffusionDirectionality, float(item.DiffusionBValue)) == ("NONE", 0.0)


class TestGeometryAndValues:
    @pytest.mark.parametrize("scan", ["1", "3", "4"])
    def test_matches_paravision_export(self, corpus, convert, scan):
        export = corpus / ACIDOCEST / scan / "pdata" / "1" / "dicom"
        reference = {int(d.InstanceNumber): d
                     for d in map(pydicom.dcmread, sorted(export.glob("*.dcm")))}
        _, written = convert(ACIDOCEST, scan, enhanced=True)
        compared = 0
        for w in written:
            ds = _open(w)
            for k, index in enumerate(w.image_indices):
                ref = reference[index + 1]
                for sequence, keyword in (("PlanePositionSequence", "ImagePositionPatient"),
                                          ("PlaneOrientationSequence",
                                           "ImageOrientationPatient"),
                                          ("PixelMeasuresSequence", "PixelSpacing"),
                                          ("PixelMeasuresSequence", "SliceThickness")):
                    np.testing.assert_allclose(
                        np.atleast_1d(np.asarray(_frame_attr(ds, k, sequence, keyword), float)),
                        np.atleast_1d(np.asarray(ref[keyword].value, float)), atol=1e-3)
                compared += 1
        assert compared == len(reference)

    @pytest.mark.parametrize(("scan", "reco", "exact"), [("2", "3", False), ("9", "1", True)])
    def test_per_frame_rescale(self, convert, scan, reco, exact):
        series, written = convert(DICOMIFIER, scan, reco, enhanced=True)
        ds = _open(written[0])
        pixels = ds.pixel_array.astype(np.float64)
        by_index = {im.index: im for im in series.images}
        slopes = set()
        for k, index in enumerate(written[0].image_indices):
            slope = float(_frame_attr(ds, k, "PixelValueTransformationSequence",
                                      "RescaleSlope"))
            intercept = float(_frame_attr(ds, k, "PixelValueTransformationSequence",
                                          "RescaleIntercept"))
            slopes.add(slope)
            real = series.real(by_index[index])
            mine = pixels[k] * slope + intercept
            if exact:
                np.testing.assert_allclose(mine, real, rtol=1e-9)
            else:
                assert np.max(np.abs(mine - real)) <= 1.6e-5 * np.max(np.abs(real))
        if not exact:
            assert len(slopes) > 1  # re-quantised per frame

    def test_dcm2niix_reads_echoes_as_volumes(self, convert, dcm2niix, tmp_path):
        _, written = convert(DICOMIFIER, "9", enhanced=True)
        subprocess.run([dcm2niix, "-z", "n", "-f", "%s_%e", "-o", str(tmp_path),
                        str(written[0].files[0].parent)], check=True, capture_output=True)
        niftis = sorted(tmp_path.glob("*.nii"))
        assert len(niftis) == 7
        classic = [pydicom.dcmread(p, stop_before_pixels=True)
                   for p in convert(DICOMIFIER, "9")[1][0].files]
        first = min((d for d in classic if int(d.EchoNumbers) == 1),
                    key=lambda d: float(d.SliceLocation))
        for path in niftis:
            image = nib.load(path)
            assert image.shape == (192, 160, 9)
            np.testing.assert_allclose(np.abs(np.diag(image.affine)[:3]),
                                       [40 / 192, 35 / 160, 1.0], atol=1e-4)
            corner = image.affine @ [0, 159, 0, 1]  # dcm2niix flips rows
            np.testing.assert_allclose(corner[:3] * [-1, -1, 1],
                                       np.asarray(first.ImagePositionPatient, float),
                                       atol=1e-3)

"""Total flux and average radiance against the physics of known synthetic sources.

Truth: a Gaussian source of total flux Φ (p/s) and width σ keeps 1 − exp(−R²/2σ²) of
its flux inside a circle of radius R, and its radiance integrates to Φ/4π over the plane
(Living Image's flux = 4π ∫ L dA). Quantisation to integer counts adds at most 0.5 count
per pixel.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from tests.optical.conftest import FLUX, SIGMA, default_click
from xnatpic.optical import OpticalError, open_ivis
from xnatpic.optical.quant import quantify
from xnatpic.optical.rois import AUTO_FRACTION, AUTO_MARGIN_CM
from xnatpic.optical.synthetic import GaussianSource, SyntheticRoi, write_click


def _inside(radius_cm: float, sigma: float = SIGMA) -> float:
    return 1.0 - math.exp(-radius_cm ** 2 / (2 * sigma ** 2))


def _quantisation_bound(click, n_pixels: int) -> float:
    pixel_area = (click.fov_cm / click.signal_pixels) ** 2
    return 0.5 * click.per_count * pixel_area * 4 * math.pi * n_pixels


class TestLivingImageRois:
    @pytest.mark.parametrize("binning", [2, 4, 8])
    def test_total_flux_of_known_source_at_any_binning(self, tmp_path: Path, binning: int):
        click = default_click(binning=binning)
        acq = open_ivis(write_click(tmp_path / "c", click)).first
        (m,), _, _ = quantify(acq)
        assert m.roi == "ROI 1" and m.roi_source == "living_image"
        truth = FLUX * _inside(1.5)  # ellipse 3 cm wide: radius 1.5 cm
        # the pixelated disc edge sits 3σ out, where the radiance is 1 % of the peak
        assert m.total == pytest.approx(truth, rel=5e-3)
        assert abs(m.total - truth) < _quantisation_bound(click, m.n_pixels) + 5e-3 * truth
        assert m.total_unit == "p/s" and m.mean_unit == "p/s/cm²/sr"
        assert m.area_cm2 == pytest.approx(math.pi * 1.5 ** 2, rel=0.03)

    def test_average_radiance_over_the_whole_field(self, tmp_path: Path):
        click = default_click(rois=[SyntheticRoi("all", 6.25, 6.25, 12.5, 12.5, "Square")])
        (m,), _, _ = quantify(open_ivis(write_click(tmp_path / "c", click)).first)
        assert m.n_pixels == click.signal_pixels ** 2
        # all the flux is in the field: mean radiance = Φ / (4π · field area)
        assert m.mean == pytest.approx(FLUX / (4 * math.pi * click.fov_cm ** 2), rel=2e-3)

    def test_poisson_noise_within_five_standard_deviations(self, tmp_path: Path):
        click = default_click(noise_seed=7)
        acq = open_ivis(write_click(tmp_path / "c", click)).first
        (m,), (roi,), _ = quantify(acq)
        expected_counts = click.radiance() / click.per_count + click.dark_signal()
        pixel_area = (click.fov_cm / click.signal_pixels) ** 2
        sd = click.per_count * pixel_area * 4 * math.pi * math.sqrt(
            expected_counts[roi.mask].sum())
        assert abs(m.total - FLUX * _inside(1.5)) < 5 * sd

    def test_uncalibrated_counts(self, tmp_path: Path):
        click = default_click(calibration="Counts")
        (m,), _, _ = quantify(open_ivis(write_click(tmp_path / "c", click)).first)
        pixel_area = (click.fov_cm / click.signal_pixels) ** 2
        truth = FLUX * _inside(1.5) / (4 * math.pi * pixel_area * click.per_count)
        assert m.total_name == "total_counts" and m.total_unit == "counts"
        assert m.total == pytest.approx(truth, rel=5e-3)

    def test_unsupported_shape(self, tmp_path: Path):
        click = default_click(rois=[SyntheticRoi("free", 4, 6, 2, 2, "Freehand")])
        acq = open_ivis(write_click(tmp_path / "c", click)).first
        with pytest.raises(OpticalError, match="ROI 1: shape 'Freehand' not supported"):
            quantify(acq)


class TestAutoRois:
    def test_single_source_flux_matches_the_rule(self, tmp_path: Path):
        acq = open_ivis(write_click(tmp_path / "c", default_click(rois=[]))).first
        (m,), _, _ = quantify(acq)
        radius = SIGMA * math.sqrt(2 * math.log(1 / AUTO_FRACTION)) + AUTO_MARGIN_CM
        assert m.roi_source == "auto"
        assert m.total == pytest.approx(FLUX * _inside(radius), rel=1e-2)

    def test_sources_are_separate_rois_brightest_first(self, tmp_path: Path):
        click = default_click(rois=[], sources=[GaussianSource(9, 6, 0.4, 2e7),
                                                GaussianSource(4, 6, SIGMA, FLUX)])
        measures, rois, _ = quantify(open_ivis(write_click(tmp_path / "c", click)).first)
        assert [m.roi for m in measures] == ["auto 1", "auto 2"]
        assert measures[0].total == pytest.approx(FLUX, rel=2e-2)
        assert measures[1].total == pytest.approx(2e7, rel=2e-2)
        assert not np.any(rois[0].mask & rois[1].mask)

    def test_dark_image_gives_no_roi(self, tmp_path: Path):
        click = dataclasses.replace(default_click(rois=[]), sources=[])
        measures, _, _ = quantify(open_ivis(write_click(tmp_path / "c", click)).first)
        assert measures == []


def test_overlay_png(tmp_path: Path):
    from PIL import Image

    from xnatpic.optical.overlay import render_overlay

    acq = open_ivis(write_click(tmp_path / "c", default_click())).first
    measures, rois, signal = quantify(acq)
    path = render_overlay(acq, signal, rois, measures, tmp_path / "overlay.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 400
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # colour (the signal) is present: some pixels far from grey
    assert (np.ptp(pixels, axis=2) > 100).sum() > 500


class TestRoiCollection:
    def test_seg_drawn_on_the_photograph_measures_the_binned_signal(self, tmp_path: Path):
        from tests.optical.conftest import write_disc_seg
        from xnatpic.optical.dicom import (
            frame_of_reference_uid,
            ivis_study_uid,
            write_ivis_dicom,
        )
        from xnatpic.optical.rois import read_collection

        study = open_ivis(write_click(tmp_path / "c", default_click(rois=[])))
        photo = write_ivis_dicom(study, tmp_path / "dicom")[0].files[0]
        write_disc_seg(photo, tmp_path / "ROI" / "seg.dcm", x_cm=4.0, y_cm=6.0, radius_cm=1.5)
        acq = study.first
        frame = frame_of_reference_uid(ivis_study_uid(study), acq.click_number)
        (m,), _, _ = quantify(acq, rois="collection", collection=read_collection(
            tmp_path / "ROI"), frame_of_reference=frame)
        assert (m.roi, m.roi_source) == ("tumour", "collection")
        assert m.total == pytest.approx(FLUX * _inside(1.5), rel=5e-3)
        # another click's frame of reference: the mask is not this click's
        other, _, _ = quantify(acq, rois="collection", collection=read_collection(
            tmp_path / "ROI"), frame_of_reference="1.2.3")
        assert other == []

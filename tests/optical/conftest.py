"""Fixtures of the optical (IVIS) tests: synthetic Living Image folders with known truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnatpic.optical.synthetic import GaussianSource, SyntheticClick, SyntheticRoi, write_click

#: The truth of the default click: one source of 1e8 p/s at (4 cm, 6 cm), σ 0.5 cm.
FLUX = 1.0e8
SIGMA = 0.5


def default_click(**changes) -> SyntheticClick:
    """A click with one known source and a 3 cm-wide Living Image ellipse ROI on it."""
    values = {"sources": [GaussianSource(4.0, 6.0, SIGMA, FLUX)],
              "rois": [SyntheticRoi("ROI 1", 4.0, 6.0, 3.0, 3.0)]}
    values.update(changes)
    return SyntheticClick(**values)


@pytest.fixture
def click_folder(tmp_path: Path) -> Path:
    """A written default click folder."""
    return write_click(tmp_path / "click", default_click())


def write_disc_seg(photograph: Path, out: Path, *, x_cm: float, y_cm: float,
                   radius_cm: float, label: str = "tumour") -> Path:
    """A DICOM SEG (highdicom) of a disc drawn on a converted photograph, as a viewer
    would write it from the photograph's geometry."""
    import highdicom as hd
    import numpy as np
    import pydicom
    from pydicom.sr.codedict import codes

    photo = pydicom.dcmread(photograph)
    photo.SliceThickness = 1  # highdicom asks for it; planar optical images have none
    rows, cols = photo.Rows, photo.Columns
    y, x = (np.mgrid[0:rows, 0:cols] + 0.5) * (float(photo.PixelSpacing[0]) / 10.0)
    disc = (x - x_cm) ** 2 + (y - y_cm) ** 2 <= radius_cm ** 2
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=label,
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=[photo], pixel_array=disc[None].astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=100,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out

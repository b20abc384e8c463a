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

"""compute_cest reads each voxel's Z-spectrum spline once for all its maps (issue 13).

Every output of :func:`xnatpic.analysis.maps.compute_cest` (map values, statuses,
descriptions, mask, failed voxels, parameters) must be exactly what it is when its
MTRasym maps, ratiometric index and B0-corrected spectrum come from the public per-offset
functions (:func:`mtr_asym` at each offset, :func:`ratiometric_index`, :func:`correct_b0`)
called one by one on the same Z-spectrum and B0, as before the shared path. Checked on
the phantom (CEST with and without its WASSR: Lorentzian and Z-spectrum B0) and on the
real acidoCEST mouse (repeated offsets: per-repetition precision; its first repetition
alone: noise-propagated precision). Equality is exact (``np.array_equal``, NaN equal).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.analysis.test_real_cest import SCAN, Truth
from xnatpic.analysis import maps as maps_module
from xnatpic.analysis.inputs import read_series, with_saturation_offsets
from xnatpic.analysis.maps import compute_cest
from xnatpic.models import correct_b0, mtr_asym, ratiometric_index


def _per_offset(z, offsets, b0, *, mtr_ppm=(), ratio_ppm=None, corrected=False):
    """The readouts of :func:`xnatpic.models.cest.cest_readouts` from the public
    functions, one interpolation per map."""
    values = [mtr_asym(z, offsets, float(p), b0_ppm=b0) for p in mtr_ppm]
    if ratio_ppm is not None:
        values.append(ratiometric_index(z, offsets, *ratio_ppm, b0_ppm=b0))
    return values, (correct_b0(z, offsets, b0) if corrected else None)


def _same(shared, reference) -> None:
    assert [m.name for m in shared.maps] == [m.name for m in reference.maps]
    for ours, theirs in zip(shared.maps, reference.maps, strict=True):
        assert ours.values.dtype == theirs.values.dtype, ours.name
        assert np.array_equal(ours.values, theirs.values, equal_nan=True), ours.name
        assert (ours.status is None) == (theirs.status is None), ours.name
        if ours.status is not None:
            assert np.array_equal(ours.status, theirs.status), ours.name
        assert (ours.unit, ours.description) == (theirs.unit, theirs.description), ours.name
    assert np.array_equal(shared.mask, reference.mask)
    assert np.array_equal(shared.failed, reference.failed)
    assert shared.parameters == reference.parameters


def _check(monkeypatch, run, expect_names: set[str]) -> None:
    shared = run()
    names = {m.name for m in shared.maps}
    assert expect_names <= names, names - expect_names
    fitted = shared.maps[0].status == 1  # B0's status: the voxels with maps
    assert fitted.sum() > 100
    with monkeypatch.context() as patch:
        patch.setattr(maps_module, "cest_readouts", _per_offset)
        reference = run()
    _same(shared, reference)
    # The maps hold values (not NaN everywhere, which would compare equal trivially).
    for name in expect_names:
        image = next(m for m in shared.maps if m.name == name)
        assert np.isfinite(image.values[fitted]).mean() > 0.5, name


MAPS = {"MTRasym_2ppm", "MTRasym_3.5ppm", "ratio_4.2_5.5ppm", "Z_B0corrected"}
NOISE = {"MTRasym_2ppm_precision", "MTRasym_3.5ppm_precision"}


@pytest.fixture(scope="module")
def phantom(phantom_dicom):
    return read_series(phantom_dicom["7"]), read_series(phantom_dicom["8"])


def test_phantom_with_wassr(phantom, monkeypatch):
    cest, wassr = phantom
    _check(monkeypatch, lambda: compute_cest(cest, wassr=wassr), MAPS | NOISE)


@pytest.mark.parametrize("b0_method", ["auto", "spline"])
def test_phantom_b0_from_the_zspectrum(phantom, monkeypatch, b0_method):
    cest, _ = phantom
    _check(monkeypatch, lambda: compute_cest(cest, b0_method=b0_method), MAPS | NOISE)


@pytest.fixture(scope="module")
def acidocest(corpus_dir):
    truth = Truth(corpus_dir / SCAN)
    return with_saturation_offsets(
        read_series(corpus_dir / SCAN / "pdata" / "1" / "dicom"), truth.list_ppm), truth


def test_real_acidocest_repetitions(acidocest, monkeypatch):
    series, _ = acidocest
    precision = {f"{name}_precision" for name in MAPS - {"Z_B0corrected"}}
    _check(monkeypatch, lambda: compute_cest(series), MAPS | precision)


def test_real_acidocest_single_acquisition(acidocest, monkeypatch):
    series, truth = acidocest
    n = truth.list_ppm.size
    first = replace(series, data=series.data[..., :n], sat_ppm=series.sat_ppm[:n],
                    is_m0=series.is_m0[:n])
    _check(monkeypatch, lambda: compute_cest(first), MAPS | NOISE)

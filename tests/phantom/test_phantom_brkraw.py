"""An independent reader, brkraw 0.5.7, loads the phantom study."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracles import require_module
from xnatpic.phantom.protocols import PROTOCOLS

brkraw = require_module("brkraw", "brkraw (test extra) is the independent reader")

EXPECTED = {  # scan: (shape as brkraw gives it (x, y, slice, group), last axis name)
    1: ((96, 64, 3), "slice"),
    2: ((96, 64, 5, 12), "echo"),
    3: ((96, 64, 5, 7), "movie"),
    4: ((96, 64, 5, 9), "movie"),
    5: ((96, 64, 5, 10), "echo"),
    6: ((96, 64, 5, 14), "diffusion"),
    7: ((96, 64, 5, 50), "cycle"),
    8: ((96, 64, 5, 22), "cycle"),
}


@pytest.fixture(scope="module")
def loaded(phantom_dir):
    return brkraw.load(str(phantom_dir))


def test_lists_every_scan(loaded):
    assert loaded.sw_version == "6.0.1"
    assert sorted(loaded.avail) == [p.scan for p in PROTOCOLS]
    for proto in PROTOCOLS:
        assert proto.method in repr(loaded.avail[proto.scan])


@pytest.mark.parametrize("scan", sorted(EXPECTED))
def test_data_arrays(loaded, read_scan, scan):
    shape, last_axis = EXPECTED[scan]
    brk = loaded.avail[scan]
    data = np.asarray(brk.get_dataobj(1))
    info = brk.image_info[1]
    assert data.shape == shape
    assert info["shape_desc"][-1] == last_axis
    ours = read_scan(scan)
    assert data.dtype == ours.stored.dtype
    assert np.allclose(info["slope"], ours.visu["VisuCoreDataSlope"])
    assert np.allclose(info["offset"], ours.visu["VisuCoreDataOffs"])
    # brkraw's (x, y, slice, n) against our frames of (slice k, element e), (rows, columns)
    mine = _frames_by_slice_and_element(ours)
    theirs = np.transpose(data.reshape(96, 64, shape[2], -1), (2, 3, 1, 0))
    assert theirs.shape == mine.shape
    assert np.array_equal(theirs, mine)


def _frames_by_slice_and_element(ours):
    order = ours.visu["VisuFGOrderDesc"]
    sizes = [int(g[0]) for g in order]
    stored = ours.stored.reshape([*sizes[::-1], 64, 96])
    if len(sizes) == 1:
        return stored[:, None]
    return np.swapaxes(stored, 0, 1) if order[0][1] == "FG_SLICE" else stored


@pytest.mark.parametrize("scan", [2, 6])
def test_in_plane_affine(loaded, read_scan, scan):
    visu = read_scan(scan).visu
    affine = np.asarray(loaded.avail[scan].get_affine(1))
    rot = np.asarray(visu["VisuCoreOrientation"][0], dtype=float).reshape(3, 3)
    spacing = visu["VisuCoreExtent"] / visu["VisuCoreSize"]
    assert np.allclose(affine[:3, 0], rot[0] * spacing[0], atol=1e-5)
    assert np.allclose(affine[:3, 1], rot[1] * spacing[1], atol=1e-5)
    assert np.allclose(affine[:3, 3], visu["VisuCorePosition"][0], atol=1e-5)

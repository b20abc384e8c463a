"""Map NIfTI files (``outputs.write_nifti``) are written by the converter's own NIfTI
writer; nibabel, the oracle, reads them as the image it would have written itself."""

from __future__ import annotations

import dataclasses
import gzip

import nibabel as nib
import numpy as np
import pytest

from xnatpic.analysis import read_series
from xnatpic.analysis.outputs import write_nifti
from xnatpic.errors import ConversionError

#: Header fields that carry content (dim_info and descrip are ours: slice_dim 2, version).
_FIELDS = ("sizeof_hdr", "dim", "datatype", "bitpix", "pixdim", "vox_offset", "scl_slope",
           "scl_inter", "xyzt_units", "qform_code", "sform_code", "quatern_b", "quatern_c",
           "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z",
           "intent_code", "magic")


def _oblique(affine: np.ndarray) -> np.ndarray:
    """``affine`` turned 20° about x and 35° about z (still orthogonal), moved."""
    a, b = np.deg2rad(20.0), np.deg2rad(35.0)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    out = affine.copy()
    out[:3, :3] = rz @ rx @ affine[:3, :3]
    out[:3, 3] += (3.5, -12.25, 40.0)
    return out


def _nibabel_file(values: np.ndarray, affine: np.ndarray, dtype: type, path):
    """What the map steps wrote with nibabel before: the oracle."""
    image = nib.Nifti1Image(np.asarray(values, dtype=dtype), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))
    return nib.load(path)


@pytest.fixture(scope="module")
def series(phantom_dicom):
    return read_series(phantom_dicom["2"])


@pytest.mark.parametrize("oblique", [False, True], ids=["phantom", "oblique"])
@pytest.mark.parametrize(("components", "dtype"), [(0, np.float32), (3, np.float32),
                                                   (0, np.uint8)],
                         ids=["map", "vector-map", "status"])
def test_map_reads_as_nibabel_writes_it(series, tmp_path, oblique, components, dtype):
    if oblique:
        series = dataclasses.replace(series, affine=_oblique(series.affine))
    shape = series.data.shape[:3] + ((components,) if components else ())
    rng = np.random.default_rng(7)
    values = rng.normal(100.0, 30.0, shape) if dtype is np.float32 else \
        rng.integers(0, 9, shape)
    if dtype is np.float32:
        values[rng.random(shape) < 0.2] = np.nan  # voxels outside the mask
    ours = nib.load(write_nifti(values, series, tmp_path / "ours" / "map.nii.gz",
                                dtype=dtype))
    oracle = _nibabel_file(values, series.affine, dtype, tmp_path / "oracle.nii.gz")
    for name in _FIELDS:
        mine, theirs = ours.header[name], oracle.header[name]
        assert np.array_equal(mine, theirs, equal_nan=mine.dtype.kind == "f"), name
    assert ours.header.get_xyzt_units() == ("mm", "sec")
    assert np.allclose(ours.affine, series.affine, atol=1e-5)
    for coded in (ours.header.get_qform(coded=True), ours.header.get_sform(coded=True)):
        assert coded[1] == 1 and np.allclose(coded[0], series.affine, atol=1e-4)
    data = np.asanyarray(ours.dataobj)
    assert data.dtype == np.dtype(dtype) and data.shape == shape
    assert np.array_equal(data, np.asarray(values, dtype=dtype), equal_nan=True)
    raw = (tmp_path / "ours" / "map.nii.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip
    assert gzip.decompress(raw)[:4] == (348).to_bytes(4, "little")


def test_sheared_affine_keeps_the_sform_only(series, tmp_path):
    """Voxel axes that are not orthogonal cannot be a qform: code 0, the sform exact."""
    sheared = series.affine.copy()
    sheared[0, 1] += 0.3 * abs(sheared[1, 1])
    image = nib.load(write_nifti(np.ones(series.data.shape[:3]),
                                 dataclasses.replace(series, affine=sheared),
                                 tmp_path / "s.nii.gz"))
    assert int(image.header["qform_code"]) == 0 and int(image.header["sform_code"]) == 1
    assert np.allclose(image.header.get_sform(), sheared, atol=1e-5)


def test_a_type_nifti_cannot_hold_is_refused(series, tmp_path):
    with pytest.raises(ConversionError, match="no NIfTI-1 data type"):
        write_nifti(np.ones(series.data.shape[:3]), series, tmp_path / "d.nii.gz",
                    dtype=np.complex64)

"""NIfTI export of synthetic recos whose geometry and values are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import xnatpic
from tests.nifti.corpus_helpers import nibabel_header
from tests.nifti.synthetic import SyntheticReco, oblique_orientation, write_synthetic_reco
from xnatpic.errors import ConversionError
from xnatpic.nifti import write_nifti_series
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import load_series

RAS = np.diag([-1.0, -1.0, 1.0])


def _convert(reco: SyntheticReco, out: Path) -> list[Path]:
    out.mkdir()
    series = load_series(open_dataset(reco.path).scans[0].recos[0])
    return write_nifti_series(series, out)


def _expected_affine(reco: SyntheticReco, order: list[int]) -> np.ndarray:
    """Hand-built RAS affine: slices in ``order`` (indices into the 2dseq slices)."""
    p = reco.positions[order]
    step = (p[-1] - p[0]) / (len(p) - 1)
    lps = np.eye(4)
    lps[:3, 0] = reco.orientation[0] * reco.column_spacing
    lps[:3, 1] = reco.orientation[1] * reco.row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = p[0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_oblique_non_square_descending_stack(tmp_path):
    reco = write_synthetic_reco(tmp_path / "study" / "5")
    written = _convert(reco, tmp_path / "out")
    assert [p.name for p in written] == ["5-1.nii.gz", "5-1.json"]
    image = nib.load(written[0])
    header = image.header
    nslices = len(reco.positions)
    assert image.shape == (7, 5, nslices, 2)  # x = columns, y = rows, z, t = echoes
    assert image.get_data_dtype() == np.float32
    expected = _expected_affine(reco, list(range(nslices)))
    np.testing.assert_allclose(image.get_sform(), expected, atol=1e-6)
    np.testing.assert_allclose(image.get_qform(), expected, atol=1e-5)
    assert int(header["sform_code"]) == 1 and int(header["qform_code"]) == 1
    # descending heights: k runs against the normal, so the determinant is negative
    assert np.linalg.det(image.affine[:3, :3]) < 0
    np.testing.assert_allclose(header.get_zooms()[:3], [0.3, 0.45, 1.7], atol=1e-6)
    assert header.get_xyzt_units() == ("mm", "sec")
    assert header.get_zooms()[3] == pytest.approx(1.2)  # TR in s
    data = np.asarray(image.dataobj)
    for frame in range(reco.stored.shape[0]):
        echo, z = frame % 2, frame // 2
        real = reco.stored[frame].astype(np.float64) * reco.slopes[frame] + reco.offsets[frame]
        np.testing.assert_array_equal(data[:, :, z, echo], real.T.astype(np.float32))
        # world position of voxel (0, 0, z) is the slice's first-voxel centre (RAS)
        world = image.affine @ np.array([0, 0, z, 1.0])
        np.testing.assert_allclose(world[:3], RAS @ reco.positions[z], atol=1e-6)
        # voxel (i, j) is i columns along the row direction and j rows down
        far = image.affine @ np.array([6, 4, z, 1.0])
        lps = reco.positions[z] + 6 * 0.3 * reco.orientation[0] + 4 * 0.45 * reco.orientation[1]
        np.testing.assert_allclose(far[:3], RAS @ lps, atol=1e-6)
    meta = json.loads(written[1].read_text())
    assert meta["EchoTimes"] == [0.008, 0.016] and "EchoTime" not in meta
    assert meta["RepetitionTime"] == 1.2 and meta["FlipAngle"] == 30.0
    assert meta["VolumeAxes"] == {"echo": [0, 1]}
    assert meta["PixelSpacing"] == [0.45, 0.3]


def test_ascending_stack_keeps_positive_slice_axis(tmp_path):
    reco = write_synthetic_reco(tmp_path / "study" / "6", heights=(-2.0, 0.0, 2.0))
    image = nib.load(_convert(reco, tmp_path / "out")[0])
    np.testing.assert_allclose(image.affine, _expected_affine(reco, [0, 1, 2]), atol=1e-6)
    assert np.linalg.det(image.affine[:3, :3]) > 0


def test_interleaved_storage_is_sorted_along_the_normal(tmp_path):
    heights = (0.0, 3.0, 1.5, 4.5)
    reco = write_synthetic_reco(tmp_path / "study" / "7", heights=heights)
    image = nib.load(_convert(reco, tmp_path / "out")[0])
    order = list(np.argsort(heights))
    np.testing.assert_allclose(image.affine, _expected_affine(reco, order), atol=1e-6)
    data = np.asarray(image.dataobj)
    for k, z in enumerate(order):
        frame = 2 * z  # echo 0 of stored slice z
        real = reco.stored[frame].astype(np.float64) * reco.slopes[frame] + reco.offsets[frame]
        np.testing.assert_array_equal(data[:, :, k, 0], real.T.astype(np.float32))


def test_unequal_slice_spacing_is_refused(tmp_path):
    reco = write_synthetic_reco(tmp_path / "study" / "8", heights=(0.0, 1.0, 3.0))
    with pytest.raises(ConversionError, match="not equally spaced"):
        _convert(reco, tmp_path / "out")


@pytest.mark.parametrize(("heights", "flip_x"), [((0.0, 2.0), True), ((2.0, 0.0), False)])
def test_diffusion_bval_bvec_fsl_convention(tmp_path, heights, flip_x):
    reco = write_synthetic_reco(tmp_path / "study" / "9", heights=heights, inner="diffusion")
    written = _convert(reco, tmp_path / "out")
    names = [p.name for p in written]
    assert names == ["9-1.nii.gz", "9-1.json", "9-1.bval", "9-1.bvec"]
    bval = np.loadtxt(written[2])
    bvec = np.loadtxt(written[3])
    np.testing.assert_allclose(bval, [0, 1000, 1000])
    assert bvec.shape == (3, 3)
    # read gradient = row direction = voxel axis i; phase = column direction = axis j.
    # FSL: x negated when det(affine) > 0 (ascending stack), kept when det < 0.
    sign = -1.0 if flip_x else 1.0
    np.testing.assert_allclose(bvec[:, 0], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(bvec[:, 1], [sign, 0, 0], atol=1e-6)
    np.testing.assert_allclose(bvec[:, 2], [0, 1, 0], atol=1e-6)
    meta = json.loads(written[1].read_text())
    np.testing.assert_allclose(meta["DiffusionGradients"], [[0, 0, 0], [1, 0, 0], [0, 1, 0]],
                               atol=1e-6)
    assert meta["BValues"] == [0.0, 1000.0, 1000.0]
    image = nib.load(written[0])
    assert (np.linalg.det(image.affine[:3, :3]) > 0) == flip_x


def test_missing_output_folder_is_an_error(tmp_path):
    reco = write_synthetic_reco(tmp_path / "study" / "5")
    series = load_series(open_dataset(reco.path).scans[0].recos[0])
    with pytest.raises(ConversionError, match="does not exist"):
        write_nifti_series(series, tmp_path / "nowhere")


@pytest.mark.parametrize("one_scaling", [False, True])
def test_streamed_file_is_what_nibabel_writes(tmp_path, one_scaling):
    """The streamed file's header is the one nibabel builds for the same image (affine,
    codes, units, TR, description, scaling), its voxels those of layout_data."""
    import gzip

    from xnatpic.nifti import layout_data, volume_layouts

    reco = write_synthetic_reco(tmp_path / "study" / "5", inner="diffusion",
                                one_scaling=one_scaling)
    series = load_series(open_dataset(reco.path).scans[0].recos[0])
    out = tmp_path / "out"
    out.mkdir()
    raw = gzip.decompress(write_nifti_series(series, out)[0].read_bytes())
    (layout,) = volume_layouts(series)
    data = layout_data(series, layout)
    expected = nibabel_header(
        data.shape, data.dtype, layout.affine_ras, qform=True, repetition_s=1.2,
        descrip=f"xnatpic {xnatpic.__version__} 5-1".encode(),
        scaling=(reco.slopes[0], reco.offsets[0]) if one_scaling else None)
    assert raw[:352] == expected
    assert raw[352:] == data.tobytes(order="F")


_SHEAR = np.array([[0.3, 0.05, 0.0, 1.0], [0.0, 0.45, 0.0, -2.0], [0.0, 0.0, 1.7, 3.0],
                   [0, 0, 0, 1.0]])


@pytest.mark.parametrize(("shape", "dtype", "affine", "qform", "tr", "scaling"), [
    ((7, 5, 4), "<i2", None, True, None, (0.1 + 1e-9, -1.5)),
    ((7, 5, 4, 3), "<f4", None, True, 2.5, None),
    ((9, 1, 1), "<u1", np.diag([-0.2, 0.3, 0.7, 1.0]), True, None, (0.12, 0.01)),
    ((4, 4, 2, 2), "<i4", np.diag([0.2, -0.3, -0.7, 1.0]), True, None, (1.4e-8, 0.0)),
    ((4, 4, 2), "<i2", _SHEAR, False, None, (1.0, 0.0)),
])
def test_header_bytes_equal_nibabel(shape, dtype, affine, qform, tr, scaling):
    from xnatpic.nifti.header import nifti1_header

    if affine is None:
        affine = np.eye(4)
        affine[:3, :3] = oblique_orientation().T * [0.3, 0.45, -1.7]
        affine[:3, 3] = [-3.0, 2.0, 5.0]
    kwargs = {"qform": qform, "repetition_s": tr, "descrip": b"xnatpic test " + b"x" * 90,
              "scaling": scaling}
    ours = nifti1_header(shape, np.dtype(dtype), affine, **kwargs)
    assert ours == nibabel_header(shape, np.dtype(dtype), affine, **kwargs)
    image = nib.Nifti1Image.from_bytes(ours + np.zeros(shape, dtype=dtype).tobytes())
    np.testing.assert_allclose(image.get_sform(), affine, atol=1e-6)
    if qform:
        np.testing.assert_allclose(image.get_qform(), affine, atol=1e-5)


def test_header_refuses_a_type_nifti_does_not_get_here():
    from xnatpic.nifti.header import nifti1_header

    with pytest.raises(ConversionError, match="no NIfTI-1 data type for float64"):
        nifti1_header((2, 2, 2), np.dtype("<f8"), np.eye(4), qform=True, repetition_s=None,
                      descrip=b"", scaling=None)


def test_one_scaling_keeps_stored_integers_with_header_slope(tmp_path):
    """One slope and offset for every image: int16 as stored, scl_slope/scl_inter carry them;
    the scaled values equal the float path's to float32 rounding (computed here from the
    2dseq written by the test, not by the reader)."""
    reco = write_synthetic_reco(tmp_path / "study" / "5", one_scaling=True)
    written = _convert(reco, tmp_path / "out")
    image = nib.load(written[0])
    assert image.get_data_dtype() == np.dtype("<i2")
    assert image.dataobj.slope == np.float32(reco.slopes[0])
    assert image.dataobj.inter == np.float32(reco.offsets[0])
    raw = np.asarray(image.dataobj.get_unscaled())
    scaled = image.get_fdata()
    for frame in range(reco.stored.shape[0]):
        echo, z = frame % 2, frame // 2
        np.testing.assert_array_equal(raw[:, :, z, echo], reco.stored[frame].T)
        real = reco.stored[frame].astype(np.float64) * reco.slopes[frame] + reco.offsets[frame]
        bound = (np.abs(reco.stored[frame] * reco.slopes[frame]) + abs(reco.offsets[frame]))
        assert np.all(np.abs(scaled[:, :, z, echo] - real.T) <= bound.T * 2.0**-23)
        float_path = real.astype(np.float32).astype(np.float64)
        assert np.all(np.abs(scaled[:, :, z, echo] - float_path.T) <= bound.T * 2.0**-22)
    meta = json.loads(written[1].read_text())
    assert meta["DataScaling"].startswith("stored values in their own type")


def test_differing_scalings_are_written_as_float32_real_values(tmp_path):
    """Per-frame slopes (brkraw and bruker2nifti apply one): float32 real values, no slope."""
    reco = write_synthetic_reco(tmp_path / "study" / "5")
    image = nib.load(_convert(reco, tmp_path / "out")[0])
    assert image.get_data_dtype() == np.dtype("<f4")
    assert np.isnan(image.dataobj.slope) or image.dataobj.slope == 1.0
    data = np.asarray(image.dataobj)
    for frame in (0, reco.stored.shape[0] - 1):  # first and last: different slopes
        real = reco.stored[frame].astype(np.float64) * reco.slopes[frame] + reco.offsets[frame]
        np.testing.assert_array_equal(data[:, :, frame // 2, frame % 2],
                                      real.T.astype(np.float32))


def test_compression_choices_hold_the_same_bytes(tmp_path):
    """none writes the .nii; fast (ISA-L) and best (zlib 9) are standard single-member
    gzip of exactly those bytes (the standard library inflates them), mtime 0, so a
    repeated conversion gives identical files."""
    import gzip

    reco = write_synthetic_reco(tmp_path / "study" / "5", one_scaling=True, rows=40, cols=48)
    series = load_series(open_dataset(reco.path).scans[0].recos[0])
    files = {}
    for compression in ("none", "fast", "best", "fast"):
        out = tmp_path / f"{compression}-{len(files)}"
        out.mkdir()
        files[out.name] = write_nifti_series(series, out, compression=compression)[0]
    plain = files["none-0"]
    assert plain.name == "5-1.nii"
    assert plain.stat().st_size == 352 + reco.stored.nbytes  # header + vox_offset, no gzip
    image = nib.load(plain)
    assert image.get_data_dtype() == np.dtype("<i2")
    for name in ("fast-1", "best-2"):
        packed = files[name].read_bytes()
        assert files[name].name == "5-1.nii.gz"
        assert packed[:2] == b"\x1f\x8b" and packed[4:8] == b"\0\0\0\0"  # gzip, mtime 0
        assert gzip.decompress(packed) == plain.read_bytes()
        assert len(packed) < plain.stat().st_size
    assert files["fast-1"].read_bytes() == files["fast-3"].read_bytes()


def test_unknown_compression_is_refused(tmp_path):
    reco = write_synthetic_reco(tmp_path / "study" / "5")
    series = load_series(open_dataset(reco.path).scans[0].recos[0])
    with pytest.raises(ValueError, match="unknown NIfTI compression 'zstd'"):
        write_nifti_series(series, tmp_path, compression="zstd")


def test_convert_study_passes_the_compression_choice(tmp_path):
    """``xnatpic convert --nifti-compression`` choices are the writer's, default first, and
    reach the writer (also in --jobs worker processes)."""
    from xnatpic.conversion import NIFTI_COMPRESSIONS, convert_study
    from xnatpic.nifti.writer import COMPRESSIONS, DEFAULT_COMPRESSION

    assert set(NIFTI_COMPRESSIONS) == set(COMPRESSIONS)
    assert NIFTI_COMPRESSIONS[0] == DEFAULT_COMPRESSION
    write_synthetic_reco(tmp_path / "study" / "5", one_scaling=True)
    write_synthetic_reco(tmp_path / "study" / "6", inner="diffusion")
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        report = convert_study(tmp_path / "study", out, fmt="nifti", jobs=jobs,
                               nifti_compression="none")
        assert [r.status for r in report.results] == ["converted", "converted"]
        assert len(list(out.rglob("*.nii"))) == 2 and not list(out.rglob("*.nii.gz"))
    with pytest.raises(ValueError, match="unknown NIfTI compression 'zip'"):
        convert_study(tmp_path / "study", tmp_path / "bad", fmt="nifti", nifti_compression="zip")

"""Independent readers for the NIfTI corpus tests (nothing here uses xnatpic's reader)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from xnatpic.paravision.jcamp import read_jcamp

__all__ = ["RAS", "expected_frame", "float32_bound", "frame_parts", "load_written",
           "nibabel_header", "raw_geometry", "scale_factors", "stored_dtype", "volume_index"]

#: LPS → RAS for vectors.
RAS = np.diag([-1.0, -1.0, 1.0])

_DTYPES = {"_16BIT_SGN_INT": "i2", "_32BIT_SGN_INT": "i4", "_8BIT_UNSGN_INT": "u1",
           "_32BIT_FLOAT": "f4"}


def raw_geometry(reco_dir: Path) -> dict[str, np.ndarray]:
    """VisuCoreSize/Extent/Position/Orientation straight from visu_pars."""
    visu = read_jcamp(reco_dir / "visu_pars")
    return {
        "size": np.atleast_1d(np.asarray(visu["VisuCoreSize"], dtype=int)).ravel(),
        "extent": np.atleast_1d(np.asarray(visu["VisuCoreExtent"], dtype=float)).ravel(),
        "position": np.asarray(visu["VisuCorePosition"], dtype=float).reshape(-1, 3),
        "orientation": np.asarray(visu["VisuCoreOrientation"], dtype=float).reshape(-1, 9),
    }


def stored_dtype(reco_dir: Path) -> np.dtype:
    """The 2dseq word type and byte order from visu_pars."""
    visu = read_jcamp(reco_dir / "visu_pars")
    order = "<" if str(visu.get("VisuCoreByteOrder", "littleEndian")) == "littleEndian" else ">"
    return np.dtype(order + _DTYPES[str(visu["VisuCoreWordType"])])


def scale_factors(reco_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """VisuCoreDataSlope and VisuCoreDataOffs, one per frame."""
    visu = read_jcamp(reco_dir / "visu_pars")
    frames = int(visu["VisuCoreFrameCount"])
    slopes = np.atleast_1d(np.asarray(visu.get("VisuCoreDataSlope", 1.0), dtype=float)).ravel()
    offsets = np.atleast_1d(np.asarray(visu.get("VisuCoreDataOffs", 0.0), dtype=float)).ravel()
    return np.resize(slopes, frames), np.resize(offsets, frames)


def frame_parts(reco_dir: Path, frame: int, slice_in_frame: int
                ) -> tuple[np.ndarray, float, float]:
    """Stored values (float64), slope and offset of one image, read with numpy only."""
    visu = read_jcamp(reco_dir / "visu_pars")
    size = np.atleast_1d(np.asarray(visu["VisuCoreSize"], dtype=int)).ravel()
    frames = int(visu["VisuCoreFrameCount"])
    stored = np.fromfile(reco_dir / "2dseq", dtype=stored_dtype(reco_dir))
    image = stored.reshape((frames, *size[::-1]))[frame]
    if image.ndim == 3:
        image = image[slice_in_frame]
    slopes, offsets = scale_factors(reco_dir)
    return image.astype(np.float64), float(slopes[frame]), float(offsets[frame])


def expected_frame(reco_dir: Path, frame: int, slice_in_frame: int) -> np.ndarray:
    """2dseq × VisuCoreDataSlope + VisuCoreDataOffs of one image, read with numpy only."""
    stored, slope, offset = frame_parts(reco_dir, frame, slice_in_frame)
    return stored * slope + offset


def float32_bound(reco_dir: Path, frame: int, slice_in_frame: int) -> np.ndarray:
    """Largest error of a float32 rendering of one image's real values, per pixel.

    Float32 output rounds the product (relative 2⁻²⁴); stored values with float32
    ``scl_slope``/``scl_inter`` round the slope and offset (2⁻²⁴ of each term). Twice
    2⁻²⁴ of |stored × slope| + |offset| bounds both.
    """
    stored, slope, offset = frame_parts(reco_dir, frame, slice_in_frame)
    return (np.abs(stored * slope) + abs(offset)) * 2.0**-23


def load_written(paths: list[Path]) -> list[tuple[nib.Nifti1Image, dict]]:
    """(image, sidecar) for every ``.nii.gz`` or ``.nii`` among written files."""
    out = []
    for path in paths:
        for suffix in (".nii.gz", ".nii"):
            if path.name.endswith(suffix):
                meta = json.loads(path.with_name(path.name.removesuffix(suffix) + ".json")
                                  .read_text())
                out.append((nib.load(path), meta))
                break
    return out


def volume_index(meta: dict, axes: dict[str, int]) -> int:
    """Volume ``t`` of an image from the sidecar's VolumeAxes."""
    volume_axes = meta.get("VolumeAxes", {})
    if not volume_axes:
        return 0
    n = len(next(iter(volume_axes.values())))
    hits = [t for t in range(n)
            if all(volume_axes[name][t] == axes.get(name) for name in volume_axes)]
    assert len(hits) == 1, (axes, volume_axes)
    return hits[0]


def nibabel_header(shape: tuple[int, ...], dtype: np.dtype, affine: np.ndarray, *,
                   qform: bool, repetition_s: float | None, descrip: bytes,
                   scaling: tuple[float, float] | None) -> bytes:
    """The header nibabel writes for such an image (the oracle of our own header)."""
    image = nib.Nifti1Image(np.zeros(shape, dtype=dtype), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine if qform else None, code=1 if qform else 0)
    header = image.header
    header.set_xyzt_units("mm", "sec")
    header.set_dim_info(slice=2)
    if len(shape) == 4:
        header["pixdim"][4] = repetition_s or 1.0
    header["descrip"] = descrip[:79]
    header.set_slope_inter(*(scaling or (None, None)))
    buffer = io.BytesIO()
    header.write_to(buffer)
    return buffer.getvalue()

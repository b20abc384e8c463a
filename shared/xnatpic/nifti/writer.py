"""Write an :class:`~xnatpic.paravision.series.ImageSeries` as NIfTI-1 files.

One ``.nii.gz`` per slice package (``<scan>-<reco>.nii.gz``, or
``<scan>-<reco>_pack<n>.nii.gz`` with n = 1, 2... when the reco has several imaging
planes), each with a JSON sidecar and, for diffusion data, FSL ``.bval``/``.bvec``.

Header: float32 real values (every frame's slope and offset applied, so
``scl_slope``/``scl_inter`` are unused); ``dim`` = (x, y, z[, t]) as described in
:mod:`xnatpic.nifti.volumes`; sform and qform = the RAS affine implied by the images'
DICOM positions and orientations, both with code 1 (NIFTI_XFORM_SCANNER_ANAT: the
scanner's patient coordinates, as ParaVision reports them); the qform is left unset
(code 0) only when the voxel axes are not orthogonal. Units mm and s; ``pixdim[4]`` is
the repetition time in seconds when all volumes share one (dcm2niix's convention), else
1; ``slice_dim`` = 2; ``cal_min``/``cal_max`` span the data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np

from xnatpic import __version__
from xnatpic.errors import ConversionError
from xnatpic.nifti.sidecar import bval_bvec_text, sidecar
from xnatpic.nifti.volumes import VolumeLayout, volume_layouts
from xnatpic.paravision.series import ImageSeries

__all__ = ["layout_data", "nifti_image", "write_nifti_series"]

#: NIFTI_XFORM_SCANNER_ANAT.
XFORM_SCANNER = 1

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def layout_data(series: ImageSeries, layout: VolumeLayout) -> np.ndarray:
    """Real values of a layout as float32, shape (x, y, z) or (x, y, z, t).

    The result is a Fortran-ordered view, so writing it needs no copy.
    """
    rows, columns = series.rows, series.columns
    stack = series.stack
    stored = stack.stored()
    data = np.empty((layout.volumes, layout.slices, rows, columns), dtype=np.float32)
    cached: tuple[int, np.ndarray] | None = None
    for z, column in enumerate(layout.grid):
        for t, image in enumerate(column):
            if cached is None or cached[0] != image.frame:
                frame = np.asarray(stored[image.frame]).astype(np.float64)
                frame *= image.slope
                frame += image.intercept
                cached = (image.frame, frame)
            frame = cached[1]
            data[t, z] = frame[image.slice_in_frame] if frame.ndim == 3 else frame
    array = data.transpose(3, 2, 1, 0)
    return array[..., 0] if layout.volumes == 1 else array


def _orthogonal(affine: np.ndarray) -> bool:
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return bool(np.allclose(axes.T @ axes, np.eye(3), atol=1e-4))


def nifti_image(series: ImageSeries, layout: VolumeLayout) -> nib.Nifti1Image:
    """The NIfTI-1 image of one layout (header as described in the module docstring)."""
    data = layout_data(series, layout)
    affine = layout.affine_ras
    image = nib.Nifti1Image(data, affine)
    header = image.header
    image.set_sform(affine, code=XFORM_SCANNER)
    if _orthogonal(affine):
        image.set_qform(affine, code=XFORM_SCANNER)
    else:
        image.set_qform(None, code=0)
    header.set_xyzt_units("mm", "sec")
    header.set_dim_info(slice=2)
    if data.ndim == 4:
        trs = {im.repetition_time for im in layout.first_images()}
        tr = trs.pop() if len(trs) == 1 else None
        header["pixdim"][4] = tr / 1000.0 if tr else 1.0
    if data.size:
        header["cal_min"] = float(np.nanmin(data))
        header["cal_max"] = float(np.nanmax(data))
    header["descrip"] = f"xnatpic {__version__} {series.reco.label}".encode()[:79]
    return image


def _stem(series: ImageSeries, layout: VolumeLayout) -> str:
    stem = _UNSAFE.sub("_", series.reco.label).strip("._") or "reco"
    if series.package_count > 1:
        stem += f"_pack{layout.package + 1}"
    return stem


def write_nifti_series(series: ImageSeries, out_dir: Path) -> list[Path]:
    """Write a series as NIfTI-1 + JSON (+ FSL bval/bvec) into an existing folder.

    Parameters
    ----------
    series : ImageSeries
        The reco to write.
    out_dir : Path
        Existing destination folder.

    Returns
    -------
    list of Path
        Every file written: per slice package ``.nii.gz``, ``.json`` and, for
        diffusion data, ``.bval`` and ``.bvec``.

    Raises
    ------
    ConversionError
        When the images cannot form regular volumes, or a file cannot be written.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ConversionError(f"{out_dir}: output folder does not exist")
    written: list[Path] = []
    for layout in volume_layouts(series):
        stem = _stem(series, layout)
        nii = out_dir / f"{stem}.nii.gz"
        try:
            nib.save(nifti_image(series, layout), nii)
            written.append(nii)
            meta = out_dir / f"{stem}.json"
            meta.write_text(json.dumps(sidecar(series, layout), indent=2) + "\n")
            written.append(meta)
            diffusion = bval_bvec_text(series, layout)
            if diffusion is not None:
                for suffix, text in zip((".bval", ".bvec"), diffusion, strict=True):
                    path = out_dir / f"{stem}{suffix}"
                    path.write_text(text)
                    written.append(path)
        except OSError as exc:
            raise ConversionError(f"{nii}: cannot write NIfTI output ({exc})") from exc
    return written

"""Write an :class:`~xnatpic.paravision.series.ImageSeries` as NIfTI-1 files.

One ``.nii.gz`` per slice package (``<scan>-<reco>_<protocol>.nii.gz``, or
``<scan>-<reco>_<protocol>_pack<n>.nii.gz`` with n = 1, 2... when the reco has several
imaging planes: :mod:`xnatpic.output_names`; ``.nii`` with ``compression="none"``), each
with a JSON sidecar and, for diffusion data, FSL ``.bval``/``.bvec``.

Values: when every image of the file shares one slope and one offset (all real recos
seen so far), the 2dseq's stored values are written unchanged in their own type (int16,
uint8, int32 or float32) with ``scl_slope``/``scl_inter`` = that slope and offset, so a
reader's scaled values are stored × slope + offset. NIfTI-1 keeps ``scl_slope`` and
``scl_inter`` as float32: the scaled values differ from the float64 product by at most
the float32 rounding of the slope (relative 2⁻²⁴), the same bound as writing the product
as float32. When the slopes or offsets differ between images, the real values
(each frame's own slope and offset applied) are written as float32 and ``scl_slope`` =
``scl_inter`` = 0 (unused). Compression (:data:`COMPRESSIONS`): ``fast`` (the default)
is ISA-L's deflate level 1 (the ``isal`` package: about 10× zlib level 1's speed at the
same size on the corpus), ``best`` is zlib level 9 (about 1.7 % smaller, 30× slower),
``none`` writes ``.nii``. Both gzip kinds are ordinary single-member gzip files with
mtime 0, so a conversion repeated gives the same bytes. ``dim`` = (x, y, z[, t]) as
described in :mod:`xnatpic.nifti.volumes`; sform and qform = the RAS affine implied by the images'
DICOM positions and orientations, both with code 1 (NIFTI_XFORM_SCANNER_ANAT: the
scanner's patient coordinates, as ParaVision reports them); the qform is left unset
(code 0) only when the voxel axes are not orthogonal. Units mm and s; ``pixdim[4]`` is
the repetition time in seconds when all volumes share one (dcm2niix's convention), else
1; ``slice_dim`` = 2; ``cal_min``/``cal_max`` are 0 (viewers scale to the data).

The file is streamed (:func:`xnatpic.nifti.file.write_file`): header first, then one
image plane at a time in NIfTI order, so writing holds one 2dseq frame, not the volume
(:func:`nifti_image` builds the same image in memory).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from xnatpic import __version__
from xnatpic.errors import ConversionError
from xnatpic.nifti.file import COMPRESSIONS, DEFAULT_COMPRESSION, orthogonal, write_file
from xnatpic.nifti.header import nifti1_header
from xnatpic.nifti.sidecar import bval_bvec_text, sidecar
from xnatpic.nifti.volumes import VolumeLayout, shared_scaling, volume_layouts
from xnatpic.output_names import series_stem
from xnatpic.paravision.series import ImageSeries

if TYPE_CHECKING:  # de-identification (pydicom) and nibabel are imported only when used
    import nibabel as nib

    from xnatpic.dicom.deidentify import DeidentifyProfile

__all__ = ["COMPRESSIONS", "DEFAULT_COMPRESSION", "header_bytes", "layout_data",
           "nifti_image", "write_nifti_series"]

def _data_dtype(series: ImageSeries, scaling: tuple[float, float] | None) -> np.dtype:
    """Stored type (little endian) when one scaling holds, else float32."""
    return series.stack.dtype.newbyteorder("<") if scaling else np.dtype("<f4")


def _frames(series: ImageSeries, layout: VolumeLayout,
            scaling: tuple[float, float] | None) -> Iterator[np.ndarray]:
    """Every image (rows × columns) in NIfTI order (z, then t), as written.

    Stored values unchanged when ``scaling`` holds (:func:`shared_scaling`), else real
    values as float32. One 2dseq frame is held at a time
    (:meth:`FrameStack.stored_frame`), so a 3D frame is read once for all its slices
    and memory stays at one frame.
    """
    dtype = _data_dtype(series, scaling)
    cached: tuple[int, np.ndarray] | None = None
    for t in range(layout.volumes):
        for image in layout.volume_images(t):
            if cached is None or cached[0] != image.frame:
                frame = series.stack.stored_frame(image.frame)
                if scaling is None:
                    frame = frame.astype(np.float64)
                    frame *= image.slope
                    frame += image.intercept
                cached = (image.frame, frame)
            frame = cached[1]
            plane = frame[image.slice_in_frame] if frame.ndim == 3 else frame
            yield plane.astype(dtype, copy=False)


def _shape(series: ImageSeries, layout: VolumeLayout) -> tuple[int, ...]:
    shape = (series.columns, series.rows, layout.slices)
    return shape if layout.volumes == 1 else (*shape, layout.volumes)


def layout_data(series: ImageSeries, layout: VolumeLayout) -> np.ndarray:
    """The voxels of a layout as written, shape (x, y, z) or (x, y, z, t), in memory.

    Stored values in their own type when :func:`shared_scaling` holds (real value =
    stored × slope + offset), else real values as float32.
    """
    scaling = shared_scaling(layout)
    data = np.empty(_shape(series, layout), dtype=_data_dtype(series, scaling), order="F")
    flat = data.reshape((series.columns, series.rows, -1), order="F")
    for n, plane in enumerate(_frames(series, layout, scaling)):
        flat[:, :, n] = plane.T
    return data


def header_bytes(series: ImageSeries, layout: VolumeLayout) -> bytes:
    """The 352 bytes before the voxels (:func:`~xnatpic.nifti.header.nifti1_header`).

    sform = the RAS affine (code 1); qform code 1 unless the voxel axes are not
    orthogonal; pixdim[4] = the repetition time (s) when every volume shares one;
    scl_slope/scl_inter per :func:`shared_scaling`.
    """
    scaling = shared_scaling(layout)
    shape = _shape(series, layout)
    trs = {im.repetition_time for im in layout.first_images()}
    tr = trs.pop() if len(trs) == 1 else None
    affine = layout.affine_ras
    return nifti1_header(shape, _data_dtype(series, scaling), affine,
                         qform=orthogonal(affine),
                         repetition_s=tr / 1000.0 if tr else None,
                         descrip=f"xnatpic {__version__} {series.reco.label}".encode(),
                         scaling=scaling)


def nifti_image(series: ImageSeries, layout: VolumeLayout) -> nib.Nifti1Image:
    """The NIfTI-1 image of one layout, in memory (nibabel, imported here).

    Its header is :func:`header_bytes`, its ``dataobj`` the voxels as written
    (:func:`layout_data`); ``get_fdata()`` gives the real values.
    """
    import nibabel as nib

    header = nib.Nifti1Header.from_fileobj(io.BytesIO(header_bytes(series, layout)))
    return nib.Nifti1Image(layout_data(series, layout), None, header=header)


def _stream(series: ImageSeries, layout: VolumeLayout, path: Path,
            compressor: tuple[type, int] | None) -> None:
    """Write header then data plane by plane: memory stays at one 2dseq frame."""
    header = header_bytes(series, layout)
    write_file(path, compressor, lambda f: _write_image(series, layout, header, f))


def _write_image(series: ImageSeries, layout: VolumeLayout, header: bytes,
                 f: BinaryIO) -> None:
    f.write(header)
    for plane in _frames(series, layout, shared_scaling(layout)):
        f.write(np.ascontiguousarray(plane).tobytes())


def _stem(series: ImageSeries, layout: VolumeLayout,
          deidentify: DeidentifyProfile | None = None) -> str:
    """``<scan>-<reco>_<protocol>`` (``_pack<n>`` added per slice package), as every
    output of the converter (:mod:`xnatpic.output_names`); the protocol is cleaned of
    identity, or left out, when de-identifying."""
    return series_stem(series, layout.package, deidentify)


def write_nifti_series(series: ImageSeries, out_dir: Path,
                       deidentify: DeidentifyProfile | None = None,
                       compression: str = DEFAULT_COMPRESSION) -> list[Path]:
    """Write a series as NIfTI-1 + JSON (+ FSL bval/bvec) into an existing folder.

    Parameters
    ----------
    series : ImageSeries
        The reco to write.
    out_dir : Path
        Existing destination folder.
    deidentify : DeidentifyProfile or None
        De-identify the sidecar and the file names (``docs/deidentification.md``).
    compression : {"fast", "best", "none"}
        ISA-L level 1 or zlib level 9 (``.nii.gz``), or uncompressed ``.nii``
        (:data:`COMPRESSIONS`).

    Returns
    -------
    list of Path
        Every file written: per slice package ``.nii.gz`` (or ``.nii``), ``.json`` and, for
        diffusion data, ``.bval`` and ``.bvec``.

    Raises
    ------
    ConversionError
        When the images cannot form regular volumes, or a file cannot be written.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ConversionError(f"{out_dir}: output folder does not exist")
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown NIfTI compression {compression!r}; choose one of "
                         f"{', '.join(COMPRESSIONS)}")
    compressor = COMPRESSIONS[compression]
    suffix = ".nii" if compressor is None else ".nii.gz"
    written: list[Path] = []
    for layout in volume_layouts(series):
        stem = _stem(series, layout, deidentify)
        nii = out_dir / f"{stem}{suffix}"
        try:
            _stream(series, layout, nii, compressor)
            written.append(nii)
            meta = out_dir / f"{stem}.json"
            meta.write_text(json.dumps(sidecar(series, layout, deidentify), indent=2) + "\n")
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

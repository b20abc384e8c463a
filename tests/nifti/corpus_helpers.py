"""Independent readers for the NIfTI corpus tests (nothing here uses xnatpic's reader)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from xnatpic.paravision.jcamp import read_jcamp

__all__ = ["RAS", "expected_frame", "load_written", "raw_geometry", "volume_index"]

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


def expected_frame(reco_dir: Path, frame: int, slice_in_frame: int) -> np.ndarray:
    """2dseq × VisuCoreDataSlope + VisuCoreDataOffs of one image, read with numpy only."""
    visu = read_jcamp(reco_dir / "visu_pars")
    size = np.atleast_1d(np.asarray(visu["VisuCoreSize"], dtype=int)).ravel()
    frames = int(visu["VisuCoreFrameCount"])
    order = "<" if str(visu.get("VisuCoreByteOrder", "littleEndian")) == "littleEndian" else ">"
    dtype = np.dtype(order + _DTYPES[str(visu["VisuCoreWordType"])])
    stored = np.fromfile(reco_dir / "2dseq", dtype=dtype).reshape((frames, *size[::-1]))
    slopes = np.atleast_1d(np.asarray(visu.get("VisuCoreDataSlope", 1.0), dtype=float)).ravel()
    offsets = np.atleast_1d(np.asarray(visu.get("VisuCoreDataOffs", 0.0), dtype=float)).ravel()
    slope = slopes[frame % slopes.size]
    offset = offsets[frame % offsets.size]
    image = stored[frame]
    if image.ndim == 3:
        image = image[slice_in_frame]
    return image.astype(np.float64) * slope + offset


def load_written(paths: list[Path]) -> list[tuple[nib.Nifti1Image, dict]]:
    """(image, sidecar) for every ``.nii.gz`` among written files."""
    out = []
    for path in paths:
        if path.name.endswith(".nii.gz"):
            meta = json.loads(path.with_name(path.name[:-7] + ".json").read_text())
            out.append((nib.load(path), meta))
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

"""RT Structure Sets (RTSTRUCT) as masks: closed planar contours rasterised on a grid.

Each ROI of the ``StructureSetROISequence`` is matched to its ``ROIContourSequence`` item;
its ``CLOSED_PLANAR`` contours (``ContourData``: x, y, z triplets in DICOM patient LPS mm)
are converted to RAS, then to the voxel coordinates of the target grid. Contours in planes
of that grid (parallel to two of its axes) are rasterised on it directly: each grid slice
takes the nearest contour plane within half a plane spacing, and a voxel is inside when
its centre is inside the polygon (matplotlib's even-odd test). Contours oblique to the
grid are rasterised on a grid of their own (in-plane step half the smallest map voxel,
one slice per contour plane, slab thickness the plane spacing or, for a single plane, the
map voxel size along the plane normal), which is then mapped onto the target grid by
nearest neighbour. Within one contour plane, contours combine by exclusive or (an inner
contour is a hole).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from matplotlib.path import Path as PolyPath
from pydicom.errors import InvalidDicomError

from xnatpic.nifti.affine import LPS_TO_RAS
from xnatpic.roi.errors import MaskSourceError, RoiError
from xnatpic.roi.grid import Grid, resample_masks

__all__ = ["RTSTRUCT_SOP_CLASS", "ContourMasks", "read_rtstruct", "rtstruct_from_dataset"]

_log = logging.getLogger(__name__)

#: RT Structure Set Storage SOP Class UID.
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
#: Largest distance (voxels) of a contour point from its plane.
_PLANAR_TOLERANCE = 0.1


@dataclass
class ContourMasks:
    """Closed planar contours per ROI, in RAS millimetres.

    Attributes
    ----------
    contours : dict of str to list of numpy.ndarray, each shape (n, 3)
    source : str
    frame_of_reference_uid : str or None
    """

    contours: dict[str, list[np.ndarray]]
    source: str
    frame_of_reference_uid: str | None = None
    numbers: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """ROI names, in order."""
        return list(self.contours)

    def on_grid(self, grid: Grid) -> dict[str, np.ndarray]:
        """Rasterise every ROI on ``grid`` (see the module docstring).

        Raises
        ------
        RoiError
            When a contour is not in a plane of the grid.
        """
        out = {}
        for name, polys in self.contours.items():
            where = f"{self.source}: ROI {name!r}"
            mask = _rasterise(polys, grid)
            if mask is None:
                aux = _contour_grid(polys, grid, where)
                mask = _rasterise(polys, aux)
                if mask is None:
                    raise RoiError(f"{where}: contours are not parallel to each other")
                mask = resample_masks({name: mask}, aux, grid)[name]
            out[name] = mask
        return out


def _plane_normal(poly: np.ndarray) -> np.ndarray:
    centred = poly - poly.mean(axis=0)
    return np.linalg.svd(centred, full_matrices=False)[2][-1]


def _contour_grid(polys: list[np.ndarray], target: Grid, where: str) -> Grid:
    """A grid whose slices are the planes of ``polys`` (all parallel)."""
    normal = _plane_normal(polys[0])
    for i, poly in enumerate(polys):
        off = np.abs((poly - poly.mean(axis=0)) @ normal).max()
        if off > _PLANAR_TOLERANCE * float(target.voxel_sizes.min()):
            raise RoiError(f"{where}: contour {i + 1} is not planar (points up to "
                           f"{off:.2f} mm off its plane)")
    u = np.cross(normal, [1.0, 0.0, 0.0])
    if np.linalg.norm(u) < 0.5:
        u = np.cross(normal, [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    step = float(target.voxel_sizes.min()) / 2
    points = np.concatenate(polys)
    pu, pv = points @ u, points @ v
    depths = np.unique(np.round([float(p.mean(axis=0) @ normal) for p in polys], 4))
    if len(depths) > 1:
        thickness = float(np.diff(depths).min())
    else:  # one plane: as thick as the map voxel along the normal
        inv = np.linalg.inv(target.affine[:3, :3])
        thickness = 1.0 / float(np.linalg.norm(inv @ normal))
    n_slices = int(np.round((depths[-1] - depths[0]) / thickness)) + 1
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = u * step, v * step, normal * thickness
    affine[:3, 3] = (pu.min() - step) * u + (pv.min() - step) * v + depths[0] * normal
    shape = (int(np.ceil((np.ptp(pu)) / step)) + 3, int(np.ceil(np.ptp(pv) / step)) + 3,
             n_slices)
    return Grid(shape, affine)


def _rasterise(polys: list[np.ndarray], grid: Grid) -> np.ndarray | None:
    """Contours rasterised on ``grid``; None when they are not in planes of it."""
    out = np.zeros(grid.shape, dtype=bool)
    if not polys:
        return out
    inv = np.linalg.inv(grid.affine)
    voxel = [inv[:3, :3] @ p.T + inv[:3, 3:4] for p in polys]  # each (3, n)
    spread = np.array([np.ptp(v, axis=1) for v in voxel])       # (n_contours, 3)
    axis = int(np.argmin(spread.max(axis=0)))
    if spread[:, axis].max() > _PLANAR_TOLERANCE:
        return None
    in_plane = [a for a in range(3) if a != axis]
    planes: dict[float, np.ndarray] = {}
    sizes = (grid.shape[in_plane[0]], grid.shape[in_plane[1]])
    centres = np.stack(np.meshgrid(np.arange(sizes[0]), np.arange(sizes[1]),
                                   indexing="ij"), axis=-1).reshape(-1, 2).astype(float)
    for v in voxel:
        depth = round(float(v[axis].mean()), 3)
        inside = PolyPath(v[in_plane].T).contains_points(centres).reshape(sizes)
        planes[depth] = planes.get(depth, np.zeros(sizes, bool)) ^ inside
    depths = np.array(sorted(planes))
    half = max(0.5, float(np.diff(depths).min()) / 2) if len(depths) > 1 else 0.5
    for k in range(grid.shape[axis]):
        nearest = int(np.argmin(np.abs(depths - k)))
        if abs(depths[nearest] - k) <= half + 1e-6:
            index: list[Any] = [slice(None)] * 3
            index[axis] = k
            out[tuple(index)] |= planes[float(depths[nearest])]
    return out


def rtstruct_from_dataset(ds: Any, where: str) -> ContourMasks:
    """Build contour masks from an RTSTRUCT dataset already read.

    Raises
    ------
    MaskSourceError
        When the dataset is not an RTSTRUCT, has no ROI, or a contour is malformed.
    """
    if str(getattr(ds, "SOPClassUID", "")) != RTSTRUCT_SOP_CLASS:
        raise MaskSourceError(f"{where}: not an RT Structure Set (SOPClassUID "
                              f"{getattr(ds, 'SOPClassUID', 'absent')})")
    rois = {int(r.ROINumber): r for r in getattr(ds, "StructureSetROISequence", [])}
    if not rois:
        raise MaskSourceError(f"{where}: RTSTRUCT has no StructureSetROISequence item")
    uids = {str(r.ReferencedFrameOfReferenceUID) for r in rois.values()
            if getattr(r, "ReferencedFrameOfReferenceUID", "")}
    uids |= {str(f.FrameOfReferenceUID)
             for f in getattr(ds, "ReferencedFrameOfReferenceSequence", [])
             if getattr(f, "FrameOfReferenceUID", "")}
    if len(uids) > 1:
        raise MaskSourceError(f"{where}: ROIs refer to several frames of reference "
                              f"{sorted(uids)}; split the structure set")
    contours: dict[str, list[np.ndarray]] = {}
    numbers: dict[str, int] = {}
    by_number = {int(c.ReferencedROINumber): c for c in getattr(ds, "ROIContourSequence", [])}
    for number, roi in rois.items():
        name = str(getattr(roi, "ROIName", "") or f"roi_{number}")
        polys: list[np.ndarray] = []
        for i, contour in enumerate(getattr(by_number.get(number), "ContourSequence", [])):
            kind = str(getattr(contour, "ContourGeometricType", ""))
            if kind != "CLOSED_PLANAR":
                _log.warning("%s: ROI %r contour %d is %s, not CLOSED_PLANAR: skipped",
                             where, name, i + 1, kind or "untyped")
                continue
            data = np.asarray(contour.ContourData, dtype=np.float64)
            if data.size < 9 or data.size % 3:
                raise MaskSourceError(f"{where}: ROI {name!r} contour {i + 1} has "
                                      f"{data.size} ContourData values (need >= 3 points)")
            lps = data.reshape(-1, 3)
            polys.append((LPS_TO_RAS[:3, :3] @ lps.T).T)
        if not polys:
            _log.warning("%s: ROI %r has no closed planar contour", where, name)
        contours[name] = polys
        numbers[name] = number
    return ContourMasks(contours, where, next(iter(uids), None), numbers)


def read_rtstruct(path: Path) -> ContourMasks:
    """Read an RTSTRUCT file (see :func:`rtstruct_from_dataset`).

    Raises
    ------
    MaskSourceError
        When the file is not DICOM or not a valid RTSTRUCT.
    """
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError) as exc:
        raise MaskSourceError(f"{path}: not a readable DICOM file: {exc}") from exc
    return rtstruct_from_dataset(ds, str(path))

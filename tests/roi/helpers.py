"""Builders of the ROI tests: map resources as the map steps store them, NIfTI label maps,
RTSTRUCTs and source MR images, all on known geometry."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from xnatpic.nifti.affine import LPS_TO_RAS

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def world(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """RAS coordinates of every voxel centre, shape + (3,) (independent of xnatpic.roi)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def write_map_resource(session: Path, label: str, maps: dict[str, np.ndarray],
                       affine: np.ndarray, *, frame_uid: str | None = None,
                       units: dict[str, str] | None = None, layout: str = "nifti") -> Path:
    """RESOURCES/<label>/ as a map step stores it.

    ``layout="nifti"``: as :mod:`xnatpic.analysis.outputs` writes it (``nifti/<map>.nii.gz``
    plus the fit mask ``nifti/mask.nii.gz``, stats.json from the real
    :func:`~xnatpic.analysis.stats.map_statistics`, the source series'
    ``frame_of_reference_uid`` in provenance ``inputs``). ``layout="maps"``: the
    ``maps/<map>.nii.gz`` layout of the issue, stats per map, FrameOfReferenceUID under
    ``source``.
    """
    from xnatpic.analysis.stats import map_statistics

    res = session / "RESOURCES" / label
    folder = res / layout
    folder.mkdir(parents=True, exist_ok=True)
    stats = {}
    fit_mask = None
    for name, data in maps.items():
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), folder / f"{name}.nii.gz")
        unit = (units or {}).get(name, "ms")
        finite = np.isfinite(data)
        fit_mask = finite if fit_mask is None else fit_mask | finite
        if layout == "nifti":
            stats[name] = {"unit": unit, **map_statistics(data, np.ones(data.shape, bool))}
        else:
            stats[name] = {"mean": float(data[finite].mean()), "units": unit,
                           "median": float(np.median(data[finite])), "n": int(finite.sum())}
    if layout == "nifti":
        nib.save(nib.Nifti1Image(fit_mask.astype(np.float32), affine), folder / "mask.nii.gz")
        provenance = {"step": label.lower(),
                      "inputs": [{"frame_of_reference_uid": frame_uid or ""}]}
    else:
        provenance = {"step": label.lower(), "source": {"FrameOfReferenceUID": frame_uid or ""}}
    (res / "stats.json").write_text(json.dumps({"step": label.lower(), "maps": stats}))
    (res / "stats.csv").write_text("map,unit\n" + "".join(f"{k},{v.get('unit')}\n"
                                                           for k, v in stats.items()))
    (res / "provenance.json").write_text(json.dumps(provenance))
    return res


def lps_geometry(rows: int, cols: int, spacing: tuple[float, float], positions: list,
                 row_dir=(1.0, 0.0, 0.0), col_dir=(0.0, 1.0, 0.0)) -> np.ndarray:
    """RAS affine with xnatpic's NIfTI index order (i along a row, j down a column, k slices).

    ``spacing`` is DICOM PixelSpacing (row spacing, column spacing); ``positions`` the
    ImagePositionPatient of each slice in k order.
    """
    row_dir, col_dir = np.asarray(row_dir, float), np.asarray(col_dir, float)
    p = np.asarray(positions, float)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]
    lps[:3, 1] = col_dir * spacing[0]
    lps[:3, 2] = (p[1] - p[0]) if len(p) > 1 else np.cross(row_dir, col_dir)
    lps[:3, 3] = p[0]
    return LPS_TO_RAS @ lps


def mr_images(rows: int, cols: int, spacing: tuple[float, float], positions: list,
              frame_uid: str, *, row_dir=(1.0, 0.0, 0.0), col_dir=(0.0, 1.0, 0.0)
              ) -> list[Dataset]:
    """Classic MR images (one per slice) with the given geometry, as SEG sources."""
    study, series = generate_uid(), generate_uid()
    images = []
    for k, pos in enumerate(positions):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
            study, series, frame_uid)
        ds.Modality, ds.PatientID, ds.PatientName = "MR", "mouse1", "mouse1^"
        ds.PatientBirthDate, ds.PatientSex, ds.StudyID = "", "O", "1"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "120000", ""
        ds.ReferringPhysicianName, ds.SeriesNumber, ds.InstanceNumber = "", 3, k + 1
        ds.Manufacturer = "Bruker"
        ds.Rows, ds.Columns = rows, cols
        ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
        ds.ImageOrientationPatient = [*map(float, row_dir), *map(float, col_dir)]
        ds.ImagePositionPatient = [float(v) for v in pos]
        ds.SliceThickness = 1.0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.zeros((rows, cols), np.uint16).tobytes()
        images.append(ds)
    return images


def rtstruct(rois: dict[str, list[np.ndarray]], frame_uid: str) -> Dataset:
    """An RT Structure Set with CLOSED_PLANAR contours given in LPS mm, shape (n, 3) each."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_STORAGE
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_STORAGE, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ref = Dataset()
    ref.FrameOfReferenceUID = frame_uid
    ds.ReferencedFrameOfReferenceSequence = [ref]
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    for number, (name, polys) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ROIName = number, name
        item.ReferencedFrameOfReferenceUID = frame_uid
        ds.StructureSetROISequence.append(item)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ContourSequence = []
        for poly in polys:
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(poly)
            contour.ContourData = [f"{v:.4f}" for v in np.asarray(poly).ravel()]
            roi_contour.ContourSequence.append(contour)
        ds.ROIContourSequence.append(roi_contour)
    return ds


def circle(centre_lps: tuple[float, float, float], radius: float, n: int = 180) -> np.ndarray:
    """Closed polygon approximating a circle in an axial plane (LPS mm)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cx, cy, cz = centre_lps
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t), np.full(n, cz)], -1)

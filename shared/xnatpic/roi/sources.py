"""Find and read the mask files of a mask resource (DICOM SEG, RTSTRUCT, NIfTI label map)."""

from __future__ import annotations

import logging
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from xnatpic.roi.errors import MaskSourceError
from xnatpic.roi.labelmap import NIFTI_SUFFIXES, read_label_map
from xnatpic.roi.masks import MaskSource
from xnatpic.roi.rtstruct import RTSTRUCT_SOP_CLASS, rtstruct_from_dataset
from xnatpic.roi.seg import SEG_SOP_CLASSES, seg_from_dataset

__all__ = ["ROI_COLLECTION_RESOURCES", "read_mask_file", "read_mask_folder",
           "read_roi_collection"]

#: Resources of an ROI collection assessor (icr:roiCollectionData) read, in order of
#: preference: the viewer stores the collection in a resource named by its collectionType
#: (SEG, RTSTRUCT, AIM); other resources are other representations of the same ROIs.
ROI_COLLECTION_RESOURCES = ("SEG", "RTSTRUCT")

_log = logging.getLogger(__name__)


def read_mask_file(path: Path) -> MaskSource:
    """Read one mask file, whatever its kind.

    Raises
    ------
    MaskSourceError
        When the file is neither a NIfTI label map, a DICOM SEG nor an RTSTRUCT.
    """
    path = Path(path)
    if path.name.endswith(NIFTI_SUFFIXES):
        return read_label_map(path)
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, OSError) as exc:
        raise MaskSourceError(f"{path}: neither NIfTI (.nii, .nii.gz) nor readable DICOM: "
                              f"{exc}") from exc
    sop = str(getattr(ds, "SOPClassUID", ""))
    if sop in SEG_SOP_CLASSES:
        return seg_from_dataset(ds, str(path))
    if sop == RTSTRUCT_SOP_CLASS:
        return rtstruct_from_dataset(ds, str(path))
    raise MaskSourceError(f"{path}: DICOM of SOP class {sop or 'unknown'} is not a mask "
                          "(expected Segmentation Storage or RT Structure Set)")


def _candidates(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.endswith(("_catalog.xml", ".json", ".txt", ".md",
                                                     ".csv")):
            continue
        if path.name.endswith(NIFTI_SUFFIXES) or path.suffix.lower() in ("", ".dcm", ".ima"):
            files.append(path)
    return files


def read_mask_folder(folder: Path) -> list[MaskSource]:
    """Read every mask file of a resource folder.

    NIfTI files must be label maps; DICOM files that are neither SEG nor RTSTRUCT (the
    images a SEG was drawn on, for instance) are skipped with a warning.

    Raises
    ------
    MaskSourceError
        When the folder is missing or holds no mask.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MaskSourceError(f"{folder}: no such mask resource")
    masks: list[MaskSource] = []
    for path in _candidates(folder):
        try:
            masks.append(read_mask_file(path))
        except MaskSourceError as exc:
            if path.name.endswith(NIFTI_SUFFIXES) or "not a mask" not in str(exc):
                raise
            _log.warning("%s", exc)
    if not masks:
        raise MaskSourceError(f"{folder}: no mask found (expected a DICOM SEG, an RTSTRUCT "
                              "or a NIfTI label map .nii/.nii.gz)")
    return masks


def read_roi_collection(folder: Path, label: str) -> list[MaskSource]:
    """Read the ROIs of an ROI collection assessor's folder (``ASSESSORS/<label>/``).

    The SEG resource is read when present (voxel masks as drawn), else the RTSTRUCT one
    (contours); an AIM-only collection is refused (AIM annotations are not read).

    Parameters
    ----------
    folder : Path
        The assessor's folder, holding one folder per resource (``SEG/``, ``RTSTRUCT/``).
    label : str
        The assessor's label, for messages.

    Returns
    -------
    list of MaskSource
        The masks of the resource read (their ``source`` says which).

    Raises
    ------
    MaskSourceError
        When the folder is missing, or holds no SEG or RTSTRUCT resource with a mask.
    """
    folder = Path(folder)
    present = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() \
        else []
    for resource in ROI_COLLECTION_RESOURCES:
        if resource in present and _candidates(folder / resource):
            others = [r for r in present if r != resource]
            if others:
                _log.info("ROI collection %s: resource %s read; %s not read (other "
                          "representations of the same ROIs)", label, resource,
                          ", ".join(others))
            return read_mask_folder(folder / resource)
    raise MaskSourceError(
        f"ROI collection {label} ({folder}): no SEG or RTSTRUCT resource with files "
        f"(resources: {', '.join(present) or 'none'}); "
        + ("AIM annotations are not read: save the ROIs as a segmentation or contours"
           if "AIM" in present else "save the ROIs from the viewer first"))

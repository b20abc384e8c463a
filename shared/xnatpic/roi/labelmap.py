"""NIfTI integer label maps as masks, with optional label names.

Names come from a JSON file (``{"1": "tumour", "2": "muscle"}`` or
``[{"label": 1, "name": "tumour"}]``); by default ``<image>.json`` or
``<stem>_labels.json`` beside the image, else ``label_<n>``. A ``FrameOfReferenceUID``
key in that JSON (or in a BIDS-style sidecar ``<stem>.json``) ties the mask to a DICOM
frame of reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from xnatpic.arrays import distinct
from xnatpic.roi.errors import MaskSourceError
from xnatpic.roi.grid import Grid
from xnatpic.roi.masks import GriddedMasks

__all__ = ["NIFTI_SUFFIXES", "nifti_stem", "read_label_map", "read_names"]

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_FOR_KEYS = ("FrameOfReferenceUID", "frame-of-reference-uid", "frame_of_reference_uid")


def nifti_stem(path: Path) -> str:
    """File name without ``.nii`` / ``.nii.gz``."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _sidecars(path: Path) -> list[Path]:
    stem = nifti_stem(path)
    return [path.with_name(stem + "_labels.json"), path.with_name(stem + ".json")]


def read_names(path: Path) -> tuple[dict[int, str], str | None]:
    """Read label names (and a FrameOfReferenceUID) from a JSON file.

    Returns
    -------
    names : dict of int to str
    frame_of_reference_uid : str or None

    Raises
    ------
    MaskSourceError
        When the file is not valid JSON or not one of the two accepted shapes.
    """
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MaskSourceError(f"{path}: cannot read label names: {exc}") from exc
    uid = None
    names: dict[int, str] = {}
    if isinstance(data, dict):
        uid = next((str(data[k]) for k in _FOR_KEYS if data.get(k)), None)
        entries = data.get("labels", {k: v for k, v in data.items() if k not in _FOR_KEYS})
    else:
        entries = data
    try:
        if isinstance(entries, dict):
            names = {int(k): str(v) for k, v in entries.items() if str(k).lstrip("-").isdigit()}
        elif isinstance(entries, list):
            names = {int(e["label"]): str(e["name"]) for e in entries}
        else:
            raise TypeError(type(entries).__name__)
    except (KeyError, TypeError, ValueError) as exc:
        raise MaskSourceError(
            f"{path}: label names must be {{\"1\": \"name\"}} or "
            f"[{{\"label\": 1, \"name\": \"name\"}}] ({exc})") from exc
    return names, uid


def read_label_map(path: Path, names_path: Path | None = None) -> GriddedMasks:
    """Read a NIfTI label map: one ROI per non-zero integer label.

    Parameters
    ----------
    path : Path
        ``.nii`` or ``.nii.gz``, 3-D (a trailing axis of size 1 is dropped).
    names_path : Path, optional
        Label names JSON (default: a sidecar beside the image, when present).

    Returns
    -------
    GriddedMasks

    Raises
    ------
    MaskSourceError
        When the file cannot be read, is not 3-D, holds non-integer values, or no label.
    """
    path = Path(path)
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except (OSError, ValueError, EOFError, ImageFileError) as exc:
        raise MaskSourceError(f"{path}: not a readable NIfTI label map: {exc}") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise MaskSourceError(f"{path}: a label map must be 3-D, got shape {data.shape}")
    finite = np.isfinite(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
    if not np.all(finite) or np.any(data != np.round(data)):
        raise MaskSourceError(f"{path}: a label map must hold integer labels; found "
                              "fractional or non-finite values (is this a map, not a mask?)")
    labels = data.astype(np.int64)
    present = [int(v) for v in distinct(labels) if v != 0]
    if not present:
        raise MaskSourceError(f"{path}: label map holds no label (every voxel is 0)")
    names: dict[int, str] = {}
    uid = None
    candidates = [names_path] if names_path is not None else _sidecars(path)
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            found, found_uid = read_names(candidate)
            names.update(found)
            uid = uid or found_uid
    masks = {names.get(v, f"label_{v}"): labels == v for v in present}
    return GriddedMasks(masks, Grid(labels.shape, img.affine), str(path), uid,
                        {names.get(v, f"label_{v}"): v for v in present})

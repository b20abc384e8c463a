"""The ground truth written beside the phantom study: ``truth/truth.json`` and ``.npy`` maps.

Layout::

    OUT/truth/truth.json
    OUT/truth/maps/<geometry>/<map>.npy     e.g. maps/axial/T2.npy

Every map of a geometry has shape ``(slices, rows, columns)`` (``D``: plus ``(3, 3)``),
indexed like the frames of the scans on that geometry read back from 2dseq: slice ``k`` is
the k-th FG_SLICE element, row ``j`` runs along the second ``VisuCoreSize`` dimension
(phase), column ``i`` along the first (read).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from xnatpic import __version__
from xnatpic.errors import XnatpicError
from xnatpic.phantom.compartments import (
    AIR_LABEL,
    B0_FIELD_PPM,
    CEST_POOLS,
    COMPARTMENTS,
    MAP_UNITS,
    fractional_anisotropy,
)
from xnatpic.phantom.geometry import GEOMETRIES
from xnatpic.phantom.protocols import FREQUENCY_MHZ
from xnatpic.phantom.signals import FORMULAE, SIGNAL_SCALE

__all__ = [
    "TRUTH_FORMAT_VERSION",
    "compartment_table",
    "read_truth",
    "read_truth_map",
    "write_truth",
]

#: Version of the layout of truth.json; bump when a key changes meaning.
TRUTH_FORMAT_VERSION = 1

_CONVENTIONS = {
    "coordinates": (
        "mm in the subject frame of VisuCorePosition/VisuCoreOrientation (what ParaVision's "
        "DICOM export copies to ImagePositionPatient/ImageOrientationPatient)"
    ),
    "visu_core_orientation": "rows: read (column index) direction, phase (row index) "
    "direction, slice normal",
    "visu_core_position": "centre of voxel (row 0, column 0) of each slice; the slice centre "
    "is on voxel (size[1]//2, size[0]//2)",
    "voxel_centre": "position[k] + i*dx*read + j*dy*phase for slice k, row j, column i, "
    "(dx, dy) = VisuCoreExtent/VisuCoreSize",
    "map_axes": ["slice", "row", "column"],
    "frame_order": "2dseq frames in VisuFGOrderDesc order, first group fastest; each frame "
    "is VisuCoreSize[1] rows of VisuCoreSize[0] values",
    "stored_to_value": "value = stored * VisuCoreDataSlope[frame] + VisuCoreDataOffs[frame]",
    "ppm": "Hz / working frequency in MHz (PVM_FrqWork[0] = BF1)",
}


def compartment_table() -> list[dict[str, Any]]:
    """The compartments as JSON-ready rows, with derived MD, FA and tensor."""
    rows = []
    for comp in COMPARTMENTS:
        lam = np.asarray(comp.eigenvalues)
        row = asdict(comp)
        row.update({
            "t1_ms": row.pop("t1"), "t2_ms": row.pop("t2"), "t2s_ms": row.pop("t2s"),
            "centre_mm": row.pop("centre"), "radius_mm": row.pop("radius"),
            "half_length_mm": row.pop("half_length"),
            "eigenvalues_mm2_s": row.pop("eigenvalues"),
            "ADC_mm2_s": float(lam.mean()), "MD_mm2_s": float(lam.mean()),
            "FA": float(fractional_anisotropy(lam)),
            "tensor_subject_frame_mm2_s": comp.tensor().tolist(),
            "cest_amplitudes": row.pop("cest"),
        })  # fmt: skip
        rows.append(row)
    return rows


def write_truth(
    out: Path,
    *,
    snr: float,
    seed: int,
    maps: dict[str, dict[str, np.ndarray]],
    scans: list[dict[str, Any]],
    study: dict[str, Any],
) -> Path:
    """Write truth.json and the maps of every geometry under ``out/truth``.

    Parameters
    ----------
    out : pathlib.Path
        The study folder.
    snr : float
        The requested signal-to-noise ratio.
    seed : int
        The noise seed.
    maps : dict
        Geometry name -> map name -> array (see :mod:`xnatpic.phantom.compartments`).
    scans : list of dict
        One JSON-ready description per scan.
    study : dict
        Study identity (UIDs, dates, subject).

    Returns
    -------
    pathlib.Path
        The path of truth.json.
    """
    root = out / "truth"
    files: dict[str, dict[str, str]] = {}
    for geom_name, geom_maps in maps.items():
        folder = root / "maps" / geom_name
        folder.mkdir(parents=True, exist_ok=True)
        files[geom_name] = {}
        for key, array in geom_maps.items():
            np.save(folder / f"{key}.npy", array, allow_pickle=False)
            files[geom_name][key] = f"maps/{geom_name}/{key}.npy"
    labels = {str(AIR_LABEL): "air (outside the phantom, noise only)"}
    labels.update({str(c.label): c.name for c in COMPARTMENTS})
    document = {
        "format_version": TRUTH_FORMAT_VERSION,
        "generator": "xnatpic phantom",
        "xnatpic_version": __version__,
        "paravision_format": "6.0.1",
        "snr": snr,
        "seed": seed,
        "study": study,
        "frequency_mhz": FREQUENCY_MHZ,
        "field_strength_t": FREQUENCY_MHZ / 42.577478518,
        "signal_scale_K": SIGNAL_SCALE,
        "conventions": _CONVENTIONS,
        "label_encoding": labels,
        "label_map_dtype": "uint8",
        "compartments": compartment_table(),
        "cest_pools": {k: asdict(v) for k, v in CEST_POOLS.items()},
        "b0_field": {
            "formula": "B0_ppm = c0 + cx*x + cy*y + cz*z + cq*(x^2 - y^2), x, y, z in mm",
            "coefficients": B0_FIELD_PPM,
        },
        "formulae": FORMULAE,
        "units": {**MAP_UNITS, "TE/TR/TI": "ms", "b": "s/mm^2", "offsets": "ppm or Hz"},
        "geometries": {name: GEOMETRIES[name].to_json() for name in maps},
        "maps": files,
        "scans": scans,
    }
    path = root / "truth.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_truth(study: str | Path) -> dict[str, Any]:
    """Return the truth.json of a phantom study folder.

    Raises
    ------
    XnatpicError
        When the folder holds no phantom truth.
    """
    path = Path(study) / "truth" / "truth.json"
    if not path.is_file():
        raise XnatpicError(f"{path}: no phantom truth here; write one with `xnatpic phantom`")
    return json.loads(path.read_text(encoding="utf-8"))


def read_truth_map(study: str | Path, geometry: str, name: str) -> np.ndarray:
    """Return one truth map, shape (slices, rows, columns) (``D``: plus (3, 3)).

    Parameters
    ----------
    study : str or pathlib.Path
        The phantom study folder.
    geometry : str
        Geometry of the scan (``truth.json["scans"][i]["geometry"]``).
    name : str
        Map name (``labels``, ``T1``, ``T2``, ``T2s``, ``ADC``, ``MD``, ``FA``, ``D``,
        ``M0``, ``B0_ppm``, ``B0_Hz``, ``cest_amine``, ``cest_amide``).

    Raises
    ------
    XnatpicError
        When the map does not exist.
    """
    path = Path(study) / "truth" / "maps" / geometry / f"{name}.npy"
    if not path.is_file():
        raise XnatpicError(f"{path}: no truth map {name!r} for geometry {geometry!r}")
    return np.load(path, allow_pickle=False)

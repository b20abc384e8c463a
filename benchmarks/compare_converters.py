"""Compare xnatpic's NIfTI geometry with brkraw 0.5.7 and dicomifier on pv6-dicomifier.

Usage (from the project root)::

    .venv/bin/python -m benchmarks.compare_converters [--study PATH] [--reference PATH]

For every reco of the study it writes xnatpic's NIfTI, converts the same reco with
brkraw's Python API (``brkraw.load(study).get_scan(n).convert(reco)``, the code path
of ``brkraw convert``; default space ``subject_ras``) and saves/reloads it, and loads
dicomifier's reference NIfTI when there is one. Every file is read the way any NIfTI
reader would (sform/qform as RAS).

The comparison is data-driven, so conventions (slice order, axis order) do not count as
errors: the signed axis permutation that maps the other converter's voxel grid onto
ours is found from the pixel data itself (best correlation of the volume means), and
the *world error* is the largest distance, over the eight corner voxels, between the
position the other file gives a voxel and the position our file gives the same voxel
(same data). Columns:

``voxel (0,0,0) LPS`` centre of the file's first voxel in DICOM LPS mm; ``axes`` the
anatomical direction in which ``i, j, k`` increase (nibabel ``aff2axcodes``);
``spacing`` the voxel size; ``grid vs ours`` the voxel mapping found from the data;
``world err`` as above; ``err if read as LPS`` the same after negating x and y of the
other file's affine (isolates errors other than an LPS/RAS mix-up); ``values`` the
least-squares factor theirs/ours (1 = same real values).

A second table compares dicomifier's reference DICOM with the positions, orientation
and PixelSpacing of the series (the reader's ``Image``, which xnatpic's DICOM writer
copies), and, when :mod:`xnatpic.dicom` is installed, with xnatpic's own classic DICOM.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from xnatpic.nifti import write_nifti_series
from xnatpic.paravision.dataset import Reco, open_dataset
from xnatpic.paravision.series import ImageSeries, load_series

__all__ = [
    "Grid",
    "Match",
    "brkraw_grids",
    "compare_dicom",
    "dicomifier_grids",
    "main",
    "match_grids",
    "our_grids",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "paravision" / "pv6-dicomifier"
LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Grid:
    """A NIfTI volume as a reader sees it.

    Attributes
    ----------
    label : str
        Where it came from (file name).
    affine : numpy.ndarray
        sform (or qform) as RAS, shape (4, 4).
    data : numpy.ndarray
        Real values, reshaped to (x, y, z, t) with every axis after z flattened in
        Fortran order.
    """

    label: str
    affine: np.ndarray
    data: np.ndarray

    @property
    def spatial_mean(self) -> np.ndarray:
        """Mean over t (insensitive to the volume order)."""
        return self.data.mean(axis=3)

    @property
    def p0_lps(self) -> np.ndarray:
        """Centre of voxel (0, 0, 0) in LPS mm."""
        return LPS @ self.affine[:3, 3]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k (mm)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def axcodes(self) -> str:
        """Anatomical direction of increasing i, j, k (e.g. ``LPS``)."""
        return "".join(nib.aff2axcodes(self.affine))


def load_grid(path: Path) -> Grid:
    """Read a NIfTI file into a :class:`Grid` (scaling applied, as nibabel does)."""
    image = nib.load(str(path))
    data = np.asarray(image.get_fdata(dtype=np.float64))
    while data.ndim < 3:
        data = data[..., None]
    data = data.reshape((*data.shape[:3], -1), order="F")
    return Grid(path.name, np.asarray(image.affine, dtype=np.float64), data)


@dataclass
class Match:
    """How another converter's grid maps onto ours.

    Attributes
    ----------
    ours, theirs : Grid
        The two files.
    perm : tuple of int
        ``our axis a`` holds ``their axis perm[a]``.
    flips : tuple of bool
        Whether our axis ``a`` runs opposite to their axis ``perm[a]``.
    correlation : float
        Correlation of the volume means after the mapping.
    world_error : float
        Largest corner distance (mm) between the two files' positions of one voxel.
    world_error_as_lps : float
        The same when the other file's affine is taken as LPS (x and y negated), i.e.
        what is left once a LPS-written-as-RAS mix-up is forgiven.
    scale : float
        Least-squares factor theirs/ours of the values.
    t_same : bool or None
        Whether volume t of theirs is volume t of ours (None when counts differ).
    """

    ours: Grid
    theirs: Grid
    perm: tuple[int, int, int]
    flips: tuple[bool, bool, bool]
    correlation: float
    world_error: float
    world_error_as_lps: float
    scale: float
    t_same: bool | None

    def describe(self) -> str:
        """Short text for the mapping (``same``, ``k reversed``, ``i<->j``...)."""
        if self.correlation < 0.99:
            return f"no match (r={self.correlation:.2f})"
        names = "ijk"
        parts = []
        if self.perm != (0, 1, 2):
            parts.append("ours " + "".join(names[a] for a in range(3)) + " = theirs "
                         + "".join(names[p] for p in self.perm))
        flipped = [names[a] for a in range(3) if self.flips[a]]
        if flipped:
            parts.append(",".join(flipped) + " reversed")
        return "; ".join(parts) or "same"


def _transform(volume: np.ndarray, perm: tuple[int, ...], flips: tuple[bool, ...]) -> np.ndarray:
    out = np.transpose(volume, perm + tuple(range(3, volume.ndim)))
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=axis)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denom) if denom > 0 else 0.0


def match_grids(ours: Grid, theirs: Grid) -> Match:
    """Find the voxel mapping between two grids from their data, and measure geometry."""
    reference = ours.spatial_mean
    mean = theirs.spatial_mean
    best: tuple[float, tuple[int, int, int], tuple[bool, bool, bool]] | None = None
    for perm in itertools.permutations(range(3)):
        if tuple(mean.shape[p] for p in perm) != reference.shape:
            continue
        for flips in itertools.product((False, True), repeat=3):
            r = _corr(_transform(mean, perm, flips), reference)
            if best is None or r > best[0]:
                best = (r, perm, flips)
    if best is None:
        return Match(ours, theirs, (0, 1, 2), (False,) * 3, 0.0, float("nan"),
                     float("nan"), float("nan"), None)
    r, perm, flips = best
    mapped = _transform(theirs.data, perm, flips)
    scale = float(np.vdot(mapped.mean(axis=3), reference)
                  / max(np.vdot(reference, reference), 1e-30))
    t_same = None
    if mapped.shape[3] == ours.data.shape[3]:
        t_same = all(
            int(np.argmax([_corr(mapped[..., t], ours.data[..., u])
                           for u in range(ours.data.shape[3])])) == t
            or _corr(mapped[..., t], ours.data[..., t]) > 0.9999
            for t in range(mapped.shape[3])
        )
    shape = np.array(mean.shape)
    errors, errors_lps = [], []
    as_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ theirs.affine
    for corner in itertools.product(*[(0, n - 1) for n in shape]):
        v = np.array(corner, dtype=np.float64)
        u = np.array([shape[perm[a]] - 1 - v[perm[a]] if flips[a] else v[perm[a]]
                      for a in range(3)])
        ours_world = (ours.affine @ np.append(u, 1.0))[:3]
        errors.append(float(np.linalg.norm((theirs.affine @ np.append(v, 1.0))[:3]
                                           - ours_world)))
        errors_lps.append(float(np.linalg.norm((as_lps @ np.append(v, 1.0))[:3]
                                               - ours_world)))
    return Match(ours, theirs, perm, flips, r, max(errors), max(errors_lps), scale, t_same)


def our_grids(reco: Reco, folder: Path) -> list[Grid]:
    """Write xnatpic's NIfTI of a reco into ``folder`` and read it back."""
    folder.mkdir(parents=True, exist_ok=True)
    written = write_nifti_series(load_series(reco), folder)
    return [load_grid(p) for p in written if p.name.endswith(".nii.gz")]


def brkraw_grids(study: Path, scan_id: str, reco_id: str, folder: Path) -> list[Grid]:
    """Convert a reco with brkraw's API, save it into ``folder`` and read it back."""
    os.environ.setdefault("BRKRAW_CONFIG_HOME", str(folder / "brkraw-config"))
    import brkraw  # test-only witness; imported late so the config home is set first

    folder.mkdir(parents=True, exist_ok=True)
    loader = brkraw.load(str(study))
    out = loader.get_scan(int(scan_id)).convert(int(reco_id))
    images = out if isinstance(out, tuple) else (out,)
    grids = []
    for k, image in enumerate(images):
        path = folder / f"brkraw_{scan_id}_{reco_id}_{k + 1}.nii.gz"
        image.to_filename(str(path))
        grids.append(load_grid(path))
    return grids


def dicomifier_grids(reference: Path, scan_id: str, reco_id: str) -> list[Grid]:
    """dicomifier's reference NIfTI files of a reco (empty when it has none)."""
    folders = [p for p in reference.glob("*/*/*")
               if re.match(rf"^{scan_id}_{reco_id}_", p.name) and p.is_dir()]
    files = sorted((f for d in folders for f in d.glob("*.nii*")),
                   key=lambda f: int(re.sub(r"\D", "", f.name.split(".")[0]) or 0))
    return [load_grid(f) for f in files]


def _best_ours(ours: list[Grid], theirs: Grid) -> Match | None:
    matches = [match_grids(o, theirs) for o in ours]
    return max(matches, key=lambda m: m.correlation) if matches else None


def _fmt(v: np.ndarray, digits: int = 3) -> str:
    return "(" + ", ".join(f"{x:.{digits}f}" for x in v + 0.0) + ")"


def nifti_rows(study: Path, reference: Path, work: Path) -> list[dict[str, str]]:
    """One row per (reco, slice package, converter)."""
    dataset = open_dataset(study)
    rows: list[dict[str, str]] = []
    for scan in dataset.scans:
        for reco in scan.recos:
            base = work / reco.label
            ours = our_grids(reco, base / "ours")
            for k, grid in enumerate(ours):
                rows.append(_row(reco.label, k, len(ours), "xnatpic", grid, None))
            others = {
                "dicomifier": dicomifier_grids(reference, scan.id, reco.number),
                "brkraw": brkraw_grids(study, scan.id, reco.number, base / "brkraw"),
            }
            for name, grids in others.items():
                for k, grid in enumerate(grids):
                    rows.append(_row(reco.label, k, len(grids), name, grid,
                                     _best_ours(ours, grid)))
    return rows


def _row(label: str, k: int, count: int, converter: str, grid: Grid,
         match: Match | None) -> dict[str, str]:
    name = label if count == 1 else f"{label} p{k + 1}"
    row = {
        "reco": name,
        "converter": converter,
        "shape": "x".join(map(str, grid.data.shape[:3])) + (
            f"x{grid.data.shape[3]}" if grid.data.shape[3] > 1 else ""),
        "voxel (0,0,0) LPS mm": _fmt(grid.p0_lps),
        "axes": grid.axcodes,
        "spacing mm": _fmt(grid.spacing, 4),
        "grid vs ours": "-",
        "world err mm": "-",
        "err if read as LPS": "-",
        "values": "-",
    }
    if match is not None:
        row["grid vs ours"] = match.describe()
        if match.correlation >= 0.99:
            row["world err mm"] = f"{match.world_error:.3f}"
            row["err if read as LPS"] = f"{match.world_error_as_lps:.3f}"
            t = "" if match.t_same in (None, True) else ", t order differs"
            row["values"] = f"x{match.scale:.6g}{t}"
    return row


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def _rescale(ds: object) -> tuple[float, float]:
    slope = getattr(ds, "RescaleSlope", None)
    intercept = getattr(ds, "RescaleIntercept", None)
    seq = getattr(ds, "PixelValueTransformationSequence", None)
    if slope is None and seq:
        slope, intercept = seq[0].RescaleSlope, seq[0].RescaleIntercept
    return float(slope if slope is not None else 1.0), float(intercept or 0.0)


def compare_dicom(series: ImageSeries, folder: Path) -> dict[str, str]:
    """Compare dicomifier's DICOM of a reco with the geometry our DICOM writer uses."""
    import pydicom

    files = _dicom_files(folder)
    ours_ps = np.array(series.pixel_spacing)
    ipp_err = iop_err = corner_err = 0.0
    worst_corr = 1.0
    spacings = set()
    for path in files:
        ds = pydicom.dcmread(str(path))
        ipp = np.array(ds.ImagePositionPatient, dtype=np.float64)
        iop = np.array(ds.ImageOrientationPatient, dtype=np.float64).reshape(2, 3)
        ps = np.array(ds.PixelSpacing, dtype=np.float64)
        spacings.add(tuple(np.round(ps, 6)))
        slope, intercept = _rescale(ds)
        pixels = ds.pixel_array.astype(np.float64) * slope + intercept
        same_place = [im for im in series.images
                      if np.linalg.norm(im.position - ipp) < 1e-3]
        candidates = same_place or series.images
        best = max(candidates, key=lambda im: _corr(series.real(im), pixels)
                   if series.real(im).shape == pixels.shape else -1.0)
        worst_corr = min(worst_corr, _corr(series.real(best), pixels)
                         if series.real(best).shape == pixels.shape else 0.0)
        ipp_err = max(ipp_err, float(np.linalg.norm(best.position - ipp)))
        iop_err = max(iop_err, float(np.abs(best.orientation[:2] - iop).max()))
        rows, cols = int(ds.Rows), int(ds.Columns)
        for r, c in ((0, cols - 1), (rows - 1, 0), (rows - 1, cols - 1)):
            # DICOM: P(r, c) = IPP + c * PixelSpacing[1] * row_dir + r * PixelSpacing[0] * col_dir
            theirs = ipp + c * ps[1] * iop[0] + r * ps[0] * iop[1]
            ours = (best.position + c * ours_ps[1] * best.orientation[0]
                    + r * ours_ps[0] * best.orientation[1])
            corner_err = max(corner_err, float(np.linalg.norm(theirs - ours)))
    return {
        "reco": series.reco.label,
        "files": str(len(files)),
        "Rows x Columns": f"{series.rows}x{series.columns}",
        "PixelSpacing dicomifier": " ".join(
            "[" + ", ".join(f"{v:.5g}" for v in s) + "]" for s in sorted(spacings)),
        "PixelSpacing ours": "[" + ", ".join(f"{v:.5g}" for v in ours_ps) + "]",
        "IPP err mm": f"{ipp_err:.2g}",
        "IOP err": f"{iop_err:.2g}",
        "far-corner err mm": f"{corner_err:.3f}",
        "pixels r": f"{worst_corr:.4f}",
    }


def our_dicom(series: ImageSeries, folder: Path) -> dict[str, str]:
    """PixelSpacing and IPP error of xnatpic's own classic DICOM (when the writer exists)."""
    try:
        from xnatpic.dicom import write_dicom_series
    except ImportError:
        return {"xnatpic DICOM PixelSpacing": "n/a", "xnatpic IPP err mm": "n/a"}
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    written = write_dicom_series(series, folder)
    spacings, worst = set(), 0.0
    positions = np.array([im.position for im in series.images])
    for path in (f for w in written for f in w.files):
        if path.suffix == ".json":
            continue
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        spacings.add(tuple(np.round(np.array(ds.PixelSpacing, dtype=np.float64), 6)))
        ipp = np.array(ds.ImagePositionPatient, dtype=np.float64)
        worst = max(worst, float(np.min(np.linalg.norm(positions - ipp, axis=1))))
    return {
        "xnatpic DICOM PixelSpacing": " ".join(
            "[" + ", ".join(f"{v:.5g}" for v in s) + "]" for s in sorted(spacings)),
        "xnatpic IPP err mm": f"{worst:.2g}",
    }


def dicom_rows(study: Path, reference: Path, work: Path) -> list[dict[str, str]]:
    """One row per series of dicomifier's reference DICOM."""
    dataset = open_dataset(study)
    rows = []
    series_dirs = sorted((p for p in reference.glob("*/*/*/*") if p.is_dir()),
                         key=lambda p: (int(p.parent.name), int(p.name)))
    for folder in series_dirs:
        scan_id, reco_id = folder.parent.name, folder.name
        reco = next(r for r in dataset.scan(scan_id).recos if r.number == reco_id)
        series = load_series(reco)
        row = compare_dicom(series, folder)
        row.update(our_dicom(series, work / f"dicom-{reco.label}"))
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, str]]) -> str:
    """Render rows as a Markdown table."""
    if not rows:
        return "(no rows)\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the NIfTI and DICOM comparison tables (Markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, default=CORPUS / "study")
    parser.add_argument("--reference", type=Path, default=CORPUS / "reference")
    parser.add_argument("--json", type=Path, help="also save the rows as JSON here")
    args = parser.parse_args(argv)
    if not args.study.is_dir():
        print(f"compare_converters: study not found at {args.study} (the corpus lives "
              "beside the project in ../shared/data/paravision)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="xnatpic-compare-") as tmp:
        nifti = nifti_rows(args.study, args.reference / "dicomifier-nifti", Path(tmp))
        dicom = dicom_rows(args.study, args.reference / "dicomifier-dicom", Path(tmp))
    print("## NIfTI: xnatpic vs dicomifier (reference files) vs brkraw 0.5.7 (default space)\n")
    print(markdown(nifti))
    print("## DICOM: dicomifier reference vs the geometry xnatpic writes\n")
    print(markdown(dicom))
    if args.json:
        args.json.write_text(json.dumps({"nifti": nifti, "dicom": dicom}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

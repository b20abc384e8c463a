"""JSON sidecar and FSL ``.bval``/``.bvec`` text of one NIfTI volume layout.

Keys follow BIDS where BIDS has one (times in seconds, angles in degrees):
``EchoTime``, ``RepetitionTime``, ``InversionTime``, ``FlipAngle`` appear when every
volume shares the value. Per-volume arrays (one element per NIfTI volume ``t``, taken
from the volume's first slice) appear whenever the value is known and the file has more
than one volume: ``EchoTimes``, ``RepetitionTimes``, ``InversionTimes``, ``FlipAngles``.
Diffusion adds ``BValues`` (s/mm²) and ``DiffusionGradients`` (unit vectors in the voxel
axes ``(i, j, k)`` of this file, ``[0, 0, 0]`` without a gradient); CEST/MT adds
``SaturationOffsetsHz`` and ``SaturationOffsetsPPM``. Inversion recovery with one
inversion before all slices (ParaVision FAIR) adds ``SliceTiming`` (BIDS: seconds from the
first slice read after the inversion to each slice ``k``; ``InversionTime`` stays the
protocol TI, the slice's effective TI is ``InversionTime + SliceTiming[k]``),
``ReadoutDuration`` (seconds, excitation to the end of the echo train) and
``InversionModes`` (``SELECTIVE`` / ``NONSELECTIVE`` per volume). ``FrameGroups`` lists
ParaVision's frame groups and ``VolumeAxes`` gives, for every axis that varies between volumes, its
index in each volume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xnatpic import __version__
from xnatpic.nifti.affine import fsl_bvec, image_space_direction
from xnatpic.nifti.volumes import VolumeLayout, shared_scaling
from xnatpic.paravision.series import Image, ImageSeries

if TYPE_CHECKING:  # de-identification (pydicom) is imported only when asked for
    from xnatpic.dicom.deidentify import DeidentifyProfile

__all__ = ["bval_bvec_text", "deidentify_sidecar", "diffusion_table", "sidecar"]

#: Image attribute (ms) → (scalar key, per-volume key), written in seconds.
_TIMES = {
    "echo_time": ("EchoTime", "EchoTimes"),
    "repetition_time": ("RepetitionTime", "RepetitionTimes"),
    "inversion_time": ("InversionTime", "InversionTimes"),
}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = " ".join(map(str, value.ravel()))
    text = str(value).strip()
    return text or None


def _constant(values: list[Any]) -> Any:
    first = values[0]
    return first if all(v == first for v in values) else None


def _round(values: list[float], digits: int = 9) -> list[float]:
    return [round(float(v), digits) for v in values]


def diffusion_table(series: ImageSeries,
                    layout: VolumeLayout) -> tuple[list[float], np.ndarray] | None:
    """b-values and image-space unit gradients ``(t, 3)`` of a layout, or None."""
    firsts = layout.first_images()
    if all(im.diffusion is None for im in firsts):
        return None
    bvals = [im.diffusion.b_value if im.diffusion is not None else 0.0 for im in firsts]
    dirs = np.array([
        image_space_direction(series.diffusion_direction_patient(im), layout.affine_lps)
        for im in firsts
    ])
    return bvals, dirs


def bval_bvec_text(series: ImageSeries, layout: VolumeLayout) -> tuple[str, str] | None:
    """FSL ``.bval`` and ``.bvec`` contents (see :func:`~xnatpic.nifti.affine.fsl_bvec`)."""
    table = diffusion_table(series, layout)
    if table is None:
        return None
    bvals, dirs = table
    bvecs = np.array([fsl_bvec(d, layout.affine_lps) for d in dirs]).reshape(-1, 3)
    bval = " ".join(f"{b:.6g}" for b in bvals) + "\n"
    bvec = "".join(" ".join(f"{v:.6f}" for v in bvecs[:, a]) + "\n" for a in range(3))
    return bval, bvec


def _acquisition(firsts: list[Image], out: dict[str, Any]) -> None:
    multi = len(firsts) > 1
    for attr, (scalar_key, array_key) in _TIMES.items():
        values = [getattr(im, attr) for im in firsts]
        if any(v is None for v in values):
            continue
        seconds = _round([v / 1000.0 for v in values])
        if _constant(seconds) is not None:
            out[scalar_key] = seconds[0]
        if multi:
            out[array_key] = seconds
    flips = [im.flip_angle for im in firsts]
    if all(f is not None for f in flips):
        if _constant(flips) is not None:
            out["FlipAngle"] = float(flips[0])
        if multi:
            out["FlipAngles"] = _round(flips)
    hz = [im.saturation_offset_hz for im in firsts]
    if all(v is not None for v in hz):
        out["SaturationOffsetsHz"] = _round(hz, 6)
        ppm = [im.saturation_offset_ppm for im in firsts]
        if all(v is not None for v in ppm):
            out["SaturationOffsetsPPM"] = _round(ppm, 6)
    components = [im.complex_component for im in firsts]
    if _constant(components) is not None:
        out["ComplexImageComponent"] = components[0]
    else:
        out["ComplexImageComponents"] = components


def _inversion(layout: VolumeLayout, out: dict[str, Any]) -> None:
    """SliceTiming, ReadoutDuration and InversionModes of a FAIR series."""
    firsts = layout.first_images()
    timings = [im.inversion for im in firsts]
    if any(t is None for t in timings):
        return
    delays = [column[0].inversion.slice_delay if column[0].inversion else None
              for column in layout.grid]
    if all(d is not None for d in delays):
        out["SliceTiming"] = _round([d / 1000.0 for d in delays])
    readouts = [t.readout for t in timings]
    if all(r is not None for r in readouts) and _constant(readouts) is not None:
        out["ReadoutDuration"] = round(float(readouts[0]) / 1000.0, 9)
    modes = [t.mode for t in timings]
    if all(m is not None for m in modes):
        out["InversionModes"] = modes


def deidentify_sidecar(out: dict[str, Any], series: ImageSeries,
                       profile: DeidentifyProfile) -> dict[str, Any]:
    """``out`` de-identified: descriptions cleaned (or dropped), every string cleaned."""
    from xnatpic.dicom.deidentify_text import clean_value, reco_identity_tokens

    tokens = reco_identity_tokens(series.reco)
    kept = {k: v for k, v in out.items()
            if profile.keep_descriptions or k not in ("ProtocolName", "FrameGroups")}
    cleaned = clean_value(kept, tokens)
    cleaned["PatientIdentityRemoved"] = "YES"
    cleaned["DeidentificationMethod"] = "xnatpic animal profile (docs/deidentification.md)"
    return cleaned


def sidecar(series: ImageSeries, layout: VolumeLayout,
            deidentify: DeidentifyProfile | None = None) -> dict[str, Any]:
    """The JSON sidecar of one NIfTI file (see the module docstring for the keys)."""
    visu = series.visu
    firsts = layout.first_images()
    reco = series.reco
    out: dict[str, Any] = {
        "Manufacturer": "Bruker BioSpin",
        "ConversionSoftware": "xnatpic",
        "ConversionSoftwareVersion": __version__,
        "ScanId": reco.scan.id,
        "RecoId": reco.number,
        "ProtocolName": _text(visu.get("VisuAcquisitionProtocol")),
        "SequenceName": _text(visu.get("VisuAcqSequenceName")),
        "SoftwareVersions": _text(visu.get("VisuCreatorVersion")),
    }
    if series.imaging_frequency:
        out["ImagingFrequency"] = round(float(series.imaging_frequency), 6)
    if series.package_count > 1:
        out["SlicePackage"] = layout.package + 1
        out["SlicePackageCount"] = series.package_count
    orientation = layout.grid[0][0].orientation
    out["ImageOrientationPatientDICOM"] = _round(list(orientation[:2].ravel()), 6)
    out["PixelSpacing"] = _round(list(series.pixel_spacing), 9)
    if np.isfinite(series.slice_thickness):
        out["SliceThickness"] = round(float(series.slice_thickness), 9)
    out["DataScaling"] = (
        "stored x VisuCoreDataSlope + VisuCoreDataOffs per frame, float32"
        if shared_scaling(layout) is None else
        "stored values in their own type; scl_slope = VisuCoreDataSlope, scl_inter = "
        "VisuCoreDataOffs (one for every image)")
    _acquisition(firsts, out)
    _inversion(layout, out)
    table = diffusion_table(series, layout)
    if table is not None:
        bvals, dirs = table
        out["BValues"] = _round(bvals, 6)
        out["DiffusionGradients"] = [_round(list(d + 0.0), 6) for d in dirs]
    out["FrameGroups"] = [
        {"Id": g.id, "Name": g.name, "Size": g.size, "Comment": g.comment}
        for g in series.layout.groups
    ]
    out["VolumeAxes"] = {
        name: [im.axes.get(name) for im in firsts] for name in layout.volume_axes
    }
    out["VolumeOrder"] = (
        "t = images at one slice position in 2dseq order (first frame group fastest)"
    )
    out = {k: v for k, v in out.items() if v is not None}
    return out if deidentify is None else deidentify_sidecar(out, series, deidentify)

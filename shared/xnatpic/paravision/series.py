"""A reco resolved into a series of 2D images with everything a writer needs.

:func:`load_series` combines the 2dseq, the frame groups, the geometry and the
per-frame acquisition parameters into an :class:`ImageSeries`: one :class:`Image` per
2D image (a 3D frame contributes one image per slice), in 2dseq order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from xnatpic.arrays import median
from xnatpic.errors import ParaVisionError, UnsupportedDataError
from xnatpic.paravision.acquisition import (
    M0_THRESHOLD_PPM,
    DiffusionEncoding,
    InversionTiming,
    diffusion_per_frame,
    imaging_frequency_mhz,
    inversion_timing,
    saturation_offsets_hz,
    scalar_per_frame,
)
from xnatpic.paravision.dataset import Reco
from xnatpic.paravision.framegroups import FrameLayout, frame_layout
from xnatpic.paravision.geometry import (
    CoreGeometry,
    core_geometry,
    orientation_matrix,
    require_position,
    slice_packages,
)
from xnatpic.paravision.jcamp import ParameterSet
from xnatpic.paravision.twodseq import FrameStack, word_dtype

__all__ = ["Image", "ImageSeries", "classify_reco", "load_series"]

#: VisuCoreFrameType → DICOM ComplexImageComponent.
COMPLEX_COMPONENTS: dict[str, str] = {
    "MAGNITUDE_IMAGE": "MAGNITUDE",
    "REAL_IMAGE": "REAL",
    "IMAGINARY_IMAGE": "IMAGINARY",
    "PHASE_IMAGE": "PHASE",
    "MIXED_IMAGE": "MIXED",
}

#: Dimension descriptions that mark non-image data.
_NON_IMAGE_DIMS = ("spectroscopic", "temporal")


@dataclass(frozen=True)
class Image:
    """One 2D image of a series, with its geometry and acquisition parameters.

    Attributes
    ----------
    index : int
        Position in the series (0-based, 2dseq order).
    frame : int
        2dseq frame it comes from.
    slice_in_frame : int
        Slice within a 3D frame (0 for 2D frames).
    axes : dict of str to int
        Index along every frame-group axis (``slice``, ``echo``, ``repetition``...).
    position : numpy.ndarray, shape (3,)
        Centre of the first stored voxel (top-left), mm, patient frame.
    orientation : numpy.ndarray, shape (3, 3)
        Unit rows: row direction, column direction, slice normal (patient frame).
    slice_package : int
        Index of the imaging plane this image lies in.
    echo_time, repetition_time, inversion_time : float or None
        ms.
    echo_number : int
        1-based echo number.
    flip_angle : float or None
        Degrees.
    diffusion : DiffusionEncoding or None
        b-value and direction (gradient frame) of diffusion-weighted frames.
    saturation_offset_hz, saturation_offset_ppm : float or None
        CEST/MT saturation offset.
    repetition : int
        0-based index along repetition-like axes (cycle, movie).
    acquisition_offset : float or None
        Start of this frame's repetition in seconds after the scan started, for
        repeated acquisitions (FG_CYCLE): repetition × VisuAcqScanTime / repetitions.
    slope, intercept : float
        Real value = stored × slope + intercept.
    complex_component : str
        DICOM ComplexImageComponent (MAGNITUDE, REAL, IMAGINARY, PHASE).
    comment : str or None
        ParaVision's VisuFGElemComment for this frame, when present.
    inversion : InversionTiming or None
        Slice delay after the inversion, readout duration and FAIR mode (FAIR scans).
    """

    index: int
    frame: int
    slice_in_frame: int
    axes: dict[str, int]
    position: np.ndarray
    orientation: np.ndarray
    slice_package: int
    echo_time: float | None
    echo_number: int
    repetition_time: float | None
    inversion_time: float | None
    flip_angle: float | None
    diffusion: DiffusionEncoding | None
    saturation_offset_hz: float | None
    saturation_offset_ppm: float | None
    repetition: int
    acquisition_offset: float | None
    slope: float
    intercept: float
    complex_component: str
    comment: str | None
    inversion: InversionTiming | None = None

    @property
    def effective_inversion_time(self) -> float | None:
        """The protocol TI plus the slice's delay after the inversion (ms), when known."""
        if self.inversion_time is None:
            return None
        delay = None if self.inversion is None else self.inversion.slice_delay
        return self.inversion_time + (delay or 0.0)

    @property
    def is_m0(self) -> bool:
        """True for a far off-resonance (|offset| ≥ 20 ppm) CEST reference frame."""
        return self.saturation_offset_ppm is not None and abs(
            self.saturation_offset_ppm) >= M0_THRESHOLD_PPM


@dataclass(eq=False)
class ImageSeries:
    """A reco as a series of 2D images.

    Attributes
    ----------
    reco : Reco
        The source reco (its scan and study give the parameter files).
    geometry : CoreGeometry
        Matrix and voxel sizes.
    layout : FrameLayout
        The frame groups.
    stack : FrameStack
        Lazy access to the 2dseq.
    images : list of Image
        Every 2D image, in 2dseq order.
    imaging_frequency : float or None
        f0 in MHz.
    """

    reco: Reco
    geometry: CoreGeometry
    layout: FrameLayout
    stack: FrameStack
    images: list[Image] = field(default_factory=list)
    imaging_frequency: float | None = None

    @property
    def visu(self) -> ParameterSet:
        """The reco's visu_pars."""
        return self.reco.visu_pars

    @property
    def rows(self) -> int:
        """Rows of every image."""
        return self.geometry.rows

    @property
    def columns(self) -> int:
        """Columns of every image."""
        return self.geometry.columns

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """DICOM PixelSpacing order: (row spacing, column spacing) in mm."""
        return (self.geometry.row_spacing, self.geometry.column_spacing)

    @property
    def slice_thickness(self) -> float:
        """Slice thickness in mm."""
        return self.geometry.frame_thickness

    @property
    def is_float(self) -> bool:
        """True when the 2dseq stores 32-bit floats."""
        return self.stack.dtype.kind == "f"

    @cached_property
    def package_count(self) -> int:
        """Number of distinct imaging planes."""
        return 1 + max(im.slice_package for im in self.images)

    def package_images(self, package: int) -> list[Image]:
        """The images of one slice package, in series order."""
        return [im for im in self.images if im.slice_package == package]

    def spacing_between_slices(self, package: int = 0) -> float | None:
        """Centre-to-centre distance of adjacent slices of a package (None for one slice)."""
        images = self.package_images(package)
        normal = images[0].orientation[2]
        heights = sorted({round(float(np.dot(im.position, normal)), 6) for im in images})
        if len(heights) < 2:
            return None
        return median(np.diff(heights))

    def stored(self, image: Image) -> np.ndarray:
        """Stored values of one image, shape (rows, columns), native byte order."""
        if self.geometry.dim == 3:
            return self.stack.stored_plane(image.frame, image.slice_in_frame)
        return self.stack.stored_frame(image.frame)

    def real(self, image: Image, dtype: type = np.float64) -> np.ndarray:
        """Real values (stored × slope + intercept) of one image."""
        values = self.stored(image).astype(dtype)
        return values * dtype(image.slope) + dtype(image.intercept)

    def diffusion_direction_patient(self, image: Image) -> np.ndarray | None:
        """Unit diffusion gradient direction of ``image`` in the patient frame.

        ParaVision gives PVM_DwGradVec in the (read, phase, slice) gradient frame.
        The image's row axis is the read direction and its column axis the phase
        direction unless VisuCoreTransposition swaps them; the orientation rows map those
        axes into the patient frame.
        """
        if image.diffusion is None or image.diffusion.direction_logical is None:
            return None
        logical = np.array(image.diffusion.direction_logical, dtype=np.float64)
        if _transposed(self.visu, image.frame):
            logical = logical[[1, 0, 2]]
        direction = image.orientation.T @ logical
        return direction / np.linalg.norm(direction)


def _transposed(visu: ParameterSet, frame: int) -> bool:
    value = visu.get("VisuCoreTransposition")
    if value is None:
        return False
    flags = np.atleast_1d(np.asarray(value)).ravel()
    return bool(flags[frame % flags.size]) if flags.size else False


def classify_reco(reco: Reco) -> str | None:
    """Return why a reco is not an image series, or None when it is one.

    Spectroscopic data (VisuCoreDimDesc ``spectroscopic``, CSI, MRS), recos without
    2dseq and one-dimensional data are not images.
    """
    if not reco.data_path.is_file():
        return f"{reco.path}: no 2dseq (nothing was reconstructed)"
    visu = reco.visu_pars
    dims = visu.get("VisuCoreDimDesc")
    dims = [] if dims is None else [str(d) for d in np.atleast_1d(dims)]
    for d in dims:
        if d in _NON_IMAGE_DIMS:
            seq = visu.get("VisuAcqSequenceName", "")
            return f"{d} data ({seq or 'VisuCoreDimDesc ' + ' '.join(dims)}): not an image"
    if int(visu.get("VisuCoreDim", 2)) < 2:
        return "one-dimensional data: not an image"
    return None


def load_series(reco: Reco) -> ImageSeries:
    """Resolve a reco into an :class:`ImageSeries`.

    Raises
    ------
    UnsupportedDataError
        For spectroscopic or otherwise non-image data.
    ParaVisionError
        For missing or inconsistent parameters, and a 2dseq whose size does not match.
    """
    reason = classify_reco(reco)
    if reason is not None:
        raise UnsupportedDataError(f"{reco.path}: {reason}")
    visu = reco.visu_pars
    method, acqp = reco.scan.method, reco.scan.acqp
    geometry = core_geometry(visu)
    frame_count = int(visu.require("VisuCoreFrameCount"))
    dtype = word_dtype(str(visu.get("VisuCoreWordType", "_32BIT_SGN_INT")),
                       str(visu.get("VisuCoreByteOrder", "littleEndian")), path=str(visu.path))
    slopes = _per_frame_array(visu, "VisuCoreDataSlope", frame_count, 1.0)
    offsets = _per_frame_array(visu, "VisuCoreDataOffs", frame_count, 0.0)
    frame_shape = ((geometry.rows, geometry.columns) if geometry.dim == 2
                   else (geometry.slices_per_frame, geometry.rows, geometry.columns))
    stack = FrameStack(reco.data_path, dtype, frame_shape, frame_count, slopes, offsets)
    layout = frame_layout(visu, frame_count)
    f0 = imaging_frequency_mhz(visu, method, acqp)
    series = ImageSeries(reco, geometry, layout, stack, imaging_frequency=f0)
    series.images = _images(series, method, acqp)
    return series


def _complex_component(layout: FrameLayout, frame: int, frame_type: str) -> str:
    """MAGNITUDE/REAL/IMAGINARY/PHASE of a frame.

    A complex reco stores real and imaginary parts as the two elements of an FG_COMPLEX
    group, and its VisuCoreFrameType then says COMPLEX_IMAGE for both.
    """
    part = layout.index(frame, "complex")
    if part is not None and frame_type not in COMPLEX_COMPONENTS:
        return ("REAL", "IMAGINARY")[part] if part < 2 else "MIXED"
    return COMPLEX_COMPONENTS.get(frame_type, "MAGNITUDE")


def _repetition_period(visu: ParameterSet, layout: FrameLayout) -> float | None:
    """Seconds between repetitions (FG_CYCLE), from the scan time, or None."""
    cycle = layout.group("repetition")
    scan_time = visu.get("VisuAcqScanTime")
    if cycle is None or cycle.size < 2 or scan_time is None:
        return None
    seconds = float(np.atleast_1d(np.asarray(scan_time, dtype=np.float64))[0]) / 1000.0
    return seconds / cycle.size if seconds > 0 else None


def _per_frame_array(visu: ParameterSet, name: str, frame_count: int,
                     default: float) -> np.ndarray:
    if name not in visu:
        return np.full(frame_count, default)
    values = np.atleast_1d(np.asarray(visu[name], dtype=np.float64)).ravel()
    if values.size == 1:
        return np.full(frame_count, values[0])
    if values.size != frame_count:
        raise ParaVisionError(
            f"{visu.path}: {name} has {values.size} values for {frame_count} frames"
        )
    return values


def _images(series: ImageSeries, method: ParameterSet | None,
            acqp: ParameterSet | None) -> list[Image]:
    visu, layout, geometry = series.visu, series.layout, series.geometry
    n = layout.frame_count
    require_position(visu)
    positions = layout.per_frame(visu, "VisuCorePosition")
    orientations = layout.per_frame(visu, "VisuCoreOrientation")
    if positions is None or orientations is None:
        raise ParaVisionError(
            f"{visu.path}: cannot assign VisuCorePosition/VisuCoreOrientation to the "
            f"{n} frames (no frame group or element count matches)"
        )
    reverse = str(visu.get("VisuCoreDiskSliceOrder", "")) == "disk_reverse_slice_order"
    slice_group = layout.group("slice")
    te = scalar_per_frame(layout, visu, "VisuAcqEchoTime")
    tr = scalar_per_frame(layout, visu, "VisuAcqRepetitionTime")
    ti = scalar_per_frame(layout, visu, "VisuAcqInversionTime")
    flip = scalar_per_frame(layout, visu, "VisuAcqFlipAngle")
    if all(v is None for v in tr) and method is not None and "MultiRepTime" in method:
        tr = scalar_per_frame(layout, method, "MultiRepTime")
    diffusion = diffusion_per_frame(layout, visu, method)
    sat_hz = saturation_offsets_hz(layout, method, series.imaging_frequency, visu=visu,
                                   acqp=acqp)
    timing = inversion_timing(layout, visu, method, acqp)
    comments = layout.per_frame(visu, "VisuFGElemComment")
    frame_types = layout.per_frame(visu, "VisuCoreFrameType") or ["MAGNITUDE_IMAGE"] * n
    rep_axes = [k for k, g in enumerate(layout.groups)
                if g.name in ("repetition", "movie", "frame")]
    period = _repetition_period(visu, layout)

    images: list[Image] = []
    unique: dict[bytes, np.ndarray] = {}  # frames mostly share one orientation
    oriented = []
    for o in orientations:
        key = np.asarray(o, dtype=np.float64).tobytes()
        if key not in unique:
            unique[key] = orientation_matrix(o, path=str(visu.path))
        oriented.append(unique[key].copy())
    for frame in range(n):
        source = frame
        if reverse and slice_group is not None:
            # Slices stored in reverse order: the k-th stored slice is the (n-1-k)-th
            # element of the position/orientation arrays.
            k = layout.index(frame, "slice") or 0
            mirrored = layout.indices[frame].copy()
            mirrored[layout.groups.index(slice_group)] = slice_group.size - 1 - k
            source = int(np.ravel_multi_index(
                tuple(mirrored), [g.size for g in layout.groups], order="F"))
        orientation = oriented[source]
        position0 = np.asarray(positions[source], dtype=np.float64).ravel()[:3]
        axes = {g.name: int(layout.indices[frame, k]) for k, g in enumerate(layout.groups)}
        repetition = 0
        if rep_axes:
            sizes = [layout.groups[k].size for k in rep_axes]
            repetition = int(np.ravel_multi_index(
                tuple(int(layout.indices[frame, k]) for k in rep_axes), sizes, order="F"))
        ppm = None
        if sat_hz[frame] is not None and series.imaging_frequency:
            ppm = sat_hz[frame] / series.imaging_frequency
        comment = comments[frame] if comments is not None else None
        for z in range(geometry.slices_per_frame):
            zz = geometry.slices_per_frame - 1 - z if (reverse and geometry.dim == 3) else z
            position = position0 + zz * geometry.frame_thickness * orientation[2]
            image_axes = dict(axes)
            if geometry.dim == 3:
                image_axes["slice"] = z
            images.append(Image(
                index=len(images), frame=frame, slice_in_frame=z, axes=image_axes,
                position=position, orientation=orientation, slice_package=0,
                echo_time=te[frame], echo_number=(axes.get("echo", 0) + 1),
                repetition_time=tr[frame], inversion_time=ti[frame], flip_angle=flip[frame],
                diffusion=diffusion[frame], saturation_offset_hz=sat_hz[frame],
                saturation_offset_ppm=ppm, repetition=repetition,
                acquisition_offset=None if period is None else
                period * (layout.index(frame, "repetition") or 0),
                slope=float(series.stack.slopes[frame]),
                intercept=float(series.stack.offsets[frame]),
                complex_component=_complex_component(layout, frame, str(frame_types[frame])),
                comment=None if comment is None else str(comment),
                inversion=timing[source],
            ))
    packages = slice_packages([im.orientation for im in images])
    return [
        replace(im, slice_package=p) for im, p in zip(images, packages, strict=True)
    ]

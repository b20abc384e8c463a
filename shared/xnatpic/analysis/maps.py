"""The quantitative maps of each step, computed from :class:`AnalysisSeries` volumes.

Each ``compute_*`` function takes the series (and options), fits the model of
:mod:`xnatpic.models` inside the foreground mask and returns a :class:`StepResult`: named
maps with their units, the mask, the failed voxels and the parameters used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xnatpic.analysis.errors import BadSeriesError, StepFailedError
from xnatpic.analysis.inputs import AnalysisSeries
from xnatpic.analysis.inversion import fit_ir_series
from xnatpic.analysis.mask import SNR_FLOOR, SignalMask, foreground_mask, signal_mask
from xnatpic.analysis.noise import estimate_noise
from xnatpic.analysis.sidecar import echo_train_duration, nominal_refocusing_angle
from xnatpic.arrays import distinct, median
from xnatpic.errors import FittingError
from xnatpic.models import (
    M0_THRESHOLD_PPM,
    b0_map,
    fit_adc,
    fit_dti,
    fit_t1_vtr,
    fit_t2,
    fit_t2star,
    normalize_zspectrum,
)
from xnatpic.models.cest import (
    cest_readouts,
    mtr_asym_standard_error,
    repetition_frames,
    standard_error,
)
from xnatpic.models.epg import fit_t2_epg
from xnatpic.models.results import VoxelStatus, voxel_status

__all__ = [
    "UNITS",
    "MapImage",
    "StepResult",
    "compute_adc",
    "compute_cest",
    "compute_t1",
    "compute_t2",
    "compute_t2star",
]

_log = logging.getLogger(__name__)

#: Default offsets (ppm) of the ratiometric index: iopamidol's two amide pools, 4.2 and
#: 5.5 ppm (Longo et al. 2011, doi:10.1002/mrm.22608; Pagel's acidoCEST papers).
RATIO_PPM = (4.2, 5.5)

#: Unit label -> (UCUM code, code meaning).
UNITS: dict[str, tuple[str, str]] = {
    "ms": ("ms", "millisecond"),
    "mm²/s": ("mm2/s", "square millimeter per second"),
    "ppm": ("[ppm]", "parts per million"),
    "ratio": ("1", "no units"),
    "a.u.": ("{a.u.}", "arbitrary unit"),
    "mL/100g/min": ("mL/(100.g)/min", "milliliter per 100 gram per minute"),
}


@dataclass
class MapImage:
    """One output map.

    Attributes
    ----------
    name : str
        File stem and DICOM series description suffix (``T2``, ``MTRasym_3.5ppm``...).
    values : ndarray, shape (X, Y, Z) or (X, Y, Z, C)
        Map values, NaN outside the mask and where the fit failed.
    unit : str
        A key of :data:`UNITS`.
    description : str
        What the map is.
    primary : bool
        Written as DICOM and previewed (secondary maps go to NIfTI only).
    image_type : str
        Value 3 of ImageType for the DICOM series (``T2 MAP``, ``DIFFUSION MAP``...).
    status : ndarray of uint8, shape (X, Y, Z), optional
        :class:`~xnatpic.models.results.VoxelStatus` per voxel (written as
        ``<name>_status.nii.gz``, counted in the statistics); default: fitted where the
        value is finite.
    spectrum : bool
        A spectrum along the 4th axis (CEST Z-spectra), not a map to compare: role
        ``spectrum`` in stats.json (see :attr:`role`).
    """

    name: str
    values: np.ndarray
    unit: str
    description: str
    primary: bool = True
    image_type: str = "OTHER"
    status: np.ndarray | None = None
    spectrum: bool = False

    @property
    def role(self) -> str:
        """``primary`` (a result), ``byproduct`` (fit by-products: S0, M0, R², the
        precision maps...) or ``spectrum`` (Z-spectra): what a summary compares."""
        if self.spectrum:
            return "spectrum"
        return "primary" if self.primary and not self.name.endswith("_precision") \
            else "byproduct"


@dataclass
class StepResult:
    """What a step computed.

    Attributes
    ----------
    step : str
    series : list of AnalysisSeries
        The series used (the first is the reference geometry).
    maps : list of MapImage
    mask : ndarray of bool, shape (X, Y, Z)
    failed : ndarray of bool, shape (X, Y, Z)
        Mask voxels whose fit failed.
    parameters : dict
        Options and model details (for provenance).
    outcome : {"complete", "not enough signal"}
        ``"not enough signal"``: the noise gate found that the data cannot support the map
        (no headline number is reported; the step exits with
        :data:`xnatpic.analysis.runner.EXIT_NOT_ENOUGH_SIGNAL`).
    outcome_reason : str
        Why, in one sentence (empty when complete).
    noise : dict
        The noise estimate and gate figures (:func:`xnatpic.analysis.noise.noise_gate`).
    """

    step: str
    series: list[AnalysisSeries]
    maps: list[MapImage]
    mask: np.ndarray
    failed: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)
    outcome: str = "complete"
    outcome_reason: str = ""
    noise: dict[str, Any] = field(default_factory=dict)


def _mask(series: AnalysisSeries, threshold: float | None) -> np.ndarray:
    mask = foreground_mask(series.data, threshold=threshold)
    if not mask.any():
        raise StepFailedError(f"{series.source}: the foreground mask is empty (threshold "
                              f"{threshold or 'Otsu'}); lower --threshold")
    _log.info("mask: %d of %d voxels", int(mask.sum()), mask.size)
    return mask


def _gate(series: AnalysisSeries, threshold: float | None, snr_floor: float) -> SignalMask:
    """The anatomy mask with its noise gate (:func:`xnatpic.analysis.mask.signal_mask`)."""
    gate = signal_mask(series.data, threshold=threshold, snr_floor=snr_floor)
    if not gate.mask.any():
        raise StepFailedError(f"{series.source}: the foreground mask is empty (threshold "
                              f"{threshold or 'Otsu'}); lower --threshold")
    _log.info("mask: %d of %d voxels, %d below the SNR floor %g (noise sigma %s, %s)",
              int(gate.mask.sum()), gate.mask.size, int(gate.no_signal.sum()), snr_floor,
              "unknown" if gate.noise.sigma is None else f"{gate.noise.sigma:.4g}",
              gate.noise.method)
    return gate


def _gated_result(step: str, series: list[AnalysisSeries], maps: list[MapImage],
                  gate: SignalMask, params: dict[str, Any]) -> StepResult:
    """A step result with the gate's mask, outcome and figures; failed = failed statuses."""
    failed = np.zeros(gate.mask.shape, dtype=bool)
    for image in maps:
        if image.status is not None:
            failed |= image.status >= VoxelStatus.FAILED_INPUT
    outcome = "complete" if gate.enough_signal else "not enough signal"
    if not gate.enough_signal:
        _log.warning("%s: not enough signal: %s", step, gate.reason())
    return StepResult(step, series, maps, gate.mask, failed & gate.mask,
                      {**params, "snr_floor": gate.snr_floor}, outcome=outcome,
                      outcome_reason=gate.reason(), noise=gate.summary())


def _fit(what: str, series: AnalysisSeries, call: Any) -> Any:
    """Run a model fit; non-finite intermediate values of failing voxels are flagged by the
    model (status), so numpy's floating-point warnings are silenced."""
    try:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return call()
    except FittingError as exc:
        raise StepFailedError(f"{series.source}: {what} fit impossible: {exc}") from exc


def _check_failed(failed: np.ndarray, mask: np.ndarray, series: AnalysisSeries,
                  what: str) -> None:
    n_failed = int((failed & mask).sum())
    if n_failed == int(mask.sum()):
        raise StepFailedError(f"{series.source}: the {what} fit failed in every one of the "
                              f"{n_failed} foreground voxels; check the series")
    if n_failed:
        _log.warning("%s: %d of %d foreground voxels failed", what, n_failed, int(mask.sum()))


def _decay(step: str, series: AnalysisSeries, *, method: str, threshold: float | None,
           offset: bool, drop_first_echo: bool, star: bool,
           snr_floor: float = SNR_FLOOR) -> StepResult:
    te = series.te
    if np.isnan(te).any() or distinct(te).size < 2:
        raise BadSeriesError(f"{series.source}: {step} needs several echo times, found "
                             f"{series.distinct('te').tolist()} ms")
    if method == "epg":
        if star or offset or drop_first_echo:
            raise BadSeriesError(f"{series.source}: method epg is for T2 of a CPMG train "
                                 "(t2map), without --offset or --drop-first-echo")
        return _t2_epg(series, te, threshold=threshold, snr_floor=snr_floor)
    gate = _gate(series, threshold, snr_floor)
    fit_fn = fit_t2star if star else fit_t2
    fit = _fit("T2*" if star else "T2", series, lambda: fit_fn(
        series.data, te, method=method, offset=offset, drop_first_echo=drop_first_echo,
        mask=gate.fit_mask))
    name = "T2star" if star else "T2"
    if gate.enough_signal:
        _check_failed(fit.failed, gate.fit_mask, series, name)
    t2 = fit.t2star if star else fit.t2
    status = voxel_status(fit.status, mask=gate.mask, no_signal=gate.no_signal)
    model = _DECAY_MODELS[method] + (" with a constant offset" if offset else "")
    maps = [
        MapImage(name, t2, "ms", f"{'T2*' if star else 'T2'} ({model})",
                 image_type="T2 MAP", status=status),
        MapImage("S0", fit.s0, "a.u.", "signal at TE = 0", primary=False),
        MapImage("R_squared", fit.r_squared, "ratio", "coefficient of determination",
                 primary=False),
    ]
    params = {"method": method, "model": model, "model_reason": _DECAY_REASONS[method],
              "offset": offset, "drop_first_echo": drop_first_echo,
              "threshold": threshold, "echo_times_ms": te.tolist()}
    return _gated_result(step, [series], maps, gate, params)


#: Decay fit method -> the model it fits, and why one would choose it.
_DECAY_MODELS = {
    "nlls": "mono-exponential, non-linear least squares",
    "loglinear": "mono-exponential, weighted log-linear",
    "arlo": "mono-exponential, ARLO",
}
_DECAY_REASONS = {
    "nlls": "default: unbiased under Gaussian noise at any SNR; assumes ideal refocusing "
            "(use --method epg when stimulated echoes matter)",
    "loglinear": "requested: fast closed form; biased where the signal nears the noise",
    "arlo": "requested: fast closed form for equally spaced echoes",
}


def _t2_epg(series: AnalysisSeries, te: np.ndarray, *, threshold: float | None,
            snr_floor: float) -> StepResult:
    """T2 with stimulated-echo compensation (:func:`xnatpic.models.epg.fit_t2_epg`)."""
    gate = _gate(series, threshold, snr_floor)
    fit = _fit("T2 (EPG)", series, lambda: fit_t2_epg(series.data, te, mask=gate.fit_mask))
    if gate.enough_signal:
        _check_failed(fit.failed, gate.fit_mask, series, "T2")
    status = voxel_status(fit.status, mask=gate.mask, no_signal=gate.no_signal)
    nominal = nominal_refocusing_angle(series.source)
    fitted = fit.angle[gate.fit_mask & ~fit.failed]
    median_angle = median(fitted) if fitted.size else None
    model = ("stimulated-echo EPG (CPMG, refocusing angle fitted per voxel, no slice "
             "profile, T1 1000 ms fixed)")
    maps = [
        MapImage("T2", fit.t2, "ms", f"T2 ({model})", image_type="T2 MAP", status=status),
        MapImage("RefocusingAngle", fit.angle.astype(np.float32), "a.u.",
                 "effective refocusing angle (degrees)", primary=False),
        MapImage("S0", fit.s0, "a.u.", "echo-train amplitude", primary=False),
        MapImage("R_squared", fit.r_squared, "ratio", "coefficient of determination",
                 primary=False),
    ]
    reason = ("requested (--method epg): refocusing below 180 degrees (B1, slice profile) "
              "adds stimulated echoes that bias a mono-exponential T2; median fitted angle "
              f"{'-' if median_angle is None else f'{median_angle:.1f}'} degrees, nominal "
              f"{'unknown' if nominal is None else f'{nominal:g}'}")
    params = {"method": "epg", "model": model, "model_reason": reason,
              "nominal_refocusing_angle_deg": nominal,
              "median_refocusing_angle_deg": median_angle, "threshold": threshold,
              "echo_times_ms": te.tolist()}
    return _gated_result("t2map", [series], maps, gate, params)


def compute_t2(series: AnalysisSeries, *, method: str = "nlls", threshold: float | None = None,
               offset: bool = False, drop_first_echo: bool = False,
               snr_floor: float = SNR_FLOOR) -> StepResult:
    """T2 map of a multi-echo spin-echo series (:func:`xnatpic.models.fit_t2`)."""
    return _decay("t2map", series, method=method, threshold=threshold, offset=offset,
                  drop_first_echo=drop_first_echo, star=False, snr_floor=snr_floor)


def compute_t2star(series: AnalysisSeries, *, method: str = "nlls",
                   threshold: float | None = None, offset: bool = False,
                   drop_first_echo: bool = False, snr_floor: float = SNR_FLOOR) -> StepResult:
    """T2* map of a multi-gradient-echo series (:func:`xnatpic.models.fit_t2star`)."""
    return _decay("t2starmap", series, method=method, threshold=threshold, offset=offset,
                  drop_first_echo=drop_first_echo, star=True, snr_floor=snr_floor)


_T1_MODELS = {"vtr": "variable TR, saturation recovery", "ir": "inversion recovery"}


def compute_t1(series: AnalysisSeries, *, method: str, threshold: float | None = None,
               ir_model: str = "auto", inversion_efficiency: float = 2.0,
               inversion_factor: float = 1.0, snr_floor: float = SNR_FLOOR,
               echo_train_ms: float | None = None) -> StepResult:
    """T1 map from a variable-TR (``method="vtr"``) or inversion-recovery (``"ir"``) series.

    Parameters
    ----------
    echo_train_ms : float, optional
        VTR: the readout train subtracted from every TR (the recovery time of RARE-VTR);
        None (default): from the acquisition
        (:func:`xnatpic.analysis.sidecar.echo_train_duration`); 0: the nominal TR.
    snr_floor : float
        The noise gate's SNR floor (VTR and IR; :func:`xnatpic.analysis.mask.signal_mask`).
    ir_model : {"auto", "timed", "timed-free", "three", "two"}
        Inversion-recovery model (:data:`xnatpic.analysis.inversion.IR_MODELS`): ``timed``
        uses the per-frame timing (effective TI per slice, TR, readout;
        :func:`xnatpic.models.inversion.fit_t1_ir_timed`); ``auto`` fits it with the
        inversion factor free with 4 or more TIs, fixed with 3. FAIR selective and
        non-selective images are fitted separately; ``T1`` is the non-selective one.
    inversion_efficiency : float
        The fixed inversion efficiency of the legacy two-parameter model (2: perfect).
    inversion_factor : float
        The fixed inversion factor of the timed model (1: perfect inversion).
    """
    if method == "vtr":
        return _t1_vtr(series, threshold=threshold, snr_floor=snr_floor,
                       echo_train_ms=echo_train_ms)
    if method != "ir":
        raise BadSeriesError(f"unknown T1 method {method!r}; use vtr or ir")
    gate = _gate(series, threshold, snr_floor)
    ir = fit_ir_series(series, gate.fit_mask, ir_model=ir_model,
                       inversion_factor=inversion_factor,
                       inversion_efficiency=inversion_efficiency)
    fit = ir.main
    if gate.enough_signal:
        _check_failed(fit.failed, gate.fit_mask, series, "T1")
    images = ", non-selective FAIR images" if len(ir.fits) > 1 else ""
    maps = [
        MapImage("T1", fit.t1, "ms", f"T1 ({_T1_MODELS[method]}, {ir.model} model{images})",
                 image_type="T1 MAP",
                 status=voxel_status(fit.status, mask=gate.mask, no_signal=gate.no_signal)),
        MapImage("S0", fit.a, "a.u.", "fully relaxed signal (M0)", primary=False),
    ]
    if ir.model in ("three", "timed-free"):
        maps.append(MapImage("inversion_efficiency",
                             fit.inversion_efficiency.astype(np.float32), "ratio",
                             "-b / a (2 for a perfect inversion)", primary=False))
    maps += [MapImage(f"T1_{mode.lower()}", other.t1, "ms",
                      f"T1 of the {mode.lower()} FAIR images", primary=False)
             for mode, other in ir.fits.items() if other is not fit]
    maps.append(MapImage("R_squared", fit.r_squared, "ratio", "coefficient of determination",
                         primary=False))
    params = {"method": method, **ir.parameters, "threshold": threshold,
              "inversion_times_ms": series.ti.tolist()}
    return _gated_result("t1map", [series], maps, gate, params)


def _t1_vtr(series: AnalysisSeries, *, threshold: float | None, snr_floor: float,
            echo_train_ms: float | None) -> StepResult:
    """T1 by variable TR with the recovery time TR minus the readout train."""
    if echo_train_ms is None:
        train, source = echo_train_duration(series.source, series.header)
    else:
        train, source = float(echo_train_ms), "given (--echo-train-ms)"
    if not 0 <= train < float(np.nanmin(series.tr)):
        raise BadSeriesError(f"{series.source}: the echo train ({train:g} ms, {source}) must "
                             f"be shorter than the shortest TR ({np.nanmin(series.tr):g} "
                             "ms); give --echo-train-ms")
    gate = _gate(series, threshold, snr_floor)
    fit = _fit("T1 (VTR)", series, lambda: fit_t1_vtr(
        series.data, series.tr, mask=gate.fit_mask, echo_train=train))
    if gate.enough_signal:
        _check_failed(fit.failed, gate.fit_mask, series, "T1")
    status = voxel_status(fit.status, mask=gate.mask, no_signal=gate.no_signal)
    model = ("saturation recovery S0 (1 - exp(-(TR - train)/T1)), recovery from the end "
             f"of a {train:g} ms readout train")
    maps = [
        MapImage("T1", fit.t1, "ms", f"T1 ({_T1_MODELS['vtr']}, {model})",
                 image_type="T1 MAP", status=status),
        MapImage("S0", fit.s0, "a.u.", "fully relaxed signal", primary=False),
        MapImage("R_squared", fit.r_squared, "ratio", "coefficient of determination",
                 primary=False),
    ]
    params = {"method": "vtr", "model": model,
              "model_reason": "RARE-VTR: the refocusing train keeps Mz near 0 until its last "
                              f"echo, so T1 recovers during TR minus the train ({source})",
              "echo_train_ms": train, "echo_train_source": source, "threshold": threshold,
              "repetition_times_ms": series.tr.tolist()}
    return _gated_result("t1map", [series], maps, gate, params)


def _n_directions(series: AnalysisSeries, b_min: float = 50.0) -> int:
    canonical: list[np.ndarray] = []
    for row in series.gradient[series.b > b_min]:
        if np.linalg.norm(row) < 0.5:
            continue
        row = row / np.linalg.norm(row)
        if not any(abs(float(row @ c)) > 0.999 for c in canonical):
            canonical.append(row)
    return len(canonical)


def compute_adc(series: AnalysisSeries, *, method: str = "loglinear",
                threshold: float | None = None, dti: str = "auto",
                snr_floor: float = SNR_FLOOR) -> StepResult:
    """ADC map, plus DTI FA/MD/AD/RD/V1 when the series has at least 6 directions.

    Parameters
    ----------
    dti : {"auto", "yes", "no"}
        Fit the tensor when there are >= 6 non-collinear directions (auto), always (an
        error without them) or never.
    """
    b = series.b
    if np.isnan(b).any():
        raise BadSeriesError(f"{series.source}: some images have no DiffusionBValue")
    gate = _gate(series, threshold, snr_floor)
    mask = gate.fit_mask
    fit = _fit("ADC", series, lambda: fit_adc(series.data, b, method=method, mask=mask))
    if gate.enough_signal:
        _check_failed(fit.failed, mask, series, "ADC")
    status = voxel_status(fit.status, mask=gate.mask, no_signal=gate.no_signal)
    maps = [MapImage("ADC", fit.adc, "mm²/s", f"apparent diffusion coefficient ({method}, "
                     "all measurements)", image_type="DIFFUSION MAP", status=status)]
    n_dir = _n_directions(series)
    params: dict[str, Any] = {"method": method, "threshold": threshold, "b_values": b.tolist(),
                              "directions": n_dir}
    if dti == "yes" or (dti == "auto" and n_dir >= 6):
        tensor = _fit("DTI", series, lambda: fit_dti(series.data, b, series.gradient,
                                                     mask=mask))
        if gate.enough_signal:
            _check_failed(tensor.failed, mask, series, "DTI")
        tensor_status = voxel_status(tensor.status, mask=gate.mask, no_signal=gate.no_signal)
        maps += [
            MapImage("FA", tensor.fa, "ratio", "fractional anisotropy",
                     image_type="DIFFUSION MAP", status=tensor_status),
            MapImage("MD", tensor.md, "mm²/s", "mean diffusivity", image_type="DIFFUSION MAP",
                     status=tensor_status),
            MapImage("AD", tensor.ad, "mm²/s", "axial diffusivity", image_type="DIFFUSION MAP",
                     status=tensor_status),
            MapImage("RD", tensor.rd, "mm²/s", "radial diffusivity",
                     image_type="DIFFUSION MAP", status=tensor_status),
            MapImage("V1", tensor.v1, "ratio", "principal eigenvector (image axes x, y, z)",
                     primary=False),
        ]
        params["dti"] = True
    else:
        params["dti"] = False
        _log.info("DTI skipped: %d non-collinear directions (6 needed)", n_dir)
    return _gated_result("adcmap", [series], maps, gate, params)


def _same_grid(a: AnalysisSeries, b: AnalysisSeries) -> bool:
    return a.data.shape[:3] == b.data.shape[:3] and np.allclose(a.affine, b.affine, atol=1e-3)


def _per_repetition(series: AnalysisSeries, reps: list[np.ndarray], mask: np.ndarray,
                    b0_of: Any, compute: Any, n_maps: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each repetition processed alone (its own Z-spectrum and M0, its own B0 from
    ``b0_of(z)``): the B0 maps (R, ...) and the ``n_maps`` maps of ``compute(z, b0)``, each
    (R, ...); NaN where that repetition's normalisation or B0 fit failed."""
    b0s: list[np.ndarray] = []
    values: list[list[np.ndarray]] = [[] for _ in range(n_maps)]
    for frames in reps:
        sat = series.sat_ppm[frames]
        m0 = series.is_m0[frames] if series.is_m0.any() else None
        z = normalize_zspectrum(series.data[..., frames], sat, m0_frames=m0, mask=mask)
        b0 = np.where(z.failed, np.nan, b0_of(z))
        b0s.append(b0)
        b0_values = np.where(np.isfinite(b0), b0, 0.0)
        for out, value in zip(values, compute(z, b0_values), strict=True):
            out.append(np.where(np.isfinite(b0), value, np.nan))
    return np.stack(b0s), [np.stack(v) for v in values]


def _fitted_b0(fit: Any, method: str) -> Any:
    """``z -> B0`` with NaN where the B0 fit failed."""
    def b0_of(z: Any) -> np.ndarray:
        result = fit(z, method)
        return np.where(result.failed, np.nan, result.b0)
    return b0_of


def _precision_status(status: np.ndarray, se: np.ndarray) -> np.ndarray:
    """The map's voxel status for its precision map; a fitted voxel without a standard
    error (fewer than 2 repetitions fitted) is a non-finite failure there."""
    out = status.copy()
    out[(status == VoxelStatus.FITTED) & ~np.isfinite(se)] = VoxelStatus.FAILED_NONFINITE
    return out


def _noise_level(name: str, value: np.ndarray, se: np.ndarray, fitted: np.ndarray,
                 precision: dict[str, Any]) -> str:
    """``; |MTRasym| < 2 standard errors in N % of the fitted voxels`` (and the fraction
    in ``precision[name]``): how much of the map is at its own noise."""
    known = fitted & np.isfinite(se) & np.isfinite(value)
    if not known.any():
        return ""
    fraction = float(np.mean(np.abs(value[known]) < 2.0 * se[known]))
    precision[name]["fraction_within_2_standard_errors"] = fraction
    return f"; |value| < 2 standard errors in {100 * fraction:.0f} % of the fitted voxels"


def _precision_note(se: np.ndarray, mask: np.ndarray, unit: str, source: str) -> str:
    values = se[mask & np.isfinite(se)]
    if values.size == 0:
        return f"precision: not available ({source})"
    return f"precision: median standard error {median(values):.3g}{unit} ({source})"


def compute_cest(series: AnalysisSeries, *, wassr: AnalysisSeries | None = None,
                 mtr_ppm: tuple[float, ...] = (2.0, 3.5),
                 ratio_ppm: tuple[float, float] | None = RATIO_PPM,
                 threshold: float | None = None, b0_method: str = "auto",
                 snr_floor: float = SNR_FLOOR) -> StepResult:
    """Z-spectrum, B0, B0-corrected MTRasym and a ratiometric index of a CEST series,
    each with its precision.

    B0 comes from ``wassr`` when given (same grid required), else from the minimum of the
    Z-spectrum itself. M0 frames are the converter's flagged frames, else offsets beyond
    ±20 ppm. ``b0_method="auto"`` refines the minimum with a Lorentzian for WASSR and a
    parabola for the Z-spectrum (whose minimum CEST pools near water skew a Lorentzian);
    ``spline`` takes the minimum of the cubic spline.

    Precision: when the offset list is repeated (R >= 2 repetitions, each with its M0),
    every repetition is also processed alone (its own Z-spectrum, its own B0 unless B0
    comes from WASSR) and the standard error of each map is the test–retest
    ``sd / sqrt(R)`` of the R results (``<map>_precision``, NIfTI); it includes the B0
    error propagated into MTRasym. Without repetitions the B0 precision is the fit's
    standard error (:func:`xnatpic.models.cest.b0_map`) and MTRasym's is the background
    noise propagated through the Z-spectrum and its spline
    (:func:`xnatpic.models.cest.mtr_asym_standard_error`; B0's error not included). The median
    standard error over the fitted voxels is given in each map's description and in
    ``parameters["precision"]``.
    """
    sat = series.sat_ppm
    if np.isnan(sat).any():
        raise BadSeriesError(f"{series.source}: some images have no saturation offset; "
                             "give the offsets with --offsets-ppm")
    m0_frames = series.is_m0 if series.is_m0.any() else None
    if m0_frames is None and not (np.abs(sat) >= M0_THRESHOLD_PPM).any():
        raise BadSeriesError(
            f"{series.source}: no M0 (unsaturated) frame: no image is flagged M0 and no "
            f"saturation offset is beyond ±{M0_THRESHOLD_PPM:g} ppm (offsets "
            f"{np.nanmin(sat):g} to {np.nanmax(sat):g} ppm); the Z-spectrum cannot be "
            "normalised, acquire a reference far off resonance")
    gate = _gate(series, threshold, snr_floor)
    mask = gate.fit_mask
    z = _fit("Z-spectrum", series, lambda: normalize_zspectrum(
        series.data, sat, m0_frames=m0_frames, mask=mask))
    if gate.enough_signal:
        _check_failed(z.failed, mask, series, "Z-spectrum")
    reps = repetition_frames(sat)
    if reps is not None and m0_frames is not None and any(
            not m0_frames[r].any() for r in reps):
        reps = None  # a repetition without its own M0 cannot be normalised alone

    def z_b0(zs: Any, how: str) -> Any:
        return b0_map(zs.z, zs.offsets, method=how, search_ppm=(-1.5, 1.5),
                      window_ppm=1.5 if how == "lorentzian" else None, mask=mask)

    if wassr is not None:
        if not _same_grid(series, wassr):
            raise BadSeriesError(f"{wassr.source}: the WASSR series is not on the grid of the "
                                 f"CEST series {series.source}; give --wassr-scan none")
        wm0 = wassr.is_m0 if wassr.is_m0.any() else None
        wsat = wassr.sat_ppm if wm0 is None else wassr.sat_ppm[~wm0]
        wdata = wassr.data if wm0 is None else wassr.data[..., ~wm0]
        method = "lorentzian" if b0_method == "auto" else b0_method
        b0 = _fit("WASSR B0", wassr, lambda: b0_map(wdata, wsat, method=method, mask=mask))
        b0_source = f"WASSR ({wassr.source})"
    else:
        method = "parabola" if b0_method == "auto" else b0_method
        b0 = _fit("B0", series, lambda: z_b0(z, method))
        b0_source = "Z-spectrum minimum"
    status = voxel_status(z.status | b0.status, mask=gate.mask, no_signal=gate.no_signal)
    n_reps = 0 if reps is None else len(reps)
    retest = f"test-retest, {n_reps} repetitions"
    b0_values = np.where(np.isfinite(b0.b0), b0.b0, 0.0)
    valid = mask & np.isfinite(b0.b0)
    derived: list[tuple[str, str]] = [
        (f"MTRasym_{float(ppm):g}ppm", f"B0-corrected MTRasym at {float(ppm):g} ppm")
        for ppm in mtr_ppm]
    if ratio_ppm:
        p1, p2 = (float(v) for v in ratio_ppm)
        derived.append((f"ratio_{p1:g}_{p2:g}ppm",
                        f"ratiometric index (1-Z{p1:g})Z{p2:g}/((1-Z{p2:g})Z{p1:g})"))

    def readouts(zs: Any, b: np.ndarray, corrected: bool = False) -> Any:
        """The ``derived`` maps (and the B0-corrected spectrum) from one spline per voxel."""
        return cest_readouts(zs.z, zs.offsets, b, mtr_ppm=mtr_ppm,
                             ratio_ppm=tuple(ratio_ppm) if ratio_ppm else None,
                             corrected=corrected)

    rep_values: list[np.ndarray] = []
    if reps is not None:
        rep_b0, rep_values = _fit("per-repetition", series, lambda: _per_repetition(
            series, reps, mask,
            _fitted_b0(z_b0, method) if wassr is None else
            (lambda zr: np.where(b0.failed, np.nan, b0.b0)),
            lambda zs, b: readouts(zs, b)[0], len(derived)))
    if reps is not None and wassr is None:
        b0_se = standard_error(rep_b0)
        b0_how = retest
    else:
        b0_se = b0.b0_sd if b0.b0_sd is not None else np.full(mask.shape, np.nan)
        b0_how = f"{method} fit standard error"
    b0_se = np.where(mask, b0_se, np.nan).astype(np.float32)
    precision: dict[str, Any] = {"repetitions": n_reps}

    fitted = status == VoxelStatus.FITTED

    def note(name: str, se: np.ndarray, unit: str, how: str) -> str:
        values = se[fitted & np.isfinite(se)]
        precision[name] = {"median_standard_error": median(values) if values.size else None,
                           "source": how}
        return _precision_note(se, fitted, unit, how)

    maps = [MapImage("B0", b0.b0, "ppm", f"water frequency offset from the {b0_source} "
                     f"({method}); {note('B0', b0_se, ' ppm', b0_how)}", status=status),
            MapImage("B0_precision", b0_se, "ppm", f"standard error of B0 ({b0_how})",
                     status=_precision_status(status, b0_se))]
    saturated = sat[~m0_frames] if m0_frames is not None else sat[np.abs(sat) < M0_THRESHOLD_PPM]
    counts = np.unique(saturated, return_counts=True)[1]
    n_m0 = sat.size - saturated.size
    noise = (gate.noise if gate.noise.sigma else estimate_noise(series.data, mask)) \
        if reps is None else None
    sigma = None if noise is None else noise.sigma
    values, corrected = readouts(z, b0_values, corrected=True)
    for k, (name, what) in enumerate(derived):
        value = np.where(valid, values[k], np.nan).astype(np.float32)
        if reps is not None:
            se = np.where(valid, standard_error(rep_values[k]), np.nan).astype(np.float32)
            how = retest
            maps.append(MapImage(f"{name}_precision", se, "ratio",
                                 f"standard error of {name} ({how})",
                                 status=_precision_status(status, se)))
        elif sigma and k < len(mtr_ppm):
            se = np.full(mask.shape, np.nan, dtype=np.float32)
            se[valid] = mtr_asym_standard_error(  # only where the map has a value
                z.offsets, counts, float(mtr_ppm[k]), b0_values[valid],
                sigma / z.m0[valid], mtr=value[valid], m0_count=n_m0)
            how = (f"noise propagation, sigma {sigma:.4g} from the {noise.method}; "
                   "B0 error not included")
            maps.append(MapImage(f"{name}_precision", se, "ratio",
                                 f"standard error of {name} ({how})",
                                 status=_precision_status(status, se)))
        else:
            se = np.full(mask.shape, np.nan, dtype=np.float32)
            how = "not available: a single acquisition of each offset"
        added = reps is not None or (bool(sigma) and k < len(mtr_ppm))
        detail = note(name, se, "", how)
        if k < len(mtr_ppm):
            detail += _noise_level(name, value, se, fitted, precision)
        maps.insert(len(maps) - (1 if added else 0), MapImage(
            name, value, "ratio", f"{what}; {detail}", status=status))
    corrected = np.where(mask[..., None], corrected, np.nan).astype(np.float32)
    maps.append(MapImage("Z", np.where(mask[..., None], z.z, np.nan).astype(np.float32),
                         "ratio", "Z-spectrum, not B0-corrected (4th axis: offsets in "
                         "parameters)", primary=False, spectrum=True))
    maps.append(MapImage("Z_B0corrected", corrected, "ratio",
                         "B0-corrected Z-spectrum (4th axis: offsets in parameters)",
                         primary=False, spectrum=True))
    maps.append(MapImage("M0", z.m0, "a.u.", "mean of the M0 frames", primary=False))
    params = {"threshold": threshold, "mtr_ppm": [float(p) for p in mtr_ppm],
              "ratio_ppm": None if not ratio_ppm else [float(p) for p in ratio_ppm],
              "b0_source": b0_source, "b0_method": method,
              "offsets_ppm": z.offsets.tolist(),
              "m0_frames": int(np.count_nonzero(m0_frames)) if m0_frames is not None
              else "offsets beyond ±20 ppm", "precision": precision}
    used = [series] + ([wassr] if wassr is not None else [])
    return _gated_result("cest", used, maps, gate, params)

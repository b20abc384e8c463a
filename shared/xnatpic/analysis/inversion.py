"""T1 of an inversion-recovery series with the timing the converter wrote per frame.

The series gives, per image, the effective inversion time of each slice (InversionTime:
protocol TI plus the slice's delay after the inversion), the inversion-to-inversion time
(RepetitionTime), the readout duration and, for FAIR, the inversion mode (xnatpic private
block, docs/private-tags.md). Selective and non-selective FAIR images are fitted
separately, never pooled: they recover with different apparent T1s wherever blood flows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xnatpic.analysis.errors import BadSeriesError, StepFailedError
from xnatpic.analysis.inputs import AnalysisSeries
from xnatpic.arrays import distinct
from xnatpic.errors import FittingError
from xnatpic.models.inversion import fit_t1_ir_timed
from xnatpic.models.relaxometry import fit_t1_ir
from xnatpic.models.results import T1IRFit

__all__ = ["IR_MODELS", "IRFits", "fair_groups", "fit_ir_series"]

_log = logging.getLogger(__name__)

#: ``--ir-model`` choice -> what it fits.
IR_MODELS: dict[str, str] = {
    "auto": "timed with the inversion factor free when there are 4 or more distinct TIs, "
            "else fixed; three/two when the series has no repetition time",
    "timed": "|M0 (1 - (1 + a) exp(-TI/T1) + a exp(-(TR - T_read)/T1))|, effective TI per "
             "slice, inversion factor a fixed",
    "timed-free": "the timed model with the inversion factor a fitted (>= 4 TIs)",
    "three": "|a + b exp(-TI/T1)| (protocol TI, TR >> T1 assumed)",
    "two": "|S0 (1 - k exp(-TI/T1))|, k fixed (protocol TI, TR >> T1 assumed)",
}
#: FAIR inversion modes, in the order the maps are reported.
MODES = ("NONSELECTIVE", "SELECTIVE")


@dataclass
class IRFits:
    """The T1 fits of an inversion-recovery series, one per FAIR inversion mode.

    Attributes
    ----------
    fits : dict of str to T1IRFit
        ``"NONSELECTIVE"`` / ``"SELECTIVE"`` for FAIR series with both, else one entry
        keyed by the series' mode (``""`` when it has none).
    model : str
        The model fitted (a key of :data:`IR_MODELS` other than ``auto``).
    parameters : dict
        Model, timing and constants used, for provenance and the report.
    """

    fits: dict[str, T1IRFit]
    model: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def main(self) -> T1IRFit:
        """The non-selective fit of a FAIR series (tissue T1), else the only one."""
        return self.fits.get("NONSELECTIVE", next(iter(self.fits.values())))


def fair_groups(series: AnalysisSeries) -> dict[str, np.ndarray]:
    """Measurement indices per FAIR inversion mode (``{"": all}`` without modes)."""
    modes = series.inversion_mode or [None] * series.n_measurements
    present = {m for m in modes if m}
    if not present:
        return {"": np.arange(series.n_measurements)}
    if any(not m for m in modes):
        raise BadSeriesError(f"{series.source}: some images have a FAIR inversion mode and "
                             "some do not; the series cannot be split")
    return {mode: np.flatnonzero([m == mode for m in modes])
            for mode in (*MODES, *sorted(present - set(MODES))) if mode in present}


def _timing(series: AnalysisSeries, frames: np.ndarray) -> tuple[np.ndarray, Any, Any]:
    """(TI per voxel (1, 1, Z, M), TR (M,) or None, readout (M,)) of the frames."""
    ti_slices = series.ti_slices if series.ti_slices is not None else np.broadcast_to(
        series.ti, (series.data.shape[2], series.n_measurements))
    ti = np.asarray(ti_slices, dtype=np.float64)[:, frames][None, None]
    tr = np.asarray(series.tr, dtype=np.float64)[frames]
    tr_value = None if np.isnan(tr).any() else tr
    readout = np.zeros(frames.size) if series.readout is None else np.nan_to_num(
        np.asarray(series.readout, dtype=np.float64)[frames], nan=0.0)
    return ti, tr_value, readout


def _choose(ir_model: str, tr: Any, n_distinct: int) -> str:
    if ir_model not in IR_MODELS:
        raise BadSeriesError(f"unknown IR model {ir_model!r}; use one of {', '.join(IR_MODELS)}")
    if ir_model != "auto":
        return ir_model
    if tr is None:
        return "three" if n_distinct >= 4 else "two"
    return "timed-free" if n_distinct >= 4 else "timed"


def fit_ir_series(series: AnalysisSeries, mask: np.ndarray, *, ir_model: str = "auto",
                  inversion_factor: float = 1.0,
                  inversion_efficiency: float = 2.0) -> IRFits:
    """Fit T1 per FAIR inversion mode with the series' per-frame timing.

    Parameters
    ----------
    series : AnalysisSeries
        Inversion-recovery series (InversionTime on every image).
    mask : ndarray of bool, shape (X, Y, Z)
        Voxels to fit.
    ir_model : str
        A key of :data:`IR_MODELS`.
    inversion_factor : float
        ``a`` of the timed model (1: perfect inversion).
    inversion_efficiency : float
        ``k`` of the legacy two-parameter model.

    Raises
    ------
    BadSeriesError
        No inversion times, an unknown model, or inconsistent FAIR modes.
    StepFailedError
        When a model cannot be fitted to the series (too few TIs, inconsistent timing).
    """
    if np.isnan(series.ti).any():
        raise BadSeriesError(f"{series.source}: some images have no InversionTime")
    groups = fair_groups(series)
    if "" in groups and distinct(series.ti).size < series.ti.size:
        _log.warning("%s: inversion times repeat (%s ms) and no image says which FAIR "
                     "inversion it follows; all images are fitted together (selective and "
                     "non-selective pairs would be pooled)", series.source,
                     ", ".join(f"{v:g}" for v in series.ti))
    fits: dict[str, T1IRFit] = {}
    chosen = ""
    timing: dict[str, Any] = {}
    for mode, frames in groups.items():
        ti, tr, readout = _timing(series, frames)
        nominal = series.ti[frames]
        model = _choose(ir_model, tr, distinct(nominal).size)
        if model.startswith("timed") and tr is None:
            raise BadSeriesError(f"{series.source}: --ir-model {model} needs the repetition "
                                 "time (inversion to inversion) of every image; use three "
                                 "or two")
        try:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                if model.startswith("timed"):
                    fit = fit_t1_ir_timed(
                        series.data[..., frames], ti, tr=tr, readout=readout, mask=mask,
                        inversion_factor=None if model == "timed-free" else inversion_factor)
                else:
                    fit = fit_t1_ir(series.data[..., frames], nominal, mask=mask, model=model,
                                    inversion_efficiency=inversion_efficiency)
        except FittingError as exc:
            label = f" ({mode.lower()} images)" if mode else ""
            raise StepFailedError(f"{series.source}: T1 (IR, {model}){label} fit impossible: "
                                  f"{exc}") from exc
        fits[mode] = fit
        chosen = model
        delays = np.asarray(ti[0, 0] - nominal[None, :])
        timing[mode or "all"] = {
            "frames": frames.tolist(),
            "inversion_times_ms": nominal.tolist(),
            "repetition_times_ms": None if tr is None else tr.tolist(),
            "readout_ms": readout.tolist(),
            "slice_delays_ms": np.round(delays[:, 0], 3).tolist(),
        }
        _log.info("T1 (IR%s): %s model, %d inversion times, slice delays up to %.1f ms",
                  f", {mode.lower()}" if mode else "", model, distinct(nominal).size,
                  float(delays.max(initial=0.0)))
    params: dict[str, Any] = {"ir_model": chosen, "ir_model_requested": ir_model,
                              "model": IR_MODELS[chosen], "timing": timing,
                              "fair_modes": [m for m in groups if m]}
    if chosen == "timed":
        params["inversion_factor"] = inversion_factor
    elif chosen == "two":
        params["inversion_efficiency"] = inversion_efficiency
    return IRFits(fits, chosen, params)

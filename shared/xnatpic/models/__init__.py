"""Quantitative MRI models: pure, vectorised voxel-wise fits.

Every function takes arrays with the measurement axis last and returns a small frozen
dataclass of maps (see :mod:`xnatpic.models.results`). Nothing here reads files, logs or
keeps state; invalid inputs raise :class:`xnatpic.errors.FittingError`, voxels that cannot
be fitted are NaN and flagged in ``failed`` / ``status``.
"""

from __future__ import annotations

from xnatpic.models.cest import (
    M0_THRESHOLD_PPM,
    b0_map,
    correct_b0,
    detect_m0_frames,
    mtr_asym,
    normalize_zspectrum,
    ratiometric_index,
    z_at,
)
from xnatpic.models.diffusion import fit_adc, fit_dti
from xnatpic.models.inversion import fit_t1_ir_timed, ir_signal
from xnatpic.models.perfusion import fair_flow
from xnatpic.models.relaxometry import fit_t1_ir, fit_t1_vtr, fit_t2, fit_t2star
from xnatpic.models.results import (
    ADCFit,
    B0Fit,
    DTIFit,
    FitStatus,
    T1Fit,
    T1IRFit,
    T2Fit,
    T2StarFit,
    ZSpectrum,
)

__all__ = [
    "M0_THRESHOLD_PPM",
    "ADCFit",
    "B0Fit",
    "DTIFit",
    "FitStatus",
    "T1Fit",
    "T1IRFit",
    "T2Fit",
    "T2StarFit",
    "ZSpectrum",
    "b0_map",
    "correct_b0",
    "detect_m0_frames",
    "fair_flow",
    "fit_adc",
    "fit_dti",
    "fit_t1_ir",
    "fit_t1_ir_timed",
    "fit_t1_vtr",
    "fit_t2",
    "fit_t2star",
    "ir_signal",
    "mtr_asym",
    "normalize_zspectrum",
    "ratiometric_index",
    "z_at",
]

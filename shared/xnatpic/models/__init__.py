"""Quantitative MRI models: pure, vectorised voxel-wise fits.

Every function takes arrays with the measurement axis last and returns a small frozen
dataclass of maps (see :mod:`xnatpic.models.results`). Nothing here reads files, logs or
keeps state; invalid inputs raise :class:`xnatpic.errors.FittingError`, voxels that cannot
be fitted are NaN and flagged in ``failed`` / ``status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xnatpic.lazy import lazy_exports

if TYPE_CHECKING:
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

# Each model is imported when first used: a T2 step does not load the CEST models.
__getattr__, __dir__ = lazy_exports(__name__, {
    "M0_THRESHOLD_PPM": "xnatpic.models.cest",
    "b0_map": "xnatpic.models.cest",
    "correct_b0": "xnatpic.models.cest",
    "detect_m0_frames": "xnatpic.models.cest",
    "mtr_asym": "xnatpic.models.cest",
    "normalize_zspectrum": "xnatpic.models.cest",
    "ratiometric_index": "xnatpic.models.cest",
    "z_at": "xnatpic.models.cest",
    "fit_adc": "xnatpic.models.diffusion",
    "fit_dti": "xnatpic.models.diffusion",
    "fit_t1_ir_timed": "xnatpic.models.inversion",
    "ir_signal": "xnatpic.models.inversion",
    "fair_flow": "xnatpic.models.perfusion",
    "fit_t1_ir": "xnatpic.models.relaxometry",
    "fit_t1_vtr": "xnatpic.models.relaxometry",
    "fit_t2": "xnatpic.models.relaxometry",
    "fit_t2star": "xnatpic.models.relaxometry",
    "ADCFit": "xnatpic.models.results",
    "B0Fit": "xnatpic.models.results",
    "DTIFit": "xnatpic.models.results",
    "FitStatus": "xnatpic.models.results",
    "T1Fit": "xnatpic.models.results",
    "T1IRFit": "xnatpic.models.results",
    "T2Fit": "xnatpic.models.results",
    "T2StarFit": "xnatpic.models.results",
    "ZSpectrum": "xnatpic.models.results",
})

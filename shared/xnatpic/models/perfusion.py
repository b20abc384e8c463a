"""FAIR perfusion: blood flow from the selective and non-selective apparent T1.

Flow-sensitive alternating inversion recovery (FAIR) inverts either a slab around the
imaged slices (selective) or everything (non-selective). Fresh, uninverted blood flowing
into the slab shortens the selective apparent T1; the non-selective T1 is the tissue's.
With the single-compartment (Kety) model the flow is::

    f = λ · (T1_ns / T1_blood) · (1 / T1_sel − 1 / T1_ns)

λ the blood–tissue partition coefficient of water (mL/g), T1_blood the longitudinal
relaxation time of arterial blood at the field strength. With ``T1_blood = T1_ns`` it is
Kwong's ``f = λ (1/T1_sel − 1/T1_ns)``. Assumptions: instantaneous water exchange (a
single compartment), no transit delay, the inflowing blood fully relaxed outside the
slab, the same inversion for both images.
"""

from __future__ import annotations

import numpy as np

from xnatpic.errors import FittingError

__all__ = ["ML_PER_100G_PER_MIN", "fair_flow"]

#: mL/g/ms -> mL/100 g/min.
ML_PER_100G_PER_MIN = 100.0 * 60_000.0


def fair_flow(t1_selective: object, t1_nonselective: object, *, blood_t1: float,
              partition: float = 0.9) -> np.ndarray:
    """Perfusion (mL/100 g/min) from FAIR apparent T1 maps (module docstring).

    Parameters
    ----------
    t1_selective, t1_nonselective : array_like, same shape
        Apparent T1 in ms after the selective and the non-selective inversion.
    blood_t1 : float
        T1 of arterial blood in ms (at 7 T about 2200–2400 ms; set it for the field and
        haematocrit).
    partition : float
        Blood–tissue partition coefficient λ in mL/g (0.9 for brain water).

    Returns
    -------
    ndarray
        Flow in mL/100 g/min; NaN where a T1 is not finite and positive. Noise gives
        negative values where there is no flow: they are kept (clipping would bias a
        mean or median upwards).

    Raises
    ------
    FittingError
        If the shapes differ or a constant is not a positive finite number.

    References
    ----------
    Kim SG. Quantification of relative cerebral blood flow change by flow-sensitive
    alternating inversion recovery (FAIR) technique. Magn Reson Med 1995;34:293-301.

    Kwong KK et al. MR perfusion studies with T1-weighted echo planar imaging. Magn Reson
    Med 1995;34:878-887.

    Belle V et al. In vivo quantitative mapping of cardiac perfusion in rats using a
    noninvasive MR spin-labeling method. J Magn Reson Imaging 1998;8:1240-1245.

    Examples
    --------
    >>> t1_ns, lam, t1b, flow = 1900.0, 0.9, 2300.0, 120.0
    >>> rate = flow / 6e6 / lam * t1b / t1_ns  # 1/T1_sel - 1/T1_ns for that flow
    >>> round(float(fair_flow(1 / (1 / t1_ns + rate), t1_ns, blood_t1=t1b)), 6)
    120.0
    """
    sel = np.asarray(t1_selective, dtype=np.float64)
    ns = np.asarray(t1_nonselective, dtype=np.float64)
    if sel.shape != ns.shape:
        raise FittingError(f"t1_selective has shape {sel.shape} but t1_nonselective "
                           f"{ns.shape}; they must be maps of the same voxels")
    for name, value in (("blood_t1", blood_t1), ("partition", partition)):
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise FittingError(f"{name} must be a positive number, got {value!r}") from exc
        if not (np.isfinite(number) and number > 0):
            raise FittingError(f"{name} must be a positive number, got {value!r}")
    if float(blood_t1) < 20.0:
        raise FittingError(f"blood_t1 must be in ms; {blood_t1!r} looks like seconds")
    with np.errstate(divide="ignore", invalid="ignore"):
        flow = (float(partition) * ns / float(blood_t1) * (1.0 / sel - 1.0 / ns)
                * ML_PER_100G_PER_MIN)
    valid = np.isfinite(sel) & np.isfinite(ns) & (sel > 0) & (ns > 0)
    return np.where(valid, flow, np.nan)

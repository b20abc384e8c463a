"""The phantom's compartments, their tissue properties and the truth maps they make.

The phantom is a water bath (a cylinder along z) holding four vials (cylinders along z,
shorter than the bath) and one sphere. Each compartment has T1, T2, T2*, M0, a diffusion
tensor (isotropic except the "fibre" vial), and CEST pool amplitudes. A smooth B0 field
(a low-order polynomial of position) covers the whole phantom.

Properties are piecewise constant per compartment and evaluated at voxel centres, so the
truth maps hold exactly the values the signals were computed from (no partial volume).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AIR_LABEL",
    "B0_FIELD_PPM",
    "CEST_POOLS",
    "COMPARTMENTS",
    "MAP_UNITS",
    "CestPool",
    "Compartment",
    "b0_ppm",
    "fractional_anisotropy",
    "label_map",
    "property_maps",
]

#: Label of voxels outside the phantom (no signal, noise only).
AIR_LABEL = 0


@dataclass(frozen=True)
class CestPool:
    """An exchanging pool seen as one Lorentzian dip of the Z-spectrum.

    Parameters
    ----------
    offset_ppm : float
        Resonance offset from water in ppm.
    fwhm_ppm : float
        Full width at half maximum of the Lorentzian in ppm.
    """

    offset_ppm: float
    fwhm_ppm: float


#: CEST pools by name; compartments give each an amplitude (fraction of M0).
CEST_POOLS: dict[str, CestPool] = {
    "amine": CestPool(offset_ppm=2.0, fwhm_ppm=1.5),
    "amide": CestPool(offset_ppm=3.5, fwhm_ppm=0.8),
}


@dataclass(frozen=True)
class Compartment:
    """One compartment: a shape and the tissue properties inside it.

    Parameters
    ----------
    label : int
        Value in the label map.
    name : str
        Short name.
    shape : {"cylinder", "sphere"}
        Cylinders have their axis along z.
    centre : tuple of float
        Centre (x, y, z) in mm.
    radius : float
        Radius in mm.
    half_length : float
        Half length along z of a cylinder in mm (unused for spheres).
    t1, t2, t2s : float
        Relaxation times in ms.
    m0 : float
        Proton density relative to the bath.
    eigenvalues : tuple of float
        Diffusion tensor eigenvalues in mm²/s, largest first.
    principal_direction : tuple of float
        Direction of the first eigenvector in the subject frame (normalised on use); the
        other two are any orthonormal completion (the tensor is axially symmetric).
    cest : dict of str to float
        Amplitude of each pool of :data:`CEST_POOLS` present.
    """

    label: int
    name: str
    shape: str
    centre: tuple[float, float, float]
    radius: float
    half_length: float
    t1: float
    t2: float
    t2s: float
    m0: float
    eigenvalues: tuple[float, float, float]
    principal_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    cest: dict[str, float] = field(default_factory=dict)

    def tensor(self) -> np.ndarray:
        """Diffusion tensor in the subject frame, mm²/s, shape (3, 3)."""
        e1 = np.asarray(self.principal_direction, dtype=float)
        e1 = e1 / np.linalg.norm(e1)
        l1, l2, l3 = self.eigenvalues
        if l2 != l3:
            raise ValueError(f"compartment {self.name}: only axially symmetric tensors")
        return l2 * np.eye(3) + (l1 - l2) * np.outer(e1, e1)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask of the points (..., 3) inside the compartment."""
        d = points - np.asarray(self.centre)
        if self.shape == "sphere":
            return np.einsum("...i,...i->...", d, d) <= self.radius**2
        radial = d[..., 0] ** 2 + d[..., 1] ** 2 <= self.radius**2
        return radial & (np.abs(d[..., 2]) <= self.half_length)


def _iso(adc: float) -> tuple[float, float, float]:
    return (adc, adc, adc)


#: The compartments, painted in this order (later ones over earlier ones).
COMPARTMENTS: tuple[Compartment, ...] = (
    Compartment(1, "bath", "cylinder", (0.0, 0.0, 0.0), 14.0, 12.0,
                t1=2000.0, t2=180.0, t2s=70.0, m0=1.0, eigenvalues=_iso(2.0e-3)),
    Compartment(2, "vial_A", "cylinder", (-8.0, -4.5, 0.0), 3.0, 10.0,
                t1=350.0, t2=30.0, t2s=18.0, m0=0.85, eigenvalues=_iso(1.1e-3)),
    Compartment(3, "vial_B", "cylinder", (7.5, -6.0, 0.0), 3.0, 10.0,
                t1=750.0, t2=65.0, t2s=30.0, m0=0.9, eigenvalues=_iso(1.5e-3)),
    Compartment(4, "vial_C_amine", "cylinder", (6.5, 6.5, 0.0), 3.0, 10.0,
                t1=1200.0, t2=110.0, t2s=45.0, m0=0.8, eigenvalues=_iso(0.8e-3),
                cest={"amine": 0.12}),
    Compartment(5, "vial_D_fibre", "cylinder", (-5.5, 7.0, 0.0), 3.0, 10.0,
                t1=1000.0, t2=55.0, t2s=25.0, m0=0.75,
                eigenvalues=(1.6e-3, 0.55e-3, 0.55e-3), principal_direction=(2.0, 1.0, 2.0)),
    Compartment(6, "sphere_E_amide", "sphere", (0.0, 0.0, 1.5), 3.5, 0.0,
                t1=1500.0, t2=140.0, t2s=55.0, m0=0.95, eigenvalues=_iso(1.7e-3),
                cest={"amide": 0.06}),
)  # fmt: skip

#: B0 offset in ppm: c0 + cx·x + cy·y + cz·z + cq·(x² − y²), x, y, z in mm.
B0_FIELD_PPM: dict[str, float] = {"c0": 0.05, "cx": 0.012, "cy": -0.008, "cz": 0.02, "cq": 4e-4}

#: Units of the truth maps written by :func:`property_maps`.
MAP_UNITS: dict[str, str] = {
    "labels": "label (see label_encoding)",
    "M0": "relative proton density (bath = 1)",
    "T1": "ms",
    "T2": "ms",
    "T2s": "ms",
    "ADC": "mm^2/s (mean diffusivity)",
    "MD": "mm^2/s",
    "FA": "dimensionless",
    "D": "mm^2/s, subject frame, last two axes (3, 3)",
    "B0_ppm": "ppm",
    "B0_Hz": "Hz at the study's working frequency",
    **{f"cest_{name}": "fraction of M0 (Lorentzian amplitude)" for name in CEST_POOLS},
}


def b0_ppm(points: np.ndarray) -> np.ndarray:
    """The B0 offset field in ppm at points (..., 3) in mm (see :data:`B0_FIELD_PPM`)."""
    c = B0_FIELD_PPM
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return c["c0"] + c["cx"] * x + c["cy"] * y + c["cz"] * z + c["cq"] * (x**2 - y**2)


def fractional_anisotropy(eigenvalues: np.ndarray) -> np.ndarray:
    """FA of tensors given their eigenvalues (..., 3).

    ``FA = sqrt(3/2) · |λ − mean(λ)| / |λ|`` (Basser & Pierpaoli 1996,
    doi:10.1006/jmrb.1996.0086); 0 where all eigenvalues are 0.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    norm = np.linalg.norm(lam, axis=-1)
    dev = np.linalg.norm(lam - lam.mean(axis=-1, keepdims=True), axis=-1)
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(norm > 0, np.sqrt(1.5) * dev / safe, 0.0)


def label_map(points: np.ndarray) -> np.ndarray:
    """Label of each point (..., 3): :data:`AIR_LABEL` outside, else the last compartment
    of :data:`COMPARTMENTS` containing it."""
    labels = np.full(points.shape[:-1], AIR_LABEL, dtype=np.uint8)
    for comp in COMPARTMENTS:
        labels[comp.contains(points)] = comp.label
    return labels


def property_maps(points: np.ndarray, frequency_mhz: float) -> dict[str, np.ndarray]:
    """Truth maps at points (..., 3): labels, M0, T1, T2, T2s, ADC, MD, FA, D, B0, CEST.

    Parameters
    ----------
    points : numpy.ndarray, shape (..., 3)
        Voxel centres in mm.
    frequency_mhz : float
        Working frequency, to express B0 in Hz.

    Returns
    -------
    dict of str to numpy.ndarray
        Maps of shape ``points.shape[:-1]`` (``D``: with two more axes of 3). Air voxels
        hold 0 in every map but ``B0_ppm``/``B0_Hz`` (the field exists everywhere).
    """
    labels = label_map(points)
    shape = labels.shape
    maps: dict[str, np.ndarray] = {"labels": labels}
    for key in ("M0", "T1", "T2", "T2s", "ADC", "MD", "FA"):
        maps[key] = np.zeros(shape)
    for pool in CEST_POOLS:
        maps[f"cest_{pool}"] = np.zeros(shape)
    maps["D"] = np.zeros((*shape, 3, 3))
    for comp in COMPARTMENTS:
        inside = labels == comp.label
        lam = np.asarray(comp.eigenvalues)
        values = {"M0": comp.m0, "T1": comp.t1, "T2": comp.t2, "T2s": comp.t2s,
                  "ADC": lam.mean(), "MD": lam.mean(), "FA": fractional_anisotropy(lam)}
        for key, value in values.items():
            maps[key][inside] = value
        for pool, amplitude in comp.cest.items():
            maps[f"cest_{pool}"][inside] = amplitude
        maps["D"][inside] = comp.tensor()
    maps["B0_ppm"] = b0_ppm(points)
    maps["B0_Hz"] = maps["B0_ppm"] * frequency_mhz
    return maps

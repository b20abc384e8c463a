"""Write synthetic IVIS Living Image click folders with a known truth.

There are no public IVIS folders we may ship (see docs/optical.md), so tests and demos
use folders written here in the documented layout (:mod:`xnatpic.optical.parameters`).
Each light source is a 2D Gaussian of radiance L (p/s/cm²/sr) on the animal's surface
whose total flux, as Living Image defines it (radiance integrated over the area times
4π sr), is the value given: ``flux = 4π · ∫ L dA``. Pixel values are the radiance
integrated over each pixel (error functions, so the truth holds at any binning),
divided by the calibration factor, plus the dark level, rounded to 16-bit counts.

Limits: one signal image per click; no optics (vignetting, lens blur), no cosmic rays,
no saturation; Poisson noise only when asked. The text files carry the sections and keys
our sources document, not every line a real Living Image file has.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import erf

__all__ = ["GaussianSource", "SyntheticClick", "SyntheticRoi", "write_click",
           "write_sequence"]


@dataclass(frozen=True)
class GaussianSource:
    """A light source: centre (cm from the top-left corner), width σ (cm), total flux
    (p/s; radiant efficiency × cm² × 4π for fluorescence)."""

    x_cm: float
    y_cm: float
    sigma_cm: float
    flux: float


@dataclass(frozen=True)
class SyntheticRoi:
    """A Living Image ROI to write into AnalyzedClickInfo.txt (centre and size in cm)."""

    label: str
    x_cm: float
    y_cm: float
    width_cm: float
    height_cm: float
    shape: str = "Ellipse"  # or Square


@dataclass
class SyntheticClick:
    """What to write. Defaults: IVIS-like 12.5 cm field, 1024² photograph, binning 4."""

    sources: list[GaussianSource]
    click_number: str = "XP20260101120000_001"
    kind: str = "luminescent"
    fov_cm: float = 12.5
    ccd_pixels: int = 1024
    binning: int = 4
    exposure_s: float = 60.0
    f_number: float = 1.0
    per_count: float = 1.0e4
    calibration: str = "Radiance (Photons)"
    read_bias: int = 600
    dark_rate: float = 0.1  # counts per second per binned pixel
    background_exposure_s: float = 30.0
    noise_seed: int | None = None
    acquired: dt.datetime = dt.datetime(2026, 1, 1, 12, 0, 0)
    labels: dict[str, str] = field(default_factory=lambda: {
        "User": "tester", "Group": "control", "Experiment": "synthetic", "Time Point": "day 1",
        "Animal Number": "M1", "Animal Strain": "BALB/c", "Animal Model": "4T1",
        "Sex": "F", "View": "Dorsal"})
    rois: list[SyntheticRoi] = field(default_factory=list)
    emission_filter: str = "Open"
    excitation_filter: str = "Block"
    analyzed: bool = True
    camera_id: str = "IS0000SYN"

    @property
    def signal_pixels(self) -> int:
        """Side of the (binned) signal image."""
        return self.ccd_pixels // self.binning

    def radiance(self) -> np.ndarray:
        """Pixel-averaged radiance of the signal image (float64, p/s/cm²/sr)."""
        n = self.signal_pixels
        edges = np.linspace(0.0, self.fov_cm, n + 1)
        pixel_area = (self.fov_cm / n) ** 2
        out = np.zeros((n, n))
        for s in self.sources:
            scale = math.sqrt(2.0) * s.sigma_cm
            fx = 0.5 * np.diff(erf((edges - s.x_cm) / scale))  # fraction of ∫ per column
            fy = 0.5 * np.diff(erf((edges - s.y_cm) / scale))
            integral = s.flux / (4.0 * math.pi)  # ∫ L dA
            out += np.outer(fy, fx) * integral / pixel_area
        return out

    def dark_signal(self) -> float:
        """Dark level in the signal image: read bias + dark charge over its exposure."""
        return self.read_bias + self.dark_rate * self.exposure_s


def _date(when: dt.datetime) -> tuple[str, str]:
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    months = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
    return (f"{days[when.weekday()]}, {months[when.month - 1]} {when.day}, {when.year}",
            when.strftime("%H:%M:%S"))


def _image_section(name: str, file: str, click: SyntheticClick, *, binning: int,
                   exposure_key: str, exposure: float) -> list[str]:
    date, time = _date(click.acquired)
    return [f"*** {name}:\t{file}", f"Acquisition Date:\t{date}",
            f"Acquisition Time:\t{time}", f"Binning Factor:\t{binning}",
            f"{exposure_key}:\t{exposure:g}", f"f Number:\t{click.f_number:g}",
            f"Field of View:\t{click.fov_cm:g}", f"Emission filter:\t{click.emission_filter}",
            f"Excitation filter:\t{click.excitation_filter}",
            f"Read Bias Level:\t{click.read_bias}", "Demand Temperature:\t-90",
            "Measured Temperature:\t-89.8", ""]


def _roi_lines(click: SyntheticClick) -> list[str]:
    cm_per_pixel = click.fov_cm / click.ccd_pixels  # unbinned CCD pixels
    lines = ["*** ROIs:"]
    for i, roi in enumerate(click.rois, start=1):
        lines.append(
            f"ROI {i}:zColorIndex=1;ROI Type=Measurement;Shape={roi.shape};"
            f"Xc={roi.x_cm / cm_per_pixel:.6f};Yc={roi.y_cm / cm_per_pixel:.6f};"
            f"Width={roi.width_cm / cm_per_pixel:.6f};"
            f"Height={roi.height_cm / cm_per_pixel:.6f};Angle=0.0000;Label={roi.label};"
            f"cm per pixel={cm_per_pixel:.12f};")
    return [*lines, ""]


def _texts(click: SyntheticClick) -> tuple[str, str]:
    head = [f"*** ClickNumber:\t{click.click_number}", "ClickInfoType:\tClickInfo",
            "Living Image Version:\t4.7.3 (synthetic)", ""]
    images = _image_section("photographic image", "photograph.TIF", click, binning=1,
                            exposure_key="Exposure Time Sec", exposure=0.2)
    images += _image_section(f"{click.kind} image", f"{click.kind}.TIF", click,
                             binning=click.binning,
                             exposure_key=f"{click.kind.capitalize()} Exposure (Seconds)",
                             exposure=click.exposure_s)
    images += _image_section("background image", "background.TIF", click,
                             binning=click.binning,
                             exposure_key="Background Exposure (Seconds)",
                             exposure=click.background_exposure_s)
    images += _image_section("readbiasonly image", "readbiasonly.TIF", click,
                             binning=click.binning, exposure_key="Background Exposure "
                             "(Seconds)", exposure=0)
    camera = ["*** Camera System Info:", f"Camera System ID:\t{click.camera_id}",
              "Camera System alias:\tSynthetic IVIS", "System Configuration:\tIVIS Spectrum",
              "Camera Type:\tsynthetic", "Camera CCD Type:\tsynthetic", ""]
    click_info = "\n".join(head + images + camera) + "\n"
    labels = ["*** User Label Name Set:\tLiving Image Universal"]
    labels += [f"{k}:\t{v}" for k, v in click.labels.items()] + [""]
    graph = ["*** Graph Controls:", f"Intensity Calibration:\t{click.calibration}",
             f"Calibration Value Per Count:\t{click.per_count:.6e}", "Reversed:\t0",
             "Rotation:\t0", ""]
    analyzed_head = [head[0], "ClickInfoType:\tAnalyzedClickInfo", *head[2:]]
    analyzed = "\n".join(analyzed_head + labels + images + camera + graph
                         + _roi_lines(click)) + "\n"
    return click_info, analyzed


def _photograph(click: SyntheticClick) -> np.ndarray:
    n = click.ccd_pixels
    y, x = np.mgrid[0:n, 0:n] * (click.fov_cm / n)
    photo = np.full((n, n), 800.0) + 200.0 * x / click.fov_cm
    for s in click.sources:  # an animal-shaped ellipse under each source
        body = ((x - s.x_cm) / 1.3) ** 2 + ((y - s.y_cm) / 3.0) ** 2 <= 1.0
        photo[body] = 20000.0 + 3000.0 * np.cos(6.0 * y[body])
    return photo.astype(np.uint16)


def _save(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, format="TIFF")


def write_click(folder: Path, click: SyntheticClick) -> Path:
    """Write a click folder; return it.

    The signal TIFF holds ``round(L / per_count + dark)`` (Poisson-sampled with
    ``noise_seed``); ``background.TIF`` the read bias plus dark charge of its own
    exposure; ``readbiasonly.TIF`` the read bias.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    expected = click.radiance() / click.per_count + click.dark_signal()
    if click.noise_seed is not None:
        expected = np.random.default_rng(click.noise_seed).poisson(expected).astype(float)
    signal = np.clip(np.rint(expected), 0, 65535).astype(np.uint16)
    n = click.signal_pixels
    background = np.full((n, n), click.read_bias + click.dark_rate
                         * click.background_exposure_s)
    _save(folder / f"{click.kind}.TIF", signal)
    _save(folder / "background.TIF", np.rint(background).astype(np.uint16))
    _save(folder / "readbiasonly.TIF", np.full((n, n), click.read_bias, dtype=np.uint16))
    _save(folder / "photograph.TIF", _photograph(click))
    click_info, analyzed = _texts(click)
    (folder / "ClickInfo.txt").write_text(click_info, encoding="utf-8")
    if click.analyzed:
        (folder / "AnalyzedClickInfo.txt").write_text(analyzed, encoding="utf-8")
    return folder


def write_sequence(folder: Path, clicks: list[SyntheticClick], name: str = "SEQ001") -> Path:
    """Write a sequence folder: ``SequenceInfo.txt`` and one click folder per click."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"*** Sequence:\t{name}", f"Number of Clicks:\t{len(clicks)}", ""]
    for click in clicks:
        write_click(folder / click.click_number, click)
        lines.append(f"Click:\t{click.click_number}")
    (folder / "SequenceInfo.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder

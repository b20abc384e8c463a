"""The conversion context: one output series (a reco, or one slice package of it).

:class:`SeriesContext` is what the mapping engine resolves table sources against:
ParaVision parameter sets (``visu:``, ``method:``, ``acqp:``, ``subject:``, ``reco:``),
values computed from several parameters (``series:`` and ``image:``, implemented in
:mod:`xnatpic.dicom.derived`) and constants (``const:``). :class:`Frame` is one image as
written: the reader's :class:`~xnatpic.paravision.series.Image` plus its number in the
output series and its encoded pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from xnatpic.dicom import derived, derived_enhanced
from xnatpic.dicom.pixels import EncodedImage, PixelEncoding
from xnatpic.dicom.uids import SeriesUids
from xnatpic.errors import ConversionError
from xnatpic.paravision.jcamp import ParameterSet
from xnatpic.paravision.series import Image, ImageSeries

if TYPE_CHECKING:
    from xnatpic.dicom.deidentify import DeidentifyProfile
    from xnatpic.dicom.routing import XnatRouting

__all__ = ["CONDITIONS", "IMAGE_VALUES", "PARAMETER_SETS", "SERIES_VALUES", "Frame",
           "SeriesContext"]

#: Source prefixes that name ParaVision parameter files.
PARAMETER_SETS = ("visu", "method", "acqp", "subject", "reco")
#: ``series:`` values, ``image:`` values and conditions of both IODs.
SERIES_VALUES = {**derived.SERIES_VALUES, **derived_enhanced.SERIES_VALUES}
IMAGE_VALUES = {**derived.IMAGE_VALUES, **derived_enhanced.IMAGE_VALUES}
CONDITIONS = {**derived.CONDITIONS, **derived_enhanced.CONDITIONS}


@dataclass(frozen=True)
class Frame:
    """One image of the output series.

    Attributes
    ----------
    image : Image
        The reader's image (geometry and acquisition parameters).
    number : int
        1-based InstanceNumber (classic) or frame number (enhanced) in the output series.
    encoded : EncodedImage
        The pixels as written and their rescale.
    """

    image: Image
    number: int
    encoded: EncodedImage


@dataclass(eq=False)
class SeriesContext:
    """Everything the tables may read for one output series.

    Attributes
    ----------
    series : ImageSeries
        The whole reco.
    package : int
        The slice package this output series holds.
    images : list of Image
        The images of that package, in series order.
    uids : SeriesUids
        Study, series and frame-of-reference UIDs.
    pixels : PixelEncoding
        How pixels are encoded.
    enhanced : bool
        Enhanced MR (multi-frame) rather than classic MR.
    deidentify : DeidentifyProfile or None
        The de-identification profile, when one applies.
    routing : XnatRouting or None
        Project, subject and session written for XNAT's DICOM routing.
    """

    series: ImageSeries
    package: int
    images: list[Image]
    uids: SeriesUids
    pixels: PixelEncoding
    enhanced: bool = False
    deidentify: DeidentifyProfile | None = None
    routing: XnatRouting | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> str:
        """The reco path, for messages."""
        return str(self.series.reco.path)

    @cached_property
    def parameter_sets(self) -> dict[str, ParameterSet | None]:
        """visu, method, acqp, subject and reco parameters of the reco."""
        reco = self.series.reco
        return {
            "visu": reco.visu_pars,
            "method": reco.scan.method,
            "acqp": reco.scan.acqp,
            "subject": reco.scan.study.subject,
            "reco": reco.reco,
        }

    def param(self, file: str, name: str) -> Any:
        """Parameter ``name`` of ``file`` (``visu``, ``method``...), or None."""
        params = self.parameter_sets[file]
        return None if params is None else params.get(name)

    def series_value(self, name: str) -> Any:
        """A ``series:`` value, computed once per series."""
        if name not in self._cache:
            try:
                function = SERIES_VALUES[name]
            except KeyError:
                raise ConversionError(f"internal: unknown series value {name!r}") from None
            self._cache[name] = function(self)
        return self._cache[name]

    def value(self, source: str, image: Frame | None) -> Any:
        """Resolve one table source (see :class:`xnatpic.dicom.engine.Row`)."""
        kind, _, name = source.partition(":")
        if kind in PARAMETER_SETS:
            return self.param(kind, name)
        if kind == "series":
            return self.series_value(name)
        if kind == "image":
            if image is None:
                raise ConversionError(f"internal: {source} used outside an image")
            return IMAGE_VALUES[name](self, image)
        if kind == "const":
            return name
        raise ConversionError(f"internal: unknown source kind in {source!r}")

    def condition(self, name: str, image: Frame | None) -> bool:
        """Evaluate a named condition of a 1C/2C row."""
        return bool(CONDITIONS[name](self, image))

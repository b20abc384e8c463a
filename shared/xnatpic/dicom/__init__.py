"""ParaVision → DICOM: classic MR or Enhanced MR series, with JSON sidecars.

Use :func:`write_dicom_series` on an :class:`~xnatpic.paravision.series.ImageSeries`.
The mapping is data: one table per DICOM module in :mod:`xnatpic.dicom.modules` and
:mod:`xnatpic.dicom.enhanced_modules`, applied by :mod:`xnatpic.dicom.engine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xnatpic.lazy import lazy_exports

if TYPE_CHECKING:
    from xnatpic.dicom.deidentify import DeidentifyProfile
    from xnatpic.dicom.routing import XnatRouting
    from xnatpic.dicom.writer import WrittenSeries, write_dicom_series

__all__ = ["DeidentifyProfile", "WrittenSeries", "XnatRouting", "write_dicom_series"]

# The converter is imported when one of these is first used, not by every module that
# needs one submodule (an analysis step reading xnatpic.dicom.private).
__getattr__, __dir__ = lazy_exports(__name__, {
    "DeidentifyProfile": "xnatpic.dicom.deidentify",
    "XnatRouting": "xnatpic.dicom.routing",
    "WrittenSeries": "xnatpic.dicom.writer",
    "write_dicom_series": "xnatpic.dicom.writer",
})

"""Quantitative analyses of DICOM series: reading, scan selection, maps and their outputs.

Layers, lowest first: :mod:`~xnatpic.analysis.inputs` (a DICOM series as an
:class:`~xnatpic.analysis.inputs.AnalysisSeries`), :mod:`~xnatpic.analysis.selection`
(which scan of a session a step uses), :mod:`~xnatpic.analysis.mask` and
:mod:`~xnatpic.analysis.stats`, :mod:`~xnatpic.analysis.maps` (the fits of each step on top
of :mod:`xnatpic.models`), the writers (:mod:`~xnatpic.analysis.outputs`,
:mod:`~xnatpic.analysis.dicom_maps`, :mod:`~xnatpic.analysis.previews`,
:mod:`~xnatpic.analysis.report`) and :mod:`~xnatpic.analysis.runner` (the command line of
the container steps).
"""

from __future__ import annotations

from xnatpic.analysis.errors import AnalysisError, BadSeriesError, NoScanError, StepFailedError
from xnatpic.analysis.inputs import AnalysisSeries, read_series

__all__ = [
    "AnalysisError",
    "AnalysisSeries",
    "BadSeriesError",
    "NoScanError",
    "StepFailedError",
    "read_series",
]

"""Errors of the analysis steps: bad series, impossible scan choices, failed maps."""

from __future__ import annotations

from xnatpic.errors import FittingError, SelectionError, XnatpicError

__all__ = ["AnalysisError", "BadSeriesError", "NoScanError", "NoSuitableScanError",
           "StepFailedError"]


class AnalysisError(XnatpicError):
    """Base class of the errors raised by :mod:`xnatpic.analysis`."""


class BadSeriesError(AnalysisError, ValueError):
    """A DICOM series cannot be analysed (mixed matrices, missing geometry, NaNs, zeros...)."""


class NoScanError(AnalysisError, SelectionError):
    """No scan of the session fits the step, or the requested scan does not fit it."""


class NoSuitableScanError(NoScanError):
    """No scan of the session fits the step: the step does not apply to this session (the
    step exits with :data:`xnatpic.step_output.NOT_APPLICABLE_EXIT`)."""


class StepFailedError(AnalysisError, FittingError):
    """The fit ran but produced no usable map (every voxel failed, empty mask...)."""

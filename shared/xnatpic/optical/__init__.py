"""Optical imaging: IVIS Living Image folders (bioluminescence and fluorescence).

Layers, lowest first: :mod:`clickinfo` (text → sections), :mod:`parameters` (typed
values), :mod:`images` (lazy TIFFs), :mod:`acquisition` (click and sequence folders),
then the writers and analysis (:mod:`dicom`, :mod:`quant`, :mod:`overlay`) and the
synthetic folder writer (:mod:`synthetic`). See docs/optical.md.
"""

from __future__ import annotations

from xnatpic.optical.acquisition import (
    IvisAcquisition,
    IvisImage,
    IvisStudy,
    find_ivis_studies,
    is_ivis_folder,
    open_ivis,
)
from xnatpic.optical.errors import OpticalError

__all__ = ["IvisAcquisition", "IvisImage", "IvisStudy", "OpticalError", "find_ivis_studies",
           "is_ivis_folder", "open_ivis"]

"""xnatpic: XNAT for Preclinical Imaging Centers.

ParaVision reading, DICOM/NIfTI writing, quantitative MRI models and the XNAT
Container Service tooling that runs them.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"

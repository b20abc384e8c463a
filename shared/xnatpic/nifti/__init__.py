"""NIfTI-1 export of ParaVision recos (stored values with scl_slope/scl_inter, or float32
real values; DICOM-consistent affine).

:func:`write_nifti_series` is the entry point; :func:`volume_layouts` and
:func:`nifti_image` give the same result in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xnatpic.lazy import lazy_exports

if TYPE_CHECKING:
    from xnatpic.nifti.volumes import VolumeLayout, volume_layouts
    from xnatpic.nifti.writer import layout_data, nifti_image, write_nifti_series

__all__ = [
    "VolumeLayout",
    "layout_data",
    "nifti_image",
    "volume_layouts",
    "write_nifti_series",
]

# The writer is imported on first use: a map step needs nifti.affine only.
__getattr__, __dir__ = lazy_exports(__name__, {
    "VolumeLayout": "xnatpic.nifti.volumes",
    "volume_layouts": "xnatpic.nifti.volumes",
    "layout_data": "xnatpic.nifti.writer",
    "nifti_image": "xnatpic.nifti.writer",
    "write_nifti_series": "xnatpic.nifti.writer",
})

"""Coded entries (PS3.3 Table 8.8-1 Code Sequence Macro) as pydicom items."""

from __future__ import annotations

from pydicom.dataset import Dataset

__all__ = ["code_item"]


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    """One item of a code sequence.

    Parameters
    ----------
    value : str
        CodeValue, e.g. ``"110001"`` or ``"ms"``.
    scheme : str
        CodingSchemeDesignator, e.g. ``"DCM"``, ``"UCUM"``, ``"SCT"``.
    meaning : str
        CodeMeaning.

    Examples
    --------
    >>> code_item("ms", "UCUM", "millisecond").CodeMeaning
    'millisecond'
    """
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item

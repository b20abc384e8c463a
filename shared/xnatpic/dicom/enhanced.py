"""Enhanced MR Image Storage (placeholder until implemented)."""

from __future__ import annotations

from pathlib import Path

from xnatpic.dicom.context import SeriesContext
from xnatpic.errors import ConversionError

__all__ = ["write_enhanced"]


def write_enhanced(ctx: SeriesContext, out_dir: Path) -> tuple[list[Path], list[int]]:
    """Not implemented yet."""
    raise ConversionError(f"{ctx.where}: enhanced MR output is not implemented yet")

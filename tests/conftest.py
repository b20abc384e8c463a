"""Shared fixtures: paths to the real ParaVision corpus beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "paravision"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real ParaVision corpus in ../shared/data/paravision (skips when absent)."""
    if not CORPUS.is_dir():
        pytest.skip(f"real ParaVision corpus not found at {CORPUS} (it lives beside the project)")
    return CORPUS

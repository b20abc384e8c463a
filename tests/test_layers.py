"""Layers only point one way: the ParaVision reader never imports writers, CLI or pipelines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "shared" / "xnatpic"

#: Package → packages it must never import.
FORBIDDEN = {
    "paravision": ("xnatpic.dicom", "xnatpic.nifti", "xnatpic.cli", "xnatpic.conversion",
                   "xnatpic.xnat", "xnatpic.phantom"),
    "models": ("xnatpic.paravision", "xnatpic.dicom", "xnatpic.nifti", "xnatpic.cli",
               "xnatpic.xnat"),
    "dicom": ("xnatpic.cli", "xnatpic.conversion", "xnatpic.xnat"),
    "nifti": ("xnatpic.cli", "xnatpic.conversion", "xnatpic.xnat"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(layer):
    folder = PACKAGE / layer
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted(folder.rglob("*.py"))
        for name in _imports(path)
        if name.startswith(FORBIDDEN[layer])
    ]
    assert not offenders, offenders

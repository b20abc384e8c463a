"""The analysis layer reads DICOM and calls the models; it never imports the ParaVision
reader, the phantom, the CLI or the XNAT client, so a step image needs none of them."""

from __future__ import annotations

import ast
from pathlib import Path

ANALYSIS = Path(__file__).resolve().parents[2] / "shared" / "xnatpic" / "analysis"
FORBIDDEN = ("xnatpic.paravision", "xnatpic.phantom", "xnatpic.cli", "xnatpic.xnat",
             "xnatpic.conversion")


def test_analysis_imports_only_lower_layers():
    offenders = []
    for path in sorted(ANALYSIS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name} imports {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []
    assert len(list(ANALYSIS.glob("*.py"))) >= 10

"""Who may import whom inside xnatpic: an allowlist, so a new dependency is a decision.

Each unit of the package (a subpackage, a top-level module, or one module of
``xnatpic.xnat``) lists the units it may import. Anything else fails, naming the file and
the import; a unit missing from the list fails too, so a new package must be placed.
``errors`` (the error base) and the package root (``__version__``) are open to all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "shared" / "xnatpic"

#: Open to every unit (they import nothing of xnatpic but ``errors``).
FOUNDATION = frozenset({"errors", "__init__", "__version__", "strictness", "lazy", "arrays"})

#: XNAT's REST/HTTP client and its errors: only for units that talk to a server.
XNAT_CLIENT = frozenset({"xnat.rest", "xnat.http", "xnat.errors"})

#: unit -> units it may import. ``xnat`` is the whole of xnatpic.xnat as an importer
#: (its modules import each other freely); as a target each module is named on its own.
ALLOWED: dict[str, frozenset[str]] = {
    "__init__": frozenset(),
    "errors": frozenset(),
    "strictness": frozenset(),  # the ignore/warn/raise switch (FOUNDATION: open to all)
    "lazy": frozenset(),  # package exports imported on first use (FOUNDATION: open to all)
    # np.unique's and np.median's values without numpy.ma (FOUNDATION: open to all)
    "arrays": frozenset(),
    # how a process started for one job loads numpy and pydicom (convert, the steps)
    "lean_start": frozenset(),
    "provenance": frozenset(),
    "step_output": frozenset(),
    "confine": frozenset(),  # paths named by launch values stay inside their folder
    # readers and numerics: nothing above them
    "paravision": frozenset(),
    "models": frozenset(),
    # file and folder names of converted scans (scan, reco, protocol); the protocol is
    # cleaned by dicom.deidentify_text when de-identifying (imported inside the function:
    # the writers import the names)
    "output_names": frozenset({"paravision", "dicom"}),
    # writers read ParaVision and name their files by output_names
    "dicom": frozenset({"paravision", "output_names"}),
    # the NIfTI writer de-identifies with the DICOM profile (dicom.deidentify,
    # dicom.deidentify_text); dicom never imports nifti
    "nifti": frozenset({"paravision", "dicom", "output_names"}),
    # the phantom's IR signal is the fitted model (models.inversion.ir_signal)
    "phantom": frozenset({"paravision", "models"}),
    "conversion": frozenset({"paravision", "dicom", "nifti", "output_names"}),
    # step images: DICOM in, models, DICOM/NIfTI out; no reader, no XNAT client
    "analysis": frozenset({"dicom", "models", "nifti", "step_output"}),
    # ROIs on the map grid, the automatic one by analysis.mask's Otsu; project metadata
    # from XNAT is passed in by the step (pipelines/project_summary calls
    # xnat.project_fields), never fetched here
    "roi": frozenset({"nifti", "analysis"}),
    "optical": frozenset({"conversion", "dicom", "nifti", "roi"}),
    # the Container Service double and launcher write the step's output contract
    "xnat": frozenset({"step_output"}),
    # upload is an XNAT client: converts, then sends over REST
    "upload": frozenset({"paravision", "dicom", "conversion", "optical", "xnat.metadata"})
    | XNAT_CLIENT,
    # the command line drives everything
    "cli": frozenset({"*"}),
}


def _unit_of_file(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package).parts
    if len(parts) == 1:
        return parts[0].removesuffix(".py")
    return parts[0]


def _unit_of_module(module: str) -> str | None:
    """``xnatpic.a.b`` -> ``a`` (``xnat.b`` under xnatpic.xnat); None outside xnatpic."""
    parts = module.split(".")
    if parts[0] != "xnatpic":
        return None
    if len(parts) == 1:
        return "__init__"
    if parts[1] == "xnat" and len(parts) > 2:
        return f"xnat.{parts[2]}"
    return parts[1]


def _imported_modules(path: Path, root: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = ["xnatpic", *path.relative_to(root).parts[:-1]]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.append(module)
            # `from xnatpic import dicom`, `from xnatpic.xnat import rest`, `from . import x`
            if module in ("xnatpic", "xnatpic.xnat") or not node.module:
                names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def _allowed(importer: str, target: str) -> bool:
    allowed = ALLOWED[importer]
    if target == importer or target in FOUNDATION or "*" in allowed:
        return True
    if importer == "xnat" and target.startswith("xnat"):
        return True
    return target in allowed or (target.startswith("xnat.") and "xnat" in allowed)


def violations(package: Path = PACKAGE) -> list[str]:
    """Every import the allowlist does not permit, as 'file imports module (unit -> unit)'."""
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        importer = _unit_of_file(path, package)
        if importer not in ALLOWED:
            found.append(f"{path.relative_to(package)}: unit {importer!r} is not in ALLOWED; "
                         "place it in tests/test_layers.py")
            continue
        for module in _imported_modules(path, package):
            target = _unit_of_module(module)
            if target is None or target == "xnat":
                continue
            if not _allowed(importer, target):
                found.append(f"{path.relative_to(package)} imports {module} "
                             f"({importer} -> {target})")
    return found


def test_every_import_is_allowed():
    assert violations() == []


def test_every_unit_on_disk_is_placed():
    units = {_unit_of_file(p) for p in PACKAGE.rglob("*.py")}
    assert units <= set(ALLOWED), sorted(units - set(ALLOWED))
    assert {"optical", "step_output", "xnat", "analysis", "roi"} <= units


@pytest.mark.parametrize(("unit", "source", "offending"), [
    ("roi", "from xnatpic.xnat.rest import XnatClient\n", "roi -> xnat.rest"),
    ("analysis", "import xnatpic.paravision.dataset\n", "analysis -> paravision"),
    ("paravision", "from ..dicom import writer\n", "paravision -> dicom"),
    ("models", "from xnatpic import nifti\n", "models -> nifti"),
    ("analysis", "from xnatpic.xnat import rest\n", "analysis -> xnat.rest"),
])
def test_a_forbidden_import_is_caught(tmp_path, unit, source, offending):
    """The check itself, on a copy of the package with one bad import added."""
    package = tmp_path / "xnatpic"
    (package / unit).mkdir(parents=True)
    (package / unit / "bad.py").write_text(source)
    (found,) = violations(package)
    assert f"{unit}/bad.py imports" in found and offending in found


def test_an_unplaced_unit_is_caught(tmp_path):
    package = tmp_path / "xnatpic"
    (package / "newthing").mkdir(parents=True)
    (package / "newthing" / "a.py").write_text("import os\n")
    (found,) = violations(package)
    assert "unit 'newthing' is not in ALLOWED" in found


def test_allowed_imports_pass(tmp_path):
    package = tmp_path / "xnatpic"
    (package / "upload").mkdir(parents=True)
    (package / "upload" / "ok.py").write_text(
        "from xnatpic.xnat.rest import XnatClient\nfrom xnatpic.errors import XnatpicError\n"
        "from ..conversion import convert_study\nfrom xnatpic import __version__\n")
    assert violations(package) == []


def test_one_otsu_routine():
    """Otsu's threshold is implemented once, in analysis/mask.py; others call it."""
    definitions = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and "otsu" in node.name.lower()
        and any(isinstance(n, ast.Attribute) and n.attr == "histogram" for n in ast.walk(node))
    ]
    assert len(definitions) == 1 and definitions[0].startswith("analysis/mask.py:")

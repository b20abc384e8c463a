"""The declared minimum versions admit only libraries that have the API the code calls."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

SHARED = Path(__file__).resolve().parents[1] / "shared"

#: API the package calls -> the first version of the library that has it.
FLOORS = {
    # pydicom 3.0 renamed write_like_original/force to enforce_file_format
    ("pydicom", "enforce_file_format"): Version("3.0"),
}


def _floor(name: str) -> Version:
    project = tomllib.loads((SHARED / "pyproject.toml").read_text())["project"]
    (requirement,) = [Requirement(r) for r in project["dependencies"]
                      if Requirement(r).name == name]
    lows = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    assert lows, f"{name} has no lower bound in shared/pyproject.toml"
    return max(lows)


def test_floors_cover_the_api_used():
    sources = "\n".join(p.read_text() for p in (SHARED / "xnatpic").rglob("*.py"))
    for (library, api), needed in FLOORS.items():
        if re.search(rf"\b{api}\s*=", sources):
            assert _floor(library) >= needed, f"{library} {api}= needs >= {needed}"

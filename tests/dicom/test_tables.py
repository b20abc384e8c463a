"""Walk every mapping table: keywords, Types, transforms, sources, conditions, uniqueness."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword

from xnatpic.dicom import modules
from xnatpic.dicom.context import CONDITIONS, IMAGE_VALUES, PARAMETER_SETS, SERIES_VALUES
from xnatpic.dicom.engine import TYPES, Module
from xnatpic.dicom.private import PRIVATE_ELEMENTS
from xnatpic.dicom.transforms import TRANSFORMS

PROJECT = Path(__file__).resolve().parents[2]


def _iods() -> dict[str, tuple[Module, ...]]:
    from xnatpic.dicom import enhanced_modules

    iods = {"classic": modules.CLASSIC_MR_IOD}
    iods["enhanced"] = enhanced_modules.ENHANCED_MR_IOD + enhanced_modules.FUNCTIONAL_GROUPS
    return iods


ALL_MODULES = sorted({m for iod in _iods().values() for m in iod}, key=lambda m: m.name)


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda m: m.name)
class TestEveryTable:
    def test_section_is_cited(self, module):
        assert re.fullmatch(r"[A-F](\.\d+)+", module.section), module.section

    def test_keywords_known_to_pydicom(self, module):
        for row in module.rows:
            assert tag_for_keyword(row.keyword) is not None, row.keyword
        if module.sequence is not None:
            assert dictionary_VR(tag_for_keyword(module.sequence)) == "SQ"

    def test_types_transforms_and_conditions(self, module):
        for row in module.rows:
            assert row.type in TYPES, row
            assert row.transform in TRANSFORMS, row
            if row.type.endswith("C"):
                assert row.condition in CONDITIONS, row
            else:
                assert row.condition is None, row
            if row.type == "1":
                assert row.sources, f"{row.keyword}: Type 1 without a source"

    def test_sources_resolve(self, module):
        for row in module.rows:
            for source in row.sources:
                kind, _, name = source.partition(":")
                assert name, source
                if kind == "series":
                    assert name in SERIES_VALUES, source
                elif kind == "image":
                    assert name in IMAGE_VALUES, source
                else:
                    assert kind in (*PARAMETER_SETS, "const"), source


@pytest.mark.parametrize("iod", sorted(_iods()))
def test_no_keyword_twice_in_an_iod(iod):
    seen: dict[tuple[str | None, str], str] = {}
    for module in _iods()[iod]:
        for row in module.rows:
            key = (module.sequence, row.keyword)
            assert key not in seen, f"{row.keyword} in {module.name} and {seen[key]}"
            seen[key] = module.name


def test_every_derived_value_is_used_or_private():
    used = {s for m in ALL_MODULES for r in m.rows for s in r.sources}
    used |= {s for p in PRIVATE_ELEMENTS for s in p.sources}
    unused = {f"series:{n}" for n in SERIES_VALUES} | {f"image:{n}" for n in IMAGE_VALUES}
    unused -= used
    # Values other derived values (or conditions) are computed from:
    internal = {"series:slice_ranks", "series:rescaled", "series:dimensions",
                "series:dimension_indices", "series:dimension_organization_uid"}
    assert unused <= internal, sorted(unused - internal)


class TestPrivateBlock:
    def test_offsets_unique_and_vrs_valid(self):
        offsets = [p.offset for p in PRIVATE_ELEMENTS]
        assert len(offsets) == len(set(offsets))
        assert all(0 <= o <= 0xFF for o in offsets)
        vrs = {"LO", "LT", "UI", "IS", "FD", "CS", "SQ"}
        for element in PRIVATE_ELEMENTS:
            assert element.vr in vrs and element.transform in TRANSFORMS, element

    def test_documented(self):
        doc = (PROJECT / "docs" / "private-tags.md").read_text()
        for element in PRIVATE_ELEMENTS:
            tag = f"(0029,10{element.offset:02X})"
            line = next((ln for ln in doc.splitlines() if ln.startswith(f"| {tag} |")), None)
            assert line is not None, f"{tag} {element.name} missing from docs/private-tags.md"
            assert element.name in line and f"| {element.vr} |" in line, line

"""The JSONPath filter subset used by Container Service matchers."""

from __future__ import annotations

import pytest

from xnatpic.xnat import jsonpath
from xnatpic.xnat.errors import MatcherSyntaxError

SCANS = [
    {"id": "1", "scan-type": "FLASH", "series-description": "Localizer",
     "frames": 3, "resources": [{"label": "DICOM"}, {"label": "SNAPSHOTS"}]},
    {"id": "3", "scan-type": "T1 (RARE)", "series-description": "T1_RARE_axial",
     "frames": 20, "resources": [{"label": "NIFTI"}]},
    {"id": "4", "scan-type": "MSME", "series-description": "T2map_MSME",
     "frames": 160, "resources": [{"label": "DICOM"}]},
]


def _ids(matcher: str) -> list[str]:
    return [s["id"] for s in jsonpath.filter_objects(matcher, SCANS)]


class TestFilters:
    @pytest.mark.parametrize(("matcher", "expected"), [
        ("@.scan-type == 'MSME'", ["4"]),
        ('@.scan-type == "MSME"', ["4"]),
        ("@.scan-type != 'MSME'", ["1", "3"]),
        ("@.series-description =~ /T[12].*/", ["3", "4"]),
        ("@.series-description =~ /t2map.*/i", ["4"]),
        ("@.series-description =~ /T2/", []),  # full match, as Java's matches()
        ("'DICOM' in @.resources[*].label", ["1", "4"]),
        ("'DICOM' nin @.resources[*].label", ["3"]),
        ("@.resources[*].label contains 'NIFTI'", ["3"]),
        ("@.scan-type == 'MSME' && 'DICOM' in @.resources[*].label", ["4"]),
        ("@.id == '1' || @.id == '3'", ["1", "3"]),
        ("!(@.id == '1') && (@.frames > 10 || @.id == '9')", ["3", "4"]),
        ("@.frames >= 20", ["3", "4"]),
        ("@.frames < 20", ["1"]),
        ("@.id == 3", ["3"]),
        ("@.scan-type in ['MSME', 'FLASH']", ["1", "4"]),
        ("@.quality == 'usable'", []),  # missing key: false
        ("@.quality != 'usable'", []),
        ("@.resources", ["1", "3", "4"]),
        ("@.resources[0].label == 'NIFTI'", ["3"]),
        ("@['scan-type'] == 'FLASH'", ["1"]),
        ("$[?(@.id == '4')]", ["4"]),
    ])
    def test_filter(self, matcher, expected):
        assert _ids(matcher) == expected

    def test_blank_matcher_keeps_all(self):
        assert jsonpath.filter_objects("  ", SCANS) == SCANS
        assert jsonpath.filter_objects(None, SCANS) == SCANS

    def test_matches_single(self):
        assert jsonpath.matches("@.a.b == 1", {"a": {"b": 1}})


class TestSyntaxErrors:
    @pytest.mark.parametrize(("matcher", "message"), [
        ("@.id ==", "expected a value or a path"),
        ("@.id == 'x", "unterminated string"),
        ("@.id =~ 'x'", "needs a /regex/"),
        ("@.id =~ /x/q", "unknown regex flag"),
        ("@.id =~ /(/", "bad regex"),
        ("(@.id == '1'", "missing '\\)'"),
        ("@.id == '1' garbage", "unexpected"),
        ("", "empty"),
        ("@.resources[x]", "in '\\[...\\]'"),
    ])
    def test_error(self, matcher, message):
        with pytest.raises(MatcherSyntaxError, match=message):
            jsonpath.parse(matcher)

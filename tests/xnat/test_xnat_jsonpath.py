"""Container Service matchers, read and applied as Jayway JsonPath 2.8.0 does.

Expectations come from Jayway's source (json-path 2.8.0: FilterCompiler, EvaluatorFactory,
ValueNodes); tests/xnat/test_jsonpath_jayway.py runs every matcher here through the real
library as well.
"""

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
        ("@.quality == 'usable'", []),  # missing key: UNDEFINED, equal to nothing
        ("@.quality != 'usable'", ["1", "3", "4"]),  # != is !EQ: true for a missing key
        ("@.quality nin ['usable']", ["1", "3", "4"]),
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


class TestJaywaySemantics:
    """Behaviour of Jayway 2.8.0 that differs from a naive reading of JSONPath."""

    @pytest.mark.parametrize("value", [None, "", False, 0, [], {}])
    def test_a_bare_path_tests_existence_not_truth(self, value):
        # FilterCompiler.readExpression: a lone path becomes an EXISTS check
        assert jsonpath.matches("@.quality", {"quality": value})
        assert not jsonpath.matches("@.quality", {})
        assert jsonpath.matches("!@.quality", {})

    def test_wildcard_existence_needs_the_key_in_every_element(self):
        # PathNode.evaluate runs existence checks with Option.REQUIRE_PROPERTIES
        assert jsonpath.matches("@.resources[*].label", {"resources": [{"label": "A"}]})
        assert not jsonpath.matches("@.resources[*].label", {"resources": [{"label": "A"}, {}]})
        assert jsonpath.matches("@.resources[*].label", {"resources": []})

    def test_negation_before_a_compared_path_is_ignored(self):
        # readValueNode skips the '!' and PathNode's shouldExist only matters for EXISTS
        assert jsonpath.matches("!@.id == '1'", {"id": "1"})
        assert not jsonpath.matches("!(@.id == '1')", {"id": "1"})

    def test_number_and_text_compare_by_the_left_operand(self):
        # NumberNode.equals parses the text; StringNode.equals prints the number
        assert jsonpath.matches("@.n == '5'", {"n": 5.0})
        assert not jsonpath.matches("@.s == 5", {"s": "5.0"})
        assert jsonpath.matches("@.s == 5", {"s": "5"})

    def test_lists_compare_with_java_equals(self):
        assert jsonpath.matches("@.l == [1, 'a']", {"l": [1, "a"]})
        assert not jsonpath.matches("@.l == [1]", {"l": [1.0]})
        assert not jsonpath.matches("[1] == @.l", {"l": [1]})  # a literal's text on the left

    def test_words_in_lists_are_strings(self):
        # json-smart reads the literal in permissive mode
        assert jsonpath.matches("@.t in [MSME, FLASH]", {"t": "FLASH"})

    def test_invalid_operands_reject_the_object(self):
        # InvalidPathException while evaluating: PredicatePathToken.accept returns false,
        # for the whole matcher, so negating does not help
        for matcher in ("@.t in 'MSME'", "@.t anyof ['MSME']", "@.l all ['a']"):
            assert not jsonpath.matches(matcher, {"t": "MSME", "l": ["a"]})
            assert not jsonpath.matches(f"!({matcher})", {"t": "MSME", "l": ["a"]})

    def test_lists_of_objects_make_the_read_fail(self):
        with pytest.raises(jsonpath.MatcherEvaluationError, match="Could not determine"):
            jsonpath.filter_objects("'DICOM' in @.resources", SCANS)

    def test_regex_needs_a_pattern_on_exactly_one_side(self):
        # RegexpEvaluator: no pattern (or two) is false, not an error
        assert not jsonpath.matches("@.id =~ 'x'", {"id": "x"})
        assert jsonpath.matches("/x/ =~ @.id", {"id": "x"})

    def test_regex_on_a_missing_key_matches_the_empty_string(self):
        assert jsonpath.matches("@.missing =~ /.*/", {})
        assert not jsonpath.matches("@.missing =~ /.+/", {})

    def test_only_spaces_separate_tokens(self):
        assert jsonpath.matches("@.a&&@.b", {"a&&@": {"b": 1}})  # one path: a&&@ then b
        assert not jsonpath.matches("@.a&&@.b", {"a": 1, "b": 1})
        with pytest.raises(MatcherSyntaxError):
            jsonpath.parse("@.a in['x']")

    @pytest.mark.parametrize("matcher", ["$.id == '1'", "@..label", "@.l.sum() > 1"])
    def test_unsupported_jsonpath_is_refused(self, matcher):
        with pytest.raises(jsonpath.MatcherUnsupportedError):
            jsonpath.parse(matcher)


class TestSyntaxErrors:
    @pytest.mark.parametrize(("matcher", "message"), [
        ("@.id ==", "expected a value"),
        ("@.id == 'x", "matching close quote"),
        ("@.id == MSME", "expected a value: .* found 'MSME'"),
        ("@.id =~ /x/q", "found 'q'"),
        ("@.id =~ /(/", "bad regex"),
        ("(@.id == '1'", "parentheses do not match"),
        ("@.id == '1' garbage", "found 'garbage'"),
        ("@.id = '1'", "found .= '1'."),
        ("", "empty"),
        ("@.resources[x]", "path '@.resources\\[x\\]'"),
    ])
    def test_error(self, matcher, message):
        with pytest.raises(MatcherSyntaxError, match=message):
            jsonpath.parse(matcher)

"""Our matcher engine against the real Jayway JsonPath, the library XNAT's Container Service uses.

Every matcher of the test suite and of commands/, and a generated set of filters (every
operator, missing keys, nulls, empty lists, ``[]``/``""``/``false``/``0``, wildcards,
nested filters, logic, syntax edge cases, regex flags), is applied to lists of objects by
json-path 2.8.0 (XNAT 1.9's version; one JVM for all cases) and by
:mod:`xnatpic.xnat.jsonpath`. They must keep the same objects; where Jayway refuses the
matcher ours raises MatcherSyntaxError, where Jayway's read fails ours raises
MatcherEvaluationError.
"""

from __future__ import annotations

import ast
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.jayway.oracle import REPO, Oracle, Outcome, debian_oracle, xnat_oracle
from xnatpic.xnat import jsonpath
from xnatpic.xnat.errors import MatcherSyntaxError

Case = tuple[str, list[Any]]

# -- documents ----------------------------------------------------------------------------
# Children whose values cover what matchers meet: strings, numbers as text and as numbers,
# null, "", false, 0, [], {}, lists of scalars, resources with and without labels.
PLAIN = [
    {"v": "a", "n": 1, "list": ["a", "b"], "resources": [{"label": "DICOM"}, {"label": "NIFTI"}],
     "nested": {"k": "a"}, "id": "1", "scan-type": "MSME"},
    {"v": "A", "n": 1.0, "list": [1, 2], "resources": [{"label": "DICOM"}], "nested": {"k": 1},
     "id": "3", "scan-type": "T1 (RARE)"},
    {"v": "1", "n": "1", "list": [], "resources": [], "nested": {}, "id": 4},
    {"v": 1, "n": 0, "list": ["a"], "resources": [{"label": "SNAPSHOTS"}, {"format": "DICOM"}]},
    {"v": 1.0, "n": -2, "list": [1.0], "resources": [{"label": None}], "quality": "usable"},
    {"v": "", "n": 2.5, "list": [True, None], "resources": [{}], "quality": "questionable"},
    {"v": None, "n": None, "list": None, "resources": None, "nested": None, "quality": None},
    {"v": False, "n": False, "list": False, "quality": ""},
    {"v": True, "n": 1e20, "list": "ab", "resources": "DICOM"},
    {"v": [], "n": [], "list": ["a", "b", "c"], "nested": {"k": None}},
    {"v": {}, "n": {}, "list": {}},
    {"v": "abc", "n": 100, "list": ["'a'", "@.v", "[1]", "{a: 1}"]},
    {"v": "a\nb", "n": 1e-7, "list": ["1", "1.0", "A"], "resources": [{"label": "dicom"}]},
    {"v": "é", "n": 12345678.9, "list": ["É", "é"]},
    {"v": "a\rb", "n": "a\u2028b", "list": ["a.b", "a\u0085b"]},
    {},
]
# Children holding lists of objects or of lists: Jayway cannot turn those into value lists.
NESTED = [
    {"v": "a", "list": [{"a": 1}], "resources": [{"label": "DICOM"}]},
    {"v": ["a"], "list": [[1], [2]], "resources": [{"label": "NIFTI"}, "x", 3]},
    {"v": "b", "list": ["a"]},
]

# -- generated matchers --------------------------------------------------------------------
PATHS = ["@.v", "@.n", "@.list", "@.resources[*].label", "@.nested.k", "@['v']", "@.list[0]",
         "@.list[-1]", "@.*", "@.resources[0].label", "@.missing", "@['v','n']",
         "@['nested','v'].k", "@.list.length()", "@.v.size()", "@.length()",
         "@.resources[*].length()", "@.list[1:]", "@.list[:-1]", "@.list[-2:1]", "@.list[0:2]",
         "@.list.nothing()",
         "@.resources[?(@.label == 'DICOM')]", "@.list[0,1]"]
OPERATORS = ["==", "!=", "===", "!==", "<", "<=", ">", ">=", "=~", "in", "nin", "contains",
             "subsetof", "anyof", "noneof", "size", "empty", "all", "exists", "type",
             "matches"]
LITERALS = ["'a'", "'A'", "'1'", "''", "1", "1.0", "-2", "0", "100", "1e20", "true", "false",
            "null", "[]", "['a', 'b']", "[1, 2]", "[a, b]", "['1', 1.0]", "{}", "/a.*/",
            "/A/i", "@.v", "\"a\""]
LOGIC = [
    "!@.v", "!(@.v == 'a')", "!@.v == 'a'", "@.v && @.n", "@.v || @.missing",
    "@.v == 'a' && @.n == 1", "@.v == 'a' || @.n == 1", "(@.v == 'a' || @.v == 'A') && @.n",
    "@.v == 'a' || @.v == 'A' && @.n == 0", "!(@.v == 'a' || @.n == 1)", "!!@.v",
    "!(!@.v)", "( @.v == 'a' )", "((@.v))", "@.v == 'a' && (@.n > 0 || @.list size 2)",
    "'DICOM' in @.resources[*].label && @.scan-type == 'MSME'",
    "@.quality != 'usable'", "@.quality == 'usable' || !@.quality", "@.quality nin ['usable']",
    "@.list noneof ['a']", "@.list anyof ['a', 1]", "@.list subsetof ['a', 'b', 'c']",
    "@.resources[*].label contains 'DICOM'", "@.resources[*].label", "!@.resources[*].label",
    "@.resources[?(@.label)]", "@.resources[?(@.label =~ /D.*/)].label contains 'DICOM'",
    "@.list empty false", "@.v empty true", "@.n > 0 && @.n < 100", "@.id == '3'",
    "@.id == 4", "@.scan-type == 'T1 (RARE)'", "@.v == @.v", "@.n == @.n", "@.list == @.list",
]
SYNTAX = [
    "@.v=='a'", "@.v  ==  'a'", "@.v == 'a'  ", "  @.v == 'a'", "@.v&&@.n", "@.v && @.n",
    "@.v in['a']", "@.v IN ['a']", "@.v In ['a']", "@.v = 'a'", "@.v <> 'a'", "@.v == ",
    "== 'a'", "'a'", "'a' == @.v", "1 == @.n", "@.v == 'a", "@.v == a", "@.v == tru",
    "@.v == nul", "@.v == true1", "@.v == 'a' garbage", "(@.v == 'a'", "@.v == 'a')",
    "@.v == 1.5.2", "@.n == +1", "@.n == .5", "@.n == 01", "@.n == 1e2", "@.n == -", "@",
    "@.", "@.v.", "@[v]", "@.v[", "@.list[x]", "@.list[ 0 ]", "@.list[0 , 1]",
    "@['v", "@[ 'v' ]", "@.resources[ * ].label", "@.*v", "@.v == 'it\\'s'",
    "@.v == \"a\\\"b\"", "@.v == '\\u0061'", "@.v == '\\q'", "@.v == 'a\\\\'",
    "@.v =~ /a/q", "@.v =~ /a", "@.v =~ /(/", "@.v =~ 'a'", "/a/ =~ @.v", "@.v == /a/",
    "@.v\t== 'a'", "@.v == 'a'\t", "!", "!'a'", "!(@.v)", "@.v == !@.n", "@.v ! = 'a'",
    "@.v !in ['a']", "@.v nin['a']", "@.list == [1, 2", "@.list == ['a', 'b']",
    "@.list == [\"a\", \"b\"]", "@.list in [[1], [2]]", "@.v in [a b]", "@.v in [a,]",
    "@.v in {a: 1}", "@.v == {}", "@.nested == {k: 'a'}", "@.nested == {\"k\": \"a\"}",
    "@.v == 'a' && ", "&& @.v", "@.v ||| @.n", "@.v === 'a'", "@.n === '1'", "@.n !== 1",
    "@.v exists true", "@.v exists", "@.list size '2'", "@.list size 2.9", "@.v size 1",
    "@.v empty", "@.v empty 'x'", "@.list type 'x'", "@.v matches 'x'", "@.list all ['a']",
]
REGEX = [
    "@.v =~ /a/", "@.v =~ /A/i", "@.v =~ /a.b/", "@.v =~ /a.b/s", "@.v =~ /^b$/m",
    "@.v =~ /.*b/m", "@.v =~ / a /x", "@.v =~ /\\w/", "@.v =~ /\\w/U", "@.v =~ /É/i",
    "@.v =~ /É/iu", "@.v =~ /.*/", "@.missing =~ /.*/", "@.missing =~ /.+/", "@.n =~ /1/",
    "@.n =~ /1\\.0/", "@.n =~ /1\\.0E-7/", "@.n =~ /1\\.0E\\+20/", "@.v =~ /true/",
    "@.list =~ /a/", "@.list =~ /1\\.0/", "@.resources[*].label =~ /DIC.*/",
    "@.v =~ /a\\/b/", "@.v =~ /[a-c]+/", "@.v =~ /(a|A)/", "@.v =~ /a{1,2}/di",
    "@.v =~ /a/ && @.n =~ /1/", "@.v =~ /a/i || @.v =~ /b/", "@.n =~ /a.b/",
    "@.n =~ /a.b/d", "@.v =~ /a.b/d", "@.v =~ /a[.]b/", "@.list =~ /a\\.b/",
    "@.list =~ /a\\Q.\\Eb/", "@.list =~ /a.b/", "@.list =~ /a.b/s",
]

# Valid for Jayway, refused here (MatcherUnsupportedError) rather than evaluated differently.
UNSUPPORTED = ["$.v == 'a'", "@.v == $.v", "@..label", "@.list.sum() > 1",
               "@.v == 'a')][?(@.n"]


RANDOM_PATHS = [*PATHS, "@", "@.resources[*]", "@.list[*]", "@.nested", "@['nested']['k']",
                "@.resources[?(@.label)].label", "@.list[?(@ == 'a')]", "@.*.k", "@.list[5]",
                "@.v.x", "@.list[-1:]", "@.list[:1]", "@.list[1:2:3]", "@.list[:]",
                "@.list[1 :2]", "@.nested.length()", "@.length().x", "@.list.size().x"]
RANDOM_LITERALS = [
    *LITERALS,
    "'DICOM'", "'é'", "' a '", "'a\\\\nb'", "2.50", "1E1", "-0", "[true, null]", "[[1]]",
    "[{'a': 1}]", "{'k': 'a'}", "{k: a}", "/.*/", "/^$/", "/[0-9]+/", "/a|b/i", "'\\u00e9'",
    "\"it's\"", "['a',]", "[ ]", "[1,2,3]", "'null'", "'true'"]
SPACES = [" ", " ", " ", "  ", ""]


def random_filters(seed: int, count: int) -> list[str]:
    """Random comparisons joined by !, (), && and || with irregular spacing (seeded)."""
    rng = random.Random(seed)

    def comparison() -> str:
        if rng.random() < 0.15:
            return rng.choice(RANDOM_PATHS)
        sides = [rng.choice(RANDOM_PATHS), rng.choice(RANDOM_LITERALS)]
        if rng.random() < 0.2:
            sides.reverse()
        return rng.choice(SPACES).join([sides[0], rng.choice(OPERATORS), sides[1]])

    def expression(depth: int = 0) -> str:
        draw = rng.random()
        if depth > 2 or draw < 0.5:
            return comparison()
        if draw < 0.65:
            return rng.choice(["!", "! "]) + "(" + expression(depth + 1) + ")"
        if draw < 0.75:
            return "(" + rng.choice(SPACES) + expression(depth + 1) + rng.choice(SPACES) + ")"
        return (expression(depth + 1) + rng.choice([" && ", " || ", "&&", " ||", "&& "])
                + expression(depth + 1))

    return sorted({expression() for _ in range(count)})


def generated() -> list[str]:
    """Every path with every operator and literal (both sides), then the hand-made lists."""
    filters = [f"{p} {op} {lit}" for p, op, lit in itertools.product(PATHS, OPERATORS, LITERALS)]
    filters += [f"{lit} {op} {p}" for lit, op, p in
                itertools.product(LITERALS[::3], OPERATORS, PATHS[:5])]
    filters += [p for p in PATHS] + [f"!{p}" for p in PATHS]
    return filters + LOGIC + SYNTAX + REGEX + random_filters(seed=8, count=1500)


# -- matchers found in the suite and in commands/ -----------------------------------------
def _json_matchers(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "matcher" and isinstance(item, str) and item.strip():
                yield item
            else:
                yield from _json_matchers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_matchers(item)


def _looks_like_matcher(text: str) -> bool:
    return ("@." in text or "@[" in text) and "\n" not in text and len(text) < 300


def suite_matchers() -> list[str]:
    """Matcher strings in tests/ (JSON "matcher" values, Python string constants)."""
    found: set[str] = set()
    for path in sorted((REPO / "tests").rglob("*.json")):
        try:
            found.update(_json_matchers(json.loads(path.read_text(encoding="utf-8"))))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue  # this file's matchers are the generated set
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.update(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str)
                     and _looks_like_matcher(node.value))
    return sorted(found)


def command_matchers() -> list[str]:
    """Every wrapper input matcher in commands/*.json."""
    found: set[str] = set()
    for path in sorted((REPO / "commands").glob("*.json")):
        found.update(_json_matchers(json.loads(path.read_text(encoding="utf-8"))))
    return sorted(found)


def _unwrap(matcher: str) -> str:
    text = matcher.strip()
    if text.startswith("$[?(") and text.endswith(")]"):
        return text[4:-2]
    return matcher


def _children_for(matcher: str) -> list[Any]:
    """PLAIN plus objects built from the matcher's own comparisons (value, missing, null)."""
    children = list(PLAIN)
    try:
        expr = jsonpath.parse(matcher)
    except MatcherSyntaxError:
        return children
    stack: list[Any] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, jsonpath.And | jsonpath.Or):
            stack += [node.left, node.right]
        elif isinstance(node, jsonpath.Not):
            stack.append(node.expr)
        elif isinstance(node, jsonpath.Compare):
            sides = (node.left, node.right)
            path = next((s for s in sides if isinstance(s, jsonpath.Path)), None)
            value = next((s for s in sides if isinstance(s, jsonpath.Literal)), None)
            if path and value and path.steps and all(isinstance(s, str) for s in path.steps):
                for leaf in (value.value, None, "other"):
                    leaf = float(leaf) if value.kind == "number" and leaf == value.value else leaf
                    obj: dict[str, Any] = {}
                    cursor = obj
                    for key in path.steps[:-1]:
                        cursor = cursor.setdefault(key, {})
                    cursor[path.steps[-1]] = leaf
                    children.append(obj)
    return children


# -- comparing the engines ----------------------------------------------------------------
def ours(matcher: str, children: list[Any]) -> Outcome:
    try:
        return Outcome(jsonpath.filter_objects(matcher, children))
    except jsonpath.MatcherUnsupportedError as exc:
        return Outcome(None, "Unsupported", str(exc))
    except jsonpath.MatcherEvaluationError as exc:
        return Outcome(None, "Evaluation", str(exc))
    except MatcherSyntaxError as exc:
        return Outcome(None, "Syntax", str(exc))


def agrees(jayway: Outcome, mine: Outcome) -> bool:
    if jayway.kept is not None:
        return mine.kept is not None and mine.kept == jayway.kept
    if jayway.error == "InvalidPathException":  # refused while reading the path
        return mine.error == "Syntax"
    return mine.error == "Evaluation"  # the read itself failed


@pytest.fixture(scope="module")
def xnat_jayway(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    return xnat_oracle(tmp_path_factory.mktemp("jayway-2.8.0"))


def _cases(matchers: list[str], pools: list[list[Any]]) -> list[Case]:
    return [(m, pool) for m in matchers for pool in pools]


def _disagreements(oracle: Oracle, cases: list[Case]) -> list[str]:
    report = []
    for (matcher, children), jayway in zip(cases, oracle.run(cases), strict=True):
        mine = ours(matcher, children)
        if not agrees(jayway, mine):
            report.append(f"{matcher!r} on {json.dumps(children)[:120]}...: Jayway "
                          f"{jayway.kept if jayway.kept is not None else jayway.error} "
                          f"{jayway.message[:80]}, ours "
                          f"{mine.kept if mine.kept is not None else mine.error} "
                          f"{mine.message[:80]}")
    return report


class TestAgainstJayway:
    def test_generated_set(self, xnat_jayway: Oracle) -> None:
        filters = generated()
        cases = _cases(filters, [PLAIN, NESTED])
        pairs = sum(len(children) for _, children in cases)
        assert len(filters) >= 300 and pairs >= 300
        report = _disagreements(xnat_jayway, cases)
        assert not report, f"{len(report)} of {len(cases)} cases differ:\n" + "\n".join(
            report[:40])

    def test_suite_matchers(self, xnat_jayway: Oracle) -> None:
        matchers = [_unwrap(m) for m in suite_matchers()]
        assert "@.scan-type == 'MSME'" in matchers  # the collector does find them
        refused = [m for m in matchers if ours(m, []).error == "Unsupported"]
        # the ones we refuse as unsupported must be ones Jayway reads
        assert all(o.error != "InvalidPathException"
                   for o in xnat_jayway.run(_cases(refused, [PLAIN])))
        matchers = [m for m in matchers if m not in refused]
        cases = [(m, _children_for(m)) for m in matchers] + _cases(matchers, [NESTED])
        report = _disagreements(xnat_jayway, cases)
        assert not report, "\n".join(report[:40])

    def test_command_matchers(self, xnat_jayway: Oracle) -> None:
        assert sorted((REPO / "commands").glob("*.json")), "no commands/*.json found"
        matchers = command_matchers()
        cases = [(m, _children_for(m)) for m in matchers]
        report = _disagreements(xnat_jayway, cases) if cases else []
        assert not report, "\n".join(report)

    @pytest.mark.parametrize("matcher", UNSUPPORTED)
    def test_unsupported_matchers_are_refused_not_guessed(
        self, xnat_jayway: Oracle, matcher: str
    ) -> None:
        # Jayway reads these (an InvalidPathException would mean it refuses the text); we
        # refuse them rather than evaluate them differently.
        (jayway,) = xnat_jayway.run([(matcher, PLAIN)])
        assert jayway.error != "InvalidPathException", jayway
        with pytest.raises(jsonpath.MatcherUnsupportedError):
            jsonpath.parse(matcher)


def _same(a: Outcome, b: Outcome) -> bool:
    """Same objects kept, or both refused/failed (the exception classes may differ)."""
    return a.kept == b.kept


QUALITIES = [{"id": 1, "quality": "usable"}, {"id": 2}, {"id": 3, "quality": None}]
# Where json-path 2.0.0 (Debian) and 2.0.0's Criteria.parse/safeCompare differ from 2.8.0
# (XNAT), as read in the sources; ids kept, or None when the library refuses or fails.
DEBIAN_DIFFERENCES = [
    # 2.0.0 Criteria.eval: a missing path (PathNotFoundException) is false for every
    # operator, '!=' included; safeCompare treats null as less than anything.
    ("@.quality != 'usable'", QUALITIES, [2, 3], [3]),
    ("@.missing =~ /.*/", [{"id": 1}], [1], []),
    # 2.0.0 EXISTS: the value must be non-null.
    ("@.quality", QUALITIES, [1, 3], [1]),
    ("!@.quality", QUALITIES, [2], [2, 3]),
    # 2.0.0 reads no '!(...)': the whole filter is false.
    ("!(@.id == 1)", QUALITIES, [2, 3], []),
    # 2.0.0 isString: only single quotes make a string literal.
    ('@.scan-type == "MSME"', [{"id": 1, "scan-type": "MSME"}], [1], []),
    # 2.0.0 safeCompare: text against a boolean through Boolean.valueOf ('5' is false).
    ("@.n == '5'", [{"id": 1, "n": 5}, {"id": 2, "n": False}], [1], [1, 2]),
    # 2.0.0 keeps the literal 20 as text and compares text with text, text with numbers.
    ("@.frames >= 20", [{"id": 1, "frames": 20}, {"id": 2, "frames": "300"},
                        {"id": 3, "frames": "abc"}], [1], [1, 2, 3]),
    # 2.0.0 Criteria.parse knows == >= <= != < > =~ only, and no '[*]' in a filter path.
    ("'DICOM' in @.resources[*].label", [{"id": 1, "resources": [{"label": "DICOM"}]}],
     [1], None),
    ("@.scan-type in ['MSME', 'FLASH']", [{"id": 1, "scan-type": "MSME"}], [1], None),
    ("@.resources[*].label", [{"id": 1, "resources": [{"label": "DICOM"}]}], [1], None),
    # 2.0.0 has no JSON literals: [1] stays text.
    ("@.l == [1]", [{"id": 1, "l": [1]}], [1], []),
    ("@.resources[*].label contains 'NIFTI'", [{"id": 1, "resources": [{"label": "NIFTI"}]}],
     [1], None),
    # 2.0.0 casts the right side of =~ to a Pattern.
    ("@.id =~ 'x'", [{"id": "x"}], [], None),
    # 2.0.0 fails the read when an index meets something that is not a list.
    ("@.resources[0].label == 'NIFTI'", [{"id": 1, "resources": "DICOM"},
                                         {"id": 2, "resources": [{"label": "NIFTI"}]}],
     [2], None),
]


class TestDebianJayway:
    """Debian ships json-path 2.0.0: where it differs from XNAT's 2.8.0, read in both sources."""

    @pytest.fixture(scope="class")
    @classmethod
    def both(cls, tmp_path_factory: pytest.TempPathFactory) -> tuple[Oracle, Oracle]:
        return (xnat_oracle(tmp_path_factory.mktemp("xnat")),
                debian_oracle(tmp_path_factory.mktemp("debian")))

    def test_documented_differences(self, both: tuple[Oracle, Oracle]) -> None:
        cases = [(m, children) for m, children, _, _ in DEBIAN_DIFFERENCES]
        xnat, debian = (oracle.run(cases) for oracle in both)
        for (matcher, _, want_xnat, want_debian), a, b in zip(
                DEBIAN_DIFFERENCES, xnat, debian, strict=True):
            got_xnat = None if a.kept is None else [c["id"] for c in a.kept]
            got_debian = None if b.kept is None else [c["id"] for c in b.kept]
            assert (got_xnat, got_debian) == (want_xnat, want_debian), matcher

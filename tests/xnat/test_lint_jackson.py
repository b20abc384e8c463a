"""The linter's JSON-type rules agree with the real Jackson on every case below.

tests/xnat/jackson/JacksonCoercion.java reads each value with an ObjectMapper configured as
XNAT's (framework SerializerConfig.objectMapperBuilder: ALLOW_SINGLE_QUOTES,
ALLOW_YAML_COMMENTS, FAIL_ON_UNKNOWN_PROPERTIES off) into the Java type that
Command.CommandCreation's creator declares for the field, with Guava's null refusal of
ImmutableList/ImmutableMap.copyOf. It runs against Debian's libjackson2-databind-java
(installed by ``make jayway``); a missing JDK or jar fails these tests.

Longs near 2**63 are left out: Debian's Jackson 2.14.0 refuses some of them through a
creator (a version-specific quirk); memory sizes are far below.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from xnatpic.xnat.lint import shape
from xnatpic.xnat.lint.values import parse_string_list

HARNESS = Path(__file__).parent / "jackson" / "JacksonCoercion.java"
JARS = [Path("/usr/share/java") / f"jackson-{n}.jar" for n in ("databind", "core", "annotations")]

SPECS: dict[str, Any] = {
    "string": shape.STRING, "long": shape.LONG, "double": shape.DOUBLE,
    "boolean": shape.BOOLEAN, "list": shape.ListOf(shape.STRING),
    "set": shape.ListOf(shape.STRING), "map": shape.MapOfStrings(),
}
SCALARS: list[Any] = [
    "2048", " 2048 ", "2G", "", "  ", "2.5", "1e3", "+5", "-7", "NaN", "Infinity", "0x10",
    "true", "True", "TRUE", "false", "False", "yes", "1", "0", "null", "tRUE", " true ",
    "FALSE", "1.0", "1.5f", "1.5d", "INF", "-INF", "-Infinity", ".5", "5.", "1_000", "007",
    "5L", "0x1p3", "1e400",
    0, 1, 2, -1, 2.5, 1.0, 1e3, 2**40, 2**64, True, False, None,
    [], ["a"], {}, {"a": 1},
]
COLLECTIONS: list[Any] = [
    ["a", 1, True, 2.5], [], [None], [["a"]], [{}], "a", "", 5, {}, {"a": "b"}, None,
]
MAPS: list[Any] = [
    {"a": "b"}, {"a": 1}, {"a": True}, {"a": None}, {"a": [1]}, {"a": {}}, {}, [], "x", 3,
    None, [["a", "b"]],
]
DEFAULTS: list[str] = [
    '["a", "b"]', "[]", "a", "", " ", '"a"', "[1, 2.5, true]", '["a"] trailing', "['a']",
    '[["a"]]', '[{"a": 1}]', "null", '["a", null]', "5", "{}", '  ["a"]',
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: the Jackson oracle needs a JDK (run `make jayway`)")
    return path


@pytest.fixture(scope="module")
def jackson(tmp_path_factory):
    """Run (kind, JSON text) cases through the compiled harness."""
    missing = [str(j) for j in JARS if not j.exists()]
    if missing:
        pytest.fail(f"missing {missing}: install libjackson2-databind-java (make jayway)")
    classes = tmp_path_factory.mktemp("jackson")
    classpath = ":".join([str(classes), *map(str, JARS)])
    subprocess.run([_tool("javac"), "-nowarn", "-d", str(classes), "-cp", classpath,
                    str(HARNESS)], check=True, capture_output=True, timeout=300)

    def run(cases: list[tuple[str, str]]) -> list[str]:
        lines = "".join(f"{kind}\t{base64.b64encode(text.encode()).decode()}\n"
                        for kind, text in cases)
        done = subprocess.run([_tool("java"), "-cp", classpath, "JacksonCoercion"],
                              input=lines, capture_output=True, text=True, check=True,
                              timeout=300)
        answers = done.stdout.splitlines()
        assert len(answers) == len(cases), done.stderr[-2000:]
        return answers

    return run


def _ours(kind: str, value: Any) -> bool:
    """Whether the linter accepts this value for this field type (no shape problem)."""
    return not list(shape._check(value, SPECS[kind], "v"))


def test_field_types_agree_with_jackson(jackson):
    cases = [(kind, value) for kind in ("string", "long", "double", "boolean")
             for value in SCALARS]
    cases += [(kind, value) for kind in ("list", "set") for value in COLLECTIONS]
    cases += [("map", value) for value in MAPS]
    answers = jackson([(kind, json.dumps(value)) for kind, value in cases])
    disagree = [(kind, value, answer) for (kind, value), answer in zip(cases, answers, strict=True)
                if _ours(kind, value) != (answer == "OK")]
    assert disagree == [], "\n".join(map(repr, disagree))


def test_select_many_default_parsing_agrees_with_jackson(jackson):
    answers = jackson([("default", text) for text in DEFAULTS])
    for text, answer in zip(DEFAULTS, answers, strict=True):
        ours = parse_string_list(text)
        if answer.startswith("LIST "):
            assert ours == json.loads(answer[5:]), text
        else:  # IOException, or a JSON null: both compared as the whole string
            assert answer in ("IOEXCEPTION", "NULL") and ours is None, (text, answer)


def test_missing_select_many_default_throws_past_validate(jackson):
    # Command.java:951-956 catches IOException only; readValue(null) throws another kind
    assert jackson([("default-null", "x")]) == ["THROW IllegalArgumentException"]

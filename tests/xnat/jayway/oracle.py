"""Run matchers through the real Jayway JsonPath (tests/xnat/jayway/JaywayOracle.java).

Two builds of the library are used: json-path 2.8.0, the version XNAT 1.9's parent BOM pins,
which the npm package wiremock@3.2.0 carries relocated under the ``wiremock.`` package prefix
(``make jayway`` fetches it into build/jayway/), and Debian's libjsonpath-java 2.0.0 from
/usr/share/java. A missing JDK or jar fails the tests that need them: run ``make jayway``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
HARNESS = Path(__file__).resolve().parent / "JaywayOracle.java"
XNAT_JAR = REPO / "build" / "jayway" / "wiremock-standalone-3.2.0.jar"
# The jar inside npm wiremock@3.2.0 (its build.gradle pins com.jayway.jsonpath:json-path:2.8.0).
XNAT_JAR_SHA256 = "be83bd500c61c509565ace233238bddd305409c15686dff809e6be5290662f74"
XNAT_PREFIX = "wiremock."
DEBIAN_JAVA_DIR = Path("/usr/share/java")
DEBIAN_JARS = ("json-path", "json-smart", "accessors-smart", "asm", "slf4j-api", "slf4j-nop",
               "jackson-databind", "jackson-core", "jackson-annotations")


@dataclass(frozen=True)
class Outcome:
    """What Jayway did with one (matcher, children) case."""

    kept: list[Any] | None
    error: str = ""
    message: str = ""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: the Jayway oracle needs a JDK (run `make jayway`)")
    return path


class Oracle:
    """One compiled copy of the harness against one build of Jayway JsonPath."""

    def __init__(self, workdir: Path, classpath: list[Path], prefix: str = "") -> None:
        source_dir = workdir / "src"
        source_dir.mkdir(parents=True)
        source = HARNESS.read_text(encoding="utf-8")
        if prefix:
            for package in ("com.jayway.jsonpath", "com.fasterxml.jackson"):
                source = source.replace(package, prefix + package)
        (source_dir / HARNESS.name).write_text(source, encoding="utf-8")
        self.classes = workdir / "classes"
        self.classpath = ":".join(str(p) for p in [self.classes, *classpath])
        subprocess.run(
            [_tool("javac"), "-nowarn", "-d", str(self.classes), "-cp", self.classpath,
             str(source_dir / HARNESS.name)],
            check=True, capture_output=True, timeout=300,
        )

    def run(self, cases: list[tuple[str, list[Any]]]) -> list[Outcome]:
        """Apply every matcher to its children in one JVM; one Outcome per case."""
        def b64(text: str) -> str:
            return base64.b64encode(text.encode("utf-8")).decode("ascii")

        lines = [f"{b64(m)} {b64(json.dumps(children))}\n" for m, children in cases]
        done = subprocess.run(
            [_tool("java"), "-cp", self.classpath, "JaywayOracle"], input="".join(lines),
            capture_output=True, text=True, encoding="utf-8", timeout=600, check=True,
        )
        answers = done.stdout.rstrip("\n").split("\n")  # not splitlines: U+2028 is data
        assert len(answers) == len(cases), done.stderr[-2000:]
        outcomes = []
        for answer in answers:
            status, _, rest = answer.partition(" ")
            if status == "OK":
                outcomes.append(Outcome(json.loads(rest)))
            else:
                error, _, message = rest.partition(" ")
                outcomes.append(Outcome(None, error.rsplit(".", 1)[-1],
                                        base64.b64decode(message).decode("utf-8")))
        return outcomes


def xnat_oracle(workdir: Path) -> Oracle:
    """json-path 2.8.0 (XNAT 1.9's version), checked against its pinned digest."""
    if not XNAT_JAR.is_file():
        pytest.fail(f"{XNAT_JAR} is missing: run `make jayway`")
    digest = hashlib.sha256(XNAT_JAR.read_bytes()).hexdigest()
    if digest != XNAT_JAR_SHA256:
        pytest.fail(f"{XNAT_JAR} has sha256 {digest}, expected {XNAT_JAR_SHA256}: "
                    "delete it and run `make jayway`")
    return Oracle(workdir, [XNAT_JAR], XNAT_PREFIX)


def debian_oracle(workdir: Path) -> Oracle:
    """Debian's libjsonpath-java (2.0.0) with Debian's Jackson, json-smart and slf4j."""
    jars = [DEBIAN_JAVA_DIR / f"{name}.jar" for name in DEBIAN_JARS]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make jayway`")
    return Oracle(workdir, jars)

"""The switch XNATPIC_REQUIRE_ORACLES: a missing oracle fails instead of skipping.

Each case is a small test file run by a separate pytest with tests/conftest.py's hooks
loaded as a plugin, with the switch set, unset, or implied by CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.oracles import REQUIRE_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "missing_executable": """
from tests.oracles import require_executable
def test_needs_tool():
    require_executable("xnatpic-no-such-oracle-tool", "apt-get install nothing")
""",
    "missing_module_at_import": """
from tests.oracles import require_module
mod = require_module("xnatpic_no_such_oracle_module", "pip install nothing")
def test_uses_it():
    assert mod
""",
    "missing_folder_in_fixture": """
from pathlib import Path
from xml.etree import ElementTree
import pytest
from tests.oracles import require_folder
@pytest.fixture
def data():
    return require_folder(Path("/nonexistent/xnatpic-corpus"), "fake corpus")
def test_reads(data):
    assert data
""",
    "plain_skip": """
import pytest
def test_skips():
    pytest.skip("some reason nobody declared")
""",
    "skipif_marker": """
import pytest
@pytest.mark.skipif(True, reason="undeclared condition")
def test_marked():
    pass
""",
    "module_importorskip": """
import pytest
pytest.importorskip("xnatpic_no_such_oracle_module")
def test_never():
    pass
""",
    "declared_skip": """
from tests.oracles import skip_not_an_oracle
def test_declared():
    skip_not_an_oracle("only meaningful on Windows")
""",
    "xfail": """
import pytest
@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
""",
}


ENVIRONMENTS = {
    "unset": {},
    "switch": {REQUIRE_ENV: "1"},
    "ci": {"CI": "true"},
    "ci-switched-off": {"CI": "true", REQUIRE_ENV: "0"},
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict[str, tuple[str, str]]]:
    """environment -> case -> (outcome, message), from one pytest run per environment."""
    results: dict[str, dict[str, tuple[str, str]]] = {}
    base = {k: v for k, v in os.environ.items() if k not in (REQUIRE_ENV, "CI")}
    for name, env in ENVIRONMENTS.items():
        folder = tmp_path_factory.mktemp(name)
        for case, text in CASES.items():
            (folder / f"test_{case}.py").write_text(text)
        junit = folder / "junit.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
             "tests.conftest", "--rootdir", str(folder), "-c", os.devnull,
             "--continue-on-collection-errors", f"--junitxml={junit}", str(folder)],
            cwd=PROJECT_ROOT, env={**base, **env}, capture_output=True, text=True, check=False,
        )
        results[name] = {}
        for testcase in ElementTree.parse(junit).iter("testcase"):
            case = re.sub(r"^.*test_", "", testcase.get("classname") or testcase.get("name"))
            outcome, message = "passed", ""
            for child in testcase:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    message = (child.get("message") or "") + (child.text or "")
            results[name][case] = (outcome, message)
    return results


MISSING = ["missing_executable", "missing_module_at_import", "missing_folder_in_fixture"]
UNDECLARED = ["plain_skip", "skipif_marker", "module_importorskip"]


@pytest.mark.parametrize("case", MISSING + UNDECLARED)
def test_without_switch_a_missing_oracle_skips(outcomes, case):
    assert outcomes["unset"][case][0] == "skipped", outcomes["unset"][case]
    assert outcomes["ci-switched-off"][case][0] == "skipped"


@pytest.mark.parametrize("case", MISSING + UNDECLARED)
@pytest.mark.parametrize("environment", ["switch", "ci"])
def test_with_switch_every_undeclared_skip_fails(outcomes, case, environment):
    assert outcomes[environment][case][0] in ("failure", "error"), outcomes[environment][case]


@pytest.mark.parametrize("case", MISSING)
def test_the_failure_names_the_missing_oracle(outcomes, case):
    message = outcomes["switch"][case][1]
    assert re.search(r"xnatpic-no-such-oracle-tool|xnatpic_no_such_oracle_module|fake corpus",
                     message), message
    assert f"{REQUIRE_ENV} is set" in message


@pytest.mark.parametrize("case", ["declared_skip", "xfail"])
@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_declared_skips_and_xfails_stay_allowed(outcomes, case, environment):
    assert outcomes[environment][case][0] == "skipped", outcomes[environment][case]


def test_make_test_and_ci_set_the_switch():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    (line,) = [x for x in makefile.splitlines() if "pytest" in x and " tests" in x
               and x.startswith("\t")]
    assert f"{REQUIRE_ENV}=1" in line
    assert f"{REQUIRE_ENV}=1" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_no_skip_site_bypasses_the_helpers():
    """Skips are asked of tests/oracles.py (the hook catches the rest, but say why here)."""
    offenders = []
    for path in sorted((PROJECT_ROOT / "tests").rglob("*.py")):
        if path.name in ("oracles.py", Path(__file__).name):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"pytest\.skip\(|pytest\.importorskip\(|mark\.skip", line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders

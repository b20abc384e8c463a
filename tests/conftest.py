"""Shared fixtures (paths to the real ParaVision corpus beside the project) and the switch
that makes every skipped oracle a failure (tests/oracles.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oracles import (
    DECLARED_PREFIX,
    REQUIRE_ENV,
    DeliberateSkip,
    oracles_required,
    require_folder,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT_ROOT.parent / "shared" / "data" / "paravision"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real ParaVision corpus in ../shared/data/paravision (an oracle: tests/oracles.py)."""
    return require_folder(CORPUS, "real ParaVision corpus")


def _undeclared_skip(report: pytest.TestReport | pytest.CollectReport,
                     excinfo: pytest.ExceptionInfo[BaseException] | None) -> bool:
    """A skip that was not declared with tests.oracles.skip_not_an_oracle (nor an xfail)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return False
    return not (excinfo is not None and isinstance(excinfo.value, DeliberateSkip))


def _as_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped while {REQUIRE_ENV} is set: {reason}\n"
                       "(a missing oracle must not let the suite pass; declare a skip that "
                       "hides no truth with tests.oracles.skip_not_an_oracle)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Under the switch, a skipped test (skip(), skipif, importorskip) is a failure."""
    report = yield
    if oracles_required() and _undeclared_skip(report, call.excinfo):
        _as_failure(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[pytest.CollectReport]:
    """Under the switch, a module skipped at import (module-level importorskip) is a failure."""
    report = yield
    if oracles_required() and report.skipped and report.longrepr is not None:
        # the collect report keeps no exception: a declared skip says so in its reason
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if DECLARED_PREFIX not in reason:
            _as_failure(report)
    return report

"""Independent truths (oracles) the tests need, and what happens when one is missing.

An oracle is anything a test checks our output against that is not our own code: the real
ParaVision corpus, dciodvfy, dcm2niix, storescp, brkraw, highdicom, a container runtime,
git, a JDK. Every test that needs one asks for it through this module:

* switch unset (a developer without the tools): the test is skipped, with the reason;
* ``XNATPIC_REQUIRE_ORACLES=1`` (set by ``make test`` and ``.ci/run``), or ``CI`` set
  without ``XNATPIC_REQUIRE_ORACLES=0``: the test FAILS, naming the oracle and how to
  install it.

Any other skip is a failure under the switch too (tests/conftest.py turns it into one),
unless it is declared with :func:`skip_not_an_oracle`, for skips that hide no truth.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

#: The environment variable that makes every missing oracle a failure.
REQUIRE_ENV = "XNATPIC_REQUIRE_ORACLES"
#: How the reason of a declared (allowed) skip begins.
DECLARED_PREFIX = "not an oracle: "


class DeliberateSkip(pytest.skip.Exception):
    """A skip that hides no independent truth (allowed under the switch)."""


def oracles_required() -> bool:
    """True when a missing oracle must fail (switch set, or CI unless switched off)."""
    value = os.environ.get(REQUIRE_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return bool(os.environ.get("CI"))


def missing_oracle(reason: str) -> NoReturn:
    """Skip (switch unset) or fail (switch set) because an oracle is missing.

    Parameters
    ----------
    reason
        What is missing and how to get it, e.g. "dciodvfy is not installed; run `make tools`".
    """
    if oracles_required():
        pytest.fail(f"oracle missing ({REQUIRE_ENV} is set): {reason}", pytrace=False)
    pytest.skip(f"oracle missing: {reason}", allow_module_level=True)


def require_executable(name: str, install: str) -> str:
    """The path of executable ``name``; missing: :func:`missing_oracle` with ``install``."""
    path = shutil.which(name)
    if path is None:
        missing_oracle(f"{name} is not installed ({install})")
    return path


def require_module(name: str, why: str) -> ModuleType:
    """Import module ``name``; not importable: :func:`missing_oracle` naming ``why``."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing_oracle(f"{name} cannot be imported ({exc}); {why}")


def require_folder(path: Path, what: str) -> Path:
    """``path`` when it is a folder; absent: :func:`missing_oracle` naming ``what``."""
    if not path.is_dir():
        missing_oracle(f"{what} not found at {path} (it lives beside the project in ../shared)")
    return path


def skip_not_an_oracle(reason: str) -> NoReturn:
    """Skip for a reason that hides no truth; allowed even under the switch."""
    raise DeliberateSkip(msg=DECLARED_PREFIX + reason, allow_module_level=True)

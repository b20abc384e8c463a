"""The map commands' inputs reach the step: each resolved command line parses with the step's
own argument parser (``xnatpic.analysis.runner.build_parser``) to the launched values."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.xnat.launch_archive import make_session
from xnatpic.analysis.mask import SNR_FLOOR
from xnatpic.analysis.runner import STEPS, build_parser
from xnatpic.xnat.archive import load_session
from xnatpic.xnat.resolve import find_wrapper, resolve

ROOT = Path(__file__).resolve().parents[2]
MAP_STEPS = tuple(STEPS)


def command_of(step: str) -> dict[str, Any]:
    return json.loads((ROOT / "commands" / f"{step}.json").read_text())


@pytest.fixture
def session(tmp_path) -> Path:
    return make_session(tmp_path / "archive", "m1_d0")


def step_args(step: str, session: Path, params: dict[str, str]):
    """Resolve ``commands/<step>.json`` with ``params`` and parse its line as the step does."""
    command = command_of(step)
    resolved = resolve(command, find_wrapper(command, None), load_session(session), params)
    return build_parser(step).parse_args(shlex.split(resolved.command_line))


@pytest.mark.parametrize("step", MAP_STEPS)
def test_snr_floor_reaches_the_step(step, session):
    assert step_args(step, session, {"snr_floor": "2.5"}).snr_floor == 2.5
    # blank: the flag is left out and the step's own default applies
    assert step_args(step, session, {}).snr_floor == SNR_FLOOR


def test_t2map_epg_method_reaches_the_step(session):
    assert step_args("t2map", session, {"method": "epg"}).method == "epg"


def test_t1map_echo_train_reaches_the_step(session):
    assert step_args("t1map", session, {"echo_train_ms": "12.5"}).echo_train_ms == 12.5
    assert step_args("t1map", session, {}).echo_train_ms == -1.0


@pytest.mark.parametrize("step", MAP_STEPS)
def test_every_select_value_is_a_step_choice(step, session):
    """Each select-one value of the command is accepted by the step (none is refused at run)."""
    for cinp in command_of(step)["inputs"]:
        for value in cinp.get("select-values", []):
            args = step_args(step, session, {cinp["name"]: value})
            assert getattr(args, cinp["name"]) == value, (step, cinp["name"], value)


@pytest.mark.parametrize("step", MAP_STEPS)
def test_every_step_option_is_a_command_input(step):
    """Every option of the step's parser (but the mounts and -v) is reachable from XNAT."""
    flags = {c.get("command-line-flag") or c.get("true-value") for c in command_of(step)["inputs"]}
    parser = build_parser(step)
    options = {a.option_strings[-1] for a in parser._actions if a.option_strings}
    missing = options - flags - {"--help", "--input", "--output", "--verbose"}
    assert not missing, f"{step}: options not in commands/{step}.json: {sorted(missing)}"

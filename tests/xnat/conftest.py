"""Fixtures of the XNAT tests: a minimal valid command."""

from __future__ import annotations

import copy
from typing import Any

import pytest

GOOD_COMMAND: dict[str, Any] = {
    "name": "demo",
    "description": "a command that passes every check",
    "version": "1.0",
    "image": "demo/step:1.0",
    "type": "docker",
    "command-line": "--input /input --output /output --scan #SCAN_ID# #THRESHOLD# #VERBOSE#",
    "override-entrypoint": False,
    "reserve-memory": 256,
    "limit-memory": 512,
    "limit-cpu": 1,
    "mounts": [
        {"name": "in", "writable": False, "path": "/input"},
        {"name": "out", "writable": True, "path": "/output"},
    ],
    "inputs": [
        {"name": "scan_id", "type": "string", "required": True, "replacement-key": "#SCAN_ID#"},
        {"name": "threshold", "type": "number", "default-value": "0.5",
         "command-line-flag": "--threshold", "replacement-key": "#THRESHOLD#"},
        {"name": "verbose", "type": "boolean", "default-value": "false",
         "true-value": "-v", "false-value": "", "replacement-key": "#VERBOSE#"},
        {"name": "mode", "type": "select-one", "select-values": ["fast", "slow"],
         "default-value": "fast", "command-line-flag": "--mode"},
    ],
    "outputs": [{"name": "result", "mount": "out", "path": "result", "required": True}],
    "xnat": [
        {
            "name": "demo-session",
            "contexts": ["xnat:imageSessionData"],
            "external-inputs": [
                {"name": "session", "type": "Session", "required": True},
            ],
            "derived-inputs": [
                {"name": "scan", "type": "Scan", "derived-from-wrapper-input": "session",
                 "matcher": "@.id == '3'", "provides-files-for-command-mount": "in"},
                {"name": "scan-id", "type": "string", "derived-from-wrapper-input": "scan",
                 "derived-from-xnat-object-property": "id",
                 "provides-value-for-command-input": "scan_id"},
            ],
            "output-handlers": [
                {"name": "result-resource", "accepts-command-output": "result",
                 "as-a-child-of": "session", "type": "Resource", "label": "RESULT"},
            ],
        }
    ],
}
# the good command uses #mode# too, so no W302 fires
GOOD_COMMAND["command-line"] += " #mode#"


@pytest.fixture
def good_command() -> dict[str, Any]:
    """A fresh deep copy of a command that lints clean."""
    return copy.deepcopy(GOOD_COMMAND)

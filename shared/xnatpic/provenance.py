"""Provenance records of the pipeline steps (what ran, when, with which parameters)."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from xnatpic import __version__

__all__ = ["now", "write_step_provenance"]


def now() -> str:
    """The current UTC time in ISO 8601, as the records use it."""
    return _dt.datetime.now(_dt.UTC).isoformat()


def write_step_provenance(path: Path, step: str, args: argparse.Namespace, started: str,
                          **details: Any) -> dict[str, Any]:
    """Write ``provenance.json`` of a step run and return what was written.

    Parameters
    ----------
    path : Path
        The file to write.
    step : str
        The step's name.
    args : argparse.Namespace
        The step's parsed arguments (paths written as text).
    started : str
        When the run started (:func:`now`).
    **details
        Step-specific entries, added after the common ones.

    Returns
    -------
    dict
        ``step``, ``xnatpic-version``, ``started``, ``finished``, ``parameters`` and
        the details.
    """
    record = {
        "step": step, "xnatpic-version": __version__, "started": started,
        "finished": now(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v)
                       for k, v in vars(args).items()},
        **details,
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record

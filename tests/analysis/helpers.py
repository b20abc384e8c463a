"""Where a map step's run landed in its output folder or stored resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_dir(out: Path, key: str | None = None) -> Path:
    """The run folder ``out/<run-key>`` of a map step (see xnatpic.analysis.outputs).

    Parameters
    ----------
    out : Path
        The step's output folder (``OUTPUT/maps``) or its stored resource
        (``RESOURCES/T1MAP``).
    key : str, optional
        The run key (``vtr-scan11``); without it ``out`` must hold exactly one run.
    """
    out = Path(out)
    runs = sorted(p for p in out.iterdir() if p.is_dir() and (p / "stats.json").is_file())
    if key is not None:
        assert (out / key) in runs, f"no run {key!r} in {out}: {[p.name for p in runs]}"
        return out / key
    assert len(runs) == 1, f"expected one run in {out}, found {[p.name for p in runs]}"
    return runs[0]



def launched_run(result: Any) -> Path:
    """The run folder a launch (``tests.analysis.conftest.launch_step``) stored: the one run
    its build's output mount held, inside the stored resource (which may hold others)."""
    build = Path(result.stderr).parent
    keys = {p.parent.name for p in build.glob("mounts/*/*/*/stats.json")}
    assert len(keys) == 1, f"{build}: expected one run in the output mount, found {keys}"
    return run_dir(Path(result.stored[0]), keys.pop())

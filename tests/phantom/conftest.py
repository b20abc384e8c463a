"""Fixtures of the phantom tests: one study written per session, and a plain reader of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xnatpic.paravision.jcamp import read_jcamp
from xnatpic.phantom import write_phantom

PHANTOM_SNR = 50.0
PHANTOM_SEED = 0
_DTYPES = {"_16BIT_SGN_INT": "<i2", "_32BIT_FLOAT": "<f4"}


@dataclass
class ScanData:
    """One phantom scan read back with numpy only (no project reader logic)."""

    scan: int
    visu: dict[str, Any]
    method: dict[str, Any]
    acqp: dict[str, Any]
    reco: dict[str, Any]
    stored: np.ndarray  # (frames, rows, columns)
    values: np.ndarray  # stored × slope + offset

    def grouped(self) -> np.ndarray:
        """Values as (slices, n, rows, columns) whatever the frame-group order."""
        order = self.visu["VisuFGOrderDesc"]
        sizes = [int(g[0]) for g in order]
        ids = [str(g[1]) for g in order]
        rows, cols = self.values.shape[1:]
        data = self.values.reshape([*sizes[::-1], rows, cols])  # slowest group first
        if len(ids) == 1:
            return data[:, None]
        if ids[0] == "FG_SLICE":  # slice fastest: (n, slices, ...)
            return np.swapaxes(data, 0, 1)
        return data  # group fastest: (slices, n, ...)


@pytest.fixture(scope="session")
def phantom_settings() -> dict[str, float]:
    """The snr and seed the session's phantom is written with."""
    return {"snr": PHANTOM_SNR, "seed": PHANTOM_SEED}


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom study written once (snr 50, seed 0)."""
    out = tmp_path_factory.mktemp("phantom") / "study"
    write_phantom(out, snr=PHANTOM_SNR, seed=PHANTOM_SEED)
    return out


@pytest.fixture(scope="session")
def truth(phantom_dir: Path) -> dict[str, Any]:
    """truth.json of the session's phantom."""
    return json.loads((phantom_dir / "truth" / "truth.json").read_text())


@pytest.fixture(scope="session")
def truth_maps(phantom_dir: Path) -> Callable[[str, str], np.ndarray]:
    """``truth_maps(geometry, name)`` loads one truth map."""

    def load(geometry: str, name: str) -> np.ndarray:
        return np.load(phantom_dir / "truth" / "maps" / geometry / f"{name}.npy")

    return load


@pytest.fixture(scope="session")
def read_scan(phantom_dir: Path) -> Callable[[int], ScanData]:
    """``read_scan(n)`` reads scan n: parameter files and 2dseq (numpy only)."""
    cache: dict[int, ScanData] = {}

    def read(scan: int) -> ScanData:
        if scan not in cache:
            folder = phantom_dir / str(scan)
            reco_dir = folder / "pdata" / "1"
            visu = read_jcamp(reco_dir / "visu_pars")
            cols, rows = (int(v) for v in visu["VisuCoreSize"])
            frames = int(visu["VisuCoreFrameCount"])
            dtype = np.dtype(_DTYPES[str(visu["VisuCoreWordType"])])
            stored = np.fromfile(reco_dir / "2dseq", dtype=dtype).reshape(frames, rows, cols)
            slope = np.asarray(visu["VisuCoreDataSlope"], dtype=float)
            offset = np.asarray(visu["VisuCoreDataOffs"], dtype=float)
            values = stored * slope[:, None, None] + offset[:, None, None]
            cache[scan] = ScanData(
                scan, visu, read_jcamp(folder / "method"), read_jcamp(folder / "acqp"),
                read_jcamp(reco_dir / "reco"), stored, values,
            )  # fmt: skip
        return cache[scan]

    return read

"""Same seed, same files; another seed or snr, other noise."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from xnatpic.errors import XnatpicError
from xnatpic.paravision.jcamp import read_jcamp
from xnatpic.phantom import write_phantom


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _air_noise(study: Path) -> float:
    """Mean magnitude in the air of the MSME first echo (Rayleigh mean = σ·sqrt(π/2))."""
    labels = np.load(study / "truth" / "maps" / "axial" / "labels.npy")
    visu = read_jcamp(study / "2" / "pdata" / "1" / "visu_pars")
    stored = np.fromfile(study / "2" / "pdata" / "1" / "2dseq", dtype="<i2").reshape(-1, 64, 96)
    first_echoes = stored[::12] * visu["VisuCoreDataSlope"][::12, None, None]
    return float(first_echoes[labels == 0].mean())


class TestDeterminism:
    def test_same_seed_gives_identical_files(self, phantom_dir, phantom_settings, tmp_path):
        again = tmp_path / "again"
        write_phantom(again, **phantom_settings)
        assert _digests(again) == _digests(phantom_dir)

    def test_other_seed_changes_noise_not_protocol(self, phantom_dir, tmp_path):
        other = tmp_path / "other"
        write_phantom(other, snr=50.0, seed=1)
        first, second = _digests(phantom_dir), _digests(other)
        assert first.keys() == second.keys()
        for scan in range(1, 9):
            assert first[f"{scan}/pdata/1/2dseq"] != second[f"{scan}/pdata/1/2dseq"]
            assert first[f"{scan}/method"] == second[f"{scan}/method"]
        visu = read_jcamp(other / "2" / "pdata" / "1" / "visu_pars")
        assert visu["VisuStudyUid"] != read_jcamp(phantom_dir / "subject")[
            "SUBJECT_study_instance_uid"
        ]

    def test_snr_sets_the_noise(self, phantom_dir, phantom_settings, tmp_path):
        noisy = tmp_path / "noisy"
        write_phantom(noisy, snr=phantom_settings["snr"] / 5, seed=0)
        ratio = _air_noise(noisy) / _air_noise(phantom_dir)
        assert ratio == pytest.approx(5.0, rel=0.05)


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [({"snr": 0.0}, "--snr must be a positive number"),
         ({"snr": float("nan")}, "--snr must be a positive number"),
         ({"seed": -1}, "--seed must be zero or positive")],
    )  # fmt: skip
    def test_bad_settings(self, tmp_path, kwargs, match):
        with pytest.raises(XnatpicError, match=match):
            write_phantom(tmp_path / "x", **kwargs)
        assert not (tmp_path / "x").exists()

    def test_refuses_a_non_empty_folder(self, tmp_path):
        (tmp_path / "keep.txt").write_text("mine")
        with pytest.raises(XnatpicError, match=r"not empty.*--force"):
            write_phantom(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]

    def test_refuses_a_file(self, tmp_path):
        target = tmp_path / "file"
        target.write_text("x")
        with pytest.raises(XnatpicError, match="is not a folder"):
            write_phantom(target)

    def test_force_overwrites_only_the_phantom(self, tmp_path):
        write_phantom(tmp_path, seed=1)
        (tmp_path / "keep.txt").write_text("mine")
        report = write_phantom(tmp_path, seed=2, force=True)
        assert (tmp_path / "keep.txt").read_text() == "mine"
        assert report.scans == tuple(range(1, 9))
        assert '"seed": 2' in report.truth.read_text()

"""Zip archives that would expand too much (zip bombs) or hold too many members are
refused with one message naming the file, before anything is written."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import pytest

from xnatpic.cli.main import main
from xnatpic.errors import UnsafeArchiveError
from xnatpic.paravision.dataset import extract_archive

#: Declared expansion of the bomb: above the 256 MiB floor, ~1000x its compressed size.
BOMB_BYTES = 300 * 2**20


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A ParaVision-looking zip of ~300 kB whose 2dseq expands to 300 MiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "study.zip"
    chunk = bytes(2**20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("study/subject", "##$SUBJECT_id=<m>\n##END=\n")
        zf.writestr("study/1/acqp", "##END=\n")
        zf.writestr("study/1/method", "##END=\n")
        with zf.open("study/1/pdata/1/2dseq", "w", force_zip64=True) as member:
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)
    assert path.stat().st_size < BOMB_BYTES / 500  # the premise: small file, huge expansion
    return path


def test_bomb_refused_before_writing_with_small_memory(bomb, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeArchiveError) as caught:
            extract_archive(bomb, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert str(bomb) in message and "zip bomb" in message
    assert f"{sum(i.file_size for i in zipfile.ZipFile(bomb).infolist())} bytes" in message
    assert list(out.iterdir()) == []  # nothing extracted
    assert peak < 16 * 2**20


def test_cli_gives_one_line_naming_the_file(bomb, capsys):
    assert main(["info", str(bomb)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bomb) in err[0] and "zip bomb" in err[0]
    assert "Traceback" not in err[0]


def test_ratio_limit_scales_with_the_archive(bomb, tmp_path):
    """A large genuine archive may expand more: the allowance is the larger of the two."""
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError):
        extract_archive(bomb, out, max_ratio=500, min_allowance=2**20)
    extract_archive(bomb, out, max_ratio=5000, min_allowance=2**20)
    assert (out / "study" / "1" / "pdata" / "1" / "2dseq").stat().st_size == BOMB_BYTES


def test_too_many_members(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for k in range(5):
            zf.writestr(f"study/{k}/acqp", "##END=\n")
    with pytest.raises(UnsafeArchiveError, match=r"many\.zip: 5 members, more than the 4"):
        extract_archive(archive, tmp_path, max_members=4)


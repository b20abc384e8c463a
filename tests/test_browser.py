"""The browser check finds what a researcher would see broken, and passes a sound page."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from tests.browser import render


def _png(path: Path) -> None:
    """A 2x1 red PNG written by hand (no plotting library involved)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"\x00" + b"\xff\x00\x00" * 2
    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_sound_page_has_no_problems(tmp_path: Path) -> None:
    _png(tmp_path / "ok.png")
    (tmp_path / "other.html").write_text("<p>other</p>", encoding="utf-8")
    page = tmp_path / "index.html"
    page.write_text("<html><head><title>T2 map</title></head><body><h1>Session S1</h1>"
                    "<img src='ok.png'><a href='other.html#x'>other</a></body></html>",
                    encoding="utf-8")
    shot = tmp_path / "shot.png"
    result = render(page, screenshot=shot)
    assert result.problems == []
    assert result.title == "T2 map"
    assert "Session S1" in result.text
    assert len(result.images) == 1 and result.images[0].endswith("/ok.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_broken_image_script_error_and_missing_link_are_reported(tmp_path: Path) -> None:
    (tmp_path / "corrupt.png").write_bytes(b"not a png")
    page = tmp_path / "index.html"
    page.write_text("<html><body><img src='missing.png'><img src='corrupt.png'>"
                    "<a href='gone.html'>gone</a><script>undefinedFunction()</script>"
                    "<script>console.error('bad value')</script></body></html>",
                    encoding="utf-8")
    problems = "\n".join(render(page).problems)
    assert "broken image: " in problems and "missing.png" in problems
    assert "corrupt.png" in problems
    assert "link to a missing file: " in problems and "gone.html" in problems
    assert "undefinedFunction" in problems
    assert "bad value" in problems

"""Living Image text files: ClickInfo.txt, AnalyzedClickInfo.txt, SequenceInfo.txt.

The files are plain text, one ``Key:<TAB>Value`` per line, grouped into sections opened by
a line ``*** Section name:<TAB>value`` (the value is optional; for an image section it is
the TIFF file name, e.g. ``*** luminescent image:<TAB>luminescent.TIF``). Lines starting
with ``#`` are comments, and so is a ``#`` note after a value. The same section name may
occur more than once (Living Image writes a ``User Label Name Set`` per label set);
:meth:`ClickText.section` returns the first, as the PIXI importer reads the first.

Sources for the layout and the names (docs/optical.md lists them): the PIXI XNAT plugin's
parsers (``DefaultAnalyzedClickInfoHelper``, ``DefaultClickInfoHelper``), XNAT-PIC's
``ivis_metadata_parser.py`` and ``ivis_dicom_generator.py``, and the ROI lines written by
a published ROI tool (``ROI n:key=value;key=value;...`` in ``*** ROIs:``).

This layer only splits the text; :mod:`xnatpic.optical.parameters` gives typed values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from xnatpic.optical.errors import OpticalError

__all__ = ["ClickText", "Section", "parse_click_text", "read_click_text"]

_SECTION = re.compile(r"^\*\*\*\s*(?P<name>[^:]+?)\s*(?::\s*(?P<value>.*))?$")
#: A comment after a value (``Key:<TAB>value # note``), dropped as XNAT-PIC's parser and a
#: published MATLAB reader (readIVISfiles.m) drop it.
_TRAILING_COMMENT = re.compile(r"\s+#.*$")
#: Largest text file accepted (Living Image's are a few kB; a guard against a wrong file).
MAX_BYTES = 4 * 1024 * 1024


@dataclass
class Section:
    """One ``*** name: value`` block.

    Attributes
    ----------
    name : str
        Section name as written (``luminescent image``, ``User Label Name Set``...).
    value : str
        Text after the colon of the header line ('' when absent).
    entries : dict of str to str
        ``Key: Value`` lines of the block (first occurrence of a key wins).
    line : int
        1-based line number of the header.
    """

    name: str
    value: str = ""
    entries: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def get(self, key: str, default: str | None = None) -> str | None:
        """Value of ``key`` (exact name, then case-insensitively), else ``default``."""
        if key in self.entries:
            return self.entries[key]
        folded = key.casefold()
        for name, value in self.entries.items():
            if name.casefold() == folded:
                return value
        return default


@dataclass
class ClickText:
    """A parsed Living Image text file."""

    path: Path
    sections: list[Section]

    def section(self, name: str) -> Section | None:
        """First section called ``name`` (case-insensitive), or None."""
        folded = name.casefold()
        return next((s for s in self.sections if s.name.casefold() == folded), None)

    def sections_named(self, name: str) -> list[Section]:
        """Every section called ``name`` (case-insensitive)."""
        folded = name.casefold()
        return [s for s in self.sections if s.name.casefold() == folded]

    def find(self, key: str) -> str | None:
        """Value of ``key`` in the first section holding it (case-insensitive)."""
        for section in self.sections:
            value = section.get(key)
            if value is not None:
                return value
        return None


def parse_click_text(text: str, path: Path) -> ClickText:
    """Split Living Image text into sections.

    Parameters
    ----------
    text : str
        File content.
    path : Path
        The file (for messages and relative image paths).

    Raises
    ------
    OpticalError
        When no ``***`` section header is found (not a Living Image file).
    """
    sections: list[Section] = []
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        header = _SECTION.match(line)
        if header:
            current = Section(header["name"].strip(), (header["value"] or "").strip(),
                              line=number)
            sections.append(current)
            continue
        key, colon, value = line.partition(":")
        if not colon or current is None:
            continue  # free text outside a key/value pair carries nothing we use
        value = _TRAILING_COMMENT.sub("", value)  # "60 # seconds": the comment dropped
        current.entries.setdefault(key.strip(), value.strip())
    if not sections:
        raise OpticalError(f"{path}: not a Living Image file (no '*** Section:' header line)")
    return ClickText(path, sections)


def read_click_text(path: Path) -> ClickText:
    """Read and parse a Living Image text file.

    Raises
    ------
    OpticalError
        When the file cannot be read, is too large, or has no section header.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise OpticalError(f"{path}: {size} bytes, too large for a Living Image text file "
                               f"(at most {MAX_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise OpticalError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # Living Image on Windows writes the ANSI code page
    return parse_click_text(text, path)

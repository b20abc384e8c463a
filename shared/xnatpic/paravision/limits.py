"""Bounds on what one input may cost to read (issue 16, "input that blows up").

Every limit is far above what any ParaVision 5.1-360 dataset holds, and low enough that
the worst input built against it stays within a few hundred MB of memory (figures in
docs/xnat-conformance.md (hardening section), measured by tests/paravision/test_bounded_input.py).
"""

from __future__ import annotations

__all__ = [
    "MAX_EXPANDED_ELEMENTS",
    "MAX_FOLDER_DEPTH",
    "MAX_JCAMP_BYTES",
    "MAX_STRING_ARRAY_BYTES",
    "MAX_STRUCT_DEPTH",
    "decode_jcamp",
]

#: Largest parameter file read (bytes). The largest real files (method files with
#: trajectories) are a few MB.
MAX_JCAMP_BYTES = 64 * 1024 * 1024
#: Most elements one parameter may declare or expand to (sized arrays and ``@N*(v)``
#: run-length groups). 4 M elements = 32 MB as float64.
MAX_EXPANDED_ELEMENTS = 4_000_000
#: A string array is kept as a fixed-width numpy array (``<U``) only while that costs
#: at most this many bytes (count x longest x 4); wider ones become ``object`` arrays of
#: the same strings, whose cost is the text itself.
MAX_STRING_ARRAY_BYTES = 16 * 1024 * 1024
#: Deepest struct nesting ``((((...))))`` accepted.
MAX_STRUCT_DEPTH = 64
#: Deepest folder nesting searched for studies under one upload/convert source.
MAX_FOLDER_DEPTH = 64


def decode_jcamp(raw: bytes) -> str:
    """Decode a parameter file as it declares itself.

    ParaVision 360 writes UTF-8; ParaVision 5 and 6 write ISO-8859-1 (latin-1), which is
    never valid UTF-8 once it holds a non-ASCII character. A file that is valid UTF-8 is
    read as UTF-8, any other as latin-1 (every byte sequence is valid latin-1).

    Examples
    --------
    >>> decode_jcamp("Müller".encode("utf-8")), decode_jcamp("Müller".encode("latin-1"))
    ('Müller', 'Müller')
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")

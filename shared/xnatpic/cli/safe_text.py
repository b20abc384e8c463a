"""Text from data files made safe for a terminal (issue 16)."""

from __future__ import annotations

import unicodedata

__all__ = ["terminal_safe"]

#: Characters that reorder or hide text on a terminal: bidi embeddings, overrides and
#: isolates, marks, and the zero-width characters.
_INVISIBLE = frozenset("\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d"
                       "\u202e\u2066\u2067\u2068\u2069\ufeff")


def terminal_safe(text: str) -> str:
    """``text`` with control characters and bidi overrides shown as escapes.

    Examples
    --------
    >>> terminal_safe("mo\\x1b[31muse\\u202e-1")
    'mo\\\\x1b[31muse\\\\u202e-1'
    >>> terminal_safe("Müller")
    'Müller'
    """
    out = []
    for ch in text:
        if ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
